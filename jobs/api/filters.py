import django_filters
from django.db.models import QuerySet

from jobs.api.serializers import STATUS_CHOICES
from jobs.models import NEW, ExecutionStatus, Job, JobExecution, StockClip

ID_MAX = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """A foreign key id; anything that cannot be an id matches nothing instead of failing."""

    def filter(self, qs, value):
        if value in (None, ""):
            return qs
        if value != int(value) or not 0 < value <= ID_MAX:
            return qs.none()
        return super().filter(qs, int(value))


class IdListFilter(django_filters.BaseInFilter, django_filters.NumberFilter):
    def filter(self, qs, value):
        if not value:
            return qs
        ids = [int(item) for item in value if item == int(item) and 0 < item <= ID_MAX]
        return qs.filter(pk__in=ids)


class JobFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=STATUS_CHOICES,
        method="filter_status",
        help_text="Status of the latest render; NEW: never rendered.",
    )
    account = IdFilter(field_name="account_id", help_text="Account id.")
    language = IdFilter(field_name="language_id", help_text="Language id.")
    topic = IdFilter(field_name="topic_id", help_text="Topic id.")
    ids = IdListFilter(field_name="id", help_text="Comma-separated job ids, e.g. 1,2,3.")
    search = django_filters.CharFilter(
        field_name="title", lookup_expr="icontains", help_text="Part of the title."
    )
    ordering = django_filters.OrderingFilter(
        fields=("runorder", "id", "created_at", "updated_at", "title"),
        help_text="Sort by these; -name sorts descending.",
    )

    class Meta:
        model = Job
        fields: list[str] = []

    def filter_status(self, queryset: QuerySet[Job], name: str, value: str) -> QuerySet[Job]:
        if value == NEW:
            return queryset.filter(latest_execution__isnull=True)
        return queryset.filter(latest_execution__status=value)


class ExecutionFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=ExecutionStatus.choices, help_text="One or more statuses (repeat the parameter)."
    )
    job = IdFilter(field_name="job_id", help_text="Job id.")

    class Meta:
        model = JobExecution
        fields: list[str] = []


class ClipFilter(django_filters.FilterSet):
    tag = django_filters.CharFilter(field_name="tags", lookup_expr="icontains", help_text="Part of the tags.")

    class Meta:
        model = StockClip
        fields: list[str] = []

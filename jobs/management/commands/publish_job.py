from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jobs.models import Job, Publication
from jobs.publishing import publications


class Command(BaseCommand):
    help = (
        "Publish jobs' latest successful renders to their YouTube channels (queued for the workers, or "
        "--now in this process); --due runs every publication that is due, e.g. from cron on a host without "
        "workers."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("job_ids", nargs="*", type=int)
        parser.add_argument("--privacy", default="", help="private, unlisted or public")
        parser.add_argument("--publish-at", default="", help="ISO time YouTube makes the video public")
        parser.add_argument("--tags", default="", help="comma-separated")
        parser.add_argument("--category", default="", help="YouTube category id")
        parser.add_argument("--force", action="store_true", help="upload another copy of a published render")
        parser.add_argument("--now", action="store_true", help="publish in this process instead of a worker")
        parser.add_argument("--due", action="store_true", help="run every due publication in this process")

    def handle(self, *args, job_ids: list[int], now: bool, due: bool, **options) -> None:
        publish_at = parse_datetime(options["publish_at"]) if options["publish_at"] else None
        if options["publish_at"] and publish_at is None:
            raise CommandError(f"--publish-at {options['publish_at']!r} is not an ISO date and time.")
        if publish_at is not None and timezone.is_naive(publish_at):
            publish_at = timezone.make_aware(publish_at)
        choice = publications.PublishOptions(
            privacy=options["privacy"],
            publish_at=publish_at,
            category_id=options["category"],
            force=options["force"],
            tags=[tag.strip() for tag in options["tags"].split(",") if tag.strip()],
        )
        for job_id in job_ids:
            job = Job.objects.alive().filter(pk=job_id).first()
            if job is None:
                raise CommandError(f"There is no job {job_id} (or it is deleted).")
            try:
                publication = publications.publication_request(job=job, user=None, options=choice)
            except ValidationError as error:
                raise CommandError(f"Job {job_id}: {'; '.join(error.messages)}") from error
            self.stdout.write(f"Job {job_id}: publication {publication.pk} queued.")
            if now:
                publication = publications.publication_run(publication_id=publication.pk) or publication
                self.stdout.write(f"Job {job_id}: {publication.status}: {publication.detail}")
        if due:
            for publication_id in publications.publication_run_due():
                publication = Publication.objects.get(pk=publication_id)
                self.stdout.write(f"Publication {publication_id}: {publication.status}: {publication.detail}")

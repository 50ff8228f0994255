"""Each user gets a personal team (named after the username, the user its admin) that owns every row the
user owns; rows without an owner stay shared presets (no team). Publications and webhook deliveries
follow their job and webhook."""

from django.db import migrations
from django.db.models import OuterRef, Subquery
from django.utils.text import slugify

OWNED = [
    ("accounts", "Account"),
    ("voices", "Language"),
    ("voices", "Voice"),
    ("topics", "Topic"),
    ("jobs", "Job"),
    ("jobs", "StockClip"),
    ("jobs", "Webhook"),
]


def personal_slug(username: str, taken: set[str]) -> str:
    base = slugify(username)[:50] or "user"
    slug, number = base, 1
    while slug in taken:
        number += 1
        slug = f"{base}-{number}"
    taken.add(slug)
    return slug


def create_personal_teams(apps, schema_editor) -> None:
    User = apps.get_model("accounts", "User")
    Team = apps.get_model("accounts", "Team")
    Membership = apps.get_model("accounts", "Membership")
    taken = set(Team.objects.values_list("slug", flat=True))
    for user in User.objects.filter(personal_team__isnull=True).order_by("username"):
        team = Team.objects.create(
            name=user.username[:255], slug=personal_slug(user.username, taken), personal_of=user
        )
        Membership.objects.create(team=team, user=user, role="admin")
    for app_label, model_name in OWNED:
        model = apps.get_model(app_label, model_name)
        personal = Team.objects.filter(personal_of=OuterRef("owner_id")).values("id")[:1]
        model.objects.filter(owner__isnull=False, team__isnull=True).update(team_id=Subquery(personal))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_teams"),
        ("jobs", "0013_teams"),
        ("topics", "0003_team"),
        ("voices", "0003_team"),
    ]

    operations = [migrations.RunPython(create_personal_teams, migrations.RunPython.noop)]

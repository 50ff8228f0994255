"""The teams migration (accounts 0005): every user gets a personal team that owns what the user owned;
shared presets stay shared; no row is lost."""

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("accounts", "0003_channel_credentials"),
    ("jobs", "0012_split_animation"),
    ("voices", "0002_text_rules"),
    ("topics", "0002_text_rules_and_lora_name"),
]
OWNED = [
    ("accounts", "Account"),
    ("voices", "Language"),
    ("voices", "Voice"),
    ("topics", "Topic"),
    ("jobs", "Job"),
    ("jobs", "StockClip"),
    ("jobs", "Webhook"),
]
# Two usernames that make the same slug, and one that makes none.
USERNAMES = ["Ann Lee", "ann-lee", "张三"]


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


@pytest.fixture
def latest_schema_after():
    """The test moves the schema back and forth: every later test gets it whole again."""
    yield
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def _rows_of(apps, owner, number: int) -> dict:
    """One row of every owned model (and the rows hanging off a job) of `owner` (None: presets)."""
    model = apps.get_model
    tag = f"{number}"
    account = model("accounts", "Account").objects.create(owner=owner, username=f"channel{tag}")
    language = model("voices", "Language").objects.create(owner=owner, code=f"x{tag}-XX", name="L")
    voice = model("voices", "Voice").objects.create(owner=owner, name=f"voice{tag}", language=language)
    topic = model("topics", "Topic").objects.create(owner=owner, name=f"topic{tag}", prompt_gen_image="p")
    job = model("jobs", "Job").objects.create(
        owner=owner,
        title=f"job{tag}",
        content="今天。",
        language=language,
        voice=voice,
        topic=topic,
        account=account,
    )
    clip = model("jobs", "StockClip").objects.create(owner=owner, file=f"clips/{tag}.mp4")
    rows = {
        "Account": account,
        "Language": language,
        "Voice": voice,
        "Topic": topic,
        "Job": job,
        "StockClip": clip,
    }
    if owner is not None:
        execution = model("jobs", "JobExecution").objects.create(job=job, status="SUCCESS")
        model("jobs", "Publication").objects.create(
            job=job, execution=execution, account=account, title="t", category_id="22", privacy="private"
        )
        webhook = model("jobs", "Webhook").objects.create(owner=owner, url="https://example.com/", secret="s")
        model("jobs", "WebhookDelivery").objects.create(
            webhook=webhook, event_id=uuid.uuid4(), kind="render.done", payload={}
        )
        rows["Webhook"] = webhook
    return rows


@pytest.mark.django_db(transaction=True)
def test_every_user_gets_a_personal_team_owning_their_rows_and_presets_stay_shared(latest_schema_after):
    old = migrate(BEFORE).loader.project_state(BEFORE).apps
    User = old.get_model("accounts", "User")
    users = [User.objects.create(username=name) for name in USERNAMES]
    owned = {user.username: _rows_of(old, user, number) for number, user in enumerate(users)}
    presets = _rows_of(old, None, 99)
    counts = {name: old.get_model(app, name).objects.count() for app, name in OWNED}
    other_counts = {
        name: old.get_model("jobs", name).objects.count()
        for name in ("JobExecution", "Publication", "WebhookDelivery")
    }

    executor = migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    new = executor.loader.project_state(executor.loader.graph.leaf_nodes()).apps

    Team, Membership = new.get_model("accounts", "Team"), new.get_model("accounts", "Membership")
    assert {name: new.get_model(app, name).objects.count() for app, name in OWNED} == counts
    assert {
        name: new.get_model("jobs", name).objects.count()
        for name in ("JobExecution", "Publication", "WebhookDelivery")
    } == other_counts
    slugs = set()
    for user in users:
        team = Team.objects.get(personal_of_id=user.pk)
        assert team.name == user.username
        slugs.add(team.slug)
        assert list(Membership.objects.filter(team=team).values_list("user_id", "role")) == [
            (user.pk, "admin")
        ]
        for name, row in owned[user.username].items():
            app = next(app for app, model_name in OWNED if model_name == name)
            migrated = new.get_model(app, name).objects.get(pk=row.pk)
            assert (migrated.team_id, migrated.owner_id) == (team.pk, user.pk), name
        publication = new.get_model("jobs", "Publication").objects.get(job_id=owned[user.username]["Job"].pk)
        assert publication.job.team_id == team.pk  # a publication's team is its job's
    assert len(slugs) == 3 and {"ann-lee", "ann-lee-2"} <= slugs
    for name, row in presets.items():
        app = next(app for app, model_name in OWNED if model_name == name)
        migrated = new.get_model(app, name).objects.get(pk=row.pk)
        assert (migrated.team_id, migrated.owner_id) == (None, None), name

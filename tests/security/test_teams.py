"""Teams (issue 26), as the attacker and as the team: an operator of team A reads, changes, renders,
publishes and reorders nothing of team B's through the admin, the API, websockets, links or exports;
two members of one team share their work; a request naming a team the user is not in is refused."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from accounts.models import Role
from batchvideo.asgi import application
from jobs.models import ExecutionStatus, Job, JobExecution
from tests.admin.conftest import client_for as admin_client_for
from tests.admin.conftest import job_form
from tests.api.conftest import client_for
from tests.api.test_splits import make_split
from tests.factories import make_execution, make_job, make_team, make_topic, make_user
from tests.security.conftest import grant_operator_rights


def member(team, role=Role.OPERATOR):
    """A staff user with the operators' admin rights, in `team` only (no personal team)."""
    user = grant_operator_rights(make_user(is_staff=True, personal_team=False))
    team.memberships.create(user=user, role=role)
    return user


@pytest.fixture
def alpha(db):
    return make_team(name="Alpha", slug="alpha")


@pytest.fixture
def beta(db):
    return make_team(name="Beta", slug="beta")


@pytest.fixture
def attacker(alpha):
    return member(alpha)


@pytest.fixture
def victim(beta):
    return member(beta)


@pytest.fixture
def their_job(beta, victim):
    job = make_job(owner=victim, team=beta, title="Beta's secret")
    make_split(job, 0, "第一句。")
    execution = make_execution(job, status=ExecutionStatus.SUCCESS, results={"video": "jobs/x/video.mp4"})
    return job, execution


# ---------------------------------------------------------------- the API


def test_an_operator_of_another_team_finds_nothing_of_theirs_in_the_api(attacker, their_job):
    job, execution = their_job
    api = client_for(attacker)
    assert api.get("/api/v1/jobs/").json()["results"] == []
    for url in [
        f"/api/v1/jobs/{job.pk}/",
        f"/api/v1/jobs/{job.pk}/desc/",
        f"/api/v1/jobs/{job.pk}/splits/",
        f"/api/v1/jobs/{job.pk}/timeline/",
        f"/api/v1/executions/{execution.pk}/",
    ]:
        assert api.get(url).status_code == 404, url
    assert api.get("/api/v1/executions/").json()["results"] == []
    assert api.get("/api/v1/jobs/export/").json() == []
    for method, url, body in [
        ("patch", f"/api/v1/jobs/{job.pk}/", {"title": "mine now"}),
        ("patch", f"/api/v1/jobs/{job.pk}/splits/0/", {"text": "换掉。"}),
        ("post", f"/api/v1/jobs/{job.pk}/render/", {}),
        ("post", f"/api/v1/jobs/{job.pk}/increase_priority/", {}),
        ("post", f"/api/v1/jobs/{job.pk}/cancel/", {}),
        ("post", f"/api/v1/jobs/{job.pk}/publish/", {"force": True}),
        ("delete", f"/api/v1/jobs/{job.pk}/", None),
    ]:
        assert getattr(api, method)(url, body, format="json").status_code == 404, url
    job.refresh_from_db()
    assert (job.title, job.runorder, job.deleted_at) == ("Beta's secret", 0, None)
    assert JobExecution.objects.filter(job=job).count() == 1


def test_naming_a_team_one_is_not_in_is_refused_with_its_name(attacker, their_job):
    api = client_for(attacker)
    for response in [
        api.get("/api/v1/jobs/", HTTP_X_TEAM="beta"),
        api.get("/api/v1/jobs/?team=beta"),
        api.get("/api/v1/jobs/", HTTP_X_TEAM="no-such-team"),
    ]:
        assert response.status_code == 403
        assert "You are not a member of the team" in response.json()["detail"]
    assert "“beta”" in api.get("/api/v1/jobs/", HTTP_X_TEAM="beta").json()["detail"]


def test_a_member_of_two_teams_works_in_the_one_named(attacker, alpha, beta, their_job):
    beta.memberships.create(user=attacker, role=Role.OPERATOR)
    mine = make_job(owner=attacker, team=alpha, title="Alpha's")
    api = client_for(attacker)
    assert [row["title"] for row in api.get("/api/v1/jobs/").json()["results"]] == ["Alpha's"]  # default
    assert [row["title"] for row in api.get("/api/v1/jobs/", HTTP_X_TEAM="beta").json()["results"]] == [
        "Beta's secret"
    ]
    created = api.post(
        "/api/v1/jobs/", {"title": "new", "content": "今天。"}, format="json", HTTP_X_TEAM="beta"
    )
    assert created.status_code == 201 and created.json()["team"] == "beta"
    assert Job.objects.get(pk=created.json()["id"]).owner == attacker
    assert api.get(f"/api/v1/jobs/{mine.pk}/", HTTP_X_TEAM="beta").status_code == 404


def test_a_job_may_not_use_another_teams_topic(attacker, beta, victim):
    theirs = make_topic(owner=victim, team=beta)
    response = client_for(attacker).post(
        "/api/v1/jobs/", {"title": "t", "content": "今天。", "topic": theirs.pk}, format="json"
    )
    assert response.status_code == 400 and "topic" in response.json()


# ---------------------------------------------------------------- two members of one team


def test_two_members_of_a_team_see_and_edit_the_same_storyboard(beta, victim, their_job):
    job, _execution = their_job
    colleague = member(beta)
    api = client_for(colleague)
    assert [row["id"] for row in api.get("/api/v1/jobs/").json()["results"]] == [job.pk]
    assert (
        api.patch(f"/api/v1/jobs/{job.pk}/splits/0/", {"text": "改好了。"}, format="json").status_code == 200
    )
    assert client_for(victim).get(f"/api/v1/jobs/{job.pk}/splits/0/").json()["text"] == "改好了。"
    page = admin_client_for(colleague).get(reverse("admin:jobs_job_storyboard", args=[job.pk]))
    assert page.status_code == 200 and "改好了。" in page.content.decode()


# ---------------------------------------------------------------- the admin


def test_an_operator_of_another_team_finds_nothing_of_theirs_in_the_admin(attacker, their_job):
    job, execution = their_job
    admin = admin_client_for(attacker)
    listing = admin.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert "Beta&#x27;s secret" not in listing and "Beta's secret" not in listing
    for url in [
        reverse("admin:jobs_job_change", args=[job.pk]),
        reverse("admin:jobs_job_storyboard", args=[job.pk]),
        reverse("admin:jobs_jobexecution_change", args=[execution.pk]),
    ]:
        assert admin.get(url).status_code in (302, 404), url  # the admin redirects a missing row away
    assert admin.post(
        reverse("admin:jobs_job_change", args=[job.pk]), job_form(title="mine")
    ).status_code in (
        302,
        404,
    )
    for action in ["render", "increase_priority", "soft_delete", "publish", "export_csv"]:
        response = admin.post(
            reverse("admin:jobs_job_changelist"), {"action": action, "_selected_action": [job.pk]}
        )
        assert "Beta" not in response.content.decode(), action
    job.refresh_from_db()
    assert (job.title, job.runorder, job.deleted_at) == ("Beta's secret", 0, None)
    assert JobExecution.objects.filter(job=job).count() == 1


def test_the_admin_team_switcher_changes_what_the_lists_show(attacker, alpha, beta, their_job):
    make_job(owner=attacker, team=alpha, title="Alpha's")
    admin = admin_client_for(attacker)
    page = admin.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert 'id="team-switcher"' in page and "Alpha&#x27;s" in page
    refused = admin.post(reverse("team-switch"), {"team": "beta", "next": "/admin/"})
    assert refused.status_code == 403
    beta.memberships.create(user=attacker, role=Role.OPERATOR)
    switched = admin.post(reverse("team-switch"), {"team": "beta", "next": "/admin/jobs/job/"})
    assert switched.status_code == 302 and switched["Location"] == "/admin/jobs/job/"
    page = admin.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert "Beta&#x27;s secret" in page and "Alpha&#x27;s" not in page
    created = admin.post(reverse("admin:jobs_job_add"), job_form(title="Made in beta"))
    assert created.status_code == 302
    assert Job.objects.get(title="Made in beta").team == beta
    beta.memberships.filter(user=attacker).delete()  # removed from the team picked in the session
    page = admin.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert "Beta&#x27;s secret" not in page and "Alpha&#x27;s" in page


def test_presets_are_read_only_for_teams(attacker):
    preset = make_topic(owner=None, name="Shared topic")
    admin = admin_client_for(attacker)
    assert admin.get(reverse("admin:topics_topic_change", args=[preset.pk])).status_code == 200  # read
    changed = admin.post(
        reverse("admin:topics_topic_change", args=[preset.pk]),
        {"name": "Mine", "prompt_gen_image": "x", "lora_weight": "1", "real_clip_ratio": "0", "extra": "{}"},
    )
    assert changed.status_code == 403
    assert (
        client_for(attacker).patch(f"/api/v1/topics/{preset.pk}/", {"name": "x"}, format="json").status_code
        == 403
    )
    preset.refresh_from_db()
    assert preset.name == "Shared topic"


def test_team_admins_manage_members_of_their_own_teams_only(alpha, beta, attacker, victim):
    boss = member(alpha, Role.ADMIN)
    newcomer = make_user(personal_team=False)
    api = client_for(boss)
    teams_listed = api.get("/api/v1/teams/").json()
    assert teams_listed == [
        {"slug": "alpha", "name": "Alpha", "role": "admin", "personal": False, "current": True}
    ]
    added = api.post(
        "/api/v1/teams/alpha/members/", {"username": newcomer.username, "role": "publisher"}, format="json"
    )
    assert added.status_code == 201 and added.json()["role"] == "publisher"
    assert (
        api.patch(
            f"/api/v1/teams/alpha/members/{newcomer.username}/", {"role": "operator"}, format="json"
        ).status_code
        == 200
    )
    assert api.delete(f"/api/v1/teams/alpha/members/{newcomer.username}/").status_code == 204
    # Another team's members: not found; an operator of the team: refused, saying why.
    assert api.get("/api/v1/teams/beta/members/").status_code == 404
    assert (
        api.post(
            "/api/v1/teams/beta/members/", {"username": newcomer.username, "role": "admin"}, format="json"
        ).status_code
        == 404
    )
    refused = client_for(attacker).post(
        "/api/v1/teams/alpha/members/", {"username": newcomer.username, "role": "admin"}, format="json"
    )
    assert refused.status_code == 403 and "team admin" in refused.json()["detail"]
    assert [m["username"] for m in client_for(attacker).get("/api/v1/teams/alpha/members/").json()] == sorted(
        [attacker.username, boss.username]
    )
    # In the admin: the team's page lists members for its admin; another team's page is not there.
    admin = admin_client_for(boss)
    assert admin.get(reverse("admin:accounts_team_change", args=[alpha.pk])).status_code == 200
    assert admin.get(reverse("admin:accounts_team_change", args=[beta.pk])).status_code in (302, 404)


# ---------------------------------------------------------------- websockets

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


def _ticket(user) -> str:
    return client_for(user).post("/api/v1/ws-ticket/").json()["ticket"]


@pytest.mark.django_db(transaction=True)
async def test_another_teams_job_feed_is_closed_to_an_operator(settings):
    settings.REDIS_URL = ""  # the consumer reads the database
    settings.API_THROTTLE_USER = None

    def setup():
        alpha, beta = make_team(slug="ws-alpha"), make_team(slug="ws-beta")
        attacker, victim = member(alpha), member(beta)
        job = make_job(owner=victim, team=beta)
        make_execution(job, status=ExecutionStatus.RUNNING)
        return job, _ticket(attacker), _ticket(attacker), _ticket(victim)

    job, ticket, second, victims = await sync_to_async(setup)()

    async def first(path: str) -> dict:
        connection = WebsocketCommunicator(application, path, headers=HEADERS)
        await connection.connect()
        message = await connection.receive_output(timeout=3)
        await connection.disconnect()
        return message

    assert await first(f"/ws/jobs/{job.pk}/?ticket={ticket}") == {"type": "websocket.close", "code": 4403}
    assert await first(f"/ws/jobs/?ticket={second}&team=ws-beta") == {"type": "websocket.close", "code": 4403}
    assert '"type": "init"' in (await first(f"/ws/jobs/{job.pk}/?ticket={victims}"))["text"]


# ---------------------------------------------------------------- publishing


def test_a_publisher_publishes_an_operator_may_not(alpha, attacker):
    from django.core.exceptions import PermissionDenied, ValidationError

    from jobs.publishing import publications
    from tests.factories import make_account

    publisher = member(alpha, Role.PUBLISHER)
    channel = make_account(team=alpha, owner=publisher, platform="youtube")
    job = make_job(owner=attacker, team=alpha, account=channel)
    with pytest.raises(PermissionDenied, match="publisher"):
        publications.publication_request(job=job, user=attacker)
    # The publisher gets past the role and the channel: what stops them here is the missing render.
    with pytest.raises(ValidationError, match="no successful render"):
        publications.publication_request(job=job, user=publisher)
    response = client_for(attacker).post(f"/api/v1/jobs/{job.pk}/publish/", {}, format="json")
    assert response.status_code == 403 and "publisher" in response.json()["detail"]


def test_no_team_may_queue_an_upload_to_the_shared_demo_channel(alpha):
    from django.core.exceptions import PermissionDenied

    from accounts.models import Account
    from jobs.maintenance.presets import presets_seed
    from jobs.publishing import publications

    presets_seed()
    publisher = member(alpha, Role.ADMIN)
    demo = Account.objects.get(team=None, username="demo-channel")
    job = make_job(owner=publisher, team=alpha, account=demo)
    with pytest.raises(PermissionDenied, match="shared channel demo-channel"):
        publications.publication_request(job=job, user=publisher)


def test_the_schema_documents_the_team_header_on_every_operation(db):
    from rest_framework.test import APIClient

    schema = APIClient().get("/api/v1/schema/?format=json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            names = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
            if path in ("/api/v1/auth/register/", "/api/v1/auth/token/"):
                continue
            assert {("header", "X-Team"), ("query", "team")} <= names, (method, path)

"""YouTube quota per team: each team spends its share of the project's daily units
(YOUTUBE_TEAM_QUOTA_SHARE); what does not fit waits for the next quota day and says whose part is
spent, and other teams publish the same day. Shown on the team's page and in the API."""

import pytest

from accounts.models import Team
from jobs.models import Publication, PublicationStatus, QuotaUsage
from jobs.publishing import quota
from jobs.tasks import run_publication
from tests.admin.conftest import client_for as admin_client_for
from tests.api.conftest import client_for
from tests.publishing.conftest import connect, make_rendered

pytestmark = pytest.mark.django_db(transaction=True)

COST = 1600 + 50 + 400  # upload, thumbnail, captions


def publish_forced(user, job) -> Publication:
    response = client_for(user).post(f"/api/v1/jobs/{job.pk}/publish/", {"force": True}, format="json")
    assert response.status_code == 202, response.content
    run_publication(response.json()["id"])
    return Publication.objects.get(pk=response.json()["id"])


def test_eight_forced_publications_of_one_team_spend_at_most_its_share_and_another_team_still_publishes(
    fake, operator, attacker, video_bytes, settings
):
    settings.YOUTUBE_DAILY_QUOTA = 10000
    settings.YOUTUBE_TEAM_QUOTA_SHARE = 0.5  # 5000 units a team: two publications of 2050
    ours = make_rendered(operator, video_bytes)
    connect(fake, ours.account)
    theirs = make_rendered(attacker, video_bytes)
    connect(fake, theirs.account, "refresh-token-2")
    team = Team.objects.get(personal_of=operator)

    done = [publish_forced(operator, ours.job) for _ in range(8)]

    statuses = [publication.status for publication in done]
    assert statuses.count(PublicationStatus.PUBLISHED) == 2
    assert statuses.count(PublicationStatus.WAITING) == 6
    spent = QuotaUsage.objects.get(project="test-project", team=team).units
    assert spent == 2 * COST <= 5000
    waiting = done[-1]
    assert waiting.scheduled_for == quota.next_quota_day_start()
    assert f"team {team.slug} has used {2 * COST} of its 5000 units today" in waiting.detail
    assert waiting.attempts == 0  # waiting for quota is no failed attempt

    other = publish_forced(attacker, theirs.job)

    assert other.status == PublicationStatus.PUBLISHED, other.detail
    assert QuotaUsage.objects.get(project="test-project", team=team).units == 2 * COST  # untouched
    assert QuotaUsage.objects.get(project="test-project", team=None).units == 3 * COST
    assert len(fake.videos) == 3


def test_what_a_project_refuses_spends_nothing_of_the_teams_part(fake, operator, video_bytes, settings):
    settings.YOUTUBE_DAILY_QUOTA = 3000
    settings.YOUTUBE_TEAM_QUOTA_SHARE = 1.0
    team = Team.objects.get(personal_of=operator)
    QuotaUsage.objects.create(project="test-project", day=quota.quota_day(), units=2000)  # others spent

    assert not quota.quota_reserve(units=COST, team=team)

    assert quota.team_quota(team=team).used == 0
    assert quota.quota_left(team=team) == 1000


def test_the_team_quota_today_is_in_the_api_and_on_the_teams_page(fake, operator, video_bytes, settings):
    settings.YOUTUBE_DAILY_QUOTA = 10000
    settings.YOUTUBE_TEAM_QUOTA_SHARE = 0.5
    rendered = make_rendered(operator, video_bytes)
    connect(fake, rendered.account)
    team = Team.objects.get(personal_of=operator)
    publish_forced(operator, rendered.job)

    response = client_for(operator).get(f"/api/v1/teams/{team.slug}/quota/")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "team": team.slug,
        "day": quota.quota_day().isoformat(),
        "budget": 5000,
        "used": COST,
        "left": 5000 - COST,
    }
    page = admin_client_for(operator).get(f"/admin/accounts/team/{team.pk}/change/")
    assert page.status_code == 200
    assert f"{COST} of its 5000 units used" in page.content.decode()


def test_another_teams_quota_is_not_found_for_a_non_member(fake, operator, attacker):
    team = Team.objects.get(personal_of=operator)

    response = client_for(attacker).get(f"/api/v1/teams/{team.slug}/quota/")

    assert response.status_code == 404

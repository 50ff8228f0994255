"""Lists, filters and lookups show an operator only their own rows and the shared presets."""

import pytest
from django.urls import reverse

from tests.admin.conftest import client_for
from tests.factories import make_account, make_job, make_language, make_topic, make_voice

pytestmark = pytest.mark.django_db

AUTOCOMPLETE = reverse("admin:autocomplete")


@pytest.fixture
def two_teams(operator, other_operator):
    """Each team's channel, topic and language, plus a shared one of each, all used by jobs."""
    rows = {}
    for team, owner in [("mine", operator), ("theirs", other_operator), ("shared", None)]:
        rows[team] = {
            "account": make_account(username=f"{team}-channel", owner=owner),
            "topic": make_topic(name=f"{team}-topic", owner=owner),
            "language": make_language(name=f"{team}-language", owner=owner),
        }
        make_job(owner=owner, **rows[team])
    return rows


def filter_choices(response, title: str) -> list[str]:
    spec = next(spec for spec in response.context["cl"].filter_specs if spec.title == title)
    return [str(choice["display"]) for choice in spec.choices(response.context["cl"])][1:]  # skip "All"


def test_job_list_filters_offer_only_own_and_shared_accounts_topics_and_languages(operator, two_teams):
    response = client_for(operator).get(reverse("admin:jobs_job_changelist"))

    html = response.content.decode()
    for title, field in [("account", "account"), ("topic", "topic"), ("language", "language")]:
        choices = filter_choices(response, title)
        assert str(two_teams["mine"][field]) in choices and str(two_teams["shared"][field]) in choices
        assert str(two_teams["theirs"][field]) not in choices
    assert "theirs-" not in html


def test_superuser_job_list_filters_offer_every_team(superuser, two_teams):
    response = client_for(superuser).get(reverse("admin:jobs_job_changelist"))

    assert str(two_teams["theirs"]["account"]) in filter_choices(response, "account")


def test_voice_list_language_filter_offers_only_own_and_shared_languages(operator, two_teams):
    for team in two_teams.values():
        make_voice(name="v", language=team["language"], owner=operator)

    response = client_for(operator).get(reverse("admin:voices_voice_changelist"))

    choices = filter_choices(response, "language")
    assert str(two_teams["mine"]["language"]) in choices and str(two_teams["shared"]["language"]) in choices
    assert str(two_teams["theirs"]["language"]) not in choices


@pytest.mark.parametrize("field_name", ["account", "topic", "language"])
def test_job_form_autocomplete_offers_no_other_teams_rows(operator, two_teams, field_name):
    response = client_for(operator).get(
        AUTOCOMPLETE, {"app_label": "jobs", "model_name": "job", "field_name": field_name, "term": ""}
    )

    assert response.status_code == 200
    ids = {int(result["id"]) for result in response.json()["results"]}
    assert ids == {two_teams["mine"][field_name].pk, two_teams["shared"][field_name].pk}


def test_job_form_autocomplete_search_does_not_find_other_teams_account(operator, two_teams):
    response = client_for(operator).get(
        AUTOCOMPLETE, {"app_label": "jobs", "model_name": "job", "field_name": "account", "term": "theirs"}
    )

    assert response.status_code == 200 and response.json()["results"] == []


def test_segment_admin_is_gone_segments_are_edited_on_the_storyboard(operator):
    client = client_for(operator)

    assert client.get("/admin/jobs/jobsplit/").status_code == 404
    assert "/admin/jobs/jobsplit/" not in client.get(reverse("admin:index")).content.decode()

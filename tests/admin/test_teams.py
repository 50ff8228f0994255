"""The Team admin page: a team's admins add members by username, set roles and remove members of their own
teams; other members only look; a team keeps an admin."""

import pytest
from django.urls import reverse

from accounts.models import Membership, Role
from tests.admin.conftest import client_for
from tests.factories import make_team, make_user

pytestmark = pytest.mark.django_db


def team_form(team, rows: list[dict], *, name: str | None = None) -> dict:
    """What the team's change page posts: its name and the members' inline rows."""
    existing = list(team.memberships.order_by("user__username"))
    data = {
        "name": name or team.name,
        "memberships-TOTAL_FORMS": str(len(rows)),
        "memberships-INITIAL_FORMS": str(len(existing)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"memberships-{index}-{key}"] = value
        data[f"memberships-{index}-team"] = str(team.pk)
    return data


def test_a_team_admin_adds_a_member_by_username_and_sets_roles():
    boss, colleague, newcomer = make_user(is_staff=True), make_user(), make_user(username="newcomer")
    team = make_team(members={boss: Role.ADMIN, colleague: Role.OPERATOR})
    boss_row, colleague_row = team.memberships.order_by("user__username")
    rows = [
        {"id": str(boss_row.pk), "role": Role.ADMIN},
        {"id": str(colleague_row.pk), "role": Role.PUBLISHER},
        {"username": "newcomer", "role": Role.OPERATOR},
    ]

    response = client_for(boss).post(
        reverse("admin:accounts_team_change", args=[team.pk]), team_form(team, rows)
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert dict(team.memberships.values_list("user__username", "role")) == {
        boss.username: Role.ADMIN,
        colleague.username: Role.PUBLISHER,
        newcomer.username: Role.OPERATOR,
    }


def test_an_unknown_username_and_a_team_without_an_admin_are_refused():
    boss = make_user(is_staff=True)
    team = make_team(members={boss: Role.ADMIN})
    [row] = team.memberships.all()
    client = client_for(boss)
    url = reverse("admin:accounts_team_change", args=[team.pk])

    unknown = client.post(
        url,
        team_form(
            team, [{"id": str(row.pk), "role": Role.ADMIN}, {"username": "nobody", "role": "operator"}]
        ),
    )
    no_admin = client.post(url, team_form(team, [{"id": str(row.pk), "role": Role.OPERATOR}]))

    assert unknown.status_code == 200 and "No user “nobody”." in unknown.content.decode()
    assert no_admin.status_code == 200 and "A team keeps at least one admin." in no_admin.content.decode()
    assert list(Membership.objects.filter(team=team).values_list("user", "role")) == [(boss.pk, Role.ADMIN)]


def test_members_who_are_not_admins_only_look_and_other_teams_are_not_listed():
    boss, operator = make_user(is_staff=True), make_user(is_staff=True)
    team = make_team(members={boss: Role.ADMIN, operator: Role.OPERATOR})
    other = make_team(name="Other team")
    client = client_for(operator)

    listing = client.get(reverse("admin:accounts_team_changelist")).content.decode()
    page = client.get(reverse("admin:accounts_team_change", args=[team.pk]))
    changed = client.post(
        reverse("admin:accounts_team_change", args=[team.pk]), team_form(team, [], name="Mine")
    )

    assert team.name in listing and "Other team" not in listing
    assert page.status_code == 200 and boss.username in page.content.decode()
    assert changed.status_code == 403
    assert client.get(reverse("admin:accounts_team_change", args=[other.pk])).status_code == 302  # not there

"""The one access rule (accounts.teams, OwnedQuerySet.visible_to): a team's rows and the shared presets."""

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts import teams
from accounts.models import Account, Role
from jobs.models import Job
from tests.factories import make_account, make_job, make_language, make_team, make_topic, make_user
from topics.models import Topic
from voices.models import Language


def test_a_team_sees_its_rows_and_shared_presets_not_other_teams(user, other_user):
    mine = make_topic(owner=user, name="mine")
    shared = make_topic(owner=None, name="shared")
    theirs = make_topic(owner=other_user, name="theirs")
    visible = set(Topic.objects.visible_to(user, user.personal_team))
    assert visible == {mine, shared}
    assert teams.may_read(other_user, theirs) and not teams.may_read(user, theirs)


def test_a_member_of_two_teams_sees_only_the_team_worked_in(user, other_user):
    shared_team = make_team(members={user: Role.OPERATOR, other_user: Role.ADMIN})
    ours = make_topic(owner=other_user, team=shared_team, name="ours")
    mine = make_topic(owner=user, name="mine")
    assert set(Topic.objects.visible_to(user, shared_team)) == {ours}
    assert set(Topic.objects.visible_to(user, user.personal_team)) == {mine}


def test_superuser_sees_everything(user, superuser):
    make_account(owner=user)
    make_account(owner=None)
    assert Account.objects.visible_to(superuser).count() == 2


def test_anonymous_sees_nothing(user):
    make_language(owner=None)
    assert not Language.objects.visible_to(AnonymousUser(), user.personal_team).exists()
    assert not Language.objects.visible_to(None).exists()


def test_jobs_follow_the_same_rule(user, other_user):
    own = make_job(owner=user)
    make_job(owner=other_user)
    assert list(Job.objects.visible_to(user, user.personal_team)) == [own]


def test_roles_are_cumulative_and_presets_are_superusers_to_change(user, superuser):
    team = make_team()
    operator, publisher, admin = make_user(), make_user(), make_user()
    for member, role in ((operator, Role.OPERATOR), (publisher, Role.PUBLISHER), (admin, Role.ADMIN)):
        teams.member_set(team=team, user=member, role=role, by=superuser)
    job, channel = make_job(team=team), make_account(team=team)
    preset = make_topic(owner=None)
    assert [teams.has_role(operator, team, role) for role in Role.values] == [True, False, False]
    assert [teams.has_role(publisher, team, role) for role in Role.values] == [True, True, False]
    assert [teams.has_role(admin, team, role) for role in Role.values] == [True, True, True]
    assert teams.may_edit(operator, job) and not teams.may_edit(operator, channel)
    assert teams.may_edit(admin, channel)
    assert not teams.may_edit(admin, preset) and teams.may_edit(superuser, preset)
    assert not teams.may_edit(user, job)  # not a member


def test_a_team_keeps_an_admin(user):
    team = user.personal_team
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="needs another admin"):
        teams.member_set(team=team, user=user, role=Role.OPERATOR, by=user)
    with pytest.raises(ValidationError, match="needs another admin"):
        teams.member_remove(team=team, user=user, by=user)


def test_only_a_team_admin_manages_members(user, other_user):
    from django.core.exceptions import PermissionDenied

    team = make_team(members={user: Role.PUBLISHER})
    with pytest.raises(PermissionDenied, match="team admin"):
        teams.member_set(team=team, user=other_user, role=Role.OPERATOR, by=user)


@pytest.mark.django_db
def test_user_has_uuid_primary_key_and_unique_username():
    from django.db import IntegrityError, transaction

    first = make_user(username="sam")
    assert len(str(first.pk)) == 36
    with pytest.raises(IntegrityError), transaction.atomic():
        make_user(username="sam")

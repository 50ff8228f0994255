import pytest
from django.contrib.auth.models import AnonymousUser

from accounts.models import Account
from jobs.models import Job
from tests.factories import make_account, make_job, make_language, make_topic
from topics.models import Topic
from voices.models import Language


def test_user_sees_own_rows_and_shared_presets_not_others(user, other_user):
    mine = make_topic(owner=user, name="mine")
    shared = make_topic(owner=None, name="shared")
    theirs = make_topic(owner=other_user, name="theirs")
    visible = set(Topic.objects.visible_to(user))
    assert visible == {mine, shared}
    assert theirs.is_visible_to(other_user) and not theirs.is_visible_to(user)


def test_superuser_sees_everything(user, superuser):
    make_account(owner=user)
    make_account(owner=None)
    assert Account.objects.visible_to(superuser).count() == 2


def test_anonymous_sees_nothing(user):
    make_language(owner=None)
    assert not Language.objects.visible_to(AnonymousUser()).exists()
    assert not Language.objects.visible_to(None).exists()


def test_jobs_follow_the_same_rule(user, other_user):
    own = make_job(owner=user)
    make_job(owner=other_user)
    assert list(Job.objects.visible_to(user)) == [own]


@pytest.mark.django_db
def test_user_has_uuid_primary_key_and_unique_username():
    from django.db import IntegrityError, transaction

    from tests.factories import make_user

    first = make_user(username="sam")
    assert len(str(first.pk)) == 36
    with pytest.raises(IntegrityError), transaction.atomic():
        make_user(username="sam")

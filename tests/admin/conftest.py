import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.factories import make_user

OPERATOR_MODELS = ["job", "jobexecution", "jobsplit", "stockclip", "account", "voice", "language", "topic"]


def make_operator(*, actions: tuple[str, ...] = ("view", "add", "change", "delete")):
    """A staff user (not superuser) with the model permissions an operator gets."""
    user = make_user(is_staff=True)
    codenames = [f"{action}_{model}" for model in OPERATOR_MODELS for action in actions]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def job_form(**fields) -> dict:
    """What the admin's add/change job page posts, with its (empty) executions inline."""
    return {
        "title": "A title",
        "content": "今天天气很好。",
        "runorder": "0",
        "speech_speed": "0.9",
        "orientation": "horizontal",
        "publish_title": "",
        "description": "",
        "extra": "{}",
        "language": "",
        "voice": "",
        "topic": "",
        "account": "",
        "executions-TOTAL_FORMS": "0",
        "executions-INITIAL_FORMS": "0",
        "executions-MIN_NUM_FORMS": "0",
        "executions-MAX_NUM_FORMS": "0",
        **fields,
    }


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator(db):
    return make_operator()


@pytest.fixture
def other_operator(db):
    return make_operator()


@pytest.fixture
def viewer(db):
    """Staff who may look but not change."""
    return make_operator(actions=("view",))


@pytest.fixture(autouse=True)
def queue_only(settings, monkeypatch):
    """Renders are only ever queued here, never run."""
    from django_q.conf import Conf

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    monkeypatch.setattr(Conf, "SYNC", False)

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.test import override_settings

from tests.factories import make_user


def worker_redis_url(url: str, worker: int) -> str:
    """The Redis URL of parallel worker number `worker`: its database counts down from the URL's own
    (db 10 for gw0, 9 for gw1, ...), so workers share no cluster status, cache key or channel group."""
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return parts._replace(path=f"/{(base - worker) % 16}").geturl()


def pytest_configure(config: pytest.Config) -> None:
    # Settings are loaded by now (pytest-django), but no cache or channel layer is made yet.
    from django.conf import settings

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not settings.REDIS_URL:
        return
    own = worker_redis_url(settings.REDIS_URL, int(worker.removeprefix("gw")))
    os.environ["REDIS_URL"] = own  # for the servers and workers the tests start (tests/processes.py)
    settings.REDIS_URL = own
    [host] = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [{**host, "address": own}]
    settings.CACHES["cluster"]["LOCATION"] = own


# The slow tiers (markers in pyproject.toml; `make test-fast` leaves them out) that come with a fixture:
# a test using one is in its tier without saying so. Tests that start processes themselves say
# `processes` where they do.
TIER_FIXTURES = {
    "slow": {"flux_dir", "funasr_dirs"},  # tests/media_engine: tiny diffusers and FunASR models, run
    "browser": {"browser_page"},  # tests/admin/test_browser.py: Playwright and chromium
    "processes": {
        "daphne",  # tests/admin/test_live_list.py
        "checking_endpoint",  # tests/storage/conftest.py: SeaweedFS
    },
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in TIER_FIXTURES.items():
            if used & fixtures:
                item.add_marker(marker)
    # The files with tests that start worker and server processes first: those spend most of their
    # time waiting on the processes, so with pytest-xdist they overlap the rest instead of running
    # last. Whole files, each in its order (pytest-django's, which ran before: transactional last).
    waiting = {item.path for item in items if item.get_closest_marker("processes")}
    items.sort(key=lambda item: item.path not in waiting)


@pytest.fixture(autouse=True)
def fast_password_hashing(request, settings):
    """MD5 instead of PBKDF2's million rounds (most of a second a user): Django's advice for tests. Not
    where a server in a process of its own, on the real settings, may check a password the test set."""
    if request.node.get_closest_marker("processes") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def isolated_files(settings, tmp_path):
    """Every test gets its own media and scratch folders."""
    for name, value in files_in(tmp_path).items():
        setattr(settings, name, value)


def files_in(folder: Path) -> dict:
    """The file settings of `isolated_files`, under `folder`."""
    from django.conf import settings

    return {
        "MEDIA_ROOT": folder / "media",
        "WORK_ROOT": folder / "work",
        "STORAGES": {
            **settings.STORAGES,
            "default": {"BACKEND": "accounts.storage.SignedFileSystemStorage"},
        },
    }


@contextmanager
def built_for_the_module(django_db_blocker, folder: Path, **overrides) -> Iterator[None]:
    """Build once what every test of a module starts from (a render, most often), in a module-scoped
    fixture: inside, rows are committed and files go under `folder`. Each test takes a copy of the
    files (`use_module_files`) and changes the rows in its own transaction, which rolls back; the
    fixture calls `drop_module_rows` at the module's end."""
    hashers = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=hashers, **files_in(folder), **overrides),
    ):
        yield


def use_module_files(folder: Path, settings) -> None:
    """This test's media and work folders start as copies of those `built_for_the_module` filled."""
    shutil.copytree(folder / "media", settings.MEDIA_ROOT)
    shutil.copytree(folder / "work", settings.WORK_ROOT)


def drop_module_rows(django_db_blocker) -> None:
    """Empty the test database, as pytest-django does after every `transaction=True` test."""
    with django_db_blocker.unblock():
        call_command("flush", verbosity=0, interactive=False)


@pytest.fixture
def user(db):
    return make_user(is_staff=True)


@pytest.fixture
def other_user(db):
    return make_user(is_staff=True)


@pytest.fixture
def superuser(db):
    return make_user(is_staff=True, is_superuser=True)

import pytest

from tests.factories import make_user


@pytest.fixture(autouse=True)
def isolated_files(settings, tmp_path):
    """Every test gets its own media and scratch folders."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.WORK_ROOT = tmp_path / "work"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "accounts.storage.SignedFileSystemStorage"},
    }


@pytest.fixture
def user(db):
    return make_user(is_staff=True)


@pytest.fixture
def other_user(db):
    return make_user(is_staff=True)


@pytest.fixture
def superuser(db):
    return make_user(is_staff=True, is_superuser=True)

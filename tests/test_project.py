"""The project as a whole: checks, migrations on both databases, the admin's model list."""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=300,
    )


def postgres_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), 1).close()
        return True
    except OSError:
        return False


@pytest.mark.processes
def test_manage_check_is_clean():
    result = manage("check", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.processes
def test_models_and_migrations_agree():
    result = manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.processes
def test_migrations_apply_on_a_fresh_sqlite_database(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}"}
    result = manage("migrate", "--noinput", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fresh.sqlite3").stat().st_size > 0


@pytest.mark.processes
@pytest.mark.skipif(not postgres_reachable(), reason="no PostgreSQL at 127.0.0.1:5432")
def test_migrations_apply_on_a_fresh_postgresql_database():
    import psycopg

    name = f"batchvideo_migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        result = manage("migrate", "--noinput", env={"DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}"})
        assert result.returncode == 0, result.stderr
        result = manage("seed_presets", env={"DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}"})
        assert result.returncode == 0, result.stderr
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Segments are edited on their job's storyboard page (JobAdmin.storyboard_view), not in a list of their own;
# a webhook delivery's tries are listed on its page; websocket tickets live a minute and hold only hashes.
NOT_IN_ADMIN = {"jobs.JobSplit", "jobs.WebhookAttempt", "jobs.WebsocketTicket"}


def test_admin_lists_every_model(client, superuser):
    ours = [model for model in apps.get_models() if model._meta.app_label in {"accounts", "voices", "topics", "jobs"}
            and model._meta.label not in NOT_IN_ADMIN]
    assert set(ours) <= set(admin.site._registry)
    client.force_login(superuser)
    for model in ours:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = client.get(url)
        assert response.status_code == 200, url


# What a process gets with nothing set; a signing key only from the file `make setup` writes.
UNSET = {"DATABASE_URL", "REDIS_URL", "DEBUG", "AWS_STORAGE_BUCKET_NAME", "SECRET_KEY", "SECRET_KEY_FILE",
         "API_REGISTRATION_OPEN", "NUM_PROXIES"}


def settings_process(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT, capture_output=True,
        text=True, timeout=120, env={key: value for key, value in os.environ.items() if key not in UNSET}
        | {"DJANGO_SETTINGS_MODULE": "batchvideo.settings"} | env,
    )


@pytest.fixture
def key_file(tmp_path) -> Path:
    path = tmp_path / "secret_key"
    path.write_text("key-from-the-file-" + secrets.token_urlsafe(40) + "\n")
    return path


@pytest.mark.processes
def test_settings_come_from_the_environment(key_file):
    code = (
        "from django.conf import settings;"
        "print(settings.DATABASES['default']['ENGINE'], settings.DEBUG,"
        " settings.CHANNEL_LAYERS['default']['BACKEND'], settings.STORAGES['default']['BACKEND'],"
        " settings.API_REGISTRATION_OPEN, settings.REST_FRAMEWORK['NUM_PROXIES'])"
    )
    defaults = settings_process(code, {"SECRET_KEY_FILE": str(key_file)})
    assert defaults.stdout.split() == [
        "django.db.backends.sqlite3", "False", "channels.layers.InMemoryChannelLayer",
        "batchvideo.storage.SignedFileSystemStorage", "False", "0",
    ], defaults.stderr
    configured = settings_process(code, {
        "SECRET_KEY": "k" * 50, "DATABASE_URL": "postgres://u@db:5432/x", "REDIS_URL": "redis://r:6379/0",
        "DEBUG": "true", "AWS_STORAGE_BUCKET_NAME": "videos", "NUM_PROXIES": "1",
        "API_REGISTRATION_OPEN": "true",
    })
    assert configured.stdout.split() == [
        "django.db.backends.postgresql", "True", "channels_redis.core.RedisChannelLayer",
        "storages.backends.s3.S3Storage", "True", "1",
    ], configured.stderr


@pytest.mark.processes
def test_secret_key_comes_from_the_environment_else_the_key_file(key_file):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    from_file = settings_process(code, {"SECRET_KEY_FILE": str(key_file)})
    assert from_file.stdout.strip() == key_file.read_text().strip(), from_file.stderr
    from_environment = settings_process(code, {"SECRET_KEY_FILE": str(key_file), "SECRET_KEY": "e" * 50})
    assert from_environment.stdout.strip() == "e" * 50, from_environment.stderr


@pytest.mark.processes
def test_settings_refuse_to_start_without_a_secret_key(tmp_path):
    """No built-in key: with no SECRET_KEY, DEBUG off and no key file, nothing starts (today's
    repository key signed /files/ links and websocket tickets that anyone could forge)."""
    missing = tmp_path / "secret_key"
    result = manage("check", env={"SECRET_KEY": "", "DEBUG": "false", "SECRET_KEY_FILE": str(missing)})
    assert result.returncode != 0
    assert f"SECRET_KEY is not set and {missing} does not exist" in result.stderr
    assert "set the SECRET_KEY environment variable" in result.stderr and "make setup" in result.stderr


@pytest.mark.processes
@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_setup_writes_a_private_signing_key_once(tmp_path):
    path = tmp_path / "var" / "secret_key"
    make = ["make", "-s", f"SECRET_KEY_FILE={path}", str(path)]
    result = subprocess.run(make, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    key = path.read_text().strip()
    assert len(key) >= 50 and len(set(key)) >= 20
    assert path.stat().st_mode & 0o777 == 0o600
    subprocess.run(make, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert path.read_text().strip() == key  # written once: sessions and links survive a re-run
    loaded = settings_process("from django.conf import settings; print(settings.SECRET_KEY)",
                              {"SECRET_KEY_FILE": str(path)})
    assert loaded.stdout.strip() == key, loaded.stderr


@pytest.mark.processes
def test_check_deploy_is_clean_with_production_settings():
    production = {
        "SECRET_KEY": secrets.token_urlsafe(50)[:50], "DEBUG": "false", "ALLOWED_HOSTS": "example.com",
        "SECURE_SSL": "true", "CSRF_TRUSTED_ORIGINS": "https://example.com",
    }
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


@pytest.mark.processes
def test_bad_setting_value_is_a_clear_error():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "batchvideo.settings", "DEBUG": "maybe"},
    )
    assert result.returncode != 0
    assert "DEBUG must be true or false, not 'maybe'" in result.stderr


SOURCE_DIRS = ("batchvideo", "accounts", "voices", "topics", "jobs", "media_engine")
# Who may import whom (STYLE.md): batchvideo -> jobs -> topics/voices -> accounts -> media_engine.
FORBIDDEN_IMPORTS = {
    "accounts": ("batchvideo", "jobs", "voices", "topics"),
    "voices": ("batchvideo", "jobs", "topics"),
    "topics": ("batchvideo", "jobs", "voices"),
    "media_engine": ("batchvideo", "jobs", "voices", "topics", "accounts", "django"),
}


def _modules():
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                yield folder, path


def test_imports_run_one_way_down_the_layers():
    import ast

    wrong = []
    for folder, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for name in names:
                if name.split(".")[0] in FORBIDDEN_IMPORTS.get(folder, ()):
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_long_modules_say_why_they_are_one_module():
    import ast

    unexplained = [
        str(path.relative_to(ROOT)) for _folder, path in _modules()
        if len(path.read_text().splitlines()) > 500
        and "one module" not in (ast.get_docstring(ast.parse(path.read_text())) or "").lower()
    ]
    assert not unexplained, f"over 500 lines with no reason at the top: {unexplained}"


def test_static_files_are_served_with_debug_off(client, settings):
    """`manage.py runserver` with DEBUG off (the default) served the admin without its stylesheet."""
    assert settings.DEBUG is False
    response = client.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")

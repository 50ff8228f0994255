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
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
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
        result = manage(
            "migrate", "--noinput", env={"DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}"}
        )
        assert result.returncode == 0, result.stderr
        result = manage("seed_presets", env={"DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}"})
        assert result.returncode == 0, result.stderr
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Segments are edited on their job's storyboard page (JobAdmin.storyboard_view), not in a list of their own;
# a webhook delivery's tries are listed on its page; websocket tickets live a minute and hold only hashes;
# a composition's chunk rows live while it is made (its progress shows them).
NOT_IN_ADMIN = {
    "accounts.Membership",
    "jobs.ChunkWork",
    "jobs.JobSplit",
    "jobs.WebhookAttempt",
    "jobs.WebsocketTicket",
}  # inlines, or none


def test_admin_lists_every_model(client, superuser):
    ours = [
        model
        for model in apps.get_models()
        if model._meta.app_label in {"accounts", "voices", "topics", "jobs"}
        and model._meta.label not in NOT_IN_ADMIN
    ]
    assert set(ours) <= set(admin.site._registry)
    client.force_login(superuser)
    for model in ours:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = client.get(url)
        assert response.status_code == 200, url


# What a process gets with nothing set; a signing key only from the file `make setup` writes.
UNSET = {
    "DATABASE_URL",
    "REDIS_URL",
    "DEBUG",
    "AWS_STORAGE_BUCKET_NAME",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "API_REGISTRATION_OPEN",
    "NUM_PROXIES",
}


def settings_process(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={key: value for key, value in os.environ.items() if key not in UNSET}
        | {"DJANGO_SETTINGS_MODULE": "batchvideo.settings"}
        | env,
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
        "django.db.backends.sqlite3",
        "False",
        "channels.layers.InMemoryChannelLayer",
        "accounts.storage.SignedFileSystemStorage",
        "False",
        "0",
    ], defaults.stderr
    configured = settings_process(
        code,
        {
            "SECRET_KEY": "k" * 50,
            "DATABASE_URL": "postgres://u@db:5432/x",
            "REDIS_URL": "redis://r:6379/0",
            "DEBUG": "true",
            "AWS_STORAGE_BUCKET_NAME": "videos",
            "NUM_PROXIES": "1",
            "API_REGISTRATION_OPEN": "true",
        },
    )
    assert configured.stdout.split() == [
        "django.db.backends.postgresql",
        "True",
        "channels_redis.core.RedisChannelLayer",
        "storages.backends.s3.S3Storage",
        "True",
        "1",
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
    loaded = settings_process(
        "from django.conf import settings; print(settings.SECRET_KEY)", {"SECRET_KEY_FILE": str(path)}
    )
    assert loaded.stdout.strip() == key, loaded.stderr


@pytest.mark.processes
def test_check_deploy_is_clean_with_production_settings():
    production = {
        "SECRET_KEY": secrets.token_urlsafe(50)[:50],
        "DEBUG": "false",
        "ALLOWED_HOSTS": "example.com",
        "SECURE_SSL": "true",
        "CSRF_TRUSTED_ORIGINS": "https://example.com",
    }
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


@pytest.mark.processes
def test_bad_setting_value_is_a_clear_error():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "batchvideo.settings", "DEBUG": "maybe"},
    )
    assert result.returncode != 0
    assert "DEBUG must be true or false, not 'maybe'" in result.stderr


SOURCE_DIRS = ("batchvideo", "accounts", "voices", "topics", "jobs", "media_engine")
# Who may import whom (STYLE.md): batchvideo -> jobs -> topics/voices -> accounts -> media_engine.
FORBIDDEN_IMPORTS = {
    "jobs": ("batchvideo",),
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
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else (
                    [node.module]
                    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    else []
                )
            )
            for name in names:
                if name.split(".")[0] in FORBIDDEN_IMPORTS.get(folder, ()):
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not wrong, "\n".join(wrong)


# The tiers inside jobs, highest first (STYLE.md): a module imports only its own tier or lower ones.
# A pattern ending in "." names a folder.
JOBS_TIERS = [
    (
        "interfaces",
        (
            "jobs.admin.",
            "jobs.api.",
            "jobs.management.",
            "jobs.benchmarks.",
            "jobs.views",
            "jobs.live.",
            "jobs.tasks",
            "jobs.apps",
        ),
    ),
    ("services", ("jobs.services", "jobs.exports.importing", "jobs.maintenance.")),
    ("render and publishing", ("jobs.render.loop", "jobs.render.previews", "jobs.publishing.publications")),
    ("render queue", ("jobs.render.queue", "jobs.render.fairshare")),
    ("render progress", ("jobs.render.progress",)),
    ("render steps", ("jobs.render.steps",)),
    (
        "storyboard, exports, claims",
        (
            "jobs.storyboard",
            "jobs.exports.timeline",
            "jobs.exports.archive",
            "jobs.publishing.youtube",
            "jobs.publishing.quota",
            "jobs.render.claims",
            "jobs.render.fanout",
        ),
    ),
    ("webhook events", ("jobs.webhooks.events",)),
    ("webhook delivery and subscriptions", ("jobs.webhooks.delivery", "jobs.webhooks.subscriptions")),
    ("webhook addresses", ("jobs.webhooks.addresses",)),
    ("validation", ("jobs.validation",)),
    (
        "files, options, records",
        (
            "jobs.files",
            "jobs.options",
            "jobs.records",
            "jobs.render.workspace",
            "jobs.workitems",
            "jobs.footage.",
        ),
    ),
    ("models", ("jobs.models",)),
]


def _jobs_imports() -> dict[str, set[str]]:
    """Each module of jobs (not migrations) and the modules of jobs it imports, anywhere in it."""
    import ast

    modules = {}
    for _folder, path in _modules():
        if path.parts[len(ROOT.parts)] != "jobs":
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").startswith("jobs")
            ):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    is_module = (ROOT / Path(*full.split("."))).with_suffix(".py").exists()
                    imported.add(full if is_module else node.module)
        modules[name] = imported - {name}
    return modules


def _tier(module: str) -> int | None:
    for index, (_name, patterns) in enumerate(JOBS_TIERS):
        if any(
            module.startswith(pattern) if pattern.endswith(".") else module == pattern for pattern in patterns
        ):
            return index
    return None


def test_every_module_of_jobs_has_a_tier_and_imports_only_its_tier_or_lower_ones():
    modules = _jobs_imports()
    packages = {name for name in modules if (ROOT / Path(*name.split(".")) / "__init__.py").exists()}
    assert not [name for name in modules if name not in packages and _tier(name) is None]
    upward = [
        f"{module} ({JOBS_TIERS[_tier(module)][0]}) imports {target} ({JOBS_TIERS[_tier(target)][0]})"
        for module, targets in modules.items()
        if module not in packages
        for target in targets
        if target not in packages and _tier(target) < _tier(module)
    ]
    assert not upward, "\n".join(upward)


def test_the_modules_of_jobs_import_each_other_in_no_circle():
    modules = _jobs_imports()
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for target in sorted(modules.get(module, ())):
            if state.get(target) == "open":
                return [*path, module, target]
            if target not in state and (circle := visit(target, [*path, module])):
                return circle
        state[module] = "done"
        return None

    circles = [circle for module in sorted(modules) if module not in state and (circle := visit(module, []))]
    assert not circles, " -> ".join(circles[0])


def test_the_root_of_jobs_holds_at_most_a_dozen_modules():
    root_modules = sorted(path.name for path in (ROOT / "jobs").glob("*.py") if path.name != "__init__.py")
    assert len(root_modules) <= 12, root_modules


def test_long_modules_say_why_they_are_one_module():
    import ast

    unexplained = [
        str(path.relative_to(ROOT))
        for _folder, path in _modules()
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


def test_the_back_off_between_tries_is_one_rule_for_every_kind_of_queued_work(settings):
    from jobs.render import queue
    from jobs.webhooks import delivery as sending
    from jobs.workitems import backoff_s

    settings.EXECUTION_RETRY_BACKOFF_S, settings.WEBHOOK_RETRY_BACKOFF_S = 60, 30
    assert [queue.retry_delay_s(attempt) for attempt in (1, 2, 3)] == [60, 120, 240]
    assert [sending.retry_delay_s(tries) for tries in (1, 2, 8)] == [30, 60, 3600]
    assert backoff_s(2, 6, max_s=60) == 60 and backoff_s(2, 0) == 2
    sources = [path.read_text() for _folder, path in _modules() if path.parts[len(ROOT.parts)] == "jobs"]
    assert sum(text.count("2 **") for text in sources) == 1  # the rule itself, in jobs/workitems.py


def test_queued_work_is_woken_in_one_place():
    """Render executions, publications and webhook deliveries are claimed, woken and swept by
    jobs.workitems.WorkKind: no other module of jobs queues a django-q2 task or a one-off schedule."""
    waking = {
        str(path.relative_to(ROOT))
        for _folder, path in _modules()
        if path.parts[len(ROOT.parts)] == "jobs"
        and "migrations" not in path.parts
        and ("async_task(" in (text := path.read_text()) or "Schedule.ONCE" in text)
    }
    assert waking == {"jobs/workitems.py"}


def test_the_picture_card_rule_has_one_definition():
    """Which pictures the render drew or generated (and so remakes) is said once, on JobSplit."""
    import ast

    places = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for _folder, path in _modules()
        if path.parts[len(ROOT.parts)] == "jobs"
        and "benchmarks" not in path.parts
        and path.name != "examples.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in ("card", "flux")
    ]
    assert len(places) == 2 and all(place.startswith("jobs/models.py:") for place in places), places

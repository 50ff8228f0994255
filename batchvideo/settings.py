"""The one settings module. Everything comes from the environment; `.env.example` lists it all.
One module, past 500 lines: every setting is read here, each beside the words that explain it.

With nothing set: SQLite, local media files, the django-q2 ORM broker, no Redis, DEBUG off.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BATCHVIDEO_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from error


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from error


DEBUG = env_bool("DEBUG")
# Signs sessions, /files/ links and websocket tickets: never a key anyone else could know. Production
# sets SECRET_KEY; a development machine uses the random key `make setup` writes once into
# SECRET_KEY_FILE (mode 600). With neither, nothing starts.
SECRET_KEY_FILE = Path(os.environ.get("SECRET_KEY_FILE") or VAR_DIR / "secret_key")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY and SECRET_KEY_FILE.is_file():
    SECRET_KEY = SECRET_KEY_FILE.read_text().strip()
if not SECRET_KEY:
    raise ImproperlyConfigured(
        f"SECRET_KEY is not set and {SECRET_KEY_FILE} does not exist (or is empty). In production set "
        f"the SECRET_KEY environment variable to a long random string; on a development machine run "
        f"`make setup`, which writes a random key into {SECRET_KEY_FILE} (or point SECRET_KEY_FILE at a "
        f"key file)."
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",  # first: its runserver serves HTTP and websockets
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_q",
    "channels",
    "axes",
    "accounts",
    "voices",
    "topics",
    "jobs",
    "csp",
]

MIDDLEWARE = [
    "batchvideo.metrics.RequestMetricsMiddleware",
    "batchvideo.middleware.ReadAgainMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files in every mode, runserver included
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a login lockout into its 429 page
]

ROOT_URLCONF = "batchvideo.urls"
WSGI_APPLICATION = "batchvideo.wsgi.application"
ASGI_APPLICATION = "batchvideo.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if not os.environ.get("DATABASE_URL"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
# A connection the server dropped (a restart, pg_terminate_backend) is found before a request or
# task uses it, and replaced: the request does not fail.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web server, qcluster) share the file: wait for locks instead of failing.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests start real worker processes, which cannot see an in-memory database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_POOL", False):
    # Under daphne every request runs in a new thread: a pool instead of one connection per thread.
    # daphne hosts only: gunicorn and qcluster fork their workers, and a pool must not cross a fork.
    import psycopg_pool

    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # `check`: a pooled connection is tested as it is handed out, so a dropped one is replaced.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": env_int("DATABASE_POOL_MAX", 16),
        "check": psycopg_pool.ConnectionPool.check_connection,
    }

AUTH_USER_MODEL = "accounts.User"
# django-axes first: it refuses every login from a locked-out address before a password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves static files with DEBUG off too; from the apps' folders unless collectstatic ran.
WHITENOISE_USE_FINDERS = True
# Local stored files have no public address (no MEDIA_URL): they are only handed out as signed links.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Scratch space for renders; a cache only: everything a re-render needs is in storage.
WORK_ROOT = Path(os.environ.get("WORK_ROOT", VAR_DIR / "work"))
# Files in WORK_ROOT unused for this many days are deleted after each render (0: never).
WORK_CACHE_DAYS = env_float("WORK_CACHE_DAYS", 7)

# Storage: local files unless an S3 bucket is configured (django-storages' own names).
AWS_STORAGE_BUCKET_NAME = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
STORAGES = {
    "default": {"BACKEND": "accounts.storage.SignedFileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if AWS_STORAGE_BUCKET_NAME:
    # Options built in accounts/storage.py (tests point the same options at their own server):
    # signed expiring links (for AWS_S3_PUBLIC_ENDPOINT_URL when set), multipart transfers, and
    # checksums only when required (S3-compatible servers reject boto3's default ones).
    from accounts.storage import s3_backend, s3_options

    STORAGES["default"] = {"BACKEND": s3_backend(os.environ), "OPTIONS": s3_options(os.environ)}
# /files/ (and S3) links are bearer links: valid for an hour for players and exports; the admin's own
# pages hand out links that expire sooner.
SIGNED_URL_EXPIRE_SECONDS = env_int("SIGNED_URL_EXPIRE_SECONDS", 3600)
ADMIN_SIGNED_URL_EXPIRE_SECONDS = env_int("ADMIN_SIGNED_URL_EXPIRE_SECONDS", 300)

# Channels: Redis when configured, else an in-process layer (the progress view then reads the DB).
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # A consumer waits on Redis with a blocking pop of up to 5 s (channels-redis' brpop_timeout);
            # redis-py's own default read timeout is 5 s too, so on a busy host an idle socket's wait
            # timed out and closed the websocket (1011). Reads get more time than the pop.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The default cache is each process's own memory (the API throttles count there).
# "cluster" is shared by every process: django-q2's clusters report their status there, so that
# `job_health` and /health/extended see every cluster on every host. Redis where REDIS_URL is set,
# else a database table (made by `migrate`).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "cluster": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "batchvideo",
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "batchvideo_cache"}
    ),
}

# django-q2: the ORM broker gives delivery receipts; `timeout` must stay below `retry`.
EXECUTION_TIME_LIMIT_S = env_int("EXECUTION_TIME_LIMIT_S", 55 * 60)
# A RUNNING execution whose heartbeat is older than this is taken over by another worker. A thread
# beside the render writes the heartbeat every EXECUTION_HEARTBEAT_S (at most a quarter of the stale time).
EXECUTION_STALE_S = env_int("EXECUTION_STALE_S", 300)
EXECUTION_HEARTBEAT_S = env_float("EXECUTION_HEARTBEAT_S", 10.0)
# An attempt that ends for a transient reason (or whose worker died) is retried as a whole, resuming from
# its last finished step, EXECUTION_RETRY_BACKOFF_S later, doubling (60, 120, 240 s), at most
# EXECUTION_MAX_RETRIES times; then the execution fails. Permanent errors fail it at once.
EXECUTION_MAX_RETRIES = env_int("EXECUTION_MAX_RETRIES", 3)
EXECUTION_RETRY_BACKOFF_S = env_float("EXECUTION_RETRY_BACKOFF_S", 60.0)
# Within an attempt, a step that hits a transient error (a dropped upload, a busy model server) is
# first retried in place: STEP_ATTEMPTS tries in all, STEP_BACKOFF_S apart, doubling.
STEP_ATTEMPTS = env_int("STEP_ATTEMPTS", 3)
STEP_BACKOFF_S = env_float("STEP_BACKOFF_S", 2.0)
# The django-q2 clusters that run the render's steps, by the resource each step needs
# (jobs.render.steps): a worker runs the steps whose cluster is its own Q_CLUSTER_NAME and hands the
# render to the other cluster for the rest. Both "default": one qcluster runs every step.
CPU_CLUSTER = os.environ.get("CPU_CLUSTER", "default")
GPU_CLUSTER = os.environ.get("GPU_CLUSTER", "default")
# Composition fans out (jobs.render.fanout): its chunks are tasks on CPU_CLUSTER that any CPU worker
# takes, COMPOSE_CHUNK_THREADS at a time per worker (0: one more than the cores, at most 6). A chunk
# whose worker said nothing for CHUNK_STALE_S (it died, or is paused) is made by another.
COMPOSE_CHUNK_THREADS = env_int("COMPOSE_CHUNK_THREADS", 0)
CHUNK_STALE_S = env_int("CHUNK_STALE_S", 30)
# Fair share (jobs.render.fairshare): the next render goes to the team with waiting work whose worker
# time over the last FAIR_SHARE_WINDOW_S, divided by its weight (Team.weight, set in the Team admin),
# is least; runorder orders jobs only inside a team. A team with TEAM_MAX_CONCURRENT_RENDERS renders
# running waits for one of them to end (0: no limit).
FAIR_SHARE_WINDOW_S = env_int("FAIR_SHARE_WINDOW_S", 3600)
TEAM_MAX_CONCURRENT_RENDERS = env_int("TEAM_MAX_CONCURRENT_RENDERS", 0)
Q_CLUSTER = {
    # Fixed: django-q2 signs tasks with the name. A host picks its queue with the
    # Q_CLUSTER_NAME environment variable, which django-q2 reads itself.
    "name": "batchvideo",
    "cluster_name": os.environ.get("Q_CLUSTER_NAME", "default"),
    "orm": "default",
    "cache": "cluster",
    "workers": env_int("Q_WORKERS", 1),
    "recycle": 50,
    # A task of a killed worker comes back after `retry` seconds and resumes its execution.
    "timeout": env_int("Q_TIMEOUT_S", EXECUTION_TIME_LIMIT_S + 120),
    "retry": env_int("Q_RETRY_S", EXECUTION_TIME_LIMIT_S + 300),
    "max_attempts": 0,
    "ack_failures": True,
    "save_limit": 1000,
    "poll": env_float("Q_POLL_S", 1.0),
    "catch_up": False,
    "sync": env_bool("Q_SYNC"),
}

# Proxies in front of the app that append to X-Forwarded-For (behind the one TLS proxy: 1). 0 takes
# the client's address from the connection and ignores the header, which the client writes itself.
# The anonymous API throttle and the login lockout count clients by this address.
NUM_PROXIES = env_int("NUM_PROXIES", 0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "accounts.api.parsers.CheckedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "accounts.api.errors.api_exception_handler",
    "NUM_PROXIES": NUM_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "BatchVideo API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Names kept stable now that two models have a `status` with choices.
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "jobs.models.ExecutionStatus",
        "PublicationStatusEnum": "jobs.models.PublicationStatus",
        "DeliveryStatusEnum": "jobs.models.DeliveryStatus",
        "EventKindEnum": "jobs.models.EventKind",
    },
    # The webhook events' body, documented as what a receiver gets (jobs/api/webhooks.py).
    "WEBHOOKS": [
        f"jobs.api.webhooks.{kind}_WEBHOOK"
        for kind in ("RENDER_DONE", "RENDER_FAILED", "PUBLISH_DONE", "PUBLISH_FAILED")
    ],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "jobs.api.webhooks.webhooks_as_extension",
        "accounts.api.docs.team_parameters",
    ],
}
API_THROTTLE_USER = os.environ.get("API_THROTTLE_USER", "600/min")  # "none" disables
API_THROTTLE_ANON = os.environ.get("API_THROTTLE_ANON", "60/min")
API_REGISTRATION_OPEN = env_bool("API_REGISTRATION_OPEN", False)
API_CLIP_MAX_BYTES = env_int("API_CLIP_MAX_BYTES", 200 * 1024 * 1024)
HEALTH_TOKEN = os.environ.get("HEALTH_TOKEN", "")
# Failed logins, admin and API alike, counted per client address (django-axes, in the database):
# after LOGIN_FAILURE_LIMIT of them an address may not log in, even with the right password, until
# LOGIN_COOLOFF_MINUTES after its last failure. A successful login does not reset the count, so one
# known password cannot buy more guesses at others.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_CLIENT_IP_CALLABLE = "accounts.api.throttling.client_address"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False  # no banner on every command; lockouts are still logged
AXES_COOLOFF_MESSAGE = (
    f"Too many failed logins from your address: logins from it are refused for "
    f"{int(AXES_COOLOFF_TIME.total_seconds() // 60)} minutes after the last failure."
)

# POST /api/v1/jobs/batch/ creates at most this many jobs in one call.
JOBS_BATCH_MAX = env_int("JOBS_BATCH_MAX", 100)
# Webhooks (jobs.webhooks): each delivery is tried WEBHOOK_MAX_ATTEMPTS times, WEBHOOK_RETRY_BACKOFF_S
# apart, doubling (at most an hour apart); WEBHOOK_TIMEOUT_S bounds a whole try. URLs must resolve to public
# addresses only, except inside the networks listed in WEBHOOK_ALLOWED_NETWORKS (comma-separated CIDRs,
# e.g. "10.0.0.0/8" for receivers on your own network), on ports 80 and 443 only, or one listed in
# WEBHOOK_ALLOWED_PORTS (comma-separated, e.g. "8443").
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8)
WEBHOOK_RETRY_BACKOFF_S = env_float("WEBHOOK_RETRY_BACKOFF_S", 30.0)
WEBHOOK_TIMEOUT_S = env_float("WEBHOOK_TIMEOUT_S", 10.0)
WEBHOOK_ALLOWED_NETWORKS = env_list("WEBHOOK_ALLOWED_NETWORKS")
WEBHOOK_ALLOWED_PORTS = [int(port) for port in env_list("WEBHOOK_ALLOWED_PORTS")]

# Storage clean-up policy (cleanup_storage --mode auto) and where maintenance schedules run.
CLEANUP_KEEP_EXECUTIONS = env_int("CLEANUP_KEEP_EXECUTIONS", 3)
CLEANUP_MAX_BYTES = env_int("CLEANUP_MAX_BYTES", 50 * 1024**3)
CLEANUP_MIN_INTERVAL_S = env_int("CLEANUP_MIN_INTERVAL_S", 6 * 3600)
# Video chunks (`chunks/`) that no kept execution is made of go once they are this old.
CLEANUP_CHUNK_DAYS = env_float("CLEANUP_CHUNK_DAYS", 7)
MAINTENANCE_CLUSTER = os.environ.get("MAINTENANCE_CLUSTER", "default")
# The django-q2 cluster of side effects: webhook sends and publications. A qcluster of its own
# (Q_CLUSTER_NAME=io) keeps them from waiting behind renders and from holding a render worker.
IO_CLUSTER = os.environ.get("IO_CLUSTER", "default")

# Pipeline defaults (media_engine takes them as arguments).
FFMPEG_TIMEOUT_S = env_int("FFMPEG_TIMEOUT_S", EXECUTION_TIME_LIMIT_S)
SEGMENT_TARGET_MS = env_int("SEGMENT_TARGET_MS", 5000)
VIDEO_FPS = env_int("VIDEO_FPS", 30)
VIDEO_PRESET = os.environ.get("VIDEO_PRESET", "veryfast")
BACKGROUND_MUSIC = os.environ.get("BACKGROUND_MUSIC", "")
# Model backends, configured by local paths (nothing is ever downloaded). Empty = the fallbacks.
FLUX_MODEL_DIR = os.environ.get("FLUX_MODEL_DIR", "")
LORA_DIR = os.environ.get("LORA_DIR", "")
IMAGE_CANDIDATES = env_int("IMAGE_CANDIDATES", 3)
IMAGE_STEPS = env_int("IMAGE_STEPS", 28)
# Moving pictures (README "Moving pictures"): an LTX-Video diffusers folder for the segments a job's
# extra.animate lists. Device "" = CUDA when present; offloading and VAE tiling trade speed for GPU memory.
I2V_MODEL_DIR = os.environ.get("I2V_MODEL_DIR", "")
I2V_DEVICE = os.environ.get("I2V_DEVICE", "")
I2V_CPU_OFFLOAD = env_bool("I2V_CPU_OFFLOAD")
I2V_VAE_TILING = env_bool("I2V_VAE_TILING")
I2V_STEPS = env_int("I2V_STEPS", 40)
I2V_GUIDANCE = env_float("I2V_GUIDANCE", 3.0)
I2V_FPS = env_int("I2V_FPS", 24)
I2V_MAX_FRAMES = env_int("I2V_MAX_FRAMES", 161)
I2V_MAX_SIDE = env_int("I2V_MAX_SIDE", 768)
FUNASR_MODEL_DIR = os.environ.get("FUNASR_MODEL_DIR", "")
FUNASR_VAD_DIR = os.environ.get("FUNASR_VAD_DIR", "")
FUNASR_PUNC_DIR = os.environ.get("FUNASR_PUNC_DIR", "")
LLM_BASE_URL = os.environ.get("LLM_BASE_URL", "")
LLM_API_KEY = os.environ.get("LLM_API_KEY", "")
LLM_MODEL = os.environ.get("LLM_MODEL", "")
PRESENTER_URL = os.environ.get("PRESENTER_URL", "")
# Stock footage (README "Stock footage"): the clip library is searched first; Pexels and Pixabay fill in
# where a key is set. Each key gets `budget` requests per `window_s` (their documented limits: Pexels 200
# an hour, Pixabay 100 a minute), counted in the shared "cluster" cache so every worker of a farm obeys it.
STOCK_PROVIDERS = {
    "pexels": {
        "key": os.environ.get("PEXELS_API_KEY", ""),
        "base_url": os.environ.get("PEXELS_API_URL", ""),
        "budget": env_int("PEXELS_BUDGET", 200),
        "window_s": 3600,
    },
    "pixabay": {
        "key": os.environ.get("PIXABAY_API_KEY", ""),
        "base_url": os.environ.get("PIXABAY_API_URL", ""),
        "budget": env_int("PIXABAY_BUDGET", 100),
        "window_s": 60,
    },
}
STOCK_CANDIDATES = env_int("STOCK_CANDIDATES", 3)  # clips offered per segment
STOCK_TIMEOUT_S = env_float("STOCK_TIMEOUT_S", 15.0)
STOCK_ATTEMPTS = env_int("STOCK_ATTEMPTS", 3)
STOCK_BACKOFF_S = env_float("STOCK_BACKOFF_S", 1.0)
STOCK_MAX_BYTES = env_int("STOCK_MAX_BYTES", 200 * 1024 * 1024)
TTS_OPTIONS = {
    "seedvc": {"url": os.environ.get("SEEDVC_URL", "")},
    "azure": {
        "key": os.environ.get("AZURE_SPEECH_KEY", ""),
        "region": os.environ.get("AZURE_SPEECH_REGION", ""),
    },
    "edge": {},
}

# Publishing to YouTube (README "Publishing to YouTube"): the OAuth client of one Google Cloud project, where
# its consent screen sends operators back to, and its daily unit budget. The endpoints point at Google;
# tests point them at their own fake (YOUTUBE_CA_BUNDLE: a CA file for an endpoint with a private certificate).
YOUTUBE_CLIENT_ID = os.environ.get("YOUTUBE_CLIENT_ID", "")
YOUTUBE_CLIENT_SECRET = os.environ.get("YOUTUBE_CLIENT_SECRET", "")
YOUTUBE_REDIRECT_URL = os.environ.get("YOUTUBE_REDIRECT_URL", "")  # empty: this site's callback URL
YOUTUBE_AUTH_URI = os.environ.get("YOUTUBE_AUTH_URI", "https://accounts.google.com/o/oauth2/auth")
YOUTUBE_TOKEN_URI = os.environ.get("YOUTUBE_TOKEN_URI", "https://oauth2.googleapis.com/token")
YOUTUBE_API_ENDPOINT = os.environ.get("YOUTUBE_API_ENDPOINT", "https://youtube.googleapis.com/")
YOUTUBE_CA_BUNDLE = os.environ.get("YOUTUBE_CA_BUNDLE", "")
YOUTUBE_TIMEOUT_S = env_float("YOUTUBE_TIMEOUT_S", 120.0)
# The budget is the project's: every channel published through this client shares it. A quota day
# starts at midnight Pacific time, when YouTube resets it.
YOUTUBE_QUOTA_PROJECT = os.environ.get("YOUTUBE_QUOTA_PROJECT", "") or YOUTUBE_CLIENT_ID or "default"
YOUTUBE_DAILY_QUOTA = env_int("YOUTUBE_DAILY_QUOTA", 10000)
# Each team may spend this share of the project's daily units (the teams' shares may add up to more
# than the whole: the project's budget still holds). 1.0: any team may spend the whole day.
YOUTUBE_TEAM_QUOTA_SHARE = env_float("YOUTUBE_TEAM_QUOTA_SHARE", 0.5)
# Resumable uploads go in chunks (a multiple of 256 KiB); a dropped chunk is resumed in place from the
# byte YouTube has, at most YOUTUBE_UPLOAD_RETRIES times per attempt, YOUTUBE_UPLOAD_RETRY_WAIT_S apart (doubling).
YOUTUBE_UPLOAD_CHUNK_BYTES = env_int("YOUTUBE_UPLOAD_CHUNK_BYTES", 8 * 1024 * 1024)
YOUTUBE_UPLOAD_RETRIES = env_int("YOUTUBE_UPLOAD_RETRIES", 5)
YOUTUBE_UPLOAD_RETRY_WAIT_S = env_float("YOUTUBE_UPLOAD_RETRY_WAIT_S", 2.0)  # doubling
# A rate limit or a server error reschedules the publication YOUTUBE_RETRY_BACKOFF_S later, doubling
# (at most an hour apart); after YOUTUBE_MAX_ATTEMPTS attempts it fails.
YOUTUBE_RETRY_BACKOFF_S = env_float("YOUTUBE_RETRY_BACKOFF_S", 60.0)
YOUTUBE_MAX_ATTEMPTS = env_int("YOUTUBE_MAX_ATTEMPTS", 10)
YOUTUBE_DEFAULT_PRIVACY = os.environ.get("YOUTUBE_DEFAULT_PRIVACY", "private")
YOUTUBE_DEFAULT_CATEGORY = os.environ.get("YOUTUBE_DEFAULT_CATEGORY", "22")  # People & Blogs
# Channel credentials are stored encrypted with the first of these Fernet keys (any of them decrypts,
# so a new key goes first and an old one stays until every channel was reconnected). Without one,
# no channel can be connected.
CHANNEL_SECRET_KEYS = env_list("CHANNEL_SECRET_KEYS")

# Security: over HTTPS (behind the TLS proxy, which sets X-Forwarded-Proto), secure cookies, HSTS and
# a redirect of plain HTTP; `manage.py check --deploy` is then clean. The monitoring endpoints stay
# reachable over plain HTTP for probes inside the network.
SECURE_SSL = env_bool("SECURE_SSL")
SESSION_COOKIE_SECURE = SECURE_SSL
CSRF_COOKIE_SECURE = SECURE_SSL
SECURE_SSL_REDIRECT = SECURE_SSL
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^health/extended$", r"^ready$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000) if SECURE_SSL else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE_SSL else None
# Browsers keep to the type a response declares (stored files: see jobs.views.signed_media).
SECURE_CONTENT_TYPE_NOSNIFF = True


def _storage_origins() -> list[str]:
    """Where the browser fetches stored files from: this site, or the bucket the links are signed for."""
    if not AWS_STORAGE_BUCKET_NAME:
        return []
    endpoint = os.environ.get("AWS_S3_PUBLIC_ENDPOINT_URL") or os.environ.get("AWS_S3_ENDPOINT_URL")
    if not endpoint:
        return ["https://*.amazonaws.com"]
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    return [f"{parts.scheme}://{parts.netloc}"]


# Content-Security-Policy (django-csp): scripts only from our own static files, never inline, so
# text that reaches a page cannot run. Inline style attributes stay allowed (a progress bar's width,
# a colour swatch); they cannot run script. The progress page talks to its websocket.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", *_storage_origins()],
        "media-src": ["'self'", *_storage_origins()],
        "connect-src": ["'self'", "ws:", "wss:"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

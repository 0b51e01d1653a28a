"""Settings for Switchboard, read from the environment (see `.env.example`).

One settings module serves both deployments: with nothing set it is the embedded
default (SQLite file, huey on SQLite inside the web process, in-process relay);
`DATABASE_URL` and `REDIS_URL` move it to PostgreSQL and Redis.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ

# Lets our code subscript Django's generic classes at runtime (`admin.ModelAdmin[Provider]`,
# `forms.ModelForm[Provider]`) as django-stubs types them; it adds __class_getitem__ only.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "data")))

DEBUG = env.bool("DEBUG", default=False)
REDIS_URL = env.str("REDIS_URL", default="")
# Starts every key Switchboard writes to Redis (cache, queue, relay): two deployments,
# or two test runs, can share one Redis database.
REDIS_KEY_PREFIX = env.str("REDIS_KEY_PREFIX", default="switchboard")
if not REDIS_URL:
    # The embedded deployment keeps its SQLite files here (database, queue, keys).
    DATA_DIR.mkdir(parents=True, exist_ok=True)


def _read_secret_file(path: Path) -> str:
    # The embedded default keeps its generated secrets in DATA_DIR (see
    # `manage.py bootstrap`); a deployment passes them in the environment instead.
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


SECRET_KEY = env.str("SECRET_KEY", default="") or _read_secret_file(DATA_DIR / "secret_key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The proxies whose X-Forwarded-For `manage.py serve` believes (comma-separated addresses,
# or *). Blank: none, the connection's own address is the client's.
FORWARDED_ALLOW_IPS = env.str("FORWARDED_ALLOW_IPS", default="")

# The encryption keyring for provider API keys: kept apart from SECRET_KEY so that
# rotating one never touches the other. Each entry is "key_id:base64(32 bytes)";
# the first encrypts, all decrypt. ENCRYPTION_KEY_FILE holds the same format, one
# entry per line, and is used when ENCRYPTION_KEYS is empty.
ENCRYPTION_KEYS = env.list("ENCRYPTION_KEYS", default=[])
ENCRYPTION_KEY_FILE = Path(env.str("ENCRYPTION_KEY_FILE", default=str(DATA_DIR / "encryption.key")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "providers",
    # Before huey: its `run_huey` command replaces huey's (generation/management).
    "generation",
    "huey.contrib.djhuey",
    "usage",
    "routing",
    "audit",
    "accounts",
    "axes",
]

MIDDLEWARE = [
    # Outermost: counts every answer by view and status, whichever layer gave it. Sync, as
    # the chain is below WhiteNoise (see there); removed when metrics are off.
    "metrics.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The request's user and address for the audit records made while it runs.
    "audit.context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After every middleware that acts on views, as axes asks: it turns a sign-in
    # refused for a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
    # Innermost on purpose. WhiteNoise 6 is sync-only, and Django runs every middleware
    # outside a sync-only one in sync mode too (its documented adaptation): the whole
    # chain then runs in one hop to the request's thread, as under WSGI. Further out,
    # every stock middleware hook was a thread hop of its own (16 for a chat send), and
    # the chat's time to first token at 10 conversations doubled (tests/bench/README.md).
    # It serves only /static/ paths and passes the rest through; in production the
    # proxy serves /static/ itself (deploy/nginx.conf).
    "whitenoise.middleware.WhiteNoiseMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'switchboard.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's stock SQLite backend, set up as healthchecks does: a write transaction
    # takes the lock when it begins (IMMEDIATE), so it waits for a busy writer (up to
    # `timeout` seconds) instead of failing half-way with "database is locked"; WAL
    # lets the worker threads write while pages read.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# Not persistent: "When using ASGI, persistent connections should be disabled" (Django's
# docs). Each request runs its sync work on a thread of its own, so a kept connection
# would never serve another request. PostgreSQL gets a pool below instead.
DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    # Django gives every request thread its own connection, so a burst of requests (a
    # hundred SSE streams opening at once) opens as many PostgreSQL backends and meets
    # "too many clients". A per-process pool bounds them: a request beyond DB_POOL_SIZE
    # waits for a connection (returned by close(), at most DB_POOL_TIMEOUT seconds)
    # instead of failing.
    DB_POOL_SIZE = env.int("DB_POOL_SIZE", default=20)
    if DB_POOL_SIZE > 0:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DB_POOL_SIZE,
            "timeout": env.float("DB_POOL_TIMEOUT", default=30.0),
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if REDIS_URL:
    CACHES = {
        "default": {
            # django-redis keeps one connection pool per process, shared by every thread.
            # Django's own RedisCache builds pools per cache object, that is per thread:
            # under ASGI every request runs its sync work on a thread of its own, and
            # each would open new connections to Redis.
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_KEY_PREFIX,
            "OPTIONS": {
                # Past max_connections a thread waits for a free connection (up to
                # timeout seconds) rather than failing.
                "CONNECTION_POOL_CLASS": "redis.BlockingConnectionPool",
                "CONNECTION_POOL_KWARGS": {"max_connections": 50, "timeout": 5},
                "SOCKET_CONNECT_TIMEOUT": 5,
                "SOCKET_TIMEOUT": 5,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sessions are read on every request (each SSE stream too): from the cache, written
# through to the database, so the database read (a tenth of a request's CPU) is skipped.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# Sign-in throttling (django-axes), for our sign-in page and the admin's alike. The
# backend refuses a locked-out sign-in before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Single sign-on: answers only the OpenID Connect callback, and only when configured.
    "accounts.backends.SsoBackend",
]
# Failures are counted per (username, client address) pair:
# - per username alone, anyone could lock any colleague (or the admin) out from
#   everywhere just by typing wrong passwords for them (the denial of service that
#   OWASP's authentication guidance warns account lockout invites);
# - per address alone, one mistyping or hostile colleague would lock the whole office
#   out: a team usually reaches Switchboard from one NAT address.
# A pair only stops guessing one account from one address; the cool-off bounds a
# guesser spread over many addresses to LOGIN_FAILURE_LIMIT tries per address per period.
# The address is REMOTE_ADDR: behind the shipped nginx, uvicorn's proxy headers (on by
# default for a proxy on 127.0.0.1) set it to the client's address.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
# 0 = locked until a staff member deletes the attempt in the admin (Axes > Access attempts).
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=15)
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES) if LOGIN_LOCKOUT_MINUTES else None
# Named, not left to axes: its default is a lazy object in the settings, which the error
# reports' settings dump (providers.redaction) would then have to evaluate.
AXES_USERNAME_FORM_FIELD = "username"
# A successful sign-in forgets the earlier failures of that pair.
AXES_RESET_ON_SUCCESS = True
# The sign-in page itself with the reason (config/lockout.py), not a bare 429 text.
AXES_LOCKOUT_CALLABLE = "config.lockout.lockout_response"
# Attempts in the database: the same on SQLite and PostgreSQL, and shared by every
# web process (a per-process cache would give each process its own count).
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
# The single sign-on callback is left to the identity provider's own throttling: it has no
# username to count by, and counting it per address would lock a whole office out of SSO.
AXES_WHITELIST_CALLABLE = "accounts.lockout.is_sso_callback"

# Single sign-on with OpenID Connect (accounts/, README "Single sign-on"): on when
# OIDC_ISSUER and OIDC_CLIENT_ID are set. Endpoints left empty are read from the issuer's
# discovery document on first use (accounts/discovery.py).
OIDC_ISSUER = env.str("OIDC_ISSUER", default="")
OIDC_RP_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
OIDC_RP_SCOPES = env.str("OIDC_SCOPES", default="openid email profile")
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_USERNAME_CLAIM = env.str("OIDC_USERNAME_CLAIM", default="preferred_username")
OIDC_STAFF_GROUPS = env.list("OIDC_STAFF_GROUPS", default=[])
OIDC_SUPERUSER_GROUPS = env.list("OIDC_SUPERUSER_GROUPS", default=[])
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_USERINFO_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_JWKS_ENDPOINT", default="")
OIDC_OP_END_SESSION_ENDPOINT = env.str("OIDC_END_SESSION_ENDPOINT", default="")
OIDC_LOGOUT_AT_PROVIDER = env.bool("OIDC_LOGOUT_AT_PROVIDER", default=False)
OIDC_RP_SIGN_ALGO = env.str("OIDC_SIGN_ALGO", default="RS256")
OIDC_USE_PKCE = True
OIDC_TIMEOUT = env.float("OIDC_TIMEOUT", default=10.0)
# "everyone", or "superusers": then only superusers (the bootstrap admin) sign in with a
# password, on our page and the admin's; everyone else signs in with SSO.
PASSWORD_SIGN_IN = env.str("PASSWORD_SIGN_IN", default="everyone")

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
# English only: translation machinery costs a context-local lookup on every reverse().
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Behind TLS (the default for a deployment) cookies are secure and HTTP redirects to
# HTTPS. `make run` serves plain http on 127.0.0.1 and sets HTTPS=false.
HTTPS = env.bool("HTTPS", default=True)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Task queue: huey on SQLite inside the web process by default, on Redis with
# separate `run_huey` workers when REDIS_URL is set. A worker thread generates one
# answer at a time: HUEY_WORKERS is how many answers a worker process streams at once.
HUEY_CONSUMER = {
    "workers": env.int("HUEY_WORKERS", default=64),
    "worker_type": "thread",
    # A `run_huey` worker stops gracefully on SIGTERM, the signal process managers and
    # systemd stop with (huey's default graceful signal is SIGINT, and SIGTERM quits at
    # once, cutting off the answers it streams). Its answers then get until a second
    # before this timeout to finish, and end as interrupted after it, their text and
    # metering stored (generation.runner.interrupt_answers_on_stop). Whatever stops the
    # worker must wait longer than this before it kills (deploy/).
    "graceful_signal": "TERM",
    "shutdown_timeout": env.float("WORKER_SHUTDOWN_SECONDS", default=20.0),
}
if REDIS_URL:
    HUEY = {
        "huey_class": "huey.PriorityRedisHuey",
        "name": REDIS_KEY_PREFIX,
        "url": REDIS_URL,
        "immediate": False,
        "consumer": HUEY_CONSUMER,
    }
else:
    HUEY = {
        # huey's SqliteHuey, whose idle workers wake the moment a task is queued in this
        # process instead of polling (generation/huey_storage.py).
        "huey_class": "generation.huey_storage.NotifyingSqliteHuey",
        "name": "switchboard",
        "filename": str(DATA_DIR / "huey.sqlite3"),
        "immediate": False,
        # The embedded consumer keeps the server's signal handlers and its own timeout
        # (config/embedded_worker.py); these apply to a `run_huey` on SQLite.
        "consumer": HUEY_CONSUMER,
    }

# Error reports (the DEBUG page, admin e-mails) pass every value through the redactor.
DEFAULT_EXCEPTION_REPORTER = "providers.redaction.RedactingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "providers.redaction.RedactingExceptionReporterFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "providers.redaction.RedactingFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact_secrets"],
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        # uvicorn and huey's run_huey bring handlers of their own, without the filter:
        # their loggers write through ours instead (a web process applies this after
        # uvicorn's config, and run_huey adds no handler to a logger that has one).
        "uvicorn": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "huey": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # The HTTP clients log every request URL at INFO; the SDKs log request options
        # (prompt text included) at DEBUG. Neither belongs in our logs.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "httpcore2": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
        "anthropic": {"level": "WARNING"},
    },
}

# Mail (budget alerts, usage.alerts): SMTP when EMAIL_HOST is set, else each message is
# printed to the console (the embedded deployment). The password is never logged.
EMAIL_HOST = env("EMAIL_HOST", default="")
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Switchboard <switchboard@localhost>")

_ATTACHMENTS_PER_MESSAGE = env.int("ATTACHMENTS_PER_MESSAGE", default=8)
SWITCHBOARD = {
    # Upper bound for max_tokens accepted from users and the API.
    "MAX_TOKENS_CAP": env.int("MAX_TOKENS_CAP", default=8192),
    "MAX_PROMPT_CHARS": env.int("MAX_PROMPT_CHARS", default=200_000),
    # A conversation's system prompt (it is sent again with every answer).
    "MAX_SYSTEM_PROMPT_CHARS": env.int("MAX_SYSTEM_PROMPT_CHARS", default=20_000),
    # Upstream calls (providers.engine): attempts per call including the first, the
    # backoff step and cap between attempts, and the deadline for a whole call.
    "RETRY_MAX_ATTEMPTS": 3,
    "RETRY_BASE_DELAY_SECONDS": 0.5,
    "RETRY_MAX_DELAY_SECONDS": 20.0,
    "CALL_DEADLINE_SECONDS": 300.0,
    # How long a provider's models list is cached.
    "MODELS_CACHE_SECONDS": 600,
    # An idle SSE stream sends a comment this often: a proxy's read timeout must be longer.
    "SSE_HEARTBEAT_SECONDS": env.float("SSE_HEARTBEAT_SECONDS", default=10.0),
    # Largest JSON body /api/generate and /v1 accept (images come inline, as base64);
    # larger ones get a 413 with the reason. Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not
    # apply to these: they read the body as a stream, under this limit.
    "MAX_API_BODY_BYTES": env.int("MAX_API_BODY_BYTES", default=20_000_000),
    # Images in one /v1 request (data URLs and https URLs together).
    "MAX_API_IMAGES": env.int("MAX_API_IMAGES", default=20),
    # Files attached to a chat message (images, text files, PDFs): the largest one, how
    # many one message may carry, and their sum. The proxy's body limit must be above the
    # sum (deploy/nginx.conf), or it answers 413 before our message can.
    "ATTACHMENT_MAX_BYTES": env.int("ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024),
    "ATTACHMENTS_PER_MESSAGE": _ATTACHMENTS_PER_MESSAGE,
    "ATTACHMENTS_MAX_TOTAL_BYTES": env.int("ATTACHMENTS_MAX_TOTAL_BYTES", default=20 * 1024 * 1024),
    # Inputs one POST /v1/embeddings may embed (OpenAI's own limit); their text counts
    # against MAX_PROMPT_CHARS in all.
    "MAX_EMBEDDING_INPUTS": env.int("MAX_EMBEDDING_INPUTS", default=2048),
    # Routing (routing.health): an alias target (provider + model) that failed this many
    # times with an error another target could avoid, within the window, is tried last by
    # every process for the cooldown (shared through the cache).
    "HEALTH_FAILURES": env.int("HEALTH_FAILURES", default=3),
    "HEALTH_WINDOW_SECONDS": env.float("HEALTH_WINDOW_SECONDS", default=60.0),
    "HEALTH_COOLDOWN_SECONDS": env.float("HEALTH_COOLDOWN_SECONDS", default=60.0),
}

# Uploads: Django streams a file part over FILE_UPLOAD_MAX_MEMORY_SIZE to a temporary file
# and counts no file part against DATA_UPLOAD_MAX_MEMORY_SIZE, so a file over our limits
# still reaches the composer's own check (and its words). Django refuses a body with
# more file parts than DATA_UPLOAD_MAX_NUMBER_FILES with a bare 400 before any view runs:
# keep that well above the per-message count, so a few too many get our message.
DATA_UPLOAD_MAX_NUMBER_FILES = max(100, 4 * _ATTACHMENTS_PER_MESSAGE)

# Run the huey consumer inside the web process (the embedded deployment).
EMBEDDED_WORKER = env.bool("EMBEDDED_WORKER", default=not REDIS_URL)

# With no provider configured, `manage.py bootstrap` adds "Demo (local)", served by the
# fake upstream on this port inside `manage.py serve`.
DEMO_PROVIDER = env.bool("DEMO_PROVIDER", default=True)
DEMO_UPSTREAM_PORT = env.int("DEMO_UPSTREAM_PORT", default=8001)

# Prometheus metrics (metrics/, README "Metrics"). GET /metrics answers a scraper that
# sends `Authorization: Bearer <METRICS_TOKEN>` and/or comes from METRICS_ALLOWED_IPS
# (addresses or networks); both set, both are required. Neither set: metrics are off,
# nothing is collected and /metrics is a 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
for _network in METRICS_ALLOWED_IPS:
    ipaddress.ip_network(_network, strict=False)  # a typo fails at start, not at a scrape
METRICS_ENABLED = bool(METRICS_TOKEN or METRICS_ALLOWED_IPS)
# Every web and worker process of one host writes its values here and /metrics sums
# them (prometheus_client's multiprocess mode). prometheus_client reads the variable
# when it is first imported, and the settings are the first of our code every process
# runs: so it is put in the environment here. Set up and cleaned by metrics.multiproc.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default=str(DATA_DIR / "metrics"))
if METRICS_ENABLED:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Set, prometheus_client writes there from its first metric (made at import), even
    # with metrics off: the folder must exist.
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

"""Settings for the test suite: the production settings with test-friendly storage."""

from __future__ import annotations

import os
import secrets
import tempfile

from config.settings import *  # noqa: F403
from config.settings import STORAGES

# Tests render templates without running collectstatic first.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SECRET_KEY = "test-only-secret-key-not-for-production-0123456789abcdef"
# Tests (and the browser tests) talk plain http to 127.0.0.1.
SECURE_SSL_REDIRECT = SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

_scratch = tempfile.mkdtemp(prefix="switchboard-test-")

# A Redis key prefix of this run's own: two test runs on one host (two checkouts, CI
# and a developer) share the Redis database without taking each other's tasks.
if REDIS_URL:  # noqa: F405
    REDIS_KEY_PREFIX = f"switchboard-test-{secrets.token_hex(4)}"
    CACHES["default"]["KEY_PREFIX"] = REDIS_KEY_PREFIX  # noqa: F405
    HUEY = {**HUEY, "name": REDIS_KEY_PREFIX}  # noqa: F405

# The queue file lives apart from any developer's data folder.
if "filename" in HUEY:
    HUEY = {**HUEY, "filename": f"{_scratch}/huey.sqlite3"}

# The flow tests run huey worker threads against the test database. Django's default
# SQLite test database is in-memory with a shared cache, whose table locks fail at once
# ("database table is locked") instead of waiting; a file in WAL mode behaves like the
# real deployment.
if "sqlite" in DATABASES["default"]["ENGINE"]:  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": f"{_scratch}/test.sqlite3"}  # noqa: F405

# Serve static files from the finders; the suite never runs collectstatic.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True

# Metrics on for the whole suite (every request and usage record is counted, as in a
# deployment that scrapes), in a folder of this run's own.
METRICS_TOKEN = "test-metrics-token-0123456789"
METRICS_ENABLED = True
PROMETHEUS_MULTIPROC_DIR = f"{_scratch}/metrics"
os.makedirs(PROMETHEUS_MULTIPROC_DIR, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR

"""Settings for the test suite: the production settings with test-friendly storage."""

from __future__ import annotations

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

# The queue file lives apart from any developer's data folder.
if HUEY["huey_class"] == "huey.SqliteHuey":  # noqa: F405
    import tempfile

    HUEY = {**HUEY, "filename": f"{tempfile.mkdtemp(prefix='switchboard-test-')}/huey.sqlite3"}  # noqa: F405

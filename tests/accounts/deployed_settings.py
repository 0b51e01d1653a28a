"""The deployment test's production settings, with static files served from the finders:
the browser loads them, and a test must not run collectstatic into the shared tree."""

from __future__ import annotations

from tests.deploy.settings import *  # noqa: F403

WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

"""Production settings for the subprocesses of the deployment test and the benchmarks.

Everything comes from `config.settings` and the environment, except the static files
storage: the manifest storage needs a fresh `collectstatic` in the shared tree, which a
test must not write to.
"""

from __future__ import annotations

from config.settings import *  # noqa: F403
from config.settings import STORAGES

STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

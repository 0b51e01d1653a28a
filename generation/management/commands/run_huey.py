"""`run_huey` (a worker process of the scale-out deployment), with the garbage collector
tuned for a long-running server first (see config/gc_tuning.py).

It takes the place of huey's own command: `generation` is listed before
`huey.contrib.djhuey` in INSTALLED_APPS, and Django runs the first app's command.
"""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import autodiscover_modules
from huey.contrib.djhuey.management.commands.run_huey import Command as HueyCommand

from config import gc_tuning


class Command(HueyCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        if not options.get("disable_autoload"):
            autodiscover_modules("tasks")  # imported before the freeze, as huey would after
        gc_tuning.tune_for_server()
        super().handle(*args, **options)

"""`run_huey` (a worker process of the scale-out deployment): huey's command, with the
garbage collector tuned for a long-running server and a clean stop.

It takes the place of huey's own command: `generation` is listed before
`huey.contrib.djhuey` in INSTALLED_APPS, and Django runs the first app's command.
The handle is huey's, through its public ConsumerConfig and create_consumer, so the
consumer is at hand: on the graceful signal (SIGTERM, from the settings) its answers
get until shortly before the shutdown timeout, then end as interrupted, their text
and their upstream attempts stored (generation.runner.interrupt_answers_on_stop).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.utils.module_loading import autodiscover_modules
from huey.consumer_options import ConsumerConfig, config_keys
from huey.contrib.djhuey.management.commands.run_huey import Command as HueyCommand

from config import gc_tuning
from generation.runner import interrupt_answers_on_stop
from metrics import multiproc


class Command(HueyCommand):  # type: ignore[misc]  # huey ships no types
    def handle(self, *args: Any, **options: Any) -> None:
        from huey.contrib.djhuey import HUEY

        consumer_options: dict[str, Any] = dict(settings.HUEY.get("consumer", {}))
        consumer_options.update(
            (key, value)
            for key, value in options.items()
            if value is not None and key in config_keys
        )
        if not options.get("disable_autoload"):
            autodiscover_modules("tasks")
        config = ConsumerConfig(**consumer_options)
        config.validate()
        huey_logger = logging.getLogger("huey")
        if not huey_logger.handlers:  # as huey's command: the settings' LOGGING may have one
            config.setup_logger(huey_logger)
        gc_tuning.tune_for_server()  # after the imports above: they are frozen too
        multiproc.start_process()  # this worker's metrics files (metrics/multiproc.py)
        consumer = HUEY.create_consumer(**config.values)
        interrupt_answers_on_stop(consumer)
        consumer.run()

"""huey tasks: they take ids only and call a service."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from generation.runner import run_generation
from generation.sweeper import sweep_stuck_messages


@db_task(retries=0, context=False)  # type: ignore[untyped-decorator]  # huey ships no types
def generate_message(message_id: int) -> None:
    # No huey retries: a re-run could not re-claim the message anyway; the sweeper
    # recovers what a crash leaves behind.
    if not run_generation(message_id=message_id):
        # This process is stopping: the answer stays pending for one that stays.
        generate_message(message_id)


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]  # huey: no types
def sweep_messages() -> None:
    sweep_stuck_messages(requeue=generate_message)

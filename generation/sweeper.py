"""Recovery for what the queue does not guarantee: lost tasks and killed workers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from generation.models import Message
from generation.relay import get_relay
from providers.errors import ErrorKind
from usage.budgets import release_hold

logger = logging.getLogger(__name__)

INTERRUPTED = "The answer was interrupted before it finished."


def _seconds(name: str, default: int) -> float:
    return float(getattr(settings, "SWITCHBOARD", {}).get(name, default))


@dataclass(frozen=True)
class SweepReport:
    requeued: list[int]
    failed: list[int]


def sweep_stuck_messages(*, requeue: Callable[[int], object]) -> SweepReport:
    """`requeue(message_id)` queues a lost task again (the tasks module passes its task)."""
    now = timezone.now()
    relay = get_relay()
    requeue_after = timedelta(seconds=_seconds("PENDING_REQUEUE_SECONDS", 30))
    give_up_after = timedelta(seconds=_seconds("PENDING_GIVE_UP_SECONDS", 3600))
    # A live worker saves at least every few seconds (runner.HEARTBEAT_INTERVAL).
    stale_after = timedelta(seconds=_seconds("STREAMING_STALE_SECONDS", 90))

    failed: list[int] = []
    never_started = Message.objects.filter(
        status=Message.Status.PENDING, created_at__lt=now - give_up_after
    )
    for message in list(never_started.only("pk", "stream_key", "reservation_id")):
        if _fail(message.pk, Message.Status.PENDING, now):
            failed.append(message.pk)
            relay.complete(message.relay_key)
            release_hold(reservation_id=message.reservation_id)

    requeued: list[int] = []
    lost = Message.objects.filter(
        status=Message.Status.PENDING, updated_at__lt=now - requeue_after
    ).values_list("pk", flat=True)
    for message_id in list(lost):
        # Touch first, so one message is re-enqueued at most once per interval; the
        # claim in the task makes a duplicate harmless anyway.
        Message.objects.filter(pk=message_id, status=Message.Status.PENDING).update(updated_at=now)
        requeue(message_id)
        requeued.append(message_id)

    stale = Message.objects.filter(
        status=Message.Status.STREAMING, updated_at__lt=now - stale_after
    )
    failed += _fail_streaming(stale, now)
    if requeued or failed:
        logger.warning("Sweeper re-enqueued %d and failed %d messages.", len(requeued), len(failed))
    return SweepReport(requeued, failed)


def interrupt_orphaned_answers() -> list[int]:
    """End every answer still streaming as interrupted (its saved text kept).

    Only for a process that runs all the workers there are (the embedded deployment)
    as it starts: any answer streaming then was a killed process's.
    """
    orphaned = Message.objects.filter(status=Message.Status.STREAMING)
    failed = _fail_streaming(orphaned, timezone.now())
    if failed:
        logger.warning("Ended %d answers interrupted by a restart.", len(failed))
    return failed


def _fail_streaming(messages: QuerySet[Message], now: datetime) -> list[int]:
    relay = get_relay()
    failed = []
    for message in list(messages.only("pk", "stream_key", "reservation_id")):
        if _fail(message.pk, Message.Status.STREAMING, now):
            failed.append(message.pk)
            relay.complete(message.relay_key)
            # Its worker died holding the worst case: the user's budget gets it back. A
            # worker that was only slow still records its usage when it ends.
            release_hold(reservation_id=message.reservation_id)
    return failed


def _fail(message_id: int, status: str, now: datetime) -> bool:
    # Conditional on the status we saw, so a worker finishing meanwhile wins. The
    # partial text stays: it is whatever the worker saved last.
    return bool(
        Message.objects.filter(pk=message_id, status=status).update(
            status=Message.Status.FAILED,
            error_kind=ErrorKind.TIMEOUT,
            error_message=INTERRUPTED,
            request=None,
            finished_at=now,
            updated_at=now,
        )
    )

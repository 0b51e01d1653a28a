"""Fixtures for the audit log tests: a signed-in staff client, and reading the records."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditEvent, EventType

# Addresses from the documentation ranges: only REMOTE_ADDR values, nothing is sent there.
OFFICE = "203.0.113.7"
ELSEWHERE = "198.51.100.20"


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def events(event: EventType | None = None) -> list[AuditEvent]:
    """Records oldest first, of one type or all."""
    found = AuditEvent.objects.order_by("created_at", "id")
    return list(found.filter(event=event) if event else found)


def only(event: EventType) -> AuditEvent:
    found = events(event)
    assert len(found) == 1, [(e.event, e.detail) for e in events()]
    return found[0]


def every_record_as_text() -> str:
    """All of every record, as a reader of the log or of a dump of it would see it."""
    rows = AuditEvent.objects.values()
    return json.dumps([{k: str(v) for k, v in row.items()} for row in rows])

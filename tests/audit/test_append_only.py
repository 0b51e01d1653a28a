"""Records are only ever added: no save of an existing row, no delete, no bulk change."""

from __future__ import annotations

import pytest

from audit.models import AppendOnlyError, AuditEvent, EventType
from audit.services import record_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def record() -> AuditEvent:
    return record_event(EventType.PRICE_CHANGED, detail={"note": "original"})


def test_an_existing_record_cannot_be_saved_again(record):
    record.detail = {"note": "rewritten"}
    with pytest.raises(AppendOnlyError):
        record.save()
    assert AuditEvent.objects.get(pk=record.pk).detail == {"note": "original"}


def test_a_record_cannot_be_deleted_one_by_one_or_in_bulk(record):
    with pytest.raises(AppendOnlyError):
        record.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=record.pk).delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.filter(pk=record.pk).exists()


def test_bulk_updates_are_refused(record):
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.update(actor="someone else")
    record.actor = "someone else"
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_update([record], ["actor"])
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.update_or_create(pk=record.pk, defaults={"actor": "x"})
    assert AuditEvent.objects.get(pk=record.pk).actor == "system"


def test_deleting_the_acting_user_leaves_their_records_as_written(django_user_model, client):
    bob = django_user_model.objects.create_user("bob", password="pw-bob-45678")
    client.post("/accounts/login/", {"username": "bob", "password": "pw-bob-45678"})
    signed_in = AuditEvent.objects.get(event=EventType.LOGIN_SUCCEEDED)
    bob_id = bob.pk
    bob.delete()
    signed_in = AuditEvent.objects.get(pk=signed_in.pk)
    assert (signed_in.user_id, signed_in.actor) == (bob_id, "bob")
    assert AuditEvent.objects.filter(event=EventType.USER_DELETED, object_id=str(bob_id)).exists()

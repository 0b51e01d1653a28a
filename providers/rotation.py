"""Re-encrypting stored secrets under the newest key of the keyring."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.apps import apps
from django.db import models, transaction

from providers.crypto import DecryptionError, get_keyring, parse_token
from providers.fields import Encrypted, EncryptedTextField


@dataclass
class RotationCounts:
    rotated: int = 0
    current: int = 0
    failed: int = 0


def encrypted_fields() -> Iterator[tuple[type[models.Model], EncryptedTextField]]:
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field


def rotate_all(*, batch_size: int = 500) -> dict[str, RotationCounts]:
    """Re-encrypt every stored value not under the primary key, batch by batch.

    Each batch commits on its own, so an interrupted run loses nothing and a rerun
    carries on where it stopped. Rows that cannot be decrypted are counted, not changed.
    """
    keyring = get_keyring()
    report: dict[str, RotationCounts] = {}
    for model, field in encrypted_fields():
        counts = report.setdefault(f"{model._meta.label}.{field.name}", RotationCounts())
        last_pk = None
        while True:
            rows = model._default_manager.exclude(**{f"{field.name}__isnull": True}).order_by("pk")
            if last_pk is not None:
                rows = rows.filter(pk__gt=last_pk)
            batch = list(rows[:batch_size])
            if not batch:
                break
            last_pk = batch[-1].pk
            with transaction.atomic():
                for row in batch:
                    _rotate_row(row, field, keyring.primary_key_id, counts)
    return report


def _rotate_row(
    row: models.Model, field: EncryptedTextField, primary: str, counts: RotationCounts
) -> None:
    value: Encrypted = getattr(row, field.attname)
    try:
        key_id, _ = parse_token(value.token)
        if key_id == primary:
            counts.current += 1
            return
        plaintext = field.decrypt(row)
    except DecryptionError:
        counts.failed += 1
        return
    assert plaintext is not None
    new_value = field.encrypt_value(row, plaintext)
    type(row)._default_manager.filter(pk=row.pk).update(**{field.attname: new_value})
    counts.rotated += 1

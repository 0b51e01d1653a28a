"""A model field whose value is stored encrypted (see `providers.crypto`).

Assign plaintext (``provider.api_key = "sk-..."``); on save it is encrypted with
associated data naming the model, field and primary key, so the primary key must be
set before the first save (a UUID default does that). Loaded values are `Encrypted`
wrappers that never show their contents; read the secret with
``field.decrypt(instance)`` (models expose a helper for it).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldError
from django.db import models

from providers.crypto import get_keyring, is_token


class Encrypted:
    """A stored token. Its repr and str never reveal the token or the secret."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return "<Encrypted>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Encrypted) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)


class EncryptedTextField(models.TextField[str | Encrypted | None, str | Encrypted | None]):
    """Set: plaintext (or a loaded token). Get: `Encrypted` once loaded or saved, the
    plaintext until then."""

    description = "Text encrypted with AES-256-GCM"

    def associated_data(self, instance: models.Model) -> str:
        if instance.pk is None:
            raise ValueError("Encrypted fields need the primary key set before saving.")
        return f"{instance._meta.label_lower}.{self.name}:{instance.pk}"

    def decrypt(self, instance: models.Model) -> str | None:
        value = getattr(instance, self.attname)
        if value is None or isinstance(value, str):
            return value  # plaintext not yet saved
        return get_keyring().decrypt(value.token, associated_data=self.associated_data(instance))

    def encrypt_value(self, instance: models.Model, plaintext: str) -> Encrypted:
        token = get_keyring().encrypt(plaintext, associated_data=self.associated_data(instance))
        return Encrypted(token)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = getattr(model_instance, self.attname)
        if isinstance(value, str):
            value = self.encrypt_value(model_instance, value)
            setattr(model_instance, self.attname, value)
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, Encrypted):
            return value.token
        # Plaintext must never reach the database; pre_save encrypts it first.
        raise TypeError("EncryptedTextField only stores encrypted tokens.")

    def from_db_value(
        self, value: str | None, expression: Any, connection: Any
    ) -> Encrypted | None:
        return None if value is None else Encrypted(value)

    def to_python(self, value: Any) -> Any:
        # Deserialising a dump yields tokens; anything else is plaintext to encrypt.
        if isinstance(value, str) and is_token(value):
            return Encrypted(value)
        return value

    def value_to_string(self, obj: models.Model) -> str:
        value = self.value_from_object(obj)
        if isinstance(value, str):
            value = self.encrypt_value(obj, value)
        return "" if value is None else value.token

    def get_lookup(self, lookup_name: str) -> Any:
        # Equal plaintexts never share a token, so only isnull can mean anything.
        if lookup_name != "isnull":
            raise FieldError(f"Encrypted field {self.name!r} supports only the isnull lookup.")
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name: str) -> Any:
        raise FieldError(f"Encrypted field {self.name!r} supports no transforms.")

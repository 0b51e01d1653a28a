"""AES-256-GCM encryption of secrets at rest, under a keyring from the environment.

A token looks like ``sb1:<key id>:<urlsafe base64 of nonce || ciphertext+tag>``. Each
encryption draws a fresh random 96-bit nonce; the associated data binds the
ciphertext to one model, field and row, so a token copied to another row fails to
decrypt. The first key of the keyring encrypts; every key decrypts.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

TOKEN_VERSION = "sb1"
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class DecryptionError(Exception):
    """A token could not be decrypted: wrong key, unknown key id, or tampered data."""


@dataclass(frozen=True)
class Keyring:
    # (key id, 32-byte key) pairs; the first one encrypts.
    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ImproperlyConfigured(
                "No encryption key is configured. Set ENCRYPTION_KEYS or create the key "
                "file with `python manage.py bootstrap`."
            )
        ids = [key_id for key_id, _ in self.keys]
        if len(set(ids)) != len(ids):
            raise ImproperlyConfigured("Encryption key ids must be unique.")

    @property
    def primary_key_id(self) -> str:
        return self.keys[0][0]

    def encrypt(self, plaintext: str, *, associated_data: str) -> str:
        key_id, key = self.keys[0]
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), associated_data.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{TOKEN_VERSION}:{key_id}:{body}"

    def decrypt(self, token: str, *, associated_data: str) -> str:
        key_id, body = parse_token(token)
        key = dict(self.keys).get(key_id)
        if key is None:
            raise DecryptionError(f"Token was encrypted with key id {key_id!r}, not in keyring.")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError) as exc:
            raise DecryptionError("Token is not valid base64.") from exc
        if len(raw) <= NONCE_BYTES + 16:
            raise DecryptionError("Token is too short.")
        try:
            nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
            plain = AESGCM(key).decrypt(nonce, sealed, associated_data.encode())
        except InvalidTag as exc:
            raise DecryptionError("Token failed authentication (wrong key or tampered).") from exc
        return plain.decode()


def parse_token(token: str) -> tuple[str, str]:
    """Return (key id, body) of a token, or raise DecryptionError."""
    parts = token.split(":")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION or not _KEY_ID.match(parts[1]):
        raise DecryptionError("Not a Switchboard encryption token.")
    return parts[1], parts[2]


def is_token(value: str) -> bool:
    try:
        parse_token(value)
    except DecryptionError:
        return False
    return True


def generate_key_entry() -> str:
    """A new keyring entry, ``<key id>:<base64 key>``, for ENCRYPTION_KEYS or the key file."""
    key_id = "k" + secrets.token_hex(4)
    return f"{key_id}:{base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


def parse_key_entries(entries: list[str]) -> Keyring:
    keys = []
    for entry in entries:
        key_id, sep, encoded = entry.strip().partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise ImproperlyConfigured(
                "Each encryption key must look like '<key id>:<base64 of 32 bytes>'."
            )
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured(f"Encryption key {key_id!r} is not valid base64.") from exc
        if len(key) != KEY_BYTES:
            raise ImproperlyConfigured(f"Encryption key {key_id!r} must be 32 bytes (AES-256).")
        keys.append((key_id, key))
    return Keyring(tuple(keys))


def read_key_file(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@cache
def get_keyring() -> Keyring:
    entries = list(settings.ENCRYPTION_KEYS) or read_key_file(Path(settings.ENCRYPTION_KEY_FILE))
    return parse_key_entries(entries)


@receiver(setting_changed)
def _reset_keyring(*, setting: str, **kwargs: object) -> None:
    if setting in {"ENCRYPTION_KEYS", "ENCRYPTION_KEY_FILE"}:
        get_keyring.cache_clear()

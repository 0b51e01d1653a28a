from __future__ import annotations

import base64

import pytest
from django.core.exceptions import FieldError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from providers.crypto import DecryptionError, generate_key_entry, get_keyring, parse_token
from providers.models import Provider

KEY = "sk-proj-plaintext-0123456789abcdef"


def _stored_token(provider: Provider) -> str:
    with connection.cursor() as cursor:
        pk = Provider._meta.pk.get_db_prep_value(provider.pk, connection)
        cursor.execute("SELECT api_key FROM providers_provider WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_same_key_encrypts_to_different_tokens(make_provider):
    first = make_provider("A", KEY)
    second = make_provider("B", KEY)
    assert _stored_token(first) != _stored_token(second)
    keyring = get_keyring()
    assert keyring.encrypt(KEY, associated_data="x") != keyring.encrypt(KEY, associated_data="x")


def test_key_round_trips_and_is_not_stored_in_plaintext(make_provider):
    provider = make_provider("A", KEY)
    token = _stored_token(provider)
    assert KEY not in token
    assert token.startswith(f"sb1:{get_keyring().primary_key_id}:")
    assert Provider.objects.get(pk=provider.pk).get_api_key() == KEY


def test_flipping_any_byte_of_a_token_raises(make_provider):
    provider = make_provider("A", KEY)
    key_id, body = parse_token(_stored_token(provider))
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    field = Provider._meta.get_field("api_key")
    for index in range(len(raw)):
        tampered = bytearray(raw)
        tampered[index] ^= 0x01
        token = f"sb1:{key_id}:{base64.urlsafe_b64encode(bytes(tampered)).decode()}"
        Provider.objects.filter(pk=provider.pk).update(api_key=field.to_python(token))
        with pytest.raises(DecryptionError):
            Provider.objects.get(pk=provider.pk).get_api_key()


def test_token_copied_to_another_row_does_not_decrypt(make_provider):
    source = make_provider("A", KEY)
    target = make_provider("B", "sk-other-key-0000000000")
    Provider.objects.filter(pk=target.pk).update(api_key=Provider.objects.get(pk=source.pk).api_key)
    with pytest.raises(DecryptionError):
        Provider.objects.get(pk=target.pk).get_api_key()


def test_keyring_without_the_old_key_raises(make_provider):
    provider = make_provider("A", KEY)
    with (
        override_settings(ENCRYPTION_KEYS=[generate_key_entry()]),
        pytest.raises(DecryptionError, match="not in keyring"),
    ):
        Provider.objects.get(pk=provider.pk).get_api_key()


def test_a_wrong_key_under_the_same_id_raises(make_provider, settings):
    provider = make_provider("A", KEY)
    key_id = get_keyring().primary_key_id
    other = generate_key_entry().split(":", 1)[1]
    with (
        override_settings(ENCRYPTION_KEYS=[f"{key_id}:{other}"]),
        pytest.raises(DecryptionError, match="authentication"),
    ):
        Provider.objects.get(pk=provider.pk).get_api_key()


def test_rotation_re_encrypts_every_row_under_the_new_key(make_provider, settings, capsys):
    old_keys = list(settings.ENCRYPTION_KEYS)
    providers = [make_provider(f"P{i}", f"sk-key-number-{i:04d}-abcdef") for i in range(7)]
    new_entry = generate_key_entry()
    new_id = new_entry.split(":")[0]
    with override_settings(ENCRYPTION_KEYS=[new_entry, *old_keys]):
        call_command("rotate_encryption_keys", batch_size=3)
        assert "7 re-encrypted" in capsys.readouterr().out
        call_command("rotate_encryption_keys")
        assert "0 re-encrypted, 7 already under" in capsys.readouterr().out
    # The old key can now be dropped: every row reads under the new key alone.
    with override_settings(ENCRYPTION_KEYS=[new_entry]):
        for i, provider in enumerate(providers):
            fresh = Provider.objects.get(pk=provider.pk)
            assert parse_token(fresh.api_key.token)[0] == new_id
            assert fresh.get_api_key() == f"sk-key-number-{i:04d}-abcdef"


def test_rotation_reports_rows_it_cannot_decrypt(make_provider):
    make_provider("A", KEY)
    with (
        override_settings(ENCRYPTION_KEYS=[generate_key_entry()]),
        pytest.raises(CommandError, match="could not be decrypted"),
    ):
        call_command("rotate_encryption_keys")


def test_encrypted_field_refuses_lookups_other_than_isnull(make_provider):
    make_provider("A", KEY)
    assert Provider.objects.filter(api_key__isnull=False).count() == 1
    # The lookups go in as a dict: django-stubs' mypy plugin resolves keyword lookups
    # while type checking and crashes on the very FieldError this test expects.
    with pytest.raises(FieldError, match="only the isnull lookup"):
        list(Provider.objects.filter(**{"api_key": KEY}))
    with pytest.raises(FieldError):
        list(Provider.objects.filter(**{"api_key__contains": "sk-"}))


def test_repr_of_a_loaded_value_reveals_nothing(make_provider):
    provider = Provider.objects.get(pk=make_provider("A", KEY).pk)
    assert repr(provider.api_key) == "<Encrypted>"
    assert KEY not in str(provider.__dict__)


def test_database_dump_never_contains_the_key_and_loads_back(make_provider, tmp_path):
    provider = make_provider("A", KEY)
    dump = tmp_path / "dump.json"
    call_command("dumpdata", "providers", output=str(dump))
    text = dump.read_text()
    assert KEY not in text
    assert "sb1:" in text
    Provider.objects.all().delete()
    call_command("loaddata", str(dump), verbosity=0)
    assert Provider.objects.get(pk=provider.pk).get_api_key() == KEY

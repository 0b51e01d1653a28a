from __future__ import annotations

from django.test import override_settings

from providers.checks import check_provider_keys
from providers.crypto import generate_key_entry


def test_check_is_clean_when_every_key_decrypts(make_provider):
    make_provider("OpenAI")
    assert check_provider_keys() == []


def test_check_names_each_provider_whose_key_cannot_be_read(make_provider):
    make_provider("OpenAI")
    make_provider("Anthropic", "sk-ant-0123456789abcdef", kind="anthropic")
    with override_settings(ENCRYPTION_KEYS=[generate_key_entry()]):
        errors = check_provider_keys()
    assert [e.id for e in errors] == ["providers.E002", "providers.E002"]
    text = " ".join(e.msg for e in errors)
    assert "'Anthropic'" in text
    assert "'OpenAI'" in text
    assert "sk-" not in text


def test_check_reports_a_missing_keyring(make_provider, tmp_path):
    make_provider("OpenAI")
    with override_settings(ENCRYPTION_KEYS=[], ENCRYPTION_KEY_FILE=tmp_path / "missing"):
        errors = check_provider_keys()
    assert [e.id for e in errors] == ["providers.E001"]

"""A smoke test of what `make run` does before serving, on a fresh data folder."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bootstrap(data_dir: Path) -> str:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL"}
    }
    env.update(DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="config.settings", HTTPS="false")
    done = subprocess.run(
        [sys.executable, "manage.py", "bootstrap"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_fresh_start_then_restart(tmp_path):
    data = tmp_path / "data"
    first = _bootstrap(data)
    key_file = data / "encryption.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "secret_key").stat().st_mode) == 0o600
    assert "Created the encryption key file" in first
    assert "Created the admin account 'admin' with password:" in first
    db = sqlite3.connect(data / "switchboard.sqlite3")
    assert db.execute("SELECT count(*) FROM auth_user WHERE is_superuser").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 10
    db.close()

    keys_before = key_file.read_text()
    second = _bootstrap(data)
    assert "Created" not in second
    assert key_file.read_text() == keys_before
    db = sqlite3.connect(data / "switchboard.sqlite3")
    assert db.execute("SELECT count(*) FROM auth_user").fetchone() == (1,)
    db.close()


def test_environment_keys_are_imported_encrypted_on_first_run(db, monkeypatch):
    from providers.first_run import ensure_demo_provider, import_env_providers
    from providers.models import Provider

    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment-123456")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-the-environment-123456")
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    assert import_env_providers() == ["OpenAI", "Anthropic"]
    assert Provider.objects.get(kind="openai").get_api_key() == "sk-from-the-environment-123456"
    assert not ensure_demo_provider()
    # Not a first run any more: deleting a provider does not bring it back.
    Provider.objects.filter(kind="openai").delete()
    assert import_env_providers() == []


def test_with_no_provider_the_demo_provider_is_added_once(db):
    from providers.first_run import demo_provider_in_use, ensure_demo_provider
    from providers.models import Provider

    assert not demo_provider_in_use()
    assert ensure_demo_provider()
    assert not ensure_demo_provider()
    demo = Provider.objects.get()
    assert demo.name == "Demo (local)"
    from usage.models import ModelPrice

    price = ModelPrice.objects.get(provider_kind=demo.kind, model=demo.default_model)
    assert (price.input_per_mtok, price.output_per_mtok) == (0, 0)
    assert demo_provider_in_use()

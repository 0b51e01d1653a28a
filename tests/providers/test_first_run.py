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

"""Who may scrape /metrics: the bearer token, the address allow-list, both, neither."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]


def get(client, *, token: str | None = None, address: str = "127.0.0.1", auth: str = ""):
    headers = {"Authorization": auth or f"Bearer {token}"} if (token or auth) else {}
    return client.get("/metrics", headers=headers, REMOTE_ADDR=address)


def test_the_right_token_gets_the_metrics(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = TOKEN, []
    response = get(client, token=TOKEN, address="203.0.113.9")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert b"switchboard_queue_tasks" in response.content


@pytest.mark.parametrize(
    "auth",
    ["", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN],
    ids=["none", "longer", "shorter", "basic", "no-scheme"],
)
def test_a_missing_or_wrong_token_is_a_401_that_shows_nothing(client, settings, auth):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = TOKEN, []
    response = get(client, auth=auth)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"switchboard_" not in response.content
    assert TOKEN.encode() not in response.content


@pytest.mark.parametrize(
    ("address", "status"),
    [
        ("10.2.3.4", 200),
        ("192.0.2.7", 200),
        ("::ffff:10.0.0.1", 200),
        ("2001:db8::5", 200),
        ("192.0.2.8", 403),
        ("11.0.0.1", 403),
        ("", 403),
    ],
)
def test_the_address_allow_list_alone(client, settings, address, status):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
    response = get(client, address=address)
    assert response.status_code == status
    assert (b"switchboard_queue_tasks" in response.content) == (status == 200)


def test_with_both_configured_both_are_required(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = TOKEN, ["10.0.0.0/8"]
    assert get(client, token=TOKEN, address="10.0.0.2").status_code == 200
    assert get(client, address="10.0.0.2").status_code == 401
    assert get(client, token=TOKEN, address="198.51.100.1").status_code == 403


def test_with_neither_configured_metrics_do_not_exist(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", []
    response = get(client, token=TOKEN)
    assert response.status_code == 404
    assert b"switchboard_" not in response.content


def test_only_get(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = TOKEN, []
    response = client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405


def _settings_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess[str]:
    script = "import config.settings as s; print(s.METRICS_ENABLED)"
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("METRICS_", "PROMETHEUS_"))
    }
    environment.update(env, DATA_DIR=env.get("DATA_DIR", ""), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=False
    )


def test_a_malformed_allow_list_entry_stops_the_start(tmp_path):
    bad = _settings_in_a_fresh_process(
        METRICS_ALLOWED_IPS="10.0.0.0/8,10.0.0.300", DATA_DIR=str(tmp_path)
    )
    assert bad.returncode != 0
    assert "10.0.0.300" in bad.stderr
    off = _settings_in_a_fresh_process(DATA_DIR=str(tmp_path))
    assert off.stdout.strip() == "False", off.stderr
    assert not (tmp_path / "metrics").exists(), "metrics off: no folder is made"

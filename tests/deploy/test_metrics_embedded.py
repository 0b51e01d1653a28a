"""/metrics of the embedded deployment (`manage.py serve`, as `make run` starts it).

One process serves, runs the worker and writes the values; restarted after a kill, it
starts from an empty values folder (the earlier run's files removed as it starts).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy import harness, metrics_checks
from tests.metrics.scrape import value

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="the embedded deployment (SQLite) runs in the SQLite pass only",
)


@pytest.fixture
def embedded() -> Iterator[tuple[harness.Processes, dict[str, str], harness.Setup, Path]]:
    with tempfile.TemporaryDirectory(prefix="switchboard-metrics-") as tmp:
        data_dir = Path(tmp)
        env = harness.app_env(
            data_dir,
            database_url=f"sqlite:///{data_dir / 'switchboard.sqlite3'}",
            embedded=True,
            METRICS_TOKEN=metrics_checks.TOKEN,
        )
        procs = harness.Processes(data_dir)
        try:
            fake_port = harness.free_port()
            procs.fake_upstream(fake_port, env, ttft_ms=20, delay_ms=5, tokens=10)
            procs.wait_for_port(fake_port)
            setup = harness.prepare_database(env, f"http://127.0.0.1:{fake_port}/v1")
            yield procs, env, setup, data_dir
        finally:
            procs.stop_all()
            for log in sorted(data_dir.glob("*.log")):
                print(f"--- {log.stem} log ---\n{procs.log_tail(log.stem, 4000)}")


def test_embedded_server_counts_and_starts_afresh(embedded) -> None:
    procs, env, setup, data_dir = embedded
    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    served = procs.serve("serve", port, env)
    procs.wait_for_port(port)

    metrics_checks.chat_and_gateway(base, base, base, setup)
    harness.wait_until(
        lambda: value(metrics_checks.scrape(base), "switchboard_sse_streams_open") == 0,
        timeout=10,
        what="the finished stream is no longer counted as open",
    )
    metrics_checks.assert_counted(metrics_checks.scrape(base), setup)
    values = data_dir / "metrics"
    assert any(values.glob(f"*_{served.pid}.db")), "the values live in DATA_DIR/metrics"

    procs.kill("serve")  # nothing of it runs afterwards: its files stay behind
    assert any(values.glob(f"*_{served.pid}.db"))
    port = harness.free_port()
    procs.serve("serve_again", port, env)
    procs.wait_for_port(port)
    again = metrics_checks.scrape(f"http://127.0.0.1:{port}")
    assert value(again, "switchboard_upstream_attempts_total") == 0, "an earlier run's are gone"
    assert not any(values.glob(f"*_{served.pid}.db"))

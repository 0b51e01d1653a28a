"""The values folder at a process's start: an earlier run's files go, a running fleet's stay."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from metrics import multiproc

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path, settings, monkeypatch) -> Path:
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    monkeypatch.setattr(multiproc, "_started_pid", None)  # as a process that starts now
    return tmp_path


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


@pytest.fixture
def live_pid() -> Iterator[int]:
    """A process that is alive for the test (and started before its files are written)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    yield proc.pid
    proc.communicate(b"", timeout=10)


def files_of(pid: int, folder: Path) -> list[Path]:
    paths = [folder / f"counter_{pid}.db", folder / f"histogram_{pid}.db"]
    paths.append(folder / f"gauge_livesum_{pid}.db")
    for path in paths:
        path.write_bytes(b"\0" * 8)
    return paths


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_with_no_writer_alive_an_earlier_run_is_removed(folder):
    earlier = dead_pid()
    files_of(earlier, folder)
    mine = files_of(os.getpid(), folder)
    multiproc.start_process()
    assert names(folder) == {p.name for p in mine}, "only this process's own files stay"


def test_while_others_run_only_the_dead_ones_live_gauges_go(folder, live_pid):
    running = files_of(live_pid, folder)
    dead = dead_pid()
    files_of(dead, folder)
    multiproc.start_process()
    assert names(folder) == {p.name for p in running} | {
        f"counter_{dead}.db",
        f"histogram_{dead}.db",
    }


def test_a_pid_reused_by_a_process_younger_than_its_files_is_no_writer(folder, live_pid):
    old = files_of(live_pid, folder)
    an_hour_ago = time.time() - 3600
    for path in old:
        os.utime(path, (an_hour_ago, an_hour_ago))
    multiproc.start_process()
    assert names(folder) == set(), "written before that process started: an earlier run's"


def test_the_embedded_server_as_only_writer_removes_everything_else(folder, live_pid):
    files_of(live_pid, folder)
    multiproc.start_process(only_writer=True)
    assert names(folder) == set()


_A_PROCESS = """
import os, django
django.setup()
from metrics import multiproc
from metrics.instruments import SSE_STREAMS_OPEN, count_budget_refusal
multiproc.start_process()
SSE_STREAMS_OPEN.inc()
count_budget_refusal(source="chat")
print(os.getpid())
"""


def test_a_process_that_exits_marks_itself_dead(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METRICS_", "PROMETHEUS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATA_DIR=str(tmp_path),
        SECRET_KEY="x" * 50,
        METRICS_TOKEN="t" * 20,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "values"),
    )
    done = subprocess.run(
        [sys.executable, "-c", _A_PROCESS],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pid = int(done.stdout.split()[-1])
    left = names(tmp_path / "values")
    assert f"counter_{pid}.db" in left, "its counts stay in the totals"
    assert f"gauge_livesum_{pid}.db" not in left, "its open streams no longer count"

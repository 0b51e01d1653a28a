"""PROMETHEUS_MULTIPROC_DIR: where the values of every process of one host meet.

In prometheus_client's multiprocess mode each process writes its values to files of its
own, named by kind and process id (`counter_4711.db`, `gauge_livesum_4711.db`), and
/metrics sums every file. So the directory must be shared by all the web and worker
processes of a host, and emptied of an earlier run's files, but never under a running
process: counters that drop while the fleet runs read as resets to Prometheus.

`start_process()` runs as each process starts (a web process: config/asgi.py; a worker:
run_huey; `manage.py serve` first, as the only writer of the embedded deployment):

- No other process that writes there is alive (the embedded server starting, or the
  first process of a scale-out host after all were stopped): every file of an earlier
  run is removed.
- Others are alive (one web or worker process restarted while the rest run): only the
  live gauges of dead processes are removed (`mark_process_dead`), so an open-streams
  count drops a killed process's streams; their counters and histograms stay, so totals
  never go backwards.

A process that exits normally marks itself dead (atexit), one killed outright is found
dead by the next process to start. Process ids are those of one host: the directory is
never shared between hosts (or containers with their own pid namespaces).
"""

from __future__ import annotations

import atexit
import contextlib
import os
from pathlib import Path

from django.conf import settings
from prometheus_client.multiprocess import mark_process_dead

# A process started this long after its pid's files were last written cannot have
# written them: the pid was reused (after a reboot, say) by another process.
START_TOLERANCE_SECONDS = 2.0

_started_pid: int | None = None


def start_process(*, only_writer: bool = False) -> None:
    """Prepare the directory for this process (see the module's docstring); idempotent.
    `only_writer`: this process is the deployment's only one (`manage.py serve`)."""
    global _started_pid
    if not settings.METRICS_ENABLED or _started_pid == os.getpid():
        return
    _started_pid = me = os.getpid()
    directory = Path(settings.PROMETHEUS_MULTIPROC_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    files = files_by_pid(directory)
    files.pop(me, None)  # ours (values this process wrote already) stay
    alive = set() if only_writer else {pid for pid, found in files.items() if _writes(pid, found)}
    if alive:
        for pid in files.keys() - alive:
            _mark_dead(pid, directory)
    else:
        for found in files.values():
            for path in found:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
    atexit.register(_mark_dead, me, directory)


def _mark_dead(pid: int, directory: Path) -> None:
    mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]  # unannotated


def files_by_pid(directory: Path) -> dict[int, list[Path]]:
    found: dict[int, list[Path]] = {}
    for path in directory.glob("*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit():
            found.setdefault(int(pid), []).append(path)
    return found


def _writes(pid: int, files: list[Path]) -> bool:
    """Whether process `pid` is alive and is the one that wrote `files`."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    started = _start_time(pid)
    if started is None:
        return True
    written = max((p.stat().st_mtime for p in files if p.exists()), default=0.0)
    return started <= written + START_TOLERANCE_SECONDS


def _start_time(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), from Linux's /proc; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    # Field 22, counted after the command name (which may hold spaces) in parentheses.
    ticks = int(stat.rsplit(")", 1)[1].split()[19])
    return boot + ticks / os.sysconf("SC_CLK_TCK")

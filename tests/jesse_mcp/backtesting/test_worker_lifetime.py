"""Jesse workers never outlive their server: killed (SIGKILL) or terminated (SIGTERM), its workers are gone within
5 s, whether busy with a task, idle, or still warming up; forked by a zygote (which must go too) or spawned."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jesse_mcp.backtesting import zygote
from jesse_mcp.backtesting.workers import NO_PDEATHSIG_ENV, START_METHOD_ENV
from tests.timeouts import hang_guard

REPO = Path(__file__).resolve().parents[3]  # the repository: tests/jesse_mcp/backtesting/ is three levels down
DEADLINE_S = 5.0  # the requirement itself, not a hang guard


def _start_host(tmp_path: Path, pdeathsig: bool, start: str) -> tuple[subprocess.Popen, list[int]]:
    env = {k: v for k, v in os.environ.items() if k != NO_PDEATHSIG_ENV}
    env[START_METHOD_ENV] = start
    if not pdeathsig:
        env[NO_PDEATHSIG_ENV] = "1"
    with (tmp_path / "host.err").open("wb") as errors:
        host = subprocess.Popen(
            [sys.executable, "-m", "tests.jesse_mcp.backtesting.pool_host", str(tmp_path / "jesse")],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    # a hang guard: the host prints once its workers run
    readable, _, _ = select.select([host.stdout], [], [], hang_guard(300))
    line = host.stdout.readline() if readable else b""
    if not line:
        host.kill()
        host.wait()
        pytest.fail(f"the pool host printed no worker pids: {(tmp_path / 'host.err').read_text()[-2000:]}")
    return host, json.loads(line)


def _still_running_after(pidfds: dict[int, int], seconds: float) -> list[int]:
    """Waits (on pidfds, no polling) until every process has ended or `seconds` passed; returns those still running."""
    deadline = time.monotonic() + seconds
    waiting = dict(pidfds)
    while waiting and (left := deadline - time.monotonic()) > 0:
        ended, _, _ = select.select(list(waiting.values()), [], [], left)
        waiting = {pid: fd for pid, fd in waiting.items() if fd not in ended}
    return sorted(waiting)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="waits on pidfds (Linux 5.3+)")
@pytest.mark.parametrize("pdeathsig", [True, False], ids=["parent-death-signal", "watchdog-alone"])
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_every_worker_is_gone_within_5_s_of_its_server_dying(tmp_path, how, pdeathsig, start):
    if start == "fork" and not zygote.available():
        pytest.skip("the zygote needs fork and pidfds")
    host, pids = _start_host(tmp_path, pdeathsig, start)
    # spawn: three workers; fork: two workers and their zygote, and the zygote still importing for the third
    assert len(pids) == (4 if start == "fork" else 3) and host.pid not in pids
    pidfds = {pid: os.pidfd_open(pid) for pid in pids}  # opened before the kill: no pid can be reused meanwhile
    try:
        os.kill(host.pid, how)
        host.wait(timeout=hang_guard(60))
        still = _still_running_after(pidfds, DEADLINE_S)
    finally:
        for fd in pidfds.values():
            os.close(fd)
        host.stdout.close()
    assert host.returncode == -how
    assert still == [], f"workers {still} outlived their server by more than {DEADLINE_S:g} s"

"""A real one-node Ray cluster on 127.0.0.1 for the tests of the Ray pool, started with `ray start --block` as a
child process that dies with the test process (PR_SET_PDEATHSIG on Linux) and is killed, with everything it started
(its own process group), when the test is done. Ray rewrites 127.0.0.1 to the machine's address for its nodes and
listens on all interfaces; the client connects to 127.0.0.1."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.timeouts import hang_guard

ROOT = Path(__file__).resolve().parents[3]
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class LocalRayCluster:
    def __init__(self, num_cpus: int = 2) -> None:
        self.num_cpus = num_cpus
        self.port, self.client_port = free_port(), free_port()
        # a short folder: Ray's unix sockets live under it and their paths are limited to ~107 characters
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"ray://127.0.0.1:{self.client_port}"

    def start(self) -> LocalRayCluster:
        ray = Path(sys.executable).with_name("ray")
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),  # actors import tests.*
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_AUTH_MODE": "disabled",  # even if ~/.ray holds a token
            "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",  # the tests run under `uv run`: see docs/cluster.md
            "GRPC_ENABLE_FORK_SUPPORT": "0",  # see tests/conftest.py
        }
        log = (self.temp_dir / "ray-start.log").open("wb")
        self.process = subprocess.Popen(
            [
                str(ray), "start", "--head", f"--port={self.port}", f"--ray-client-server-port={self.client_port}",
                "--node-ip-address=127.0.0.1", "--include-dashboard=false", f"--num-cpus={self.num_cpus}",
                f"--temp-dir={self.temp_dir}", "--disable-usage-stats", "--block",
            ],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT),
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        log.close()
        self._await_client_port()
        return self

    def _await_client_port(self) -> None:
        deadline = time.monotonic() + hang_guard(180)
        assert self.process is not None
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.client_port), timeout=1).close()
                return
            with contextlib.suppress(subprocess.TimeoutExpired):  # the pause between polls: the process ending
                self.process.wait(timeout=0.2)
                raise RuntimeError(f"ray start exited: {(self.temp_dir / 'ray-start.log').read_text()[-2000:]}")
        raise RuntimeError("the Ray cluster's client server did not open its port")

    def kill(self) -> None:
        """Kill the whole cluster at once (its process group), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=hang_guard(30))
        self._await_group_gone()

    def _await_group_gone(self) -> None:
        """Every process of the cluster has ended (they write into temp_dir until then)."""
        if self.process is None:
            return
        deadline = time.monotonic() + hang_guard(30)
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            time.sleep(0.05)  # polling the group's end, bounded above

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

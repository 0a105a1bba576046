"""The zygote: one process that imports Jesse once and forks every worker of a pool from that import.

`Zygote` (server side) starts `python -m jesse_mcp.backtesting.zygote` with a control socket and a lifeline, and asks
it for workers; `main` (zygote side) imports the pool's warm-up, then forks one worker per request. A worker starts in
a fork, not an import: the first is ready as soon as the one import is done, the others right after it, a replacement
for a killed worker at once, and the workers share the imported code's pages copy-on-write (gc.freeze keeps the
collector from touching them).

Forking is safe only from a single thread, so the zygote is a fresh interpreter (started with subprocess, not
multiprocessing, so nothing of the server is imported into it) whose BLAS libraries are told to start no thread pool
(OPENBLAS/OMP/MKL_NUM_THREADS=1); its watchdog thread (see worker_side) runs during the import only and is joined
before the first fork, after which the main loop itself watches the lifeline. Each fork is answered with the worker's
pid and a pidfd opened before the zygote could reap it, so the server can kill and wait for a worker that is not its
child without ever signalling a reused pid.

Lifetime: the zygote has the parent-death signal and the lifeline of its server; each worker has the parent-death
signal of the zygote and watches the same lifeline (inherited) and its parent pid. Whatever kills the server, the
lifeline reaches end-of-file for all of them at once.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import multiprocessing as mp
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import recv_handle, send_handle

from jesse_mcp.backtesting.worker_side import (
    WATCHDOG_POLL_S,
    arm_parent_death_signal,
    enter_workdir,
    quiet_stdout,
    serve,
    start_watchdog,
)

SINGLE_THREADED_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def available() -> bool:
    """The zygote needs fork and pidfds (Linux 5.3+); elsewhere the pool spawns its workers instead."""
    if not (sys.platform.startswith("linux") and hasattr(os, "fork") and hasattr(os, "pidfd_open")):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # an older kernel
        return False
    return True


class ZygoteError(Exception):
    """The zygote failed its warm-up, or died."""


class Zygote:
    """The server's handle on one zygote process. `start` must run on the pool's long-lived spawner thread (the
    parent-death signal fires when the thread that started the process ends)."""

    def __init__(self, warmup: tuple[str, ...], workdir: str | None):
        self.warmup, self.workdir = warmup, workdir
        self.process: subprocess.Popen | None = None
        self.threads_at_fork: int | None = None
        self._control: Connection | None = None
        self._lifeline: Connection | None = None  # never written: everything it started ends when it closes
        self._lock = threading.Lock()  # one reader of the control pipe at a time (warm-up reply, fork requests)
        self._life = threading.Lock()  # start and close never overlap, and nothing starts once closed
        self._closed = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        """Starts the process (once: a zygote started early, see start_early, is already running)."""
        with self._life:
            if self._closed:
                raise ZygoteError("the worker pool was shut down before its zygote started")
            if self.process is None:
                self._start()

    def _start(self) -> None:
        control, remote = mp.Pipe()
        watched, lifeline = mp.Pipe(duplex=False)
        config = json.dumps({"warmup": list(self.warmup), "workdir": self.workdir, "sys_path": sys.path})
        args = [str(remote.fileno()), str(watched.fileno()), str(os.getpid()), config]
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jesse_mcp.backtesting.zygote", *args],
                stdin=subprocess.DEVNULL,
                stdout=2,  # onto stderr from the first byte: never the protocol wire
                pass_fds=(remote.fileno(), watched.fileno()),
                env={**os.environ, **SINGLE_THREADED_ENV},
            )
        finally:
            remote.close()
            watched.close()
        self._control, self._lifeline = control, lifeline

    def wait_ready(self) -> float:
        """Blocks until the warm-up is imported; returns its seconds. ZygoteError if it failed or the zygote died."""
        assert self._control is not None
        try:
            with self._lock:  # close() kills the zygote first (end-of-file here), then closes the pipe under this lock
                if self._control.closed:
                    raise ZygoteError("the zygote was closed")
                reply = self._control.recv()
        except (EOFError, OSError):
            raise ZygoteError(f"the zygote exited with code {self._exit_code()}") from None
        if reply[0] != "ready":
            raise ZygoteError(reply[1])
        self.threads_at_fork = reply[2]
        return float(reply[1])

    def fork(self, conn: Connection) -> tuple[int, int]:
        """A new worker serving `conn`'s other end: returns its pid and a pidfd (the caller closes it)."""
        assert self._control is not None and self.process is not None
        with self._lock:
            if self._control.closed:
                raise ZygoteError("the zygote was closed")
            try:
                self._control.send("fork")
                send_handle(self._control, conn.fileno(), self.process.pid)
                _, pid = self._control.recv()
                pidfd = recv_handle(self._control)
            except (EOFError, OSError) as e:
                raise ZygoteError(f"the zygote died ({type(e).__name__}); exit code {self._exit_code()}") from None
        return int(pid), pidfd

    def _exit_code(self) -> int | None:
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        """Ends the zygote and, through the lifeline, every worker it forked."""
        with self._life:
            self._closed = True
        if self._lifeline is not None:
            self._lifeline.close()
        if self.process is not None:
            self.process.kill()  # a fork request in flight gets end-of-file now, and lets go of the lock
        with self._lock:
            if self._control is not None:
                self._control.close()
        if self.process is not None:
            self.process.wait(timeout=5)


_early: Zygote | None = None


def start_early(warmup: tuple[str, ...], workdir: str | None) -> None:
    """Start the server's zygote first thing (jesse_mcp.__main__), so that its import of Jesse (about 6 s) runs on
    the other core while the server imports itself (about 2 s); the pool adopts it. Called from the main thread, which
    lives as long as the server (the parent-death signal follows the starting thread)."""
    global _early
    if available() and _early is None:
        zygote = Zygote(warmup, workdir)
        zygote.start()
        _early = zygote


def adopt(warmup: tuple[str, ...], workdir: str | None) -> Zygote:
    """The zygote started early when it was started for this pool, else a new one (to be started); an early one for
    another pool is closed."""
    global _early
    early, _early = _early, None
    if early is not None and (early.warmup, early.workdir) == (warmup, workdir):
        return early
    if early is not None:
        early.close()
    return Zygote(warmup, workdir)


def discard_early() -> None:
    """No local pool will adopt it (backtests run on Ray): end the early zygote."""
    global _early
    early, _early = _early, None
    if early is not None:
        early.close()


class Forked:
    """A worker forked by the zygote: not our child, so it is signalled and awaited through its pidfd."""

    def __init__(self, pid: int, pidfd: int):
        self.pid, self.pidfd, self.exitcode = pid, pidfd, None

    # A task's release and the pool's shutdown may both end a worker, from two threads: once closed, the pidfd is
    # -1, and every method is then a no-op (never a select or a signal on a descriptor number reused since).
    def is_alive(self) -> bool:
        if self.pidfd < 0:
            return False
        try:
            return not select.select([self.pidfd], [], [], 0)[0]
        except (OSError, ValueError):  # closed by the other thread meanwhile
            return False

    def kill(self) -> None:
        if self.pidfd < 0:
            return
        with contextlib.suppress(OSError):  # already gone (and reaped by the zygote), or closed meanwhile
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def join(self, timeout: float) -> None:
        if self.pidfd < 0:
            return
        with contextlib.suppress(OSError, ValueError):  # closed by the other thread meanwhile: it has ended it
            select.select([self.pidfd], [], [], timeout)

    def close(self) -> None:
        fd, self.pidfd = self.pidfd, -1
        if fd >= 0:
            os.close(fd)


# --- inside the zygote ----------------------------------------------------------------------------------------
def _thread_count() -> int:
    """The process's threads before the first fork. A thread that Python has joined may still be listed by the
    kernel for a moment while it exits (the watchdog, just stopped): give it up to half a second to go."""
    deadline = time.monotonic() + 0.5
    while True:
        try:
            n = len(os.listdir("/proc/self/task"))
        except OSError:
            return threading.active_count()
        if n == 1 or time.monotonic() >= deadline:
            return n
        time.sleep(0.002)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _become_worker(control: Connection, lifeline: Connection, fd: int, zygote_pid: int) -> None:
    """In the fork: drop the zygote's channel, start a fresh random state, watch the server, serve tasks."""
    code = 0
    try:
        control.close()  # the server's channel to the zygote is not the worker's
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed()  # forks share the zygote's global random state; spawned workers never did
        arm_parent_death_signal(zygote_pid)
        start_watchdog(lifeline, zygote_pid)
        serve(Connection(fd))
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)  # never back into the zygote's loop


def _serve_forks(control: Connection, lifeline: Connection, server_pid: int) -> None:
    me = os.getpid()
    while True:
        ready = wait([control, lifeline], WATCHDOG_POLL_S)
        _reap()
        if lifeline in ready or os.getppid() != server_pid:
            os._exit(0)
        if control not in ready:
            continue
        try:
            request = control.recv()
            fd = recv_handle(control)
        except (EOFError, OSError):
            os._exit(0)
        if request != "fork":
            os._exit(0)
        pid = os.fork()
        if pid == 0:
            _become_worker(control, lifeline, fd, me)
        os.close(fd)
        pidfd = os.pidfd_open(pid)  # before any reaping: this pid cannot have been reused yet
        control.send(("forked", pid))
        send_handle(control, pidfd, server_pid)
        os.close(pidfd)


def main(argv: list[str]) -> None:
    control, lifeline = Connection(int(argv[1])), Connection(int(argv[2]), writable=False)
    server_pid, config = int(argv[3]), json.loads(argv[4])
    arm_parent_death_signal(server_pid)
    stop_r, stop_w = mp.Pipe(duplex=False)
    watchdog = start_watchdog(lifeline, server_pid, stop_r)  # only while importing: joined before any fork
    quiet_stdout()
    sys.path[:0] = [p for p in config["sys_path"] if p not in sys.path]
    enter_workdir(config["workdir"])
    started = time.perf_counter()
    try:
        for module in config["warmup"]:
            importlib.import_module(module)
    except BaseException as e:
        control.send(("failed", f"{type(e).__name__}: {e}"))
        return
    stop_w.send_bytes(b"stop")
    watchdog.join()
    stop_r.close()
    stop_w.close()
    gc.freeze()  # imported objects move out of the collector's reach: collections in a worker leave their pages shared
    control.send(("ready", time.perf_counter() - started, _thread_count()))
    _serve_forks(control, lifeline, server_pid)


if __name__ == "__main__":
    main(sys.argv)

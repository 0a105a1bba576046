"""The worker's side of the pool: what runs inside a Jesse worker process, however it was started (spawned, or forked
by the zygote). Kept free of heavy imports: the zygote imports this before anything else.

A worker serves tasks `(module, func, kwargs)` from its connection until the connection closes, and ends when its
server is gone: the kernel's parent-death signal (Linux), and a watchdog thread that exits as soon as the lifeline (a
pipe whose write end only the server holds) reaches end-of-file or the parent pid changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import signal
import sys
import threading
import traceback
from multiprocessing.connection import Connection, wait
from typing import Protocol

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
NO_PDEATHSIG_ENV = "JESSE_MCP_WORKER_NO_PDEATHSIG"  # "1": rely on the watchdog alone (tests of the portable path)
WATCHDOG_POLL_S = 1.0

# Inside a worker process: the pipe to the server, so a running task can report progress.
_conn: Connection | None = None
_send_lock = threading.Lock()


class ProgressSink(Protocol):
    def send(self, message: tuple) -> None: ...


def report_progress_to(sink: ProgressSink) -> None:
    """Where report_progress writes in this process: the pipe to the server, or another host's sink (a Ray actor)."""
    global _conn
    _conn = sink  # type: ignore[assignment]


def report_progress(done: float, total: float, message: str = "") -> None:
    """Called by a task (from any thread of the worker) to report progress to the caller. No-op outside a worker."""
    if _conn is None:
        return
    with _send_lock:
        _conn.send(("progress", done, total, message))


def _send(conn: Connection, message: tuple) -> None:
    with _send_lock:
        conn.send(message)


def arm_parent_death_signal(parent_pid: int) -> None:
    """Linux: be killed by the kernel when the parent goes; then make sure the parent had not already gone."""
    if sys.platform.startswith("linux") and os.environ.get(NO_PDEATHSIG_ENV) != "1":
        with contextlib.suppress(OSError, AttributeError):  # no prctl: the watchdog thread still ends this process
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed: nobody would send it
        os._exit(0)


def watch_parent(lifeline: Connection, parent_pid: int, stop: Connection | None = None) -> None:
    """Ends the process when its server is gone: the lifeline reaches end-of-file (only the server holds its other
    end, so the kernel closes it whatever kills the server) or the parent pid changes (re-parented). `stop` becoming
    readable ends the watch instead (the zygote stops watching this way before it forks)."""
    watched = [lifeline] if stop is None else [lifeline, stop]
    while True:
        ready = wait(watched, WATCHDOG_POLL_S)
        if stop is not None and stop in ready:
            return
        if lifeline in ready or os.getppid() != parent_pid:
            os._exit(0)  # a busy task cannot be interrupted politely, and its result has nobody to go to


def start_watchdog(lifeline: Connection, parent_pid: int, stop: Connection | None = None) -> threading.Thread:
    thread = threading.Thread(
        target=watch_parent, args=(lifeline, parent_pid, stop), name="parent-watchdog", daemon=True
    )
    thread.start()
    return thread


def quiet_stdout() -> None:
    """stdin from /dev/null, stdout onto stderr: nothing Jesse prints can reach the stdio protocol wire."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def enter_workdir(workdir: str | None) -> None:
    if workdir:  # Jesse writes relative paths (storage/...): keep them out of the user's current folder
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
        os.environ.setdefault("JESSE_CACHE_DIR", os.path.join(workdir, "cache"))


def serve(conn: Connection) -> None:
    """Says it is ready, then runs tasks until the server closes the connection (or sends None)."""
    global _conn
    _conn = conn
    try:
        conn.send(("ready", 0.0))
        while True:
            task = conn.recv()
            if task is None:
                return
            module, func, kwargs = task
            try:
                result = getattr(importlib.import_module(module), func)(**kwargs)
                _send(conn, ("ok", result))
            except Exception as e:
                _send(conn, ("error", f"{type(e).__name__}: {e}", traceback.format_exc()))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return  # the server went away


def spawned_worker_main(
    conn: Connection, lifeline: Connection, parent_pid: int, warmup: tuple[str, ...], workdir: str | None
) -> None:
    """A spawned worker (the fallback where the zygote cannot be used): imports its own warm-up, then serves."""
    arm_parent_death_signal(parent_pid)
    start_watchdog(lifeline, parent_pid)
    enter_workdir(workdir)
    quiet_stdout()
    try:
        for module in warmup:
            importlib.import_module(module)
    except BaseException as e:
        conn.send(("failed", f"{type(e).__name__}: {e}"))
        return
    serve(conn)

"""A small pool of worker processes that import Jesse once and run one task each at a time.

Written by hand rather than with ProcessPoolExecutor because a timed-out or cancelled backtest must really stop:
the pool kills that worker and starts a fresh one, which an executor cannot do. Workers are spawned (not forked)
from a thread, so `initialize` and `tools/list` never wait for Jesse's 5-9 s import, and their stdout is pointed at
stderr, so nothing Jesse prints can reach the stdio protocol wire.

A worker dies with its server, however the server dies (SIGKILL included): on Linux the kernel sends it SIGKILL
(PR_SET_PDEATHSIG), and on every platform a watchdog thread in the worker exits as soon as a pipe only the server
holds reaches end-of-file or the worker's parent pid changes. The parent-death signal fires when the *thread* that
started the worker ends, so every worker is started by one long-lived spawner thread, never by a passing one.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import anyio
import anyio.to_thread

from shared.errors import TradingMcpError

log = logging.getLogger("jesse_mcp.backtesting.workers")
DEFAULT_WARMUP = ("jesse.research",)
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
NO_PDEATHSIG_ENV = "JESSE_MCP_WORKER_NO_PDEATHSIG"  # "1": rely on the watchdog alone (tests of the portable path)
WATCHDOG_POLL_S = 1.0


class WorkerError(TradingMcpError):
    """A task failed inside a worker, timed out, or the pool is not available."""


class WorkerTimeout(WorkerError):
    """A task ran past its time limit; its worker was killed and replaced."""


ProgressCallback = Callable[[float, float, str], Awaitable[None]]

# Inside a worker process: the pipe to the parent, so a running task can report progress.
_conn: Connection | None = None
_send_lock = threading.Lock()


def report_progress(done: float, total: float, message: str = "") -> None:
    """Called by a task (from any thread of the worker) to report progress to the caller. No-op outside a worker."""
    if _conn is None:
        return
    with _send_lock:
        _conn.send(("progress", done, total, message))


def _send(conn: Connection, message: tuple) -> None:
    with _send_lock:
        conn.send(message)


def _arm_parent_death_signal(parent_pid: int) -> None:
    """Linux: be killed by the kernel when the parent goes; then make sure the parent had not already gone."""
    if sys.platform.startswith("linux") and os.environ.get(NO_PDEATHSIG_ENV) != "1":
        with contextlib.suppress(OSError, AttributeError):  # no prctl: the watchdog thread still ends this worker
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed: nobody would send it
        os._exit(0)


def _watch_parent(lifeline: Connection, parent_pid: int) -> None:
    """Ends the worker when its parent is gone: the lifeline reaches end-of-file (only the parent holds its other
    end, so the kernel closes it whatever kills the parent) or the parent pid changes (re-parented)."""
    while not lifeline.poll(WATCHDOG_POLL_S) and os.getppid() == parent_pid:
        pass
    os._exit(0)  # a busy task cannot be interrupted politely, and its result has nobody to go to


def _worker_main(
    conn: Connection, lifeline: Connection, parent_pid: int, warmup: tuple[str, ...], workdir: str | None
) -> None:
    global _conn
    _conn = conn
    _arm_parent_death_signal(parent_pid)
    threading.Thread(target=_watch_parent, args=(lifeline, parent_pid), name="parent-watchdog", daemon=True).start()
    if workdir:  # Jesse writes relative paths (storage/...): keep them out of the user's current folder
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
        os.environ.setdefault("JESSE_CACHE_DIR", os.path.join(workdir, "cache"))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # anything printed goes to stderr, never to the protocol wire
    sys.stdout = sys.stderr
    started = time.perf_counter()
    try:
        for module in warmup:
            importlib.import_module(module)
    except BaseException as e:
        conn.send(("failed", f"{type(e).__name__}: {e}"))
        return
    try:
        conn.send(("ready", time.perf_counter() - started))
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
        return  # the parent went away


class _Spawner:
    """The one long-lived thread that starts every worker (see the module docstring for why), started on first use
    and kept for the life of the process."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="jesse-worker-spawner", daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:  # this thread must outlive any failed start: its end would kill every worker
                log.exception("starting a jesse worker failed")


_spawner = _Spawner()


@dataclass
class _Worker:
    process: Any
    conn: Connection
    lifeline: Connection  # never written: the worker exits when it closes, by our hand or with this process
    state: str = "starting"  # starting, ready, busy, failed, dead
    started_at: float = field(default_factory=time.monotonic)
    ready_after_s: float | None = None
    error: str | None = None


class WorkerPool:
    def __init__(self, size: int, warmup: tuple[str, ...] = DEFAULT_WARMUP, workdir: str | os.PathLike | None = None):
        self.size = size
        self.warmup = warmup
        self.workdir = str(workdir) if workdir is not None else None
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._available = threading.Condition(self._lock)
        self._closed = False
        self._sessions = 0

    def start_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self._start_all, name="jesse-pool-start", daemon=True)
        thread.start()
        return thread

    def attach(self) -> None:
        """A session begins: start the workers (in the background) if no session is using them."""
        with self._lock:
            self._sessions += 1
            first = self._sessions == 1
            if first:
                self._closed = False
        if first:
            self.start_in_background()

    def detach(self) -> None:
        """A session ends: the last one out stops the workers."""
        with self._lock:
            self._sessions -= 1
            last = self._sessions == 0
        if last:
            self.shutdown()

    def _start_all(self) -> None:
        for _ in range(self.size):
            self._spawn()

    def _spawn(self) -> None:
        _spawner.submit(self._spawn_now)

    def _spawn_now(self) -> None:
        with self._lock:
            if self._closed:
                return
            parent, child = self._ctx.Pipe()
            watched, lifeline = self._ctx.Pipe(duplex=False)
            process = self._ctx.Process(
                target=_worker_main,
                args=(child, watched, os.getpid(), self.warmup, self.workdir),
                daemon=True,
                name="jesse-worker",
            )
            process.start()
            child.close()
            watched.close()
            worker = _Worker(process, parent, lifeline)
            self._workers.append(worker)
        threading.Thread(target=self._await_ready, args=(worker,), daemon=True).start()

    def _await_ready(self, worker: _Worker) -> None:
        try:
            kind, detail = worker.conn.recv()
        except (EOFError, OSError):
            kind, detail = "failed", f"worker exited with code {worker.process.exitcode}"
        with self._lock:
            if self._closed:
                return
            if kind == "ready":
                worker.state, worker.ready_after_s = "ready", float(detail)
                log.info("jesse worker %s ready after %.1f s", worker.process.pid, detail)
            else:
                worker.state, worker.error = "failed", str(detail)
                log.error("jesse worker failed to start: %s", detail)
            self._available.notify_all()

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"pid": w.process.pid, "state": w.state, "ready_after_s": w.ready_after_s, "error": w.error}
                for w in self._workers
            ]

    def _acquire(self, wait_s: float) -> _Worker:
        deadline = time.monotonic() + wait_s
        with self._lock:
            while True:
                if self._closed:
                    raise WorkerError("the worker pool is shut down")
                ready = [w for w in self._workers if w.state == "ready"]
                if ready:
                    ready[0].state = "busy"
                    return ready[0]
                if self._workers and all(w.state == "failed" for w in self._workers):
                    raise WorkerError(f"no Jesse worker could start: {self._workers[0].error}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WorkerError(f"no Jesse worker became free within {wait_s:g} s; try again shortly")
                self._available.wait(min(left, 0.5))

    def _release(self, worker: _Worker, healthy: bool) -> None:
        with self._lock:
            if healthy and worker.state == "busy":
                worker.state = "ready"
            else:
                worker.state = "dead"
                if worker.process.is_alive():
                    worker.process.kill()
                worker.conn.close()
                worker.lifeline.close()
                if worker in self._workers:
                    self._workers.remove(worker)
            self._available.notify_all()
        if not healthy:
            self._spawn()  # keep the pool at its size

    async def run(
        self,
        module: str,
        func: str,
        kwargs: dict[str, Any],
        *,
        timeout_s: float,
        wait_s: float = 60.0,
        on_progress: ProgressCallback | None = None,
    ) -> Any:
        """Run `module.func(**kwargs)` in a worker. On timeout or cancellation that worker is killed and
        replaced, so the task really stops. Progress the task reports (report_progress) goes to `on_progress`."""
        worker = await anyio.to_thread.run_sync(self._acquire, wait_s)
        healthy = False
        try:
            worker.conn.send((module, func, kwargs))
            with anyio.fail_after(timeout_s):
                while True:
                    reply = await anyio.to_thread.run_sync(worker.conn.recv, abandon_on_cancel=True)
                    if reply[0] != "progress":
                        break
                    if on_progress is not None:
                        await on_progress(reply[1], reply[2], reply[3])
            healthy = True
        except TimeoutError:
            raise WorkerTimeout(f"the task exceeded its time limit of {timeout_s:g} s and was stopped") from None
        except (EOFError, OSError) as e:
            raise WorkerError(f"the worker died while running the task ({type(e).__name__})") from None
        finally:
            self._release(worker, healthy)
        if reply[0] == "ok":
            return reply[1]
        log.error("task %s.%s failed in worker:\n%s", module, func, reply[2])
        raise WorkerError(f"the task failed: {reply[1]}")

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._workers = list(self._workers), []
            self._available.notify_all()
        for w in workers:
            if w.process.is_alive():
                w.process.kill()
        for w in workers:
            w.process.join(timeout=5)
            w.conn.close()
            w.lifeline.close()

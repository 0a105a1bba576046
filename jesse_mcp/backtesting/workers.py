"""A small pool of worker processes that share one import of Jesse and run one task each at a time.

Written by hand rather than with ProcessPoolExecutor because a timed-out or cancelled backtest must really stop:
the pool kills that worker and starts a fresh one, which an executor cannot do. Nothing is started on the caller's
thread, so `initialize` and `tools/list` never wait for Jesse's 5-9 s import, and a worker's stdout is pointed at
stderr, so nothing Jesse prints can reach the stdio protocol wire.

On Linux the workers are forked by a zygote (`zygote.py`): one process imports Jesse once, and every worker is a fork
of it. The first worker is ready as soon as that one import is done, the others at the same moment, and a replacement
for a killed worker takes a fork, not an import; the workers share the imported pages copy-on-write. Where fork or
pidfds are missing (or with `start_method="spawn"` / JESSE_MCP_WORKER_START=spawn) each worker is spawned and
imports Jesse itself, as before.

Workers (and the zygote) die with their server, however it dies (SIGKILL included): on Linux the kernel sends each
SIGKILL when its parent dies (PR_SET_PDEATHSIG; the zygote's parent is the server, a forked worker's is the zygote),
and on every platform a watchdog exits as soon as a pipe only the server holds (the lifeline) reaches end-of-file or
the parent pid changes. The parent-death signal fires when the *thread* that started the process ends, so the zygote
and every spawned worker are started by one long-lived spawner thread, never by a passing one.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import anyio
import anyio.to_thread

from jesse_mcp.backtesting import zygote as zygotes
from jesse_mcp.backtesting.worker_side import NO_PDEATHSIG_ENV, report_progress, spawned_worker_main
from shared.errors import TradingMcpError

__all__ = [
    "DEFAULT_WARMUP",
    "NO_PDEATHSIG_ENV",
    "START_METHOD_ENV",
    "WorkerError",
    "WorkerPool",
    "WorkerTimeout",
    "report_progress",
]

log = logging.getLogger("jesse_mcp.backtesting.workers")
# Jesse and what every run imports after it: with the zygote, imported once and shared by all workers
DEFAULT_WARMUP = (
    "jesse.research",
    "jesse_mcp.backtesting.engine",
    *(
        f"jesse_mcp.backtesting.strategies.{name}"
        for name in ("trend_following", "mean_reversion", "momentum", "breakout")
    ),
)
START_METHOD_ENV = "JESSE_MCP_WORKER_START"  # "spawn" or "fork"; unset: fork (the zygote) where available


class WorkerError(TradingMcpError):
    """A task failed inside a worker, timed out, or the pool is not available."""


class WorkerTimeout(WorkerError):
    """A task ran past its time limit; its worker was killed and replaced."""


ProgressCallback = Callable[[float, float, str], Awaitable[None]]


class _Spawner:
    """The one long-lived thread that starts every process (see the module docstring for why), started on first use
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

    def call(self, job: Callable[[], None]) -> None:
        """Runs `job` on the spawner thread and waits for it; its exception is raised here."""
        done, failure = threading.Event(), []

        def wrapped() -> None:
            try:
                job()
            except Exception as e:
                failure.append(e)
            finally:
                done.set()

        self.submit(wrapped)
        done.wait()
        if failure:
            raise failure[0]

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
    process: Any = None  # None while its zygote is still importing
    conn: Connection | None = None
    lifeline: Connection | None = None  # spawned workers: never written, the worker exits when it closes
    state: str = "starting"  # starting, ready, busy, failed, dead
    started_at: float = field(default_factory=time.monotonic)
    ready_after_s: float | None = None
    error: str | None = None

    def end(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()

    def close(self) -> None:
        for c in (self.conn, self.lifeline):
            if c is not None:
                c.close()
        if isinstance(self.process, zygotes.Forked):
            self.process.close()


def chosen_start_method(requested: str | None = None) -> str:
    method = requested or os.environ.get(START_METHOD_ENV) or "fork"
    if method not in ("fork", "spawn"):
        raise ValueError(f"start_method must be 'fork' or 'spawn', not {method!r}")
    return method if method == "spawn" or zygotes.available() else "spawn"


class WorkerPool:
    def __init__(
        self,
        size: int,
        warmup: tuple[str, ...] = DEFAULT_WARMUP,
        workdir: str | os.PathLike | None = None,
        start_method: str | None = None,
    ):
        self.size = size
        self.warmup = warmup
        self.workdir = str(workdir) if workdir is not None else None
        self.start_method = chosen_start_method(start_method)
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._available = threading.Condition(self._lock)
        self._closed = False
        self._sessions = 0
        self._zygote: zygotes.Zygote | None = None
        self._forks: queue.SimpleQueue[_Worker | None] = queue.SimpleQueue()

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

    def process_ids(self) -> list[int]:
        """Every process the pool runs: its workers and its zygote (for tests and benchmarks)."""
        with self._lock:
            pids = [w.process.pid for w in self._workers if w.process is not None]
            if self._zygote is not None and self._zygote.pid is not None:
                pids.append(self._zygote.pid)
            return pids

    def _start_all(self) -> None:
        if self.start_method == "fork":
            with self._lock:
                if self._closed or self._zygote is not None:
                    return
                self._zygote, self._forks = zygotes.adopt(self.warmup, self.workdir), queue.SimpleQueue()
                zygote, forks = self._zygote, self._forks
            threading.Thread(target=self._keep, args=(zygote, forks), name="jesse-zygote-keeper", daemon=True).start()
        for _ in range(self.size):
            self._spawn()

    def _spawn(self) -> None:
        if self.start_method == "spawn":
            _spawner.submit(self._spawn_now)
            return
        with self._lock:
            if self._closed:
                return
            worker = _Worker()
            self._workers.append(worker)
            self._forks.put(worker)

    def _spawn_now(self) -> None:
        with self._lock:
            if self._closed:
                return
            parent, child = self._ctx.Pipe()
            watched, lifeline = self._ctx.Pipe(duplex=False)
            process = self._ctx.Process(
                target=spawned_worker_main,
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

    def _keep(self, zygote: zygotes.Zygote, forks: queue.SimpleQueue[_Worker | None]) -> None:
        """The zygote's keeper: starts it, waits for its import, then forks each worker asked for, in order."""
        error: str | None = None
        try:
            _spawner.call(zygote.start)
            seconds = zygote.wait_ready()
            level = logging.INFO if zygote.threads_at_fork == 1 else logging.WARNING  # fork is safe from one thread
            log.log(
                level, "jesse zygote %s: warm-up in %.1f s, %s thread(s)", zygote.pid, seconds, zygote.threads_at_fork
            )
        except (zygotes.ZygoteError, OSError) as e:
            error = f"{type(e).__name__}: {e}" if isinstance(e, OSError) else str(e)
        while (worker := forks.get()) is not None:
            with self._lock:
                if self._closed or worker not in self._workers:
                    continue
            if error is None:
                try:
                    self._fork(zygote, worker)
                    continue
                except zygotes.ZygoteError as e:
                    error = str(e)
            self._failed(worker, error)

    def _fork(self, zygote: zygotes.Zygote, worker: _Worker) -> None:
        parent, child = self._ctx.Pipe()
        try:
            pid, pidfd = zygote.fork(child)
        finally:
            child.close()
        with self._lock:
            worker.process, worker.conn = zygotes.Forked(pid, pidfd), parent
            if self._closed or worker not in self._workers:  # shut down meanwhile
                worker.end()
                worker.close()
                return
        threading.Thread(target=self._await_ready, args=(worker,), daemon=True).start()

    def _failed(self, worker: _Worker, error: str) -> None:
        with self._lock:
            if self._closed:
                return
            worker.state, worker.error = "failed", error
            log.error("jesse worker failed to start: %s", error)
            self._available.notify_all()

    def _await_ready(self, worker: _Worker) -> None:
        assert worker.conn is not None
        try:
            kind, detail = worker.conn.recv()
        except (EOFError, OSError, TypeError):  # TypeError: the pool closed the pipe under this read (shutdown)
            kind, detail = "failed", f"worker exited with code {worker.process.exitcode}"
        with self._lock:
            if self._closed:
                return
            if kind == "ready":
                worker.state, worker.ready_after_s = "ready", time.monotonic() - worker.started_at
                log.info("jesse worker %s ready after %.1f s", worker.process.pid, worker.ready_after_s)
                self._available.notify_all()
                return
        self._failed(worker, str(detail))

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "pid": w.process.pid if w.process is not None else None,
                    "state": w.state,
                    "ready_after_s": w.ready_after_s,
                    "error": w.error,
                }
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
                worker.end()
                worker.close()
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
        assert worker.conn is not None
        conn, healthy = worker.conn, False
        try:
            conn.send((module, func, kwargs))
            with anyio.fail_after(timeout_s):
                while True:
                    reply = await anyio.to_thread.run_sync(conn.recv, abandon_on_cancel=True)
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
            zygote, self._zygote = self._zygote, None
            self._forks.put(None)  # ends the keeper
            self._available.notify_all()
        for w in workers:
            w.end()
        if zygote is not None:
            zygote.close()
        for w in workers:
            if w.process is not None:
                w.process.join(timeout=5)
            w.close()

"""Backtests on a Ray cluster behind the WorkerPool interface (run, size, attach, detach, status, shutdown,
start_in_background); jesse_mcp.backtesting.pools picks it when RAY_ADDRESS or backtest_config.ray_address is set.

Each slot is an actor (jesse_mcp.backtesting.ray_actor.JesseActor, one CPU) that imports Jesse once, as a local
worker does. Candles are put in the object store once per market, range and store file, and Ray copies an object to
a node once; user strategies travel as source. A task over its time limit, or cancelled, has its actor killed
(ray.kill) and replaced, so it really stops. Progress is forwarded: the pool polls the actor every POLL_S.

Only Ray Client addresses are used (jesse_mcp.backtesting.ray_connect says why). Every Ray call is bounded:
connecting (a TCP probe, then ray.init in a thread), putting, submitting, waiting and killing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from jesse_mcp.backtesting import ray_actor
from jesse_mcp.backtesting.ray_connect import (
    CALL_TIMEOUT_S,
    bounded,
    cluster_errors,
    connect,
    connected_ray,
    disconnected,
)
from jesse_mcp.backtesting.workers import DEFAULT_WARMUP, ProgressCallback, WorkerError, WorkerTimeout

log = logging.getLogger("jesse_mcp.backtesting.ray_pool")
READY_TIMEOUT_S = 900.0  # an actor importing Jesse on a busy node; a pending one (no free CPU) waits this long
POLL_S = 0.5
CACHED_MARKETS = 16  # candle objects kept in the object store (refs held here pin them)


@dataclass
class _Slot:
    actor: Any
    state: str = "starting"  # starting, ready, busy, failed, dead
    started_at: float = field(default_factory=time.monotonic)
    ready_after_s: float | None = None
    pid: int | None = None
    node: str | None = None
    error: str | None = None


class RayPool:
    def __init__(self, address: str, size: int, warmup: tuple[str, ...] = DEFAULT_WARMUP):
        self.address = address
        self.size = size
        self.warmup = warmup
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._available = threading.Condition(self._lock)
        self._closed = False
        self._started = False
        self._error: str | None = None  # why the pool could not start (unreachable cluster)
        self._sessions = 0
        self._rows: OrderedDict[tuple, Any] = OrderedDict()
        self._rows_lock = threading.Lock()

    # --- life -------------------------------------------------------------------------------------------------
    def start_in_background(self) -> threading.Thread:
        with self._lock:
            self._closed, self._started, self._error = False, True, None
        thread = threading.Thread(target=self._start_all, name="ray-pool-start", daemon=True)
        thread.start()
        return thread

    def attach(self) -> None:
        with self._lock:
            self._sessions += 1
            first = self._sessions == 1
        if first:
            self.start_in_background()

    def detach(self) -> None:
        with self._lock:
            self._sessions -= 1
            last = self._sessions == 0
        if last:
            self.shutdown()

    def _start_all(self) -> None:
        try:
            connect(self.address)
        except WorkerError as e:
            log.error("%s", e)
            with self._lock:
                self._error = str(e)
                self._available.notify_all()
            return
        for _ in range(self.size):
            self._spawn()

    def _spawn(self) -> None:
        with self._lock:
            if self._closed:
                return
        try:
            actor = bounded(self._new_actor, CALL_TIMEOUT_S, f"starting an actor on the Ray cluster at {self.address}")
        except (WorkerError, *cluster_errors()) as e:
            disconnected()
            slot = _Slot(actor=None, state="failed", error=f"no actor could start on {self.address}: {e}")
            with self._lock:
                self._slots.append(slot)
                self._available.notify_all()
            return
        slot = _Slot(actor)
        with self._lock:
            closed = self._closed
            if not closed:
                self._slots.append(slot)
        if closed:  # shut down meanwhile
            self._kill(slot)
            return
        threading.Thread(target=self._await_ready, args=(slot,), name="ray-actor-ready", daemon=True).start()

    def _new_actor(self) -> Any:
        ray = connected_ray()
        cls = ray.remote(num_cpus=1, max_concurrency=2, max_restarts=0)(ray_actor.JesseActor)
        return cls.remote(self.warmup)

    def _await_ready(self, slot: _Slot) -> None:
        import ray

        try:
            info = ray.get(slot.actor.ready.remote(), timeout=READY_TIMEOUT_S)
        except (*cluster_errors(), WorkerError) as e:
            info = {"error": f"{type(e).__name__}: {e}"}
        with self._lock:
            if slot.state != "starting":
                return
            if "error" in info:
                slot.state, slot.error = "failed", f"the actor failed to start on {self.address}: {info['error']}"
                log.error("%s", slot.error)
            else:
                slot.state, slot.ready_after_s = "ready", float(info["ready_after_s"])
                slot.pid, slot.node = info["pid"], info["node"]
                log.info("ray actor %s on %s ready after %.1f s", slot.pid, slot.node, slot.ready_after_s)
            self._available.notify_all()

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"pid": s.pid, "node": s.node, "state": s.state, "ready_after_s": s.ready_after_s, "error": s.error}
                for s in self._slots
            ]

    def _kill(self, slot: _Slot) -> None:
        slot.state = "dead"
        if slot.actor is not None:
            try:
                ray = connected_ray()  # not connected: the actor ended with its client's session
                bounded(lambda: ray.kill(slot.actor, no_restart=True), CALL_TIMEOUT_S, "killing a Ray actor")
            except (WorkerError, *cluster_errors()) as e:  # the cluster is gone: so is the actor
                log.warning("could not kill a ray actor on %s: %s", self.address, e)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            slots, self._slots = list(self._slots), []
            self._available.notify_all()
        with self._rows_lock:
            self._rows.clear()  # dropping the refs frees the candles in the cluster
        for slot in slots:
            self._kill(slot)

    # --- one task -----------------------------------------------------------------------------------------------
    def _acquire(self, wait_s: float) -> _Slot:
        deadline = time.monotonic() + wait_s
        with self._lock:
            while True:
                if self._closed:
                    raise WorkerError("the worker pool is shut down")
                if self._error:
                    raise WorkerError(self._error)
                ready = [s for s in self._slots if s.state == "ready"]
                if ready:
                    ready[0].state = "busy"
                    return ready[0]
                if self._slots and all(s.state == "failed" for s in self._slots):
                    raise WorkerError(f"no Jesse actor could start: {self._slots[0].error}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WorkerError(
                        f"no Jesse actor on the Ray cluster at {self.address} became free within {wait_s:g} s; "
                        "try again shortly, or check the cluster has free CPUs (ray status)"
                    )
                self._available.wait(min(left, 0.5))

    def _release(self, slot: _Slot, healthy: bool) -> None:
        with self._lock:
            if healthy and slot.state == "busy":
                slot.state = "ready"
                self._available.notify_all()
                return
            if slot in self._slots:
                self._slots.remove(slot)
            self._available.notify_all()
        # killing and replacing takes Ray calls: off the event loop, the caller already has its answer
        threading.Thread(target=self._replace, args=(slot,), name="ray-actor-replace", daemon=True).start()

    def _replace(self, slot: _Slot) -> None:
        self._kill(slot)
        self._spawn()

    def _rows_ref(self, spec: dict[str, Any]) -> Any:
        """The object reference of a spec's candles, put once per market, range and store file."""
        ray = connected_ray()

        from jesse_mcp.backtesting import engine
        from shared.market.candles import MINUTE_MS, CandleStore

        store = CandleStore(Path(spec["store_root"]))
        files = []
        for symbol in [*engine.traded(spec), *engine.informing(spec)]:  # a portfolio's markets travel together
            data_file = store.data_file(spec["exchange"], symbol)
            st = os.stat(data_file)
            files.append((str(data_file), st.st_ino, st.st_size, st.st_mtime_ns))
        start = spec["start_ms"] - spec["warmup_minutes"] * MINUTE_MS
        key = (tuple(files), start, spec["end_ms"])
        with self._rows_lock:
            if key in self._rows:
                self._rows.move_to_end(key)
                return self._rows[key]
        rows = engine.load_rows(spec)
        ref = bounded(lambda: ray.put(rows), CALL_TIMEOUT_S, f"the Ray cluster at {self.address} (storing candles)")
        with self._rows_lock:
            self._rows[key] = ref
            while len(self._rows) > CACHED_MARKETS:
                self._rows.popitem(last=False)
        return ref

    def _submit(self, slot: _Slot, module: str, func: str, kwargs: dict[str, Any]) -> Any:
        """Pack and send the task; a tuple reply when it cannot even be sent (it failed here, as it would there)."""
        try:
            packed, specs = ray_actor.pack(module, func, kwargs)
            refs = [self._rows_ref(s) for s in specs]
        except (OSError, ValueError, KeyError) as e:
            return ("error", f"{type(e).__name__}: {e}", "")
        return bounded(lambda: slot.actor.run.remote(module, func, packed, *refs), CALL_TIMEOUT_S, "submitting")

    async def _follow(self, slot: _Slot, ref: Any, on_progress: ProgressCallback | None) -> tuple:
        import ray

        def wait() -> bool:
            done, _ = ray.wait([ref], timeout=POLL_S)
            return bool(done)

        def reports() -> list[tuple[float, float, str]]:
            return ray.get(slot.actor.progress.remote(), timeout=CALL_TIMEOUT_S)

        while True:
            done = await anyio.to_thread.run_sync(wait, abandon_on_cancel=True)
            if on_progress is not None or done:  # drained at the end in any case: none is left for the next task
                for d, t, m in await anyio.to_thread.run_sync(reports, abandon_on_cancel=True):
                    if on_progress is not None:
                        await on_progress(d, t, m)
            if done:
                return await anyio.to_thread.run_sync(
                    lambda: ray.get(ref, timeout=CALL_TIMEOUT_S), abandon_on_cancel=True
                )

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
        """Run `module.func(**kwargs)` on an actor. On timeout or cancellation that actor is killed and replaced,
        so the task really stops. Progress the task reports (report_progress) goes to `on_progress`."""
        if not self._started or self._error:  # not started, or the cluster was unreachable: (try to) connect now
            self.start_in_background()
        slot = await anyio.to_thread.run_sync(self._acquire, wait_s)
        healthy = False
        errors = cluster_errors()
        try:
            with anyio.fail_after(timeout_s):
                sent = await anyio.to_thread.run_sync(self._submit, slot, module, func, kwargs, abandon_on_cancel=True)
                reply = sent if isinstance(sent, tuple) else await self._follow(slot, sent, on_progress)
            healthy = True
        except TimeoutError:
            raise WorkerTimeout(f"the task exceeded its time limit of {timeout_s:g} s and was stopped") from None
        except (WorkerError, *errors) as e:
            if isinstance(e, ConnectionError):
                disconnected()
            raise WorkerError(
                f"the Ray cluster at {self.address} lost the task ({type(e).__name__}: {e}); check that its head and "
                "nodes are up (ray status on the head) and try again, or unset RAY_ADDRESS and "
                "backtest_config.ray_address to run backtests locally"
            ) from None
        finally:
            self._release(slot, healthy)
        if reply[0] == "ok":
            return reply[1]
        log.error("task %s.%s failed on a ray actor:\n%s", module, func, reply[2])
        raise WorkerError(f"the task failed: {reply[1]}")

"""Studies as the server keeps them: started and waited for, or left running in the background (an anyio
blocking portal in its own thread, so a study outlives the call and the session that started it); each study's
record (request, status, report) in $TRADING_MCP_HOME/optimization/<id>.json, its trials in Optuna's storage.
A record still 'running' that no live process runs is 'interrupted' and can be resumed."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import anyio
import optuna
from anyio.from_thread import BlockingPortal

from jesse_mcp.backtesting.plans import Progress, new_id
from jesse_mcp.backtesting.service import BacktestService
from jesse_mcp.optimization import optimizer
from jesse_mcp.optimization import report as rep
from jesse_mcp.optimization.models import OBJECTIVES, OptimizationReport, OptimizeRequest, StudyView, TrialRow
from jesse_mcp.optimization.study import kept, storage_at
from shared.config.models import TradingConfig
from shared.errors import InvalidArgumentsError
from shared.state.files import atomic_write_text
from shared.state.store import utc_now_iso

log = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_importances_warm = threading.Event()


def _warm_importances() -> None:
    """Import what the report's parameter importances need (fANOVA: scikit-learn, about 3 s) on a thread of its own
    at the first study, while its trials run in the workers, instead of after the last trial."""
    if not _importances_warm.is_set():
        _importances_warm.set()
        threading.Thread(target=importlib.import_module, args=("optuna.importance",), daemon=True).start()


class OptimizationRunner:
    def __init__(self, home: Path, service: BacktestService, config_load: Callable[[], TradingConfig]):
        self.folder = home / "optimization"
        self.service = service
        self.config_load = config_load
        self._storage: Any = None
        self._storage_lock = threading.Lock()
        self._active: dict[str, Future | None] = {}  # id -> background future (None: a waited-for call)
        self._cancelled: set[str] = set()
        self._scopes: dict[str, anyio.CancelScope] = {}  # id -> the scope of a study a call waits for
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._portal: BlockingPortal | None = None

    @property
    def storage(self):
        with self._storage_lock:  # two threads creating Optuna's schema at once would collide
            if self._storage is None:
                self._storage = storage_at(self.folder.parent)
            return self._storage

    # records
    def _path(self, study_id: str) -> Path:
        if not study_id.startswith("opt_") or not study_id[4:].isalnum():
            raise InvalidArgumentsError(f"{study_id!r} is not an optimization id (opt_...); see list_optimizations.")
        return self.folder / f"{study_id}.json"

    def record(self, study_id: str) -> dict[str, Any]:
        path = self._path(study_id)
        if not path.exists():
            raise InvalidArgumentsError(f"No optimization {study_id}; list_optimizations shows the stored ones.")
        data = json.loads(path.read_text())
        mine_or_dead = data.get("pid") == os.getpid() or not _alive(int(data.get("pid", 0)))
        if data["status"] == "running" and study_id not in self._active and mine_or_dead:
            data["status"] = "interrupted"
        return data

    def _write(self, study_id: str, **changes: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(study_id)
        data = json.loads(path.read_text()) if path.exists() else {}
        data.update(changes)
        atomic_write_text(path, json.dumps(data, indent=1))

    # limits
    def _check_limits(self, req: OptimizeRequest, extra_active: int = 1) -> None:
        limits = self.config_load().optimize_config
        folds = req.folds if req.validation == "walk_forward" else 1
        if req.trials is not None and req.trials * folds > limits.max_trials:
            raise InvalidArgumentsError(
                f"{req.trials} trials x {folds} fold(s) = {req.trials * folds} is above "
                f"optimize_config.max_trials ({limits.max_trials}); ask for fewer trials, or raise the limit with "
                "update_config."
            )
        if req.budget_s is not None and req.budget_s > limits.max_budget_s:
            raise InvalidArgumentsError(
                f"budget_s {req.budget_s:g} is above optimize_config.max_budget_s ({limits.max_budget_s:g}); ask for "
                "a shorter budget, or raise the limit with update_config."
            )
        if len(self._active) + extra_active > limits.max_concurrent_studies:
            raise InvalidArgumentsError(
                f"{len(self._active)} optimization(s) are running, the most optimize_config.max_concurrent_studies "
                f"({limits.max_concurrent_studies}) allows; wait for one (get_optimization) or cancel one "
                "(cancel_optimization)."
            )

    # running
    async def _setup(self, req: OptimizeRequest, study_id: str) -> optimizer.Setup:
        batch = req.batch_size or max(1, self.service.pool.size)
        max_trials = self.config_load().optimize_config.max_trials
        return await optimizer.prepare(self.service, req, study_id, batch, max_trials)

    async def _execute(self, study_id: str, req: OptimizeRequest, setup: optimizer.Setup, progress: Progress | None):
        """Run the study and record how it ended. A cancellation from cancel_optimization is 'cancelled'; any other
        (the server stopping) leaves the record 'running', which a restart reads as 'interrupted'."""

        async def told(done: float, total: float, message: str) -> None:
            with self._changed:
                self._changed.notify_all()
            if progress is not None:
                await progress(done, total, message)

        with anyio.CancelScope() as scope:  # cancel_optimization of a study a call is waiting for cancels this
            self._scopes[study_id] = scope
            try:
                result = await optimizer.run(self.service, self.storage, setup, req, told)
                report = result.model_dump(mode="json")
                self._write(study_id, status="finished", report=report, finished_at=utc_now_iso())
            except anyio.get_cancelled_exc_class():
                if study_id in self._cancelled:
                    with anyio.CancelScope(shield=True):
                        self._write(study_id, status="cancelled", finished_at=utc_now_iso())
                raise
            except Exception as e:  # a background study has no caller to tell: record why it failed, then re-raise
                self._write(study_id, status="failed", error=str(e), finished_at=utc_now_iso())
                raise
            finally:
                with self._lock:
                    self._active.pop(study_id, None)
                    self._scopes.pop(study_id, None)
                with self._changed:
                    self._changed.notify_all()

    async def start(self, req: OptimizeRequest, wait: bool, progress: Progress | None = None) -> str:
        """Plan and check the study (raising before anything is stored), record it, then run it here (wait) or
        in the background. Returns its id."""
        study_id = new_id("opt")
        _warm_importances()
        setup = await self._claim(study_id, req)
        record = {
            "id": study_id,
            "status": "running",
            "strategy": req.strategy,
            "created_at": utc_now_iso(),
            "pid": os.getpid(),
            "request": req.to_json(),
            "trials_planned": setup.trials * len(setup.folds),
            "batch_size": setup.batch_size,
        }
        self._write(study_id, **record)
        await self._go(study_id, req, setup, wait, progress)
        return study_id

    async def _claim(self, study_id: str, req: OptimizeRequest) -> Any:
        """Take a slot under the limits and plan the study; the slot is given back if planning fails."""
        with self._lock:
            self._check_limits(req)
            self._active[study_id] = None
        try:
            return await self._setup(req, study_id)
        except BaseException:
            self._active.pop(study_id, None)
            raise

    async def _go(self, study_id: str, req: OptimizeRequest, setup: Any, wait: bool, progress: Progress | None):
        if wait:
            await self._execute(study_id, req, setup, progress)
            return
        portal = self._ensure_portal()
        self.service.pool.attach()  # the workers stay up while the study runs, sessions or none
        future = portal.start_task_soon(self._execute, study_id, req, setup, None)
        future.add_done_callback(lambda _f: self.service.pool.detach())
        self._active[study_id] = future

    async def resume(self, study_id: str, wait: bool, progress: Progress | None = None) -> str:
        data = self.record(study_id)
        if data["status"] != "interrupted":
            raise InvalidArgumentsError(
                f"{study_id} is {data['status']}; only an interrupted study (its server stopped) can be resumed."
            )
        req = OptimizeRequest.from_json(data["request"])
        req = OptimizeRequest(**{**req.__dict__, "batch_size": data["batch_size"]})  # the recorded batch size
        setup = await self._claim(study_id, req)
        self._write(study_id, status="running", pid=os.getpid(), resumed_at=utc_now_iso())
        await self._go(study_id, req, setup, wait, progress)
        return study_id

    async def cancel(self, study_id: str) -> StudyView:
        data = self.record(study_id)
        if data["status"] not in ("running", "interrupted"):
            raise InvalidArgumentsError(f"{study_id} is already {data['status']}; nothing to cancel.")
        self._cancelled.add(study_id)
        future, scope = self._active.get(study_id), self._scopes.get(study_id)
        if future is not None:
            future.cancel()  # cancels the task in the portal: its pool.run calls kill and replace their workers
            await anyio.to_thread.run_sync(self._settled, study_id)
        elif scope is not None:
            scope.cancel()  # a study a call waits for on this event loop: its call answers 'cancelled'
            await anyio.to_thread.run_sync(self._settled, study_id)
        if self.record(study_id)["status"] in ("running", "interrupted"):  # not one that finished meanwhile
            self._write(study_id, status="cancelled", finished_at=utc_now_iso())
        return self.view(study_id, 0, 10)

    def _settled(self, study_id: str) -> None:
        """Wait (bounded) for a cancelled background task's own cleanup, which runs in the portal's thread."""
        deadline = time.monotonic() + 30
        while study_id in self._active and time.monotonic() < deadline:
            with self._changed:
                self._changed.wait(0.5)

    def wait_until(self, study_id: str, done: Callable[[StudyView], bool], timeout_s: float) -> StudyView:
        """Block until `done(view)` holds (checked after every told trial and when a study ends), or raise
        TimeoutError after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            view = self.view(study_id, 0, 1)
            if done(view):
                return view
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{study_id} did not reach the awaited state within {timeout_s:g} s")
            with self._changed:
                self._changed.wait(min(left, 0.5))

    def _ensure_portal(self) -> BlockingPortal:
        """The event loop background studies run on: a daemon thread, so it never keeps the process alive (anyio's
        start_blocking_portal runs in a non-daemon pool thread that interpreter exit would wait for)."""
        with self._lock:
            if self._portal is not None:
                return self._portal
            ready = threading.Event()

            async def serve() -> None:
                async with BlockingPortal() as portal:
                    self._portal = portal
                    ready.set()
                    await portal.sleep_until_stopped()

            threading.Thread(target=anyio.run, args=(serve,), name="optimization-studies", daemon=True).start()
            if not ready.wait(30):
                raise RuntimeError("the background study thread did not start")
            assert self._portal is not None
            return self._portal

    def close(self) -> None:
        """Stop the background studies (tests, shutdown); their records stay 'running', read as interrupted."""
        portal, self._portal = self._portal, None
        if portal is not None:
            with contextlib.suppress(RuntimeError):  # already stopped
                portal.call(portal.stop, True)

    # reading
    def _trials(self, data: dict[str, Any]) -> tuple[list[TrialRow], int]:
        req = OptimizeRequest.from_json(data["request"])
        objectives = tuple(req.objectives)
        names = [s.study_name for s in self.storage.get_all_studies() if s.study_name.startswith(data["id"] + ":")]
        rows: list[TrialRow] = []
        for name in sorted(names):
            study = optuna.load_study(study_name=name, storage=self.storage)
            rows.extend(rep.row_of(t, objectives) for t in kept(study))
        done = sum(1 for r in rows if r.state != "running")
        return rows, done

    def view(self, study_id: str, offset: int, limit: int) -> StudyView:
        data = self.record(study_id)
        rows, done = self._trials(data)
        objectives = tuple(data["request"]["objectives"])
        feasible = [r for r in rows if r.state == "feasible" and r.values]
        sign = -1.0 if OBJECTIVES[objectives[0]][1] == "maximize" else 1.0
        best = min(feasible, key=lambda r: (sign * r.values[objectives[0]], r.number)) if feasible else None
        report = None
        if data.get("report"):
            report = OptimizationReport.model_validate(data["report"])
            page, more = rep.pages(report.top_trials, offset, limit)
            report = report.model_copy(update={"top_trials": page, "offset": offset, "limit": limit, "more": more})
        page_rows, more_rows = rep.pages(rows, offset, limit)
        return StudyView(
            id=study_id,
            status=data["status"],
            strategy=data["strategy"],
            created_at=data["created_at"],
            trials_done=done,
            trials_planned=data.get("trials_planned"),
            best_so_far=best,
            trials=page_rows,
            offset=offset,
            more=more_rows,
            report=report,
            error=data.get("error"),
        )

    def ids(self) -> list[str]:
        if not self.folder.exists():
            return []
        files = sorted(self.folder.glob("opt_*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        return [p.stem for p in files]

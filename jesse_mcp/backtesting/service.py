"""The backtest service the tools call: strategies (built-in and user), runs in the worker pool, profile
comparison, and stored results. Plans come from jesse_mcp.backtesting.plans; a run that fails stores nothing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, Field

from jesse_mcp.backtesting.catalog import (
    BUILTIN,
    StrategySpec,
    find_user_strategy_files,
    fingerprint,
    user_spec_from_description,
)
from jesse_mcp.backtesting.plans import (
    DEFAULT_BALANCE,
    BacktestError,
    PlanRequest,
    Progress,
    RunPlan,
    build_plan,
    replan_of,
    result_from,
    title_of,
)
from jesse_mcp.backtesting.results import (
    BacktestResult,
    fmt,
    num,
    summary_of,
)
from jesse_mcp.backtesting.trade_rows import Trade, trade_models
from jesse_mcp.backtesting.workers import WorkerPool, WorkerTimeout
from shared.config.models import TradingConfig
from shared.errors import InvalidArgumentsError, TradingMcpError
from shared.market.candles import CandleStore
from shared.state import results as result_store
from shared.state.results import NewResult
from shared.state.store import Store


# --- strategies -----------------------------------------------------------------------------------------------
class ParamView(BaseModel):
    name: str
    type: str
    default: float
    min: float | None
    max: float | None
    description: str


class StrategyView(BaseModel):
    name: str
    builtin: bool
    summary: str
    risk_managed: bool = Field(description="Sized, stopped and halted by the risk profile (RiskManagedStrategy).")
    hyperparameters: list[ParamView]
    warmup_rule: str
    path: str | None = None
    error: str | None = Field(None, description="Why a user strategy file cannot be used.")


class StrategyList(BaseModel):
    strategies: list[StrategyView]
    user_folder: str = Field(description="Put Jesse Strategy files here (<name>.py) to add your own strategies.")


def view_of(spec: StrategySpec, error: str | None = None) -> StrategyView:
    return StrategyView(
        name=spec.name,
        builtin=spec.builtin,
        summary=spec.summary,
        risk_managed=spec.risk_managed,
        hyperparameters=[
            ParamView(
                name=p.name,
                type=p.type,
                default=p.default,
                min=num(p.min),  # an unbounded side is None
                max=num(p.max),
                description=p.description,
            )
            for p in spec.params
        ],
        warmup_rule=spec.warmup_rule,
        path=spec.path,
        error=error,
    )


# --- comparing profiles ---------------------------------------------------------------------------------------
class ProfileComparison(BaseModel):
    strategy: str
    market: str
    timeframe: str
    range: str
    synthetic: bool
    table: str = Field(description="Side-by-side table (markdown).")
    results: list[BacktestResult]
    wall_time_s: float
    notes: list[str]


COMPARE_ROWS: tuple[tuple[str, str, Callable[[BacktestResult], str]], ...] = (
    ("Net profit", "%", lambda r: fmt(r.performance.net_profit_pct)),
    ("Annual return", "%", lambda r: fmt(r.performance.annual_return_pct)),
    ("Max drawdown", "%", lambda r: fmt(r.performance.max_drawdown_pct)),
    ("Sharpe", "", lambda r: fmt(r.performance.sharpe)),
    ("Sortino", "", lambda r: fmt(r.performance.sortino)),
    ("Calmar", "", lambda r: fmt(r.performance.calmar)),
    ("Win rate", "%", lambda r: fmt(r.performance.win_rate_pct, 1)),
    ("Profit factor", "", lambda r: fmt(r.performance.profit_factor)),
    ("Trades", "", lambda r: str(r.performance.trades)),
    ("Largest position", "% equity", lambda r: fmt(r.risk_adherence.largest_position_pct_of_equity)),
    ("Largest loss", "% equity", lambda r: fmt(r.risk_adherence.largest_loss_pct_of_equity, 3)),
    (
        "Within max drawdown",
        "",
        lambda r: {True: "yes", False: "NO", None: "n/a"}[r.risk_adherence.drawdown_within_profile],
    ),
    ("Entries halted", "", lambda r: r.risk_adherence.entries_halted_at or "no"),
    ("Result id", "", lambda r: r.id),
)


def comparison_table(results: list[BacktestResult]) -> str:
    head = "| Metric | " + " | ".join(r.request.risk_profile for r in results) + " |"
    sep = "|---|" + "---:|" * len(results)
    lines = [head, sep]
    for name, unit, get in COMPARE_ROWS:
        label = f"{name} ({unit})" if unit else name
        lines.append(f"| {label} | " + " | ".join(get(r) for r in results) + " |")
    return "\n".join(lines)


# --- the service the tools call -------------------------------------------------------------------------------
class BacktestService:
    def __init__(self, home: Path, config_load: Callable[[], TradingConfig], store: Store, pool: WorkerPool):
        self.home = home
        self.config_load = config_load
        self.store = store
        self.pool = pool
        self.candles = CandleStore(home / "candles")
        self._user_cache: dict[tuple[str, float], dict[str, Any]] = {}

    # strategies
    async def _describe_user(self, files: dict[str, Path]) -> dict[str, dict[str, Any]]:
        keyed = {name: (str(p), p.stat().st_mtime) for name, p in files.items()}
        missing = {name: k[0] for name, k in keyed.items() if k not in self._user_cache}
        if missing:
            described = await self.pool.run(
                "jesse_mcp.backtesting.engine", "describe_user_strategies", {"files": missing}, timeout_s=60
            )
            for name, info in described.items():
                self._user_cache[keyed[name]] = info
        return {name: self._user_cache[k] for name, k in keyed.items()}

    async def list_strategies(self) -> StrategyList:
        def unusable(name: str, path: Path, error: str) -> StrategyView:
            return StrategyView(
                name=name,
                builtin=False,
                summary="",
                risk_managed=False,
                hyperparameters=[],
                warmup_rule="",
                path=str(path),
                error=error,
            )

        views = [view_of(s) for s in BUILTIN.values()]
        found = find_user_strategy_files(self.home)
        for name in (n for n in found if n in BUILTIN):
            views.append(unusable(name, found[name], f"shadowed by the built-in {name}; rename the file to use it."))
        files = {n: p for n, p in found.items() if n not in BUILTIN}
        for name, info in (await self._describe_user(files)).items() if files else ():
            if "error" in info:
                views.append(unusable(name, files[name], info["error"]))
            else:
                views.append(view_of(user_spec_from_description(name, files[name], info)))
        return StrategyList(strategies=views, user_folder=str(self.home / "strategies"))

    async def strategy(self, name: str) -> StrategySpec:
        if name in BUILTIN:
            return BUILTIN[name]
        files = find_user_strategy_files(self.home)
        if name not in files:
            valid = ", ".join([*BUILTIN, *(n for n in files if n not in BUILTIN)])
            raise InvalidArgumentsError(
                f"Unknown strategy {name!r}. Valid strategies: {valid}. To add your own, put a Jesse Strategy file "
                f"at {self.home / 'strategies' / (name + '.py')}."
            )
        info = (await self._describe_user({name: files[name]}))[name]
        if "error" in info:
            raise BacktestError(f"Strategy {name} cannot be used: {info['error']}")
        return user_spec_from_description(name, files[name], info)

    def strategy_source(self, name: str) -> tuple[str, str]:
        if name in BUILTIN:
            path = Path(__file__).parent / "strategies" / f"{name}.py"
            base = (Path(__file__).parent / "strategies" / "base.py").read_text()
            return str(path), path.read_text() + "\n\n# ---- jesse_mcp/backtesting/strategies/base.py ----\n" + base
        files = find_user_strategy_files(self.home)
        if name not in files:
            valid = ", ".join([*BUILTIN, *files])
            raise InvalidArgumentsError(f"Unknown strategy {name!r}. Valid strategies: {valid}.")
        return str(files[name]), files[name].read_text()

    # running
    def _timeout(self) -> float:
        return self.config_load().backtest_config.timeout_s

    async def run_task(
        self, task: str, kwargs: dict[str, Any], label: str, progress: Progress | None = None, runs: int = 1
    ) -> Any:
        """One task in a worker; `runs` backtests in it get `runs` x backtest_config.timeout_s."""
        timeout = self._timeout() * runs
        try:
            return await self.pool.run(
                "jesse_mcp.backtesting.engine",
                task,
                kwargs,
                timeout_s=timeout,
                wait_s=max(timeout, 60.0),
                on_progress=progress,
            )
        except WorkerTimeout:
            raise BacktestError(
                f"The run ({label}) took longer than its limit of {timeout:g} s (backtest_config.timeout_s per "
                "backtest), so its worker was stopped and replaced; nothing was stored. Shorten the range, use a "
                "larger timeframe, or raise backtest_config.timeout_s with update_config."
            ) from None

    async def execute(self, spec: dict[str, Any], progress: Progress | None = None) -> dict[str, Any]:
        return await self.run_task("run_backtest", {"spec": spec}, spec.get("label", "backtest"), progress)

    async def run_all(self, calls: list[Callable[[], Awaitable[None]]]) -> None:
        """Run the calls at once, at most one per worker. The first expected error (timeout, a failed run) is
        raised as itself, not wrapped in an exception group; the other calls are cancelled."""
        limiter = anyio.CapacityLimiter(max(1, self.pool.size))

        async def one(call: Callable[[], Awaitable[None]]) -> None:
            async with limiter:
                await call()

        try:
            async with anyio.create_task_group() as tg:
                for call in calls:
                    tg.start_soon(one, call)
        except* TradingMcpError as group:
            raise group.exceptions[0] from None

    async def plan(self, strategy: str, req: PlanRequest) -> RunPlan:
        spec = await self.strategy(strategy)
        return build_plan(cfg=self.config_load(), candles=self.candles, strategy=spec, req=req)

    async def backtest(
        self, plan: RunPlan, *, png: bool = False, progress: Progress | None = None
    ) -> tuple[BacktestResult, bytes | None]:
        spec = {**plan.spec, "png": png, "title": title_of(plan)}
        out = await self.execute(spec, progress)
        result = result_from(plan, out)
        if png:
            result.image = "attached" if out.get("png") else None
            if not out.get("png"):
                why = (
                    "Jesse gives no equity curve for a run without trades"
                    if not out["trades"]
                    else ("the run is shorter than two days of equity samples")
                )
                result.notes.append(f"No equity-curve image: {why}.")
        self.save((result, out["trades"]))
        return result, out.get("png")

    def save(self, *runs: tuple[BacktestResult, list[Any]]) -> None:
        """Store backtest results with their trades, all in one transaction."""
        result_store.save(
            self.store,
            *(
                NewResult(r.id, r.kind, r.request.strategy, summary_of(r), r.model_dump(mode="json"), t)
                for r, t in runs
            ),
        )

    async def execute_all(
        self, specs: list[dict[str, Any]], progress: Progress | None = None, what: str = "runs"
    ) -> list[dict[str, Any]]:
        """Several runs at once in the pool (as many as it has workers), with their progress added up."""
        done = [0.0] * len(specs)
        total = float(sum(s["end_ms"] - s["start_ms"] for s in specs))
        outs: list[dict[str, Any]] = [{} for _ in specs]

        def run(i: int) -> Callable[[], Awaitable[None]]:
            async def each(d: float, _t: float, _m: str) -> None:
                done[i] = d
                if progress is not None:
                    await progress(sum(done), total, f"{len(specs)} {what} running")

            async def go() -> None:
                outs[i] = await self.execute(specs[i], each)

            return go

        await self.run_all([run(i) for i in range(len(specs))])
        return outs

    async def compare(self, plans: list[RunPlan], progress: Progress | None = None) -> ProfileComparison:
        started = time.perf_counter()
        outs = await self.execute_all([p.spec for p in plans], progress, "profiles")
        results = [result_from(p, o) for p, o in zip(plans, outs, strict=True)]
        self.save(*((r, o["trades"]) for r, o in zip(results, outs, strict=True)))
        first = results[0]
        notes = sorted({n for r in results for n in r.notes})
        return ProfileComparison(
            strategy=first.request.strategy,
            market=f"{first.request.exchange}:{first.request.symbol}",
            timeframe=first.request.timeframe,
            range=f"{first.request.start} .. {first.request.end}",
            synthetic=first.synthetic,
            table=comparison_table(results),
            results=results,
            wall_time_s=time.perf_counter() - started,
            notes=notes,
        )

    # reading
    def get(self, result_id: str) -> dict[str, Any]:
        return result_store.get(self.store, result_id).record

    def trades(self, result_id: str, offset: int, limit: int) -> tuple[list[Trade], int]:
        stored = result_store.get(self.store, result_id, with_trades=True)
        record, rows = stored.record, stored.trades or []
        request = record.get("request", {})
        balance = request.get("starting_balance", DEFAULT_BALANCE)
        return trade_models(rows, balance, request.get("symbol", ""))[offset : offset + limit], len(rows)

    def load_backtest(self, result_id: str) -> tuple[BacktestResult, list[Any]]:
        stored = result_store.get(self.store, result_id, with_trades=True)
        record, trades = stored.record, stored.trades
        if record.get("kind") != "backtest":
            raise InvalidArgumentsError(
                f"{result_id} is a {record.get('kind')} result; this needs the id of a backtest (list_backtests)."
            )
        return BacktestResult.model_validate(record), trades or []

    async def replan(self, result: BacktestResult, label: str) -> RunPlan:
        """The plan of a stored backtest, checked again against today's store (same strategy, data and settings)."""
        req = result.request
        strategy = await self.strategy(req.strategy)
        if req.strategy_sha256 and fingerprint(strategy) != req.strategy_sha256:
            raise BacktestError(
                f"The code of strategy {req.strategy} changed since backtest {result.id} ran, so re-running it would "
                "test other code. Run the backtest again and use the new id."
            )
        most = self.config_load().backtest_config.max_portfolio_markets
        return replan_of(self.candles, result, strategy, most, label)

"""Backtest batches: a grid of strategies x markets x timeframes x risk profiles, run at once on the worker pool
(BacktestService.run_all, as compare_risk_profiles runs its profiles), every run stored with its id, answered as
one table sorted by a metric. A run that cannot be planned (no candles for a market, too little data) or fails in
its worker is a row with its error, not a failed call; arguments that are wrong for every run fail the call.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

from pydantic import BaseModel, Field

from jesse_mcp.backtesting.catalog import BUILTIN, StrategySpec
from jesse_mcp.backtesting.plans import BacktestError, PlanRequest, Progress, RunPlan, build_plan, result_from
from jesse_mcp.backtesting.results import BacktestResult, fmt
from jesse_mcp.backtesting.service import BacktestService
from shared.errors import InvalidArgumentsError, TradingMcpError

SortKey = Literal[
    "sharpe", "sortino", "calmar", "net_profit_pct", "annual_return_pct", "max_drawdown_pct", "win_rate_pct", "trades"
]
SORT_KEYS: tuple[str, ...] = get_args(SortKey)
ASCENDING = frozenset({"max_drawdown_pct"})  # smaller is better; every other key sorts largest first
ERROR_IN_TABLE = 160  # characters of an error shown in the table; the row keeps all of it


@dataclass(frozen=True)
class BatchRequest:
    """The grid. Empty `strategies`: every built-in one; None in `symbols` / `risk_profiles`: the one stored
    market / the configured profile. `base` carries what every run shares (exchange, range, fee, hyperparameters)."""

    strategies: tuple[str, ...] = ()
    symbols: tuple[str | None, ...] = (None,)
    timeframes: tuple[str, ...] = ("1h",)
    risk_profiles: tuple[str | None, ...] = (None,)
    base: PlanRequest = field(default_factory=PlanRequest)
    sort_by: SortKey = "sharpe"
    portfolio: bool = False  # the symbols traded together in one account: one portfolio per cell, not one market

    def axes(self) -> tuple[tuple[str, ...], tuple[str | None, ...], tuple[str, ...], tuple[str | None, ...]]:
        """Each axis once per distinct value, in the order given."""

        def once(values, fold=lambda v: v):
            return tuple(dict.fromkeys(fold(v) for v in values))

        strategies = once(self.strategies) or tuple(BUILTIN)
        symbols = once(self.symbols, lambda s: s.upper() if s else s) or (None,)
        return strategies, symbols, once(self.timeframes) or ("1h",), once(self.risk_profiles) or (None,)

    def places(self) -> list[tuple[str | None, tuple[str, ...] | None]]:
        """Where each cell runs: (symbol, None) per market, or (None, every market) once for a portfolio."""
        symbols = self.axes()[1]
        if not self.portfolio:
            return [(s, None) for s in symbols]
        named = tuple(s for s in symbols if s)
        if len(named) < 2:
            raise InvalidArgumentsError("portfolio: true trades the symbols in one account; name at least 2 symbols.")
        return [(None, named)]


class BatchRow(BaseModel):
    rank: int | None = Field(description="Place by sort_by, 1 = best; None for a failed run.")
    id: str | None = Field(description="Stored backtest id (get_backtest, stress_test, ...); None when it failed.")
    strategy: str
    exchange: str | None
    symbol: str | None = Field(description="None: the one stored market (none was named).")
    timeframe: str
    risk_profile: str | None = Field(description="The profile the run used; None: the configured one (failed run).")
    start: str | None = None
    end: str | None = None
    synthetic: bool | None = None
    net_profit_pct: float | None = None
    annual_return_pct: float | None = None
    max_drawdown_pct: float | None = None
    sharpe: float | None = None
    sortino: float | None = None
    calmar: float | None = None
    win_rate_pct: float | None = None
    trades: int | None = None
    error: str | None = Field(None, description="Why this run has no result (nothing was stored for it).")


class BatchReport(BaseModel):
    runs: int = Field(description="Runs in the grid: strategies x markets x timeframes x profiles.")
    succeeded: int
    failed: int
    sort_by: str
    table: str = Field(description="The rows as a markdown table, best first, failed runs last.")
    rows: list[BatchRow]
    synthetic: bool = Field(description="True when any run used generated candles: say so when quoting them.")
    wall_time_s: float
    notes: list[str]


def check_bound(req: BatchRequest, limit: int) -> int:
    strategies, _, timeframes, profiles = req.axes()
    places = req.places()
    n = len(strategies) * len(places) * len(timeframes) * len(profiles)
    if n > limit:
        where = "1 portfolio" if req.portfolio else f"{len(places)} markets"
        raise InvalidArgumentsError(
            f"This batch is {n} runs ({len(strategies)} strategies x {where} x {len(timeframes)} "
            f"timeframes x {len(profiles)} risk profiles), above the limit of {limit} runs per call "
            "(backtest_config.max_batch_runs). Narrow the grid or split it into several calls."
        )
    if req.base.hyperparameters and len(strategies) != 1:
        raise InvalidArgumentsError(
            f"hyperparameters apply to one strategy, and this batch has {len(strategies)}; give exactly one "
            "strategy, or leave hyperparameters out (each strategy then uses its configured ones)."
        )
    return n


def row_of(result: BacktestResult) -> BatchRow:
    r, p = result.request, result.performance
    return BatchRow(
        rank=None,
        id=result.id,
        strategy=r.strategy,
        exchange=r.exchange,
        symbol="+".join(r.markets) or r.symbol,
        timeframe=r.timeframe,
        risk_profile=r.risk_profile,
        start=r.start,
        end=r.end,
        synthetic=result.synthetic,
        net_profit_pct=p.net_profit_pct,
        annual_return_pct=p.annual_return_pct,
        max_drawdown_pct=p.max_drawdown_pct,
        sharpe=p.sharpe,
        sortino=p.sortino,
        calmar=p.calmar,
        win_rate_pct=p.win_rate_pct,
        trades=p.trades,
    )


def failed_row(strategy: str, req: PlanRequest, error: str) -> BatchRow:
    return BatchRow(
        rank=None,
        id=None,
        strategy=strategy,
        exchange=req.exchange,
        symbol="+".join(req.markets or ()) or req.symbol,
        timeframe=req.timeframe,
        risk_profile=req.risk_profile,
        error=error,
    )


def sort_rows(rows: list[BatchRow], by: str) -> list[BatchRow]:
    """Best first by `by` (smallest first for drawdown), runs without that number after, failed runs last; ties
    keep the grid's order. Ranks are set on the sorted copy."""
    sign = 1.0 if by in ASCENDING else -1.0

    def key(row: BatchRow) -> tuple[bool, bool, float]:
        value = getattr(row, by)
        return row.error is not None, value is None, sign * value if value is not None else 0.0

    ordered = sorted(rows, key=key)
    return [r.model_copy(update={"rank": i + 1 if r.error is None else None}) for i, r in enumerate(ordered)]


TABLE_COLUMNS: tuple[tuple[str, Callable[[BatchRow], str]], ...] = (
    ("#", lambda r: str(r.rank) if r.rank else "-"),
    ("Strategy", lambda r: r.strategy),
    ("Market", lambda r: f"{r.exchange}:{r.symbol}" if r.exchange else (r.symbol or "(stored)")),
    ("TF", lambda r: r.timeframe),
    ("Profile", lambda r: r.risk_profile or "(configured)"),
    ("Net profit (%)", lambda r: fmt(r.net_profit_pct)),
    ("Max drawdown (%)", lambda r: fmt(r.max_drawdown_pct)),
    ("Sharpe", lambda r: fmt(r.sharpe)),
    ("Sortino", lambda r: fmt(r.sortino)),
    ("Calmar", lambda r: fmt(r.calmar)),
    ("Win rate (%)", lambda r: fmt(r.win_rate_pct, 1)),
    ("Trades", lambda r: "n/a" if r.trades is None else str(r.trades)),
    ("Result id", lambda r: r.id or "failed: " + _short(r.error or "")),
)


def _short(text: str) -> str:
    text = text.replace("|", "/").replace("\n", " ")
    return text if len(text) <= ERROR_IN_TABLE else text[: ERROR_IN_TABLE - 3] + "..."


def batch_table(rows: list[BatchRow]) -> str:
    head = "| " + " | ".join(name for name, _ in TABLE_COLUMNS) + " |"
    sep = "|" + "---|" * 5 + "---:|" * (len(TABLE_COLUMNS) - 6) + "---|"
    return "\n".join([head, sep, *("| " + " | ".join(get(r) for _, get in TABLE_COLUMNS) + " |" for r in rows)])


@dataclass
class _Finished:
    """The rows as runs finish, with one progress notification per finished run."""

    rows: list[BatchRow | None]
    progress: Progress | None
    done: int = 0

    async def put(self, i: int, row: BatchRow) -> None:
        self.rows[i] = row
        self.done += 1
        if self.progress is not None:
            market = row.symbol or "stored market"
            what = f"failed ({_short(row.error)})" if row.error else f"sharpe {fmt(row.sharpe)}, {row.trades} trades"
            label = f"{row.strategy} {market} {row.timeframe} {row.risk_profile or 'configured'}"
            await self.progress(self.done, len(self.rows), f"{self.done}/{len(self.rows)} runs done: {label}: {what}")


def _cells(req: BatchRequest, specs: dict[str, StrategySpec]) -> list[tuple[StrategySpec, PlanRequest]]:
    strategies, _, timeframes, profiles = req.axes()
    cells = []
    for name, (symbol, markets), tf, profile in itertools.product(strategies, req.places(), timeframes, profiles):
        label = " ".join(x for x in (name, symbol or "+".join(markets or ()), tf, profile) if x)
        cell = replace(req.base, symbol=symbol, markets=markets, timeframe=tf, risk_profile=profile, label=label)
        cells.append((specs[name], cell))
    return cells


def _runner(service: BacktestService, i: int, plan: RunPlan, finished: _Finished) -> Callable[[], Awaitable[None]]:
    async def go() -> None:
        try:
            out = await service.execute(plan.spec)
        except TradingMcpError as e:  # this run failed (timeout, worker error): its row says so, the rest go on
            await finished.put(i, failed_row(plan.strategy.name, _asked(plan), str(e)))
            return
        result = result_from(plan, out)
        service.save((result, out["trades"]))
        await finished.put(i, row_of(result))

    return go


def _asked(plan: RunPlan) -> PlanRequest:
    r = plan.request
    markets = tuple(r.markets) or None
    return PlanRequest(
        symbol=None if markets else r.symbol,
        markets=markets,
        exchange=r.exchange,
        timeframe=r.timeframe,
        risk_profile=r.risk_profile,
    )


async def run_batch(service: BacktestService, req: BatchRequest, progress: Progress | None = None) -> BatchReport:
    started = time.perf_counter()
    cfg = service.config_load()
    n = check_bound(req, cfg.backtest_config.max_batch_runs)
    specs = {name: await service.strategy(name) for name in req.axes()[0]}  # an unknown name fails the call
    finished = _Finished([None] * n, progress)
    runs: list[Callable[[], Awaitable[None]]] = []
    for i, (spec, cell) in enumerate(_cells(req, specs)):
        try:
            plan = build_plan(cfg=cfg, candles=service.candles, strategy=spec, req=cell)
        except BacktestError as e:  # this market or range cannot be run; wrong arguments raise for the call
            await finished.put(i, failed_row(spec.name, cell, str(e)))
            continue
        runs.append(_runner(service, i, plan, finished))
    await service.run_all(runs)
    rows = sort_rows([r for r in finished.rows if r is not None], req.sort_by)
    return _report(rows, req.sort_by, time.perf_counter() - started)


def _report(rows: list[BatchRow], sort_by: str, wall_time_s: float) -> BatchReport:
    ok = [r for r in rows if r.error is None]
    synthetic = any(r.synthetic for r in ok)
    notes = []
    if synthetic:
        notes.append("SYNTHETIC DATA in some runs (see each row's synthetic): those results are hypothetical.")
    if len(ok) > 1:
        notes.append(
            f"The best of {len(ok)} runs is chosen after the fact, so its numbers are flattered by the choice: check "
            "it out of sample with validate_strategy (walk-forward, deflated Sharpe) before trusting it."
        )
    if len(ok) < len(rows):
        notes.append(f"{len(rows) - len(ok)} run(s) failed; their rows give the reason. Nothing was stored for them.")
    return BatchReport(
        runs=len(rows),
        succeeded=len(ok),
        failed=len(rows) - len(ok),
        sort_by=sort_by,
        table=batch_table(rows),
        rows=rows,
        synthetic=synthetic,
        wall_time_s=wall_time_s,
        notes=notes,
    )

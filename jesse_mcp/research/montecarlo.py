"""Monte Carlo of a stored backtest: trades resampled, and the backtest re-run on resampled candles."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from jesse_mcp.backtesting.analysis import resampling
from jesse_mcp.backtesting.plans import BacktestError, Progress, new_id
from jesse_mcp.backtesting.results import T_PNL, BacktestResult, num
from jesse_mcp.backtesting.service import BacktestService
from jesse_mcp.backtesting.tail_report import TailRisk, daily_returns, tail_risk_of
from jesse_mcp.backtesting.workers import WorkerError
from shared.state import results as result_store
from shared.state.results import NewResult
from shared.state.store import utc_now_iso

MonteCarloMethod = Literal["trade_order", "trade_bootstrap", "candles"]


class Distribution(BaseModel):
    p5: float | None
    p25: float | None
    p50: float | None
    p75: float | None
    p95: float | None
    mean: float | None


class MonteCarloPart(BaseModel):
    method: str
    what: str
    simulations: int
    return_pct: Distribution
    max_drawdown_pct: Distribution
    probability_of_loss: float | None
    probability_drawdown_exceeds_limit: float | None
    original_return_pct: float | None
    original_max_drawdown_pct: float | None
    failed_runs: int = 0
    tail_risk: TailRisk | None = Field(
        None,
        description="Daily VaR and CVaR at the profile's var_confidence over the daily returns of every resampled "
        "path (candles only: trade resampling has no daily equity).",
    )


class MonteCarloReport(BaseModel):
    id: str
    kind: Literal["monte_carlo"] = "monte_carlo"
    created_at: str
    backtest_id: str
    strategy: str
    synthetic: bool
    drawdown_limit_pct: float = Field(description="The profile's max_drawdown the probabilities refer to, %.")
    parts: list[MonteCarloPart]
    notes: list[str]


def _dist(d: dict[str, Any] | None) -> Distribution:
    d = d or {}
    return Distribution(**{k: num(d.get(k)) for k in ("p5", "p25", "p50", "p75", "p95", "mean")})


def _dist_of(values: np.ndarray) -> Distribution:
    if len(values) == 0:
        return _dist(None)
    p = np.percentile(values, [5, 25, 50, 75, 95])
    return Distribution(
        p5=float(p[0]), p25=float(p[1]), p50=float(p[2]), p75=float(p[3]), p95=float(p[4]), mean=float(values.mean())
    )


def realised_drawdown_pct(trades: list[list[Any]], balance: float) -> float:
    equity = balance + np.concatenate([[0.0], np.cumsum([t[T_PNL] or 0.0 for t in trades])])
    return resampling.max_drawdown_fraction(equity) * 100


@dataclass(frozen=True)
class MonteCarloRequest:
    """What to resample: a stored backtest, the methods, how many paths of each kind, and the seed."""

    backtest_id: str
    methods: list[MonteCarloMethod]
    trade_simulations: int
    candle_simulations: int
    seed: int


_TRADE_METHODS = {
    "trade_order": ("shuffle", "the order of the closed trades shuffled"),
    "trade_bootstrap": ("bootstrap", "the closed trades drawn with replacement"),
}


def _trade_part(
    request: MonteCarloRequest, method: MonteCarloMethod, pnls: list[float], balance: float, limit: float
) -> MonteCarloPart:
    if len(pnls) < 2:
        raise BacktestError(
            f"Trade resampling needs at least 2 closed trades; backtest {request.backtest_id} has {len(pnls)}. Use a "
            "longer range, or method 'candles'."
        )
    how, what = _TRADE_METHODS[method]
    mc = resampling.monte_carlo_trades(
        np.array(pnls),
        balance,
        n_simulations=request.trade_simulations,
        method=how,
        seed=request.seed,
        drawdown_threshold=limit,
    )
    return MonteCarloPart(
        method=method,
        what=what,
        simulations=mc["simulations"],
        return_pct=_dist(mc["return_pct"]),
        max_drawdown_pct=_dist(mc["max_drawdown_pct"]),
        probability_of_loss=num(mc["probability_of_loss"]),
        probability_drawdown_exceeds_limit=num(mc["probability_drawdown_exceeds"]),
        original_return_pct=num(mc["original"]["return_pct"]),
        original_max_drawdown_pct=num(mc["original"]["max_drawdown_pct"]),
    )


async def monte_carlo(
    service: BacktestService, request: MonteCarloRequest, progress: Progress | None = None
) -> MonteCarloReport:
    base, trades = service.load_backtest(request.backtest_id)
    balance = base.request.starting_balance
    limit = base.risk_settings["max_drawdown"]
    notes = [n for n in base.notes if n.startswith("SYNTHETIC")]
    pnls = [t[T_PNL] or 0.0 for t in trades]
    parts = [
        _trade_part(request, method, pnls, balance, limit)
        for method in dict.fromkeys(request.methods)
        if method != "candles"
    ]
    if "candles" in request.methods:
        parts.append(await _candle_monte_carlo(service, request, base, trades, progress))
        notes.append(
            "Candle resampling re-runs the backtest on block-bootstrapped candles (1-day blocks of the same range) "
            "in Jesse's fast mode, whose trades equal the normal mode's; drawdowns there are realised (closed-trade) "
            "drawdowns."
        )
    report = MonteCarloReport(
        id=new_id("mc"),
        created_at=utc_now_iso(),
        backtest_id=request.backtest_id,
        strategy=base.request.strategy,
        synthetic=base.synthetic,
        drawdown_limit_pct=limit * 100,
        parts=parts,
        notes=notes,
    )
    summary = {"backtest_id": request.backtest_id, "methods": [p.method for p in parts], "synthetic": report.synthetic}
    result_store.save(
        service.store, NewResult(report.id, report.kind, report.strategy, summary, report.model_dump(mode="json"))
    )
    return report


async def _candle_monte_carlo(
    service: BacktestService,
    request: MonteCarloRequest,
    base: BacktestResult,
    trades: list[list[Any]],
    progress: Progress | None,
) -> MonteCarloPart:
    n, seed, limit = request.candle_simulations, request.seed, base.risk_settings["max_drawdown"]
    plan = await service.replan(base, "monte carlo")
    span_days = (plan.request.end_ms - plan.request.start_ms) / 86_400_000
    if span_days < 2:
        raise BacktestError("Candle resampling needs a backtest of at least 2 days (it resamples 1-day blocks).")
    balance = plan.request.starting_balance
    # by path index, so the statistics do not depend on the order in which the runs finish
    outcomes: dict[int, tuple[float, float, np.ndarray]] = {}
    failures: list[str] = []
    finished = 0

    async def one(i: int) -> None:
        nonlocal finished
        spec = {
            **plan.spec,
            "transform": {"kind": "bootstrap", "seed": seed + i, "block_minutes": 1440},
            "label": f"monte carlo {i + 1}/{n}",
        }
        try:
            out = await service.execute(spec)
        except (WorkerError, BacktestError) as e:  # one bad path (a failure, a timeout) must not sink the others
            failures.append(str(e))
            return
        net = num(out["metrics"].get("net_profit_percentage"))
        drawdown = realised_drawdown_pct(out["trades"], balance)
        outcomes[i] = (net if net is not None else 0.0, drawdown, daily_returns(out.get("equity") or []))
        finished += 1
        if progress is not None:
            await progress(finished, n, f"{finished} of {n} resampled runs")

    await service.run_all([partial(one, i) for i in range(n)])
    if not outcomes:
        raise BacktestError(f"Every resampled run failed; first error: {failures[0] if failures else 'unknown'}.")
    ordered = [outcomes[i] for i in sorted(outcomes)]
    r, d = np.array([x[0] for x in ordered]), np.array([x[1] for x in ordered])
    return MonteCarloPart(
        method="candles",
        what="the backtest re-run on block-bootstrapped candles",
        simulations=len(ordered),
        return_pct=_dist_of(r),
        max_drawdown_pct=_dist_of(d),
        probability_of_loss=float((r < 0).mean()),
        probability_drawdown_exceeds_limit=float((d > limit * 100).mean()),
        original_return_pct=base.performance.net_profit_pct,
        original_max_drawdown_pct=realised_drawdown_pct(trades, balance),
        failed_runs=len(failures),
        tail_risk=tail_risk_of(np.concatenate([x[2] for x in ordered]), base.risk_settings["var_confidence"]),
    )

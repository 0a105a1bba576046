"""One trial: its hyperparameters run as a backtest on every market's window, judged for feasibility (the profile's
max drawdown, a minimum number of trades) and scored by the objectives (means over the markets)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from jesse_mcp.backtesting.analysis import sharpe as sharpe_stats
from jesse_mcp.backtesting.plans import RunPlan, window_spec
from jesse_mcp.backtesting.results import performance
from jesse_mcp.optimization.models import OBJECTIVES, Figures
from shared.errors import InvalidArgumentsError


@dataclass(frozen=True)
class Window:
    lo: int
    hi: int


@dataclass(frozen=True)
class Outcome:
    """What a trial's runs gave: the figures, the objective values (None when failed or undefined), whether it is
    feasible and why not, the mean daily returns over the markets and their daily Sharpe."""

    figures: Figures | None
    values: list[float] | None
    feasible: bool
    reasons: list[str]
    returns: list[float]
    daily_sharpe: float | None

    @property
    def failed(self) -> bool:
        return self.values is None

    def constraints(self) -> list[float]:
        """Optuna's constraint values: > 0 is infeasible."""
        return [0.0 if self.feasible else 1.0]


def resolved(plan: RunPlan, params: dict[str, float]) -> dict[str, float]:
    """The trial's full hyperparameters: the configured ones with the trial's applied (checked by the strategy)."""
    return plan.strategy.resolve_hyperparameters({**plan.request.hyperparameters, **params})


def spec_for(plan: RunPlan, window: Window, hp: dict[str, float], label: str) -> dict[str, Any]:
    return window_spec(plan, window.lo, window.hi, hp, label)


def invalid(params: dict[str, float], plans: list[RunPlan]) -> str | None:
    """Why these hyperparameters cannot run (e.g. fast_period >= slow_period), or None."""
    try:
        resolved(plans[0], params)
    except InvalidArgumentsError as e:
        return f"invalid hyperparameters: {e}"
    return None


def _daily_returns(out: dict[str, Any], days: int) -> np.ndarray:
    values = np.array([v for _, v in out.get("equity") or []], dtype=float)
    if len(values) < 2:
        return np.zeros(days)  # no trades: Jesse gives no equity curve; the account stayed flat
    return values[1:] / values[:-1] - 1


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def figures(markets: list[str], outs: list[dict[str, Any]], windows: list[Window], balance: float) -> Figures:
    per: dict[str, dict[str, float | int | None]] = {}
    for market, out, w in zip(markets, outs, windows, strict=True):
        p = performance(out["metrics"], out["trades"], w.lo, w.hi, balance)
        dd = max(p.max_drawdown_pct or 0.0, out.get("intraday_drawdown_pct") or 0.0)
        per[market] = {
            "net_profit_pct": p.net_profit_pct,
            "sharpe": p.sharpe,
            "sortino": p.sortino,
            "calmar": p.calmar,
            "max_drawdown_pct": dd,
            "trades": p.trades,
        }

    def mean(key: str) -> float | None:
        vals = [v[key] for v in per.values()]
        if any(v is None for v in vals):
            return None
        return _finite(float(np.mean([float(v) for v in vals if v is not None])))

    return Figures(
        net_profit_pct=mean("net_profit_pct"),
        sharpe=mean("sharpe"),
        sortino=mean("sortino"),
        calmar=mean("calmar"),
        max_drawdown_pct=mean("max_drawdown_pct"),
        trades=sum(int(v["trades"] or 0) for v in per.values()),
        per_market=per,
    )


@dataclass(frozen=True)
class Judge:
    """How trials are judged: the objectives, the profile's max drawdown (%) and the fewest trades per market."""

    objectives: tuple[str, ...]
    max_drawdown_pct: float
    min_trades: int

    def reasons(self, fig: Figures) -> list[str]:
        why = []
        for market, f in fig.per_market.items():
            dd, trades = f["max_drawdown_pct"] or 0.0, int(f["trades"] or 0)
            if dd > self.max_drawdown_pct:
                why.append(f"{market}: max drawdown {dd:.2f} % breaches the profile's {self.max_drawdown_pct:g} %")
            if trades < self.min_trades:
                why.append(f"{market}: {trades} trades, fewer than min_trades {self.min_trades}")
        return why

    def outcome(self, markets: list[str], outs: list[dict[str, Any]], windows: list[Window], balance: float) -> Outcome:
        fig = figures(markets, outs, windows, balance)
        days = max(2, int((windows[0].hi - windows[0].lo) // 86_400_000))
        series = [_daily_returns(o, days) for o in outs]
        n = min(len(s) for s in series)
        returns = np.mean([s[:n] for s in series], axis=0) if n else np.zeros(0)
        daily = _finite(sharpe_stats.sharpe_of(returns)) if len(returns) >= 2 else None
        values = [getattr(fig, OBJECTIVES[o][0]) for o in self.objectives]
        reasons = self.reasons(fig)
        if any(v is None for v in values):
            undefined = [o for o, v in zip(self.objectives, values, strict=True) if v is None]
            return Outcome(fig, None, False, [*reasons, f"{', '.join(undefined)} undefined"], list(returns), daily)
        return Outcome(fig, [float(v) for v in values if v is not None], not reasons, reasons, list(returns), daily)


def failed(reason: str) -> Outcome:
    return Outcome(None, None, False, [reason], [], None)

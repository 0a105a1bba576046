"""Walk-forward validation of a stored backtest: in-sample selection, out-of-sample runs, deflated Sharpe."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from jesse_mcp.backtesting.analysis import sharpe
from jesse_mcp.backtesting.catalog import TIMEFRAME_MINUTES
from jesse_mcp.backtesting.plans import BacktestError, Progress, RunPlan, new_id, window_spec
from jesse_mcp.backtesting.results import fmt, num, performance
from jesse_mcp.backtesting.service import BacktestService
from shared.errors import InvalidArgumentsError
from shared.market.candles import MINUTE_MS, iso
from shared.state import results as result_store
from shared.state.results import NewResult
from shared.state.store import utc_now_iso


class FoldResult(BaseModel):
    fold: int
    in_sample: str
    out_of_sample: str
    in_sample_regimes: list[str]
    out_of_sample_regimes: list[str]
    chosen_hyperparameters: dict[str, int | float]
    in_sample_sharpe: float | None
    in_sample_deflated_sharpe: float | None = Field(
        description="Probability that the chosen configuration's in-sample Sharpe is not just the luckiest of the "
        "grid's trials (deflated Sharpe ratio; >= 0.95 is significant)."
    )
    in_sample_return_pct: float | None
    out_of_sample_sharpe: float | None
    out_of_sample_return_pct: float | None
    out_of_sample_max_drawdown_pct: float | None
    out_of_sample_trades: int | None


class ValidationReport(BaseModel):
    id: str
    kind: Literal["validation"] = "validation"
    created_at: str
    backtest_id: str
    strategy: str
    market: str
    synthetic: bool
    method: str
    trials_per_fold: int = Field(description="Hyperparameter sets tried on each in-sample window.")
    trials_total: int = Field(description="Backtests run on in-sample windows in all.")
    grid: dict[str, list[float]]
    regimes: list[dict[str, Any]] = Field(description="Market regimes found in the data (daily closes).")
    folds: list[FoldResult]
    in_sample_sharpe_mean: float | None
    out_of_sample_sharpe_mean: float | None
    out_of_sample_return_pct: float | None = Field(description="Compounded out-of-sample return, %.")
    profitable_out_of_sample_folds: int
    deflated_sharpe: dict[str, Any] = Field(
        description="Deflated Sharpe ratio of each in-sample selection (given the grid's trials) and their mean, and "
        "the probabilistic Sharpe ratio of the out-of-sample daily returns (probability the true Sharpe is > 0)."
    )
    verdict: str
    notes: list[str]


def _grid(base_hp: dict[str, float], grid: dict[str, tuple[float, ...]], spec: Any) -> list[dict[str, float]]:
    if not grid:
        return [dict(base_hp)]
    names = list(grid)
    out = []
    for values in itertools.product(*(grid[n] for n in names)):
        hp = {**base_hp, **dict(zip(names, values, strict=True))}
        try:
            out.append(spec.resolve_hyperparameters(hp))
        except InvalidArgumentsError:
            continue  # e.g. fast_period >= slow_period
    return out or [dict(base_hp)]


def _daily_returns(equity: list[list[float]], days: int = 0) -> np.ndarray:
    """Daily returns from Jesse's daily equity; a run without trades has no equity curve: `days` flat days."""
    values = np.array([v for _, v in equity], dtype=float)
    if len(values) < 2:
        return np.zeros(days)
    return values[1:] / values[:-1] - 1


DAY_MS = 86_400_000
MIN_WINDOW_DAYS = 3


@dataclass(frozen=True)
class _Regimes:
    """The market regimes detected in the data: segments counted in days from `day0_ms`."""

    day0_ms: int
    segments: list[dict[str, Any]]

    def between(self, lo: int, hi: int) -> list[str]:
        names = []
        for seg in self.segments:
            s = self.day0_ms + seg["start"] * DAY_MS
            e = self.day0_ms + (seg["end"] + 1) * DAY_MS
            if s < hi and e > lo and seg["regime"] not in names:
                names.append(seg["regime"])
        return names

    def dated(self) -> list[dict[str, Any]]:
        return [
            {
                **seg,
                "start": iso(self.day0_ms + seg["start"] * DAY_MS)[:10],
                "end": iso(self.day0_ms + seg["end"] * DAY_MS)[:10],
            }
            for seg in self.segments
        ]


@dataclass(frozen=True)
class _Walk:
    """What every fold shares: the window boundaries, the balance, the hyperparameter grid and the regimes."""

    bounds: list[int]
    balance: float
    grid: list[dict[str, float]]
    regimes: _Regimes

    @property
    def folds(self) -> int:
        return len(self.bounds) - 2

    @property
    def window_days(self) -> int:
        return int((self.bounds[1] - self.bounds[0]) // DAY_MS)


@dataclass(frozen=True)
class _Runs:
    """The backtests of a walk: every in-sample run per fold, the chosen one's index, the trials' Sharpe ratios
    and the out-of-sample run per fold."""

    in_sample: list[list[dict[str, Any]]]
    chosen: list[int]
    trial_sharpes: list[list[float]]
    out_of_sample: list[dict[str, Any]]

    def selected(self, fold: int) -> dict[str, Any]:
        return self.in_sample[fold][self.chosen[fold]]


def _windows(plan: RunPlan, folds: int) -> list[int]:
    """folds + 2 boundaries of folds + 1 equal windows, on whole candles of the timeframe."""
    req = plan.request
    tf = TIMEFRAME_MINUTES[req.timeframe] * MINUTE_MS
    segment = (req.end_ms - req.start_ms) // tf // (folds + 1)
    if segment * tf < MIN_WINDOW_DAYS * DAY_MS:
        raise BacktestError(
            f"Walk-forward with {folds} folds splits {req.start} .. {req.end} into {folds + 1} windows of "
            f"{segment * tf / DAY_MS:.1f} days; each needs at least {MIN_WINDOW_DAYS} days. Use fewer folds or a "
            "backtest over a longer range."
        )
    return [req.start_ms + i * segment * tf for i in range(folds + 2)]


def _daily_sharpe(out: dict[str, Any]) -> float:
    s = sharpe.sharpe_of(_daily_returns(out.get("equity") or []))
    return s if s is not None else float("-inf")


def _choose(in_sample: list[dict[str, Any]], fold: int) -> tuple[int, list[float]]:
    """Index of the best in-sample run (daily Sharpe, then net profit) and the finite Sharpe ratios of all."""
    ok = [(i, o) for i, o in enumerate(in_sample) if "error" not in o]
    if not ok:
        raise BacktestError(f"Every in-sample run of fold {fold + 1} failed: {in_sample[0].get('error')}")
    scored = [(_daily_sharpe(o), num(o["metrics"].get("net_profit_percentage")) or 0.0, i) for i, o in ok]
    return max(scored)[2], [s for s, _, _ in scored if np.isfinite(s)]


class _Progress:
    def __init__(self, total: int, report: Progress | None):
        self.total, self.done, self.report = total, 0, report

    async def add(self, k: int) -> None:
        self.done += k
        if self.report is not None:
            await self.report(self.done, self.total, f"walk-forward: {self.done} of {self.total} runs")


async def _run_windows(service: BacktestService, plan: RunPlan, walk: _Walk, progress: _Progress) -> _Runs:
    bounds, grid, folds = walk.bounds, walk.grid, walk.folds

    def window(lo: int, hi: int, hp: dict[str, float], label: str) -> dict[str, Any]:
        return window_spec(plan, lo, hi, hp, label)

    in_sample: list[list[dict[str, Any]]] = [[] for _ in range(folds)]

    async def run_in(f: int) -> None:
        specs = [window(bounds[f], bounds[f + 1], hp, f"fold {f + 1} in-sample") for hp in grid]
        label = f"fold {f + 1} in-sample"
        in_sample[f] = await service.run_task("run_many", {"specs": specs}, label, runs=len(specs))
        await progress.add(len(grid))

    await service.run_all([partial(run_in, f) for f in range(folds)])
    chosen, trial_sharpes = [], []
    for f in range(folds):
        best, sharpes = _choose(in_sample[f], f)
        chosen.append(best)
        trial_sharpes.append(sharpes)
    oos: list[dict[str, Any]] = [{} for _ in range(folds)]

    async def run_out(f: int) -> None:
        oos[f] = await service.execute(window(bounds[f + 1], bounds[f + 2], grid[chosen[f]], f"fold {f + 1} out"))
        await progress.add(1)

    await service.run_all([partial(run_out, f) for f in range(folds)])
    return _Runs(in_sample, chosen, trial_sharpes, oos)


def _fold(walk: _Walk, runs: _Runs, f: int, dsr: float | None) -> FoldResult:
    bounds, is_out, oos = walk.bounds, runs.selected(f), runs.out_of_sample[f]
    perf = performance(oos["metrics"], oos["trades"], bounds[f + 1], bounds[f + 2], walk.balance)
    is_perf = performance(is_out["metrics"], is_out["trades"], bounds[f], bounds[f + 1], walk.balance)
    return FoldResult(
        fold=f + 1,
        in_sample=f"{iso(bounds[f])} .. {iso(bounds[f + 1])}",
        out_of_sample=f"{iso(bounds[f + 1])} .. {iso(bounds[f + 2])}",
        in_sample_regimes=walk.regimes.between(bounds[f], bounds[f + 1]),
        out_of_sample_regimes=walk.regimes.between(bounds[f + 1], bounds[f + 2]),
        chosen_hyperparameters=walk.grid[runs.chosen[f]],
        in_sample_sharpe=is_perf.sharpe,
        in_sample_deflated_sharpe=dsr,
        in_sample_return_pct=is_perf.net_profit_pct,
        out_of_sample_sharpe=perf.sharpe,
        out_of_sample_return_pct=perf.net_profit_pct,
        out_of_sample_max_drawdown_pct=perf.max_drawdown_pct,
        out_of_sample_trades=perf.trades,
    )


def _selection_dsr(chosen: dict[str, Any], sharpes: list[float], trials: int, days: int) -> float | None:
    """Deflated Sharpe of one in-sample selection: the chosen run's daily returns against the best of `trials`."""
    returns = _daily_returns(chosen.get("equity") or [], days)
    if len(returns) < 3:
        return None
    dsr = sharpe.deflated_sharpe_ratio(
        returns, n_trials=max(trials, len(sharpes)), trial_sharpes=np.array(sharpes) if len(sharpes) >= 2 else None
    )
    return num(dsr["deflated_sharpe"])


def _out_of_sample_psr(oos: list[dict[str, Any]], days: int) -> tuple[float | None, int]:
    returns = np.concatenate([_daily_returns(o.get("equity") or [], days) for o in oos]) if oos else np.array([])
    if len(returns) < 3:
        return None, len(returns)
    return num(sharpe.deflated_sharpe_ratio(returns, n_trials=1)["probabilistic_sharpe"]), len(returns)


def _deflated(walk: _Walk, runs: _Runs) -> dict[str, Any]:
    """The report's `deflated_sharpe`: each in-sample selection's, their mean, and the out-of-sample PSR."""
    days, trials = walk.window_days, len(walk.grid)
    dsrs = [_selection_dsr(runs.selected(f), runs.trial_sharpes[f], trials, days) for f in range(walk.folds)]
    psr, oos_days = _out_of_sample_psr(runs.out_of_sample, days)
    return {
        "per_fold_in_sample": dsrs,
        "mean_in_sample": _mean(dsrs),
        "trials_per_selection": trials,
        "out_of_sample_probabilistic_sharpe": psr,
        "out_of_sample_days": oos_days,
    }


def _regimes(service: BacktestService, plan: RunPlan) -> _Regimes:
    req = plan.request
    rows = service.candles.load(req.exchange, req.symbol, req.start_ms, req.end_ms)
    day_ts, closes = sharpe.daily_closes(np.asarray(rows))
    segments = sharpe.detect_regimes(closes, window=min(14, max(2, len(closes) // 4))) if len(closes) > 8 else []
    return _Regimes((int(day_ts[0]) if len(day_ts) else req.start_ms), segments)


def _outcome(fold_results: list[FoldResult], deflated: dict[str, Any]) -> dict[str, Any]:
    """The report's summary fields over the folds, the verdict included."""
    compounded = float(np.prod([1 + (fr.out_of_sample_return_pct or 0.0) / 100 for fr in fold_results]))
    is_mean = _mean([fr.in_sample_sharpe for fr in fold_results])
    oos_mean = _mean([fr.out_of_sample_sharpe for fr in fold_results])
    profitable = sum(1 for fr in fold_results if (fr.out_of_sample_return_pct or 0) > 0)
    psr = deflated["out_of_sample_probabilistic_sharpe"]
    verdict = _verdict(deflated["mean_in_sample"], psr, is_mean, oos_mean, profitable, len(fold_results))
    return {
        "in_sample_sharpe_mean": is_mean,
        "out_of_sample_sharpe_mean": oos_mean,
        "out_of_sample_return_pct": (compounded - 1) * 100,
        "profitable_out_of_sample_folds": profitable,
        "verdict": verdict,
    }


def _notes(base_notes: list[str], fold_results: list[FoldResult]) -> list[str]:
    notes = [n for n in base_notes if n.startswith("SYNTHETIC")]
    covered = {r for fr in fold_results for r in fr.out_of_sample_regimes}
    if len(covered) < 2:
        notes.append(
            f"The out-of-sample windows cover only {', '.join(sorted(covered)) or 'no detected'} regime(s): the "
            "evidence says little about other market conditions. A longer range would cover more."
        )
    return notes


async def validate(
    service: BacktestService, backtest_id: str, folds: int, progress: Progress | None = None
) -> ValidationReport:
    started = time.perf_counter()
    base, _ = service.load_backtest(backtest_id)
    plan = await service.replan(base, "validation")
    req, strategy = plan.request, plan.strategy
    grid_spec = strategy.validation_grid if strategy.builtin else {}
    grid = _grid(req.hyperparameters, grid_spec, strategy)
    walk = _Walk(_windows(plan, folds), req.starting_balance, grid, _regimes(service, plan))
    tracker = _Progress(folds * (len(grid) + 1), progress)
    runs = await _run_windows(service, plan, walk, tracker)
    deflated = _deflated(walk, runs)
    fold_results = [_fold(walk, runs, f, deflated["per_fold_in_sample"][f]) for f in range(folds)]
    notes = _notes(base.notes, fold_results)
    notes.append(f"Ran {tracker.total} backtests in {time.perf_counter() - started:.1f} s.")
    report = ValidationReport(
        id=new_id("wf"),
        created_at=utc_now_iso(),
        backtest_id=backtest_id,
        strategy=req.strategy,
        market=f"{req.exchange}:{req.symbol}",
        synthetic=base.synthetic,
        method=f"rolling walk-forward, {folds} folds: pick the best in-sample daily Sharpe from the grid, then run it "
        "on the next window",
        trials_per_fold=len(grid),
        trials_total=len(grid) * folds,
        grid={k: list(v) for k, v in grid_spec.items()},
        regimes=walk.regimes.dated(),
        folds=fold_results,
        deflated_sharpe=deflated,
        notes=notes,
        **_outcome(fold_results, deflated),
    )
    summary = {"backtest_id": backtest_id, "verdict": report.verdict, "synthetic": report.synthetic}
    result_store.save(
        service.store, NewResult(report.id, report.kind, report.strategy, summary, report.model_dump(mode="json"))
    )
    return report


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _verdict(
    dsr: float | None, psr: float | None, is_mean: float | None, oos_mean: float | None, profitable: int, folds: int
) -> str:
    parts = []
    if dsr is None:
        parts.append("The deflated Sharpe ratio is undefined (flat or too few in-sample returns).")
    elif dsr >= 0.95:
        parts.append(
            f"Mean deflated Sharpe of the in-sample selections {dsr:.2f}: better than the luckiest of the trials."
        )
    else:
        parts.append(
            f"Mean deflated Sharpe of the in-sample selections {dsr:.2f} (< 0.95): the chosen settings are not "
            "distinguishable from the luckiest of the trials."
        )
    if psr is not None:
        parts.append(f"Out of sample, the probability that the true Sharpe is above 0 is {psr:.2f}.")
    parts.append(
        f"Mean Sharpe in-sample {fmt(is_mean)} vs out-of-sample {fmt(oos_mean)}; {profitable} of {folds} "
        "out-of-sample windows profitable."
    )
    if is_mean is not None and oos_mean is not None and is_mean > 0 and oos_mean < is_mean / 2:
        parts.append("Out-of-sample performance falls well below in-sample: a sign of overfitting.")
    if (psr is None or psr < 0.95) or (dsr is None or dsr < 0.95):
        parts.append("No statistical evidence of an edge.")
    return " ".join(parts)

"""The answer of a finished study: the chosen settings run on the unseen window(s), then in-sample, the deflated
Sharpe given every trial run, PSR, trial counts, parameter importances, the ranked trials and a verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from jesse_mcp.backtesting.analysis import sharpe as sharpe_stats
from jesse_mcp.backtesting.results import fmt
from jesse_mcp.backtesting.service import BacktestService
from jesse_mcp.optimization.models import (
    OBJECTIVES,
    DeflatedSharpe,
    Figures,
    FoldReport,
    TrialCounts,
    TrialRow,
)
from jesse_mcp.optimization.study import INTERRUPTED, Fold, Setup, kept
from jesse_mcp.optimization.trials import Window, figures, resolved, spec_for
from shared.market.candles import iso


def _state(t: FrozenTrial) -> str:
    if t.state == TrialState.COMPLETE:
        return "feasible" if t.user_attrs.get("feasible") else "infeasible"
    if t.state in (TrialState.RUNNING, TrialState.WAITING):
        return "running"
    # ran, but its objective is undefined (e.g. no trades): told to Optuna as failed, counted as infeasible
    return "infeasible" if t.user_attrs.get("figures") else "failed"


def row_of(t: FrozenTrial, objectives: tuple[str, ...]) -> TrialRow:
    fig = t.user_attrs.get("figures")
    values = dict(zip(objectives, t.values, strict=True)) if t.values is not None else None
    return TrialRow(
        number=t.number,
        state=_state(t),  # type: ignore[arg-type]
        params=dict(t.params),  # ints stay ints (IntDistribution)
        values=values,
        in_sample=Figures.model_validate(fig) if fig else None,
        reasons=list(t.user_attrs.get("reasons", [])),
    )


def counts(trials: list[FrozenTrial]) -> TrialCounts:
    states = [_state(t) for t in trials if t.state.is_finished()]
    return TrialCounts(
        total=len(states),
        feasible=states.count("feasible"),
        infeasible=states.count("infeasible"),
        failed=states.count("failed"),
    )


def _sign(objective: str) -> float:
    return -1.0 if OBJECTIVES[objective][1] == "maximize" else 1.0


def ranked(trials: list[FrozenTrial], objectives: tuple[str, ...]) -> list[FrozenTrial]:
    """Feasible completed trials, best first by the first objective; ties by trial number. Infeasible trials are
    never ranked, whatever their values."""
    ok = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("feasible")]
    return sorted(ok, key=lambda t: (_sign(objectives[0]) * t.values[0], t.number))


def pareto(trials: list[FrozenTrial], objectives: tuple[str, ...]) -> list[FrozenTrial]:
    """The non-dominated feasible trials. Written here because Optuna's front applies its own stored constraints
    only through a private helper; ours is the same dominance rule on our feasibility."""
    ok = ranked(trials, objectives)
    signs = [_sign(o) for o in objectives]

    def key(t: FrozenTrial) -> list[float]:
        return [s * v for s, v in zip(signs, t.values, strict=True)]

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))

    return [t for t in ok if not any(dominates(key(o), key(t)) for o in ok if o is not t)]


def importances(study: optuna.Study, trials: list[FrozenTrial], seed: int) -> tuple[dict[str, float] | None, str]:
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    if len(done) < 2:
        return None, "Parameter importances need at least 2 completed trials."
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances  # scikit-learn: 2.7 s to import

    try:
        found = get_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=seed), target=lambda t: t.values[0]
        )
    except (RuntimeError, ValueError) as e:  # e.g. every trial had the same params
        return None, f"Parameter importances could not be computed: {e}"
    return {k: float(v) for k, v in found.items()}, "Parameter importances: fANOVA (seeded) on the first objective."


def _returns(t: FrozenTrial) -> np.ndarray:
    return np.array(t.user_attrs.get("returns") or [], dtype=float)


def _num(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def deflated(chosen: FrozenTrial, trials: list[FrozenTrial], oos_returns: np.ndarray) -> DeflatedSharpe | None:
    """The chosen trial's in-sample daily returns deflated by every completed trial (feasible or not)."""
    returns = _returns(chosen)
    if len(returns) < 3:
        return None
    completed = [t for t in trials if t.state.is_finished() and t.user_attrs.get("figures")]  # every trial run
    sharpes = np.array([s for t in completed if (s := t.user_attrs.get("daily_sharpe")) is not None])
    n = max(len(completed), len(sharpes), 1)
    dsr = sharpe_stats.deflated_sharpe_ratio(returns, n_trials=n, trial_sharpes=sharpes if len(sharpes) >= 2 else None)
    psr_oos = None
    if len(oos_returns) >= 3:
        psr_oos = _num(sharpe_stats.deflated_sharpe_ratio(oos_returns, n_trials=1)["probabilistic_sharpe"])
    return DeflatedSharpe(
        deflated_sharpe=_num(dsr["deflated_sharpe"]),
        n_trials=n,
        trial_sharpe_variance=_num(dsr["sharpe_variance"]),
        expected_max_sharpe=_num(dsr["expected_max_sharpe"]),
        probabilistic_sharpe_in_sample=_num(dsr["probabilistic_sharpe"]),
        probabilistic_sharpe_out_of_sample=psr_oos,
    )


def _mean_returns(outs: list[dict[str, Any]], windows: list[Window]) -> np.ndarray:
    series = []
    for out, w in zip(outs, windows, strict=True):
        values = np.array([v for _, v in out.get("equity") or []], dtype=float)
        days = max(2, int((w.hi - w.lo) // 86_400_000))
        series.append(values[1:] / values[:-1] - 1 if len(values) >= 2 else np.zeros(days))
    n = min(len(s) for s in series)
    return np.mean([s[:n] for s in series], axis=0) if n else np.zeros(0)


@dataclass
class FoldResult:
    report: FoldReport
    chosen: FrozenTrial | None
    trials: list[FrozenTrial]
    study: optuna.Study


async def judge_fold(service: BacktestService, setup: Setup, fold: Fold, study: optuna.Study) -> FoldResult:
    """Choose the fold's best feasible trial and run it on the unseen window of every market."""
    trials = kept(study)
    objectives = setup.judge.objectives
    best = (pareto(trials, objectives) if len(objectives) > 1 else ranked(trials, objectives))[:1]
    chosen = best[0] if best else None
    oos_fig, dsr = None, None
    if chosen is not None:
        specs = [
            spec_for(plan, fold.out_of_sample[m], resolved(plan, chosen.params), f"out of sample {setup.markets[m]}")
            for m, plan in enumerate(setup.plans)
        ]
        outs = await service.execute_all(specs, what="out-of-sample runs")
        oos_fig = figures(setup.markets, outs, fold.out_of_sample, setup.balance)
        dsr = deflated(chosen, trials, _mean_returns(outs, fold.out_of_sample))
    w_in, w_out = fold.in_sample[0], fold.out_of_sample[0]
    report = FoldReport(
        fold=fold.index + 1,
        in_sample=f"{iso(w_in.lo)} .. {iso(w_in.hi)}",
        out_of_sample=f"{iso(w_out.lo)} .. {iso(w_out.hi)}",
        chosen_trial=chosen.number if chosen else None,
        chosen_hyperparameters=resolved(setup.plans[0], chosen.params) if chosen else None,
        in_sample_figures=Figures.model_validate(chosen.user_attrs["figures"]) if chosen else None,
        out_of_sample_figures=oos_fig,
        trials=counts(trials),
        deflated_sharpe=dsr,
    )
    return FoldResult(report, chosen, trials, study)


def combine(figs: list[Figures]) -> Figures | None:
    """Several folds' figures: means of the ratios and returns, the worst drawdown, all trades (each fold's markets
    are in its FoldReport)."""
    if not figs:
        return None
    if len(figs) == 1:
        return figs[0]  # a holdout: the one window, with its markets

    def mean(key: str) -> float | None:
        vals = [getattr(f, key) for f in figs]
        return None if any(v is None for v in vals) else float(np.mean(vals))

    return Figures(
        net_profit_pct=mean("net_profit_pct"),
        sharpe=mean("sharpe"),
        sortino=mean("sortino"),
        calmar=mean("calmar"),
        max_drawdown_pct=max((f.max_drawdown_pct or 0.0) for f in figs),
        trades=sum(f.trades for f in figs),
    )


def verdict(oos: Figures | None, ins: Figures | None, dsr: DeflatedSharpe | None, limit_pct: float) -> str:
    if oos is None or ins is None:
        return (
            "No feasible trial: no settings to propose. Use a longer range of data, relax min_trades, or try another "
            "strategy."
        )
    holds = (
        (oos.net_profit_pct or 0.0) > 0
        and (oos.sharpe or 0.0) > 0
        and (oos.max_drawdown_pct or 0.0) <= limit_pct
        and (ins.sharpe is None or ins.sharpe <= 0 or (oos.sharpe or 0.0) >= ins.sharpe / 2)
    )
    head = "Holds out of sample" if holds else "Does not hold out of sample"
    parts = [
        f"{head}: unseen-period net profit {fmt(oos.net_profit_pct)} %, Sharpe {fmt(oos.sharpe)}, max drawdown "
        f"{fmt(oos.max_drawdown_pct)} %, {oos.trades} trades (in-sample Sharpe {fmt(ins.sharpe)})."
    ]
    if dsr is not None and dsr.deflated_sharpe is not None:
        luck = "beats" if dsr.deflated_sharpe >= 0.95 else "is not distinguishable from"
        parts.append(
            f"Deflated Sharpe {dsr.deflated_sharpe:.2f} over {dsr.n_trials} trials: the in-sample winner {luck} the "
            "luckiest of the trials."
        )
    if dsr is None or dsr.deflated_sharpe is None or dsr.deflated_sharpe < 0.95 or not holds:
        parts.append("No statistical evidence of an edge yet.")
    return " ".join(parts)


def pages(rows: list[TrialRow], offset: int, limit: int) -> tuple[list[TrialRow], bool]:
    return rows[offset : offset + limit], offset + limit < len(rows)


def interrupted_count(study: optuna.Study) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False) if t.user_attrs.get(INTERRUPTED))

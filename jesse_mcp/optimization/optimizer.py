"""An optimization from request to report: plan every market (one fixed warm-up for the whole space, so every
trial runs on the same candles), split the range (holdout or walk-forward folds), run each fold's study, judge it
out of sample, and assemble the answer. Nothing here writes the configuration or stores a backtest result: the
in-sample winner can never count as promotion evidence."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from optuna.distributions import IntDistribution
from optuna.storages import RDBStorage

from jesse_mcp.backtesting.catalog import TIMEFRAME_MINUTES
from jesse_mcp.backtesting.plans import BacktestError, Progress, RunPlan
from jesse_mcp.backtesting.service import BacktestService
from jesse_mcp.optimization import report as rep
from jesse_mcp.optimization.models import Adoption, OptimizationReport, OptimizeRequest
from jesse_mcp.optimization.space import build_space, describe
from jesse_mcp.optimization.study import Fold, Setup, Ticker, optimize_fold, skipped_invalid
from jesse_mcp.optimization.trials import Judge, Window
from shared.errors import InvalidArgumentsError
from shared.market.candles import MINUTE_MS

DAY_MS = 86_400_000
MIN_WINDOW_DAYS = 2


def _warmup(plan_spec: Any, space: dict[str, Any]) -> int:
    """Warm-up candles for the largest periods the space allows, so no trial moves the range."""
    hp = {**{p.name: p.default for p in plan_spec.params}}
    for name, d in space.items():
        if name.endswith("_period") and isinstance(d, IntDistribution):
            hp[name] = d.high
    return plan_spec.warmup_candles(hp)


def _windows(plan: RunPlan, req: OptimizeRequest) -> list[tuple[Window, Window]]:
    r = plan.request
    tf = TIMEFRAME_MINUTES[r.timeframe] * MINUTE_MS
    candles = (r.end_ms - r.start_ms) // tf
    if req.validation == "holdout":
        split = r.start_ms + int(candles * (1 - req.holdout_pct / 100)) * tf
        pairs = [(Window(r.start_ms, split), Window(split, r.end_ms))]
    else:
        seg = candles // (req.folds + 1)
        b = [r.start_ms + i * seg * tf for i in range(req.folds + 2)]
        pairs = [(Window(b[f], b[f + 1]), Window(b[f + 1], b[f + 2])) for f in range(req.folds)]
    shortest = min(min(a.hi - a.lo, b.hi - b.lo) for a, b in pairs)
    if shortest < MIN_WINDOW_DAYS * DAY_MS:
        how = f"holdout_pct {req.holdout_pct:g}" if req.validation == "holdout" else f"{req.folds} folds"
        raise BacktestError(
            f"{r.exchange}:{r.symbol} {r.start} .. {r.end} split by {how} gives a window of "
            f"{shortest / DAY_MS:.1f} days; each in-sample and out-of-sample window needs at least {MIN_WINDOW_DAYS} "
            "days. Use a longer range, fewer folds or another holdout_pct."
        )
    return pairs


def _portfolio_of(symbols: tuple[str | None, ...]) -> tuple[str, ...]:
    named = tuple(s for s in symbols if s)
    if len(named) < 2:
        raise InvalidArgumentsError("portfolio: true trades several markets in one account; name at least 2 symbols.")
    return named


async def prepare(
    service: BacktestService, req: OptimizeRequest, study_id: str, batch_size: int, max_trials: int
) -> Setup:
    """The study planned and checked: strategy, space, markets, windows, limits. Raises before any trial runs."""
    strategy = await service.strategy(req.strategy)
    space = build_space(strategy, req.space)
    if len(req.objectives) == 2 and req.sampler == "tpe":
        req = replace(req, sampler="nsga2")  # the default sampler for two objectives
    warm = _warmup(strategy, space)
    try:
        base = replace(req.base, warmup_candles=warm, label="optimization")
        if req.portfolio:  # one portfolio backtest per trial: every market in one account
            plans = [await service.plan(req.strategy, replace(base, markets=_portfolio_of(req.symbols)))]
        else:
            plans = [await service.plan(req.strategy, replace(base, symbol=s)) for s in req.symbols]
    except BacktestError as e:
        periods = {k: d.high for k, d in space.items() if k.endswith("_period") and isinstance(d, IntDistribution)}
        raise BacktestError(
            f"{e} The warm-up ({warm} candles) is sized for the largest periods the search space allows "
            f"({', '.join(f'{k} {v}' for k, v in periods.items()) or 'none'}), so every trial runs on the same "
            "candles; narrow those ranges in space to need less data."
        ) from None
    markets = [f"{p.request.exchange}:{'+'.join(p.request.markets) or p.request.symbol}" for p in plans]
    if len(set(markets)) != len(markets):
        raise InvalidArgumentsError(f"The markets repeat ({', '.join(markets)}); name each symbol once.")
    pairs = [_windows(p, req) for p in plans]
    folds = [Fold(f, [pm[f][0] for pm in pairs], [pm[f][1] for pm in pairs]) for f in range(len(pairs[0]))]
    per_fold = req.trials if req.trials is not None else max(1, max_trials // len(folds))
    limit_pct = plans[0].risk.settings.model_dump()["max_drawdown"] * 100
    return Setup(
        id=study_id,
        plans=plans,
        markets=markets,
        space=space,
        folds=folds,
        judge=Judge(tuple(req.objectives), limit_pct, req.min_trades),
        sampler=req.sampler,
        seed=req.seed,
        trials=per_fold,
        budget_s=req.budget_s / len(folds) if req.budget_s is not None else None,
        batch_size=batch_size,
    )


def study_record(setup: Setup, req: OptimizeRequest) -> dict[str, Any]:
    return {
        "sampler": setup.sampler,
        "seed": setup.seed,
        "batch_size": setup.batch_size,
        "trials_per_fold": setup.trials,
        "budget_s": req.budget_s,
        "space": describe(setup.space),
        "validation": req.validation,
        "holdout_pct": req.holdout_pct if req.validation == "holdout" else None,
        "folds": len(setup.folds),
        "min_trades": req.min_trades,
        "max_drawdown_pct": setup.judge.max_drawdown_pct,
        "storage": "optimization/studies.db (Optuna RDB storage), study names <id>:fold<k>",
    }


async def run(
    service: BacktestService,
    storage: RDBStorage,
    setup: Setup,
    req: OptimizeRequest,
    progress: Progress | None = None,
) -> OptimizationReport:
    started = time.perf_counter()
    ticker = Ticker(setup.trials * len(setup.folds), progress)
    judged = []
    for fold in setup.folds:
        study = await optimize_fold(service, storage, setup, fold, ticker)
        judged.append(await rep.judge_fold(service, setup, fold, study))
    return assemble(setup, req, judged, time.perf_counter() - started)


def _adoption(setup: Setup, chosen: dict[str, float] | None) -> Adoption | None:
    if chosen is None:
        return None
    name = setup.plans[0].strategy.name
    return Adoption(
        changes={f"strategies.{name}.custom_params": chosen},
        note="Proposed only: the configuration was not changed. Adopting these values with update_config does not "
        "make them promotion evidence; run a new backtest with the configured values for that (optimizer trials "
        "are not stored as backtests).",
    )


def assemble(setup: Setup, req: OptimizeRequest, judged: list[rep.FoldResult], wall_s: float) -> OptimizationReport:
    objectives = setup.judge.objectives
    last = judged[-1]
    oos = rep.combine([j.report.out_of_sample_figures for j in judged if j.report.out_of_sample_figures])
    ins = rep.combine([j.report.in_sample_figures for j in judged if j.report.in_sample_figures])
    all_trials = [t for j in judged for t in j.trials]
    counts = rep.counts(all_trials)
    imp, imp_note = rep.importances(last.study, last.trials, setup.seed)
    rows = [rep.row_of(t, objectives) for t in rep.ranked(last.trials, objectives)]
    front = [rep.row_of(t, objectives) for t in rep.pareto(last.trials, objectives)] if len(objectives) > 1 else None
    dsr = last.report.deflated_sharpe
    notes = [imp_note]
    if any(p.market.synthetic for p in setup.plans):
        notes.insert(0, "SYNTHETIC DATA: the candles were generated, so these results are hypothetical.")
    if req.validation == "walk_forward":
        notes.append("Walk-forward: each fold optimized its in-sample window; the proposal is the last fold's choice.")
    if req.budget_s is not None:
        notes.append("A time budget ends the study by the clock, so a rerun may run a different number of trials.")
    notes.append("Trials are backtests judged here; none is stored as a backtest result or counts as evidence.")
    skipped = sum(skipped_invalid(j.study) for j in judged)
    if skipped:
        notes.append(
            f"{skipped} proposed combinations were hyperparameters the strategy refuses (e.g. fast_period not below "
            "slow_period); they were skipped without a backtest and do not count as trials."
        )
    return OptimizationReport(
        id=setup.id,
        status="finished",
        strategy=setup.plans[0].strategy.name,
        markets=setup.markets,
        timeframe=setup.plans[0].request.timeframe,
        risk_profile=setup.plans[0].request.risk_profile,
        synthetic=any(p.market.synthetic for p in setup.plans),
        objectives=list(objectives),
        verdict=rep.verdict(oos, ins, dsr, setup.judge.max_drawdown_pct),
        out_of_sample=oos,
        in_sample=ins,
        chosen_hyperparameters=last.report.chosen_hyperparameters,
        deflated_sharpe=dsr,
        trials=counts,
        importances=imp,
        pareto_front=front,
        top_trials=rows,
        offset=0,
        limit=len(rows),
        more=False,
        folds=[j.report for j in judged],
        adopt=_adoption(setup, last.report.chosen_hyperparameters),
        study=study_record(setup, req),
        notes=notes,
        wall_time_s=wall_s,
    )

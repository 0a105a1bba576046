"""Stress tests, Monte Carlo and walk-forward validation of a stored backtest.

Each starts from a stored backtest (same strategy, market, range, hyperparameters and risk settings), runs the
variations in the worker pool in parallel, and stores one result of its own kind.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Literal

import anyio
import numpy as np
from pydantic import BaseModel, Field

from jesse_mcp import analysis
from jesse_mcp.backtest import BacktestError, BacktestService, Progress, RunPlan, new_id
from jesse_mcp.results import T_PNL, BacktestResult, fmt, num, performance
from jesse_mcp.strategy_catalog import TIMEFRAME_MINUTES
from jesse_mcp.workers import WorkerError
from shared.candles import MINUTE_MS, iso
from shared.errors import InvalidArgumentsError
from shared.store import utc_now_iso

Scenario = Literal["flash_crash", "volatility_x3", "gap_down", "crash_2020"]
SCENARIOS: dict[str, tuple[str, dict[str, Any], int, str]] = {
    # name: (analysis function, parameters, minutes needed after the start point, description)
    "flash_crash": ("flash_crash", {"depth": 0.30, "minutes": 60}, 60 + 360, "-30 % in one hour, half recovered"),
    "volatility_x3": ("volatility_shock", {"factor": 3.0}, 7 * 1440, "volatility x3 for 7 days"),
    "gap_down": ("gap_down", {"gap": 0.15}, 1, "a -15 % gap at one candle"),
    "crash_2020": ("crash_2020", {}, 7 * 1440, "March-2020 shape: -50 % in 36 h, volatility x3, partial recovery"),
}


# --- stress tests ---------------------------------------------------------------------------------------------
class ScenarioOutcome(BaseModel):
    scenario: str
    description: str
    applied: dict[str, Any] | None = Field(description="Where and how the candles were changed.")
    at: str | None = Field(description="UTC time the scenario starts.")
    net_profit_pct: float | None
    max_drawdown_pct: float | None
    sharpe: float | None
    trades: int | None
    largest_loss_pct_of_equity: float | None
    max_drawdown_breached: bool | None = Field(description="Drawdown went past the profile's max_drawdown.")
    emergency_stop_breached: bool | None = Field(description="Drawdown reached the emergency_stop level.")
    entries_halted_at: str | None
    violations: list[str]
    skipped: str | None = Field(None, description="Why the scenario could not run on this range.")


class StressReport(BaseModel):
    id: str
    kind: Literal["stress_test"] = "stress_test"
    created_at: str
    backtest_id: str
    strategy: str
    market: str
    synthetic: bool
    risk_profile: str
    limits: dict[str, float]
    baseline: ScenarioOutcome
    scenarios: list[ScenarioOutcome]
    table: str
    verdict: str
    notes: list[str]


def _outcome(name: str, description: str, result: BacktestResult, applied: Any, at: str | None) -> ScenarioOutcome:
    p, a = result.performance, result.risk_adherence
    return ScenarioOutcome(
        scenario=name,
        description=description,
        applied=applied,
        at=at,
        net_profit_pct=p.net_profit_pct,
        max_drawdown_pct=p.max_drawdown_pct,
        sharpe=p.sharpe,
        trades=p.trades,
        largest_loss_pct_of_equity=a.largest_loss_pct_of_equity,
        max_drawdown_breached=None if a.drawdown_within_profile is None else not a.drawdown_within_profile,
        emergency_stop_breached=a.emergency_stop_breached,
        entries_halted_at=a.entries_halted_at,
        violations=a.violations,
    )


def _scenario_offset(plan: RunPlan, needed_minutes: int, at_ms: int | None) -> int:
    req = plan.request
    span = (req.end_ms - req.start_ms) // MINUTE_MS
    if needed_minutes >= span:
        raise BacktestError(f"needs {needed_minutes / 1440:.1f} days of the range, which has {span / 1440:.1f}")
    if at_ms is None:
        offset = min(span // 2, span - needed_minutes - 1)
    else:
        offset = (at_ms - req.start_ms) // MINUTE_MS
        if not 1 <= offset <= span - needed_minutes - 1:
            latest = iso(req.start_ms + (span - needed_minutes - 1) * MINUTE_MS)
            raise BacktestError(
                f"the start point {iso(at_ms)} must lie between {iso(req.start_ms + MINUTE_MS)} and {latest} (it "
                f"needs {needed_minutes / 1440:.1f} days after it, inside {req.start} .. {req.end})"
            )
    return int(offset)


def _breach_table(rows: list[ScenarioOutcome]) -> str:
    yn = {True: "YES", False: "no", None: "n/a"}
    lines = [
        "| Scenario | Net profit % | Max drawdown % | Largest loss % equity | Past max_drawdown | Emergency stop |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        if r.skipped:
            lines.append(f"| {r.scenario} | skipped: {r.skipped} | | | | |")
            continue
        lines.append(
            f"| {r.scenario} | {fmt(r.net_profit_pct)} | {fmt(r.max_drawdown_pct)} | "
            f"{fmt(r.largest_loss_pct_of_equity, 3)} | {yn[r.max_drawdown_breached]} | "
            f"{yn[r.emergency_stop_breached]} |"
        )
    return "\n".join(lines)


async def stress_test(
    service: BacktestService,
    backtest_id: str,
    scenarios: list[Scenario],
    at_ms: int | None,
    progress: Progress | None = None,
) -> StressReport:
    base, _ = service.load_backtest(backtest_id)
    plan = await service.replan(base, "stress")
    runs: list[tuple[str, dict[str, Any]]] = []
    skipped: dict[str, str] = {}
    for name in dict.fromkeys(scenarios):
        func, params, needed, _ = SCENARIOS[name]
        try:
            offset = _scenario_offset(plan, needed, at_ms)
        except BacktestError as e:
            skipped[name] = str(e)
            continue
        transform = {"kind": "stress", "scenario": func, "offset_minutes": offset, "params": params}
        runs.append((name, {**plan.spec, "transform": transform, "label": f"stress {name}"}))
    outs: dict[str, dict[str, Any]] = {}
    done = dict.fromkeys([n for n, _ in runs], 0.0)
    total = float(plan.request.end_ms - plan.request.start_ms) * max(1, len(runs))

    async def run(name: str, spec: dict[str, Any]) -> None:
        async def each(d: float, _t: float, _m: str) -> None:
            done[name] = d
            if progress is not None:
                await progress(sum(done.values()), total, f"{len(runs)} scenarios running")

        outs[name] = await service.execute(spec, each)

    async with anyio.create_task_group() as tg:
        for name, spec in runs:
            tg.start_soon(run, name, spec)

    from jesse_mcp.backtest import result_from

    results = []
    for name in dict.fromkeys(scenarios):
        description = SCENARIOS[name][3]
        if name in skipped:
            results.append(
                ScenarioOutcome(
                    scenario=name,
                    description=description,
                    applied=None,
                    at=None,
                    net_profit_pct=None,
                    max_drawdown_pct=None,
                    sharpe=None,
                    trades=None,
                    largest_loss_pct_of_equity=None,
                    max_drawdown_breached=None,
                    emergency_stop_breached=None,
                    entries_halted_at=None,
                    violations=[],
                    skipped=skipped[name],
                )
            )
            continue
        out = outs[name]
        r = result_from(plan, out, result_id="-")
        applied = out.get("transform") or {}
        at = iso(applied["first_ms"]) if applied.get("first_ms") is not None else None
        results.append(_outcome(name, description, r, applied, at))
    baseline = _outcome("baseline", "the stored backtest, unchanged candles", base, None, None)
    breached = [r.scenario for r in results if r.max_drawdown_breached]
    stopped = [r.scenario for r in results if r.emergency_stop_breached]
    limits = base.risk_adherence.limits
    if stopped:
        verdict = (
            f"Emergency stop ({limits['emergency_stop_pct']:g} % drawdown) reached under: {', '.join(stopped)}. "
            "In live trading these would halt all trading."
        )
    elif breached:
        verdict = (
            f"Drawdown went past the profile's max_drawdown ({limits['max_drawdown_pct']:g} %) under: "
            f"{', '.join(breached)}; the emergency stop was not reached."
        )
    else:
        verdict = (
            f"Every scenario that ran stayed within max_drawdown ({limits['max_drawdown_pct']:g} %) and the emergency "
            f"stop ({limits['emergency_stop_pct']:g} %)."
        )
    notes = [n for n in base.notes if n.startswith("SYNTHETIC")]
    notes.append(
        "Scenarios are applied to the stored candles of the same range; the strategy, sizing and settings are the "
        "stored backtest's."
    )
    report = StressReport(
        id=new_id("st"),
        created_at=utc_now_iso(),
        backtest_id=backtest_id,
        strategy=base.request.strategy,
        market=f"{base.request.exchange}:{base.request.symbol}",
        synthetic=base.synthetic,
        risk_profile=base.request.risk_profile,
        limits=limits,
        baseline=baseline,
        scenarios=results,
        table=_breach_table([baseline, *results]),
        verdict=verdict,
        notes=notes,
    )
    service.store.result_save(
        report.id,
        report.kind,
        report.strategy,
        {"backtest_id": backtest_id, "verdict": verdict, "synthetic": report.synthetic},
        report.model_dump(mode="json"),
    )
    return report


# --- Monte Carlo ----------------------------------------------------------------------------------------------
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
    return analysis.max_drawdown_fraction(equity) * 100


async def monte_carlo(
    service: BacktestService,
    backtest_id: str,
    methods: list[MonteCarloMethod],
    trade_simulations: int,
    candle_simulations: int,
    seed: int,
    progress: Progress | None = None,
) -> MonteCarloReport:
    base, trades = service.load_backtest(backtest_id)
    balance = base.request.starting_balance
    limit = base.risk_settings["max_drawdown"]
    parts: list[MonteCarloPart] = []
    notes = [n for n in base.notes if n.startswith("SYNTHETIC")]
    pnls = [t[T_PNL] or 0.0 for t in trades]
    for method in dict.fromkeys(methods):
        if method == "candles":
            continue
        if len(pnls) < 2:
            raise BacktestError(
                f"Trade resampling needs at least 2 closed trades; backtest {backtest_id} has {len(pnls)}. Use a "
                "longer range, or method 'candles'."
            )
        mc = analysis.monte_carlo_trades(
            np.array(pnls),
            balance,
            n_simulations=trade_simulations,
            method="shuffle" if method == "trade_order" else "bootstrap",
            seed=seed,
            drawdown_threshold=limit,
        )
        parts.append(
            MonteCarloPart(
                method=method,
                what="the order of the closed trades shuffled"
                if method == "trade_order"
                else "the closed trades drawn with replacement",
                simulations=mc["simulations"],
                return_pct=_dist(mc["return_pct"]),
                max_drawdown_pct=_dist(mc["max_drawdown_pct"]),
                probability_of_loss=num(mc["probability_of_loss"]),
                probability_drawdown_exceeds_limit=num(mc["probability_drawdown_exceeds"]),
                original_return_pct=num(mc["original"]["return_pct"]),
                original_max_drawdown_pct=num(mc["original"]["max_drawdown_pct"]),
            )
        )
    if "candles" in methods:
        parts.append(await _candle_monte_carlo(service, base, trades, candle_simulations, seed, limit, progress))
        notes.append(
            "Candle resampling re-runs the backtest on block-bootstrapped candles (1-day blocks of the same range) "
            "in Jesse's fast mode, whose trades equal the normal mode's; drawdowns there are realised (closed-trade) "
            "drawdowns."
        )
    report = MonteCarloReport(
        id=new_id("mc"),
        created_at=utc_now_iso(),
        backtest_id=backtest_id,
        strategy=base.request.strategy,
        synthetic=base.synthetic,
        drawdown_limit_pct=limit * 100,
        parts=parts,
        notes=notes,
    )
    service.store.result_save(
        report.id,
        report.kind,
        report.strategy,
        {"backtest_id": backtest_id, "methods": [p.method for p in parts], "synthetic": report.synthetic},
        report.model_dump(mode="json"),
    )
    return report


async def _candle_monte_carlo(
    service: BacktestService,
    base: BacktestResult,
    trades: list[list[Any]],
    n: int,
    seed: int,
    limit: float,
    progress: Progress | None,
) -> MonteCarloPart:
    plan = await service.replan(base, "monte carlo")
    span_days = (plan.request.end_ms - plan.request.start_ms) / 86_400_000
    if span_days < 2:
        raise BacktestError("Candle resampling needs a backtest of at least 2 days (it resamples 1-day blocks).")
    balance = plan.request.starting_balance
    returns: list[float] = []
    drawdowns: list[float] = []
    failures: list[str] = []
    finished = 0
    limiter = anyio.CapacityLimiter(max(1, service.pool.size))

    async def one(i: int) -> None:
        nonlocal finished
        spec = {
            **plan.spec,
            "fast_mode": True,
            "transform": {"kind": "bootstrap", "seed": seed + i, "block_minutes": 1440},
            "label": f"monte carlo {i + 1}/{n}",
        }
        async with limiter:
            try:
                out = await service.execute(spec)
            except WorkerError as e:  # one bad path must not sink the others; it is counted and reported
                failures.append(str(e))
                return
        net = num(out["metrics"].get("net_profit_percentage"))
        returns.append(net if net is not None else 0.0)
        drawdowns.append(realised_drawdown_pct(out["trades"], balance))
        finished += 1
        if progress is not None:
            await progress(finished, n, f"{finished} of {n} resampled runs")

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    if not returns:
        raise BacktestError(f"Every resampled run failed; first error: {failures[0] if failures else 'unknown'}.")
    r, d = np.array(returns), np.array(drawdowns)
    return MonteCarloPart(
        method="candles",
        what="the backtest re-run on block-bootstrapped candles",
        simulations=len(returns),
        return_pct=_dist_of(r),
        max_drawdown_pct=_dist_of(d),
        probability_of_loss=float((r < 0).mean()),
        probability_drawdown_exceeds_limit=float((d > limit * 100).mean()),
        original_return_pct=base.performance.net_profit_pct,
        original_max_drawdown_pct=realised_drawdown_pct(trades, balance),
        failed_runs=len(failures),
    )


# --- walk-forward validation ----------------------------------------------------------------------------------
class FoldResult(BaseModel):
    fold: int
    in_sample: str
    out_of_sample: str
    in_sample_regimes: list[str]
    out_of_sample_regimes: list[str]
    chosen_hyperparameters: dict[str, int | float]
    in_sample_sharpe: float | None
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
    trials_total: int = Field(description="Configurations tried in all: the trial count the deflation uses.")
    grid: dict[str, list[float]]
    regimes: list[dict[str, Any]] = Field(description="Market regimes found in the data (daily closes).")
    folds: list[FoldResult]
    in_sample_sharpe_mean: float | None
    out_of_sample_sharpe_mean: float | None
    out_of_sample_return_pct: float | None = Field(description="Compounded out-of-sample return, %.")
    profitable_out_of_sample_folds: int
    deflated_sharpe: dict[str, Any] = Field(
        description="Deflated Sharpe ratio of the out-of-sample daily returns, given the number of trials."
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


def _daily_returns(equity: list[list[float]]) -> np.ndarray:
    values = np.array([v for _, v in equity], dtype=float)
    if len(values) < 2:
        return np.array([])
    return values[1:] / values[:-1] - 1


def _regimes_between(regimes: list[dict[str, Any]], day0_ms: int, lo: int, hi: int) -> list[str]:
    names = []
    for seg in regimes:
        s = day0_ms + seg["start"] * 86_400_000
        e = day0_ms + (seg["end"] + 1) * 86_400_000
        if s < hi and e > lo and seg["regime"] not in names:
            names.append(seg["regime"])
    return names


async def validate(
    service: BacktestService, backtest_id: str, folds: int, progress: Progress | None = None
) -> ValidationReport:
    base, _ = service.load_backtest(backtest_id)
    plan = await service.replan(base, "validation")
    req = plan.request
    tf = TIMEFRAME_MINUTES[req.timeframe] * MINUTE_MS
    bars = (req.end_ms - req.start_ms) // tf
    segment = bars // (folds + 1)
    min_days = 3
    if segment * tf < min_days * 86_400_000:
        raise BacktestError(
            f"Walk-forward with {folds} folds splits {req.start} .. {req.end} into {folds + 1} windows of "
            f"{segment * tf / 86_400_000:.1f} days; each needs at least {min_days} days. Use fewer folds or a "
            "backtest over a longer range."
        )
    bounds = [req.start_ms + i * segment * tf for i in range(folds + 2)]
    spec_meta = plan.strategy
    grid = _grid(req.hyperparameters, spec_meta.validation_grid if spec_meta.builtin else {}, spec_meta)
    rows = service.candles.load(req.exchange, req.symbol, req.start_ms, req.end_ms)
    day_ts, closes = analysis.daily_closes(np.asarray(rows))
    regimes = analysis.detect_regimes(closes, window=min(14, max(2, len(closes) // 4))) if len(closes) > 8 else []

    def window_spec(lo: int, hi: int, hp: dict[str, float], label: str) -> dict[str, Any]:
        return {**plan.spec, "start_ms": lo, "end_ms": hi, "hyperparameters": hp, "label": label}

    started = time.perf_counter()
    total_runs = folds * (len(grid) + 1)
    finished = 0

    async def note_progress(k: int) -> None:
        nonlocal finished
        finished += k
        if progress is not None:
            await progress(finished, total_runs, f"walk-forward: {finished} of {total_runs} runs")

    in_sample: list[list[dict[str, Any]]] = [[] for _ in range(folds)]

    async def run_is(f: int) -> None:
        specs = [window_spec(bounds[f], bounds[f + 1], hp, f"fold {f + 1} in-sample") for hp in grid]
        in_sample[f] = await service.run_task("run_many", {"specs": specs}, f"fold {f + 1} in-sample")
        await note_progress(len(grid))

    async with anyio.create_task_group() as tg:
        for f in range(folds):
            tg.start_soon(run_is, f)

    def daily_sharpe(out: dict[str, Any]) -> float:
        s = analysis.sharpe_of(_daily_returns(out.get("equity") or []))
        return s if s is not None else float("-inf")

    chosen: list[int] = []
    trial_sharpes: list[float] = []
    for f in range(folds):
        ok = [(i, o) for i, o in enumerate(in_sample[f]) if "error" not in o]
        if not ok:
            raise BacktestError(f"Every in-sample run of fold {f + 1} failed: {in_sample[f][0].get('error')}")
        scored = [(daily_sharpe(o), num(o["metrics"].get("net_profit_percentage")) or 0.0, i) for i, o in ok]
        trial_sharpes += [s for s, _, _ in scored if np.isfinite(s)]
        chosen.append(max(scored)[2])

    oos: list[dict[str, Any]] = [{} for _ in range(folds)]

    async def run_oos(f: int) -> None:
        spec = window_spec(bounds[f + 1], bounds[f + 2], grid[chosen[f]], f"fold {f + 1} out-of-sample")
        oos[f] = await service.execute(spec)
        await note_progress(1)

    async with anyio.create_task_group() as tg:
        for f in range(folds):
            tg.start_soon(run_oos, f)

    fold_results, oos_returns = [], []
    compounded = 1.0
    day0 = int(day_ts[0]) if len(day_ts) else req.start_ms
    for f in range(folds):
        is_out, o = in_sample[f][chosen[f]], oos[f]
        perf = performance(o["metrics"], o["trades"], bounds[f + 1], bounds[f + 2], req.starting_balance)
        oos_returns.append(_daily_returns(o["equity"]))
        compounded *= 1 + (perf.net_profit_pct or 0.0) / 100
        is_perf = performance(is_out["metrics"], is_out["trades"], bounds[f], bounds[f + 1], req.starting_balance)
        fold_results.append(
            FoldResult(
                fold=f + 1,
                in_sample=f"{iso(bounds[f])} .. {iso(bounds[f + 1])}",
                out_of_sample=f"{iso(bounds[f + 1])} .. {iso(bounds[f + 2])}",
                in_sample_regimes=_regimes_between(regimes, day0, bounds[f], bounds[f + 1]),
                out_of_sample_regimes=_regimes_between(regimes, day0, bounds[f + 1], bounds[f + 2]),
                chosen_hyperparameters=grid[chosen[f]],
                in_sample_sharpe=is_perf.sharpe,
                in_sample_return_pct=is_perf.net_profit_pct,
                out_of_sample_sharpe=perf.sharpe,
                out_of_sample_return_pct=perf.net_profit_pct,
                out_of_sample_max_drawdown_pct=perf.max_drawdown_pct,
                out_of_sample_trades=perf.trades,
            )
        )
    returns = np.concatenate(oos_returns) if oos_returns else np.array([])
    dsr: dict[str, Any] = {"deflated_sharpe": None, "note": "fewer than 3 out-of-sample days"}
    if len(returns) >= 3:
        # every configuration tried on every in-sample window counts as a trial (the conservative count)
        dsr = analysis.deflated_sharpe_ratio(
            returns,
            n_trials=max(len(grid) * folds, len(trial_sharpes)),
            trial_sharpes=np.array(trial_sharpes) if len(trial_sharpes) >= 2 else None,
        )
    is_mean = _mean([fr.in_sample_sharpe for fr in fold_results])
    oos_mean = _mean([fr.out_of_sample_sharpe for fr in fold_results])
    profitable = sum(1 for fr in fold_results if (fr.out_of_sample_return_pct or 0) > 0)
    verdict = _verdict(dsr.get("deflated_sharpe"), is_mean, oos_mean, profitable, folds)
    notes = [n for n in base.notes if n.startswith("SYNTHETIC")]
    covered = {r for fr in fold_results for r in fr.out_of_sample_regimes}
    if len(covered) < 2:
        notes.append(
            f"The out-of-sample windows cover only {', '.join(sorted(covered)) or 'no detected'} regime(s): the "
            "evidence says little about other market conditions. A longer range would cover more."
        )
    notes.append(f"Ran {total_runs} backtests in {time.perf_counter() - started:.1f} s.")
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
        grid={k: list(v) for k, v in (spec_meta.validation_grid if spec_meta.builtin else {}).items()},
        regimes=[
            {
                **seg,
                "start": iso(day0 + seg["start"] * 86_400_000)[:10],
                "end": iso(day0 + seg["end"] * 86_400_000)[:10],
            }
            for seg in regimes
        ],
        folds=fold_results,
        in_sample_sharpe_mean=is_mean,
        out_of_sample_sharpe_mean=oos_mean,
        out_of_sample_return_pct=(compounded - 1) * 100,
        profitable_out_of_sample_folds=profitable,
        deflated_sharpe={k: (num(v) if isinstance(v, float) else v) for k, v in dsr.items()},
        verdict=verdict,
        notes=notes,
    )
    service.store.result_save(
        report.id,
        report.kind,
        report.strategy,
        {"backtest_id": backtest_id, "verdict": verdict, "synthetic": report.synthetic},
        report.model_dump(mode="json"),
    )
    return report


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _verdict(dsr: float | None, is_mean: float | None, oos_mean: float | None, profitable: int, folds: int) -> str:
    parts = []
    if dsr is None:
        parts.append("The deflated Sharpe ratio is undefined (flat or too few out-of-sample returns).")
    elif dsr >= 0.95:
        parts.append(f"Deflated Sharpe {dsr:.2f}: the out-of-sample Sharpe is unlikely to be luck from the trials.")
    else:
        parts.append(
            f"Deflated Sharpe {dsr:.2f} (< 0.95): the out-of-sample Sharpe is not distinguishable from the best of "
            "that many random trials; no evidence of an edge."
        )
    parts.append(
        f"Mean Sharpe in-sample {fmt(is_mean)} vs out-of-sample {fmt(oos_mean)}; {profitable} of {folds} "
        "out-of-sample windows profitable."
    )
    if is_mean is not None and oos_mean is not None and is_mean > 0 and oos_mean < is_mean / 2:
        parts.append("Out-of-sample performance falls well below in-sample: a sign of overfitting.")
    return " ".join(parts)

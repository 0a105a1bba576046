"""Stress tests: a stored backtest re-run on shocked candles, with breaches of max_drawdown and emergency_stop."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from jesse_mcp.backtesting.plans import BacktestError, Progress, RunPlan, new_id, result_from
from jesse_mcp.backtesting.results import BacktestResult, fmt
from jesse_mcp.backtesting.service import BacktestService
from shared.market.candles import MINUTE_MS, iso
from shared.state import results as result_store
from shared.state.results import NewResult
from shared.state.store import utc_now_iso

Scenario = Literal["flash_crash", "volatility_x3", "gap_down", "crash_2020"]
SCENARIOS: dict[str, tuple[str, dict[str, Any], int, str]] = {
    # name: (analysis function, parameters, minutes needed after the start point, description)
    "flash_crash": ("flash_crash", {"depth": 0.30, "minutes": 60}, 60 + 360, "-30 % in one hour, half recovered"),
    "volatility_x3": ("volatility_shock", {"factor": 3.0}, 7 * 1440, "volatility x3 for 7 days"),
    "gap_down": ("gap_down", {"gap": 0.15}, 1, "a -15 % gap at one candle"),
    "crash_2020": ("crash_2020", {}, 7 * 1440, "March-2020 shape: -50 % in 36 h, volatility x3, partial recovery"),
}


class ScenarioOutcome(BaseModel):
    scenario: str
    description: str
    applied: dict[str, Any] | None = Field(None, description="Where and how the candles were changed.")
    at: str | None = Field(None, description="UTC time the scenario starts.")
    net_profit_pct: float | None = None
    max_drawdown_pct: float | None = None
    max_drawdown_intraday_pct: float | None = None
    sharpe: float | None = None
    trades: int | None = None
    largest_loss_pct_of_equity: float | None = None
    daily_var_pct: float | None = Field(None, description="Historical daily VaR at the profile's var_confidence, %.")
    daily_cvar_pct: float | None = Field(None, description="Historical daily CVaR (expected shortfall), %.")
    max_drawdown_breached: bool | None = Field(None, description="Drawdown went past the profile's max_drawdown.")
    emergency_stop_breached: bool | None = Field(None, description="Drawdown reached the emergency_stop level.")
    entries_halted_at: str | None = None
    violations: list[str] = Field(default_factory=list)
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
    requested_at: str | None = Field(
        None, description="The start point the caller chose for the scenarios; None: each scenario's default placement."
    )
    baseline: ScenarioOutcome
    scenarios: list[ScenarioOutcome]
    table: str
    verdict: str
    notes: list[str]


def _outcome(name: str, description: str, result: BacktestResult, applied: Any, at: str | None) -> ScenarioOutcome:
    p, a = result.performance, result.risk_adherence
    hist = result.tail_risk.estimates[0] if result.tail_risk else None  # historical comes first
    return ScenarioOutcome(
        scenario=name,
        description=description,
        applied=applied,
        at=at,
        net_profit_pct=p.net_profit_pct,
        max_drawdown_pct=p.max_drawdown_pct,
        max_drawdown_intraday_pct=a.max_drawdown_intraday_pct,
        sharpe=p.sharpe,
        trades=p.trades,
        largest_loss_pct_of_equity=a.largest_loss_pct_of_equity,
        daily_var_pct=hist.var_pct if hist else None,
        daily_cvar_pct=hist.cvar_pct if hist else None,
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
        "| Scenario | Net profit % | Max drawdown % (daily) | Max drawdown % (intraday) | Largest loss % equity "
        "| Daily CVaR % | Past max_drawdown | Emergency stop |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        if r.skipped:
            lines.append(f"| {r.scenario} | skipped: {r.skipped} | | | | | | |")
            continue
        lines.append(
            f"| {r.scenario} | {fmt(r.net_profit_pct)} | {fmt(r.max_drawdown_pct)} | "
            f"{fmt(r.max_drawdown_intraday_pct)} | "
            f"{fmt(r.largest_loss_pct_of_equity, 3)} | {fmt(r.daily_cvar_pct)} | {yn[r.max_drawdown_breached]} | "
            f"{yn[r.emergency_stop_breached]} |"
        )
    return "\n".join(lines)


def _verdict(results: list[ScenarioOutcome], limits: dict[str, float]) -> str:
    breached = [r.scenario for r in results if r.max_drawdown_breached]
    stopped = [r.scenario for r in results if r.emergency_stop_breached]
    if stopped:
        return (
            f"Emergency stop ({limits['emergency_stop_pct']:g} % drawdown) reached under: {', '.join(stopped)}. "
            "In live trading these would halt all trading."
        )
    if breached:
        return (
            f"Drawdown went past the profile's max_drawdown ({limits['max_drawdown_pct']:g} %) under: "
            f"{', '.join(breached)}; the emergency stop was not reached."
        )
    return (
        f"Every scenario that ran stayed within max_drawdown ({limits['max_drawdown_pct']:g} %) and the emergency "
        f"stop ({limits['emergency_stop_pct']:g} %)."
    )


def _scenario_specs(
    plan: RunPlan, scenarios: list[str], at_ms: int | None
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The run spec of each scenario that fits the range, and why the others do not."""
    specs: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for name in scenarios:
        func, params, needed, _ = SCENARIOS[name]
        try:
            offset = _scenario_offset(plan, needed, at_ms)
        except BacktestError as e:
            skipped[name] = str(e)
            continue
        transform = {"kind": "stress", "scenario": func, "offset_minutes": offset, "params": params}
        specs[name] = {**plan.spec, "transform": transform, "label": f"stress {name}"}
    return specs, skipped


async def stress_test(
    service: BacktestService,
    backtest_id: str,
    scenarios: list[Scenario],
    at_ms: int | None,
    progress: Progress | None = None,
) -> StressReport:
    base, _ = service.load_backtest(backtest_id)
    plan = await service.replan(base, "stress")
    names = list(dict.fromkeys(scenarios))
    specs, skipped = _scenario_specs(plan, names, at_ms)
    outs = dict(zip(specs, await service.execute_all(list(specs.values()), progress, "scenarios"), strict=True))
    results = []
    for name in names:
        description = SCENARIOS[name][3]
        if name in skipped:
            results.append(ScenarioOutcome(scenario=name, description=description, skipped=skipped[name]))
            continue
        applied = outs[name].get("transform") or {}
        at = iso(applied["first_ms"]) if applied.get("first_ms") is not None else None
        results.append(_outcome(name, description, result_from(plan, outs[name], result_id="-"), applied, at))
    limits = base.risk_adherence.limits
    verdict = _verdict(results, limits)
    baseline = _outcome("baseline", "the stored backtest, unchanged candles", base, None, None)
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
        requested_at=iso(at_ms) if at_ms is not None else None,
        baseline=baseline,
        scenarios=results,
        table=_breach_table([baseline, *results]),
        verdict=verdict,
        notes=notes,
    )
    summary = {"backtest_id": backtest_id, "verdict": verdict, "synthetic": report.synthetic}
    result_store.save(
        service.store, NewResult(report.id, report.kind, report.strategy, summary, report.model_dump(mode="json"))
    )
    return report

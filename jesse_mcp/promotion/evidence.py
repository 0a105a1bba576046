"""The gates of exploration -> paper, measured on stored backtests and stress tests.

A backtest counts only when it ran the strategy as it would trade now: its current code (sha256), the configured
hyperparameters, the effective profile and risk settings with the profile's leverage, a fee per fill no lower than the
paper account's (Jesse models no slippage), enough recent days of market data fetched from an exchange (files and
generated candles do not count unless the configuration says so; a window long past cannot be picked). Of the
backtests that count, the newest is judged, never the best of several runs; its newest stress test must have run every
scenario at its default placement with no emergency stop reached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from jesse_mcp.backtesting.catalog import fingerprint
from jesse_mcp.backtesting.plans import DEFAULT_FEE
from jesse_mcp.backtesting.results import BacktestResult
from jesse_mcp.backtesting.service import BacktestService
from jesse_mcp.research.stress import SCENARIOS, StressReport
from shared.config.models import TradingConfig
from shared.config.resolve import resolve_risk
from shared.errors import TradingMcpError
from shared.market.candles import iso_ms
from shared.state import results as result_store
from shared.state.store import Store

DAY_S = 86_400.0
MAX_FILLED_GAP_SHARE = 0.01  # flat filler candles above 1 % of the range make the data more invented than recorded
TOLERANCE = 1e-12
# gates that say whether a backtest ran the strategy as it trades now; the performance gates judge what it found
SETTING_GATES = (
    "backtest_recent",
    "backtest_profile",
    "backtest_code",
    "backtest_hyperparameters",
    "backtest_costs",
    "backtest_range",
    "backtest_real_data",
)
STRESS_THRESHOLD = (
    f"the newest stress test of this backtest ran every scenario ({', '.join(SCENARIOS)}) at its default placement "
    "and none reached the emergency stop"
)


class Gate(BaseModel):
    name: str
    passed: bool
    value: bool | int | float | str | None = Field(description="What the store holds for this gate.")
    threshold: str = Field(description="What the gate requires.")
    detail: str


def gate(name: str, passed: bool, value: Any, threshold: str, detail: str) -> Gate:
    return Gate(name=name, passed=passed, value=value, threshold=threshold, detail=detail)


@dataclass(frozen=True)
class CurrentCode:
    """The strategy as it would trade now; `problem` says why it could not be read (then no backtest counts)."""

    sha256: str | None
    hyperparameters: dict[str, float] | None
    problem: str | None = None


async def current_code(
    backtests: BacktestService, config: Callable[[], TradingConfig], strategy: str | None, to_stage: str
) -> CurrentCode | None:
    """The strategy's code and configured hyperparameters now: what a backtest must have run to count."""
    if strategy is None or to_stage != "paper":
        return None
    try:
        spec = await backtests.strategy(strategy)
        configured = config().strategies[strategy].custom_params
        return CurrentCode(fingerprint(spec), spec.resolve_hyperparameters(configured))
    except (TradingMcpError, KeyError, OSError) as e:
        return CurrentCode(None, None, str(e))


@dataclass(frozen=True)
class Expected:
    profile: str
    settings: dict[str, float]
    code: CurrentCode
    min_fee: float


@dataclass
class BacktestJudgement:
    gates: list[Gate]
    evidence: dict[str, str]
    considered: int
    notes: list[str]


def expected_of(cfg: TradingConfig, strategy: str, code: CurrentCode) -> Expected:
    risk = resolve_risk(cfg, strategy, mode="backtest")
    min_fee = max(DEFAULT_FEE, cfg.paper.fee_bps / 10_000)
    return Expected(risk.risk_profile, risk.settings.model_dump(), code, min_fee)


def judge_backtests(cfg: TradingConfig, store: Store, strategy: str, code: CurrentCode, now_s: float):
    """The newest recent backtest that ran the current settings, judged on every gate (with its stress test)."""
    want = expected_of(cfg, strategy, code)
    summaries, _ = result_store.listed(store, "backtest", strategy, limit=500)
    dated = [(s.id, age) for s in summaries if (age := _age_days(s.created_at, now_s)) is not None]
    recent = [(rid, age) for rid, age in dated if age <= cfg.promotion.backtest_max_age_days]
    if not recent:
        if not dated:
            return BacktestJudgement(_no_backtest_gates(cfg, strategy, want), {}, 0, [])
        recent = dated[:1]  # measure the newest one anyway: its age fails, the rest are still reported
    # every recent backtest read and checked once: the judged one, and the others for the "lucky draw" note
    runs = [(rid, _load(store, rid), age) for rid, age in recent]
    checked = [(rid, bt, _setting_gates(cfg, bt, rid, age, want)) for rid, bt, age in runs]
    qualifying = [(rid, bt, gates) for rid, bt, gates in checked if all(g.passed for g in gates)]
    result_id, record, gates = qualifying[0] if qualifying else checked[0]
    newer = [rid for rid, _, _ in checked].index(result_id)
    notes = []
    if newer:
        notes.append(
            f"judged {result_id}, the newest backtest that ran the current code and settings; {newer} newer "
            "one(s) ran other settings and do not count."
        )
    if record is None:
        return BacktestJudgement(gates, {}, len(checked), notes)
    gates += _performance_gates(cfg, record, want)
    evidence = {"backtest": record.id}
    if cfg.promotion.require_stress_test:
        stress_gate, stress_id = _stress_gate(store, strategy, record.id)
        gates.append(stress_gate)
        if stress_id:
            evidence["stress_test"] = stress_id
    others = [bt for rid, bt, _ in qualifying if rid != result_id and bt is not None]
    if others:
        missed = sum(not all(g.passed for g in _performance_gates(cfg, bt, want)) for bt in others)
        notes.append(
            f"{missed} of {len(others)} other recent backtest(s) with the same code and settings missed a "
            "performance gate" + ("; the judged run may be a lucky draw." if missed else ".")
        )
    return BacktestJudgement(gates, evidence, len(checked), notes)


def _load(store: Store, result_id: str) -> BacktestResult | None:
    try:
        return BacktestResult.model_validate(result_store.get(store, result_id).record)
    except ValidationError:
        return None


def _age_days(created_at: str, now_s: float) -> float | None:
    try:
        return (now_s - iso_ms(created_at) / 1000) / DAY_S
    except ValueError:
        return None


def _profile_threshold(want: Expected) -> str:
    leverage = want.settings["max_leverage"]
    return f"the effective profile {want.profile}, its current risk settings and leverage {leverage:g}"


def _drawdown_threshold(settings: dict[str, float]) -> str:
    return f"<= {settings['max_drawdown'] * 100:g} % (the profile's max_drawdown)"


def _data_threshold(cfg: TradingConfig) -> str:
    allowed = [
        label
        for label, on in (
            ("generated candles", cfg.promotion.backtest_allow_synthetic),
            ("CSV imports", cfg.promotion.backtest_allow_csv),
        )
        if on
    ]
    extra = f" ({' and '.join(allowed)} allowed by the configuration)" if allowed else ""
    return f"candles fetched from an exchange{extra}, filled gaps <= {MAX_FILLED_GAP_SHARE * 100:g} % of the range"


def _no_backtest_gates(cfg: TradingConfig, strategy: str, want: Expected) -> list[Gate]:
    g = cfg.promotion
    missing = f"no stored backtest of '{strategy}'; run backtest with strategy '{strategy}' under its profile"
    none = "no backtest to measure"
    gates = [
        gate("backtest_recent", False, None, f"<= {g.backtest_max_age_days:g} days old", missing),
        gate("backtest_profile", False, None, _profile_threshold(want), none),
        gate("backtest_code", False, None, "the strategy's current code", none),
        gate("backtest_hyperparameters", False, None, "the configured hyperparameters", none),
        gate("backtest_costs", False, None, f"fee >= {want.min_fee:g} per fill", none),
        gate("backtest_range", False, None, f">= {g.backtest_min_days:g} recent days", none),
        gate("backtest_real_data", False, None, _data_threshold(cfg), none),
        gate("backtest_max_drawdown", False, None, _drawdown_threshold(want.settings), none),
        gate("backtest_sharpe", False, None, f">= {g.backtest_min_sharpe:g}", none),
        gate("backtest_trades", False, None, f">= {g.backtest_min_trades}", none),
    ]
    if g.require_stress_test:
        gates.append(gate("stress_test_passed", False, None, STRESS_THRESHOLD, "no backtest to stress-test yet"))
    return gates


def _setting_gates(
    cfg: TradingConfig, bt: BacktestResult | None, result_id: str, age_days: float, want: Expected
) -> list[Gate]:
    if bt is None:
        return [gate("backtest_readable", False, result_id, "a readable stored backtest", "the record is malformed")]
    g = cfg.promotion
    r = bt.request
    return [
        gate(
            "backtest_recent",
            age_days <= g.backtest_max_age_days,
            round(age_days, 2),
            f"<= {g.backtest_max_age_days:g} days old",
            f"backtest {bt.id} is {age_days:.1f} days old",
        ),
        _profile_gate(bt, want),
        _code_gate(bt, want.code),
        _hyperparameter_gate(bt, want.code),
        gate(
            "backtest_costs",
            r.fee_rate >= want.min_fee - TOLERANCE,
            r.fee_rate,
            f"fee >= {want.min_fee:g} per fill (the default, or paper.fee_bps if higher)",
            f"fee {r.fee_rate:g} per fill",
        ),
        _range_gate(bt, g.backtest_min_days, g.backtest_max_data_age_days),
        _data_gate(cfg, bt),
    ]


def _profile_gate(bt: BacktestResult, want: Expected) -> Gate:
    differs = [
        f"{k} {bt.risk_settings.get(k)!r} vs {v:g}"
        for k, v in want.settings.items()
        if bt.risk_settings.get(k) is None or abs(float(bt.risk_settings[k]) - v) > TOLERANCE
    ]
    leverage = bt.request.leverage
    if abs(leverage - want.settings["max_leverage"]) > TOLERANCE:
        differs.append(f"leverage {leverage:g} vs {want.settings['max_leverage']:g}")
    return gate(
        "backtest_profile",
        bt.request.risk_profile == want.profile and not differs,
        bt.request.risk_profile,
        _profile_threshold(want),
        f"run under {bt.request.risk_profile}"
        + (f"; settings differ: {', '.join(differs)}" if differs else ", same settings"),
    )


def _code_gate(bt: BacktestResult, code: CurrentCode) -> Gate:
    ran = bt.request.strategy_sha256
    if code.problem or code.sha256 is None:
        detail = f"the strategy's current code cannot be read: {code.problem or 'unknown'}"
    elif ran is None:
        detail = "the backtest did not record which code ran"
    else:
        detail = "same code" if ran == code.sha256 else "the strategy's code changed since this backtest ran"
    return gate(
        "backtest_code",
        ran is not None and ran == code.sha256,
        (ran or "")[:12] or None,
        "the strategy's current code (sha256)",
        detail,
    )


def _hyperparameter_gate(bt: BacktestResult, code: CurrentCode) -> Gate:
    ran, want = bt.request.hyperparameters, code.hyperparameters
    if want is None:
        return gate("backtest_hyperparameters", False, None, "the configured hyperparameters", "unknown: see code")
    differs = [
        f"{k} {ran.get(k)!r} vs {v!r}"
        for k, v in sorted(want.items())
        if k not in ran or abs(float(ran[k]) - float(v)) > TOLERANCE
    ] + [f"{k} {ran[k]!r} (not a hyperparameter now)" for k in sorted(set(ran) - set(want))]
    return gate(
        "backtest_hyperparameters",
        not differs,
        len(differs),
        "the configured hyperparameters (defaults with strategies.<name>.custom_params)",
        "same hyperparameters" if not differs else "differ: " + ", ".join(differs),
    )


def _range_gate(bt: BacktestResult, min_days: float, max_data_age_days: float) -> Gate:
    """Long enough, and ending near when it ran: the caller cannot pick a favourable window from the past."""
    days = (bt.request.end_ms - bt.request.start_ms) / 1000 / DAY_S
    ran_ms = iso_ms(bt.created_at)
    behind = (ran_ms - bt.request.end_ms) / 1000 / DAY_S
    problems = []
    if days < min_days - TOLERANCE:
        problems.append(f"{days:.1f} days is too short")
    if behind > max_data_age_days + TOLERANCE:
        problems.append(f"the data ends {behind:.0f} days before the run")
    return gate(
        "backtest_range",
        not problems,
        round(days, 2),
        f">= {min_days:g} days, ending at most {max_data_age_days:g} days before the backtest ran",
        f"{bt.request.start} .. {bt.request.end}: {days:.1f} days" + (f"; {'; '.join(problems)}" if problems else ""),
    )


def _data_gate(cfg: TradingConfig, bt: BacktestResult) -> Gate:
    g = cfg.promotion
    files = [s for s in bt.data.sources if s.startswith("csv:")]
    problems = []
    if bt.synthetic and not g.backtest_allow_synthetic:
        problems.append("synthetic (generated) candles")
    if files and not g.backtest_allow_csv:
        problems.append(f"candles imported from a file ({', '.join(files)})")
    share = bt.data.filled_gaps_in_range / bt.data.candles_1m if bt.data.candles_1m else 0.0
    if share > MAX_FILLED_GAP_SHARE:
        problems.append(f"{share * 100:.2f} % of the minutes are filled gaps")
    return gate(
        "backtest_real_data",
        not problems,
        not problems,
        _data_threshold(cfg),
        "; ".join(problems) or f"{bt.data.exchange} candles from {', '.join(bt.data.sources) or '-'}",
    )


def _performance_gates(cfg: TradingConfig, bt: BacktestResult, want: Expected) -> list[Gate]:
    g = cfg.promotion
    perf, adh = bt.performance, bt.risk_adherence
    dd = max(perf.max_drawdown_pct or 0.0, adh.max_drawdown_intraday_pct or 0.0)
    return [
        gate(
            "backtest_max_drawdown",
            perf.max_drawdown_pct is not None and dd <= want.settings["max_drawdown"] * 100,
            round(dd, 4),
            _drawdown_threshold(want.settings),
            f"largest drawdown {dd:.2f} % (daily {_pct(perf.max_drawdown_pct)}, intraday "
            f"{_pct(adh.max_drawdown_intraday_pct)})",
        ),
        gate(
            "backtest_sharpe",
            perf.sharpe is not None and perf.sharpe >= g.backtest_min_sharpe,
            perf.sharpe,
            f">= {g.backtest_min_sharpe:g}",
            f"Sharpe {perf.sharpe:.2f}" if perf.sharpe is not None else "Sharpe undefined",
        ),
        gate(
            "backtest_trades",
            perf.trades >= g.backtest_min_trades,
            perf.trades,
            f">= {g.backtest_min_trades}",
            f"{perf.trades} closed trades",
        ),
    ]


def _stress_gate(store: Store, strategy: str, backtest_id: str) -> tuple[Gate, str | None]:
    stresses, _ = result_store.listed(store, "stress_test", strategy, limit=500)
    newest = next((s.id for s in stresses if s.summary.get("backtest_id") == backtest_id), None)
    if newest is None:
        why = f"no stored stress test of {backtest_id}; run stress_test with backtest_id '{backtest_id}'"
        return gate("stress_test_passed", False, None, STRESS_THRESHOLD, why), None
    try:
        st = StressReport.model_validate(result_store.get(store, newest).record)
    except ValidationError:
        return gate("stress_test_passed", False, newest, STRESS_THRESHOLD, f"stress test {newest} is malformed"), None
    problems = []
    ran = {s.scenario: s for s in st.scenarios}
    missing = [name for name in SCENARIOS if name not in ran]
    if missing:
        problems.append(f"scenarios not run: {', '.join(missing)}")
    skipped = [s.scenario for s in st.scenarios if s.skipped]
    if skipped:
        problems.append(f"skipped (range too short): {', '.join(skipped)}")
    if st.requested_at is not None:
        problems.append(f"the start point was chosen ({st.requested_at}); the default placement is judged")
    stopped = [s.scenario for s in st.scenarios if not s.skipped and s.emergency_stop_breached is not False]
    if stopped:
        problems.append(f"emergency stop reached or not measured under {', '.join(stopped)}")
    detail = f"stress test {st.id}: " + ("; ".join(problems) or f"{len(ran)} scenarios, no emergency stop")
    passed = not problems
    return gate("stress_test_passed", passed, st.id, STRESS_THRESHOLD, detail), (st.id if passed else None)


def _pct(value: float | None) -> str:
    return f"{value:.2f} %" if value is not None else "not measured"

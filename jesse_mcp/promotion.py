"""Stage transitions. Promotion is gated by evidence read from the store (stored backtests, stress tests, the paper
ledger) and, for live trading and for the global stage, by a person's confirmation. No tool argument can satisfy a
gate. Demotion needs no evidence and works at any time, also while trading is halted.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from jesse_mcp.paper import PaperService
from jesse_mcp.results import BacktestResult
from jesse_mcp.stress import StressReport
from shared.candles import iso_ms
from shared.config import STAGE_RANK, STAGES, TradingConfig
from shared.config_store import ConfigStore
from shared.errors import ConfigError, ConfirmationRequired, PolicyDenied
from shared.resolve import effective_stage, resolve_risk
from shared.store import Store

DAY_S = 86_400.0
Confirm = Callable[[str, str], Awaitable[str]]


class Gate(BaseModel):
    name: str
    passed: bool
    value: bool | int | float | str | None = Field(description="What the store holds for this gate.")
    threshold: str = Field(description="What the gate requires.")
    detail: str


class PromotionReport(BaseModel):
    strategy: str | None = Field(description="None: the global stage.")
    from_stage: str
    to_stage: str
    promoted: bool
    gates: list[Gate] = Field(description="Every gate, with the measured value and its threshold.")
    evidence: dict[str, str] = Field(description="Ids of the stored results the gates were measured on.")
    candidates_considered: int = Field(description="Stored backtests of the strategy that were examined.")
    confirmation: str = Field(description="'not needed', or how the person confirmed.")
    effective_stage: str | None = Field(None, description="The strategy's effective stage after the change.")
    notes: list[str] = Field(default_factory=list)


class StageChange(BaseModel):
    strategy: str | None
    from_stage: str
    to_stage: str
    effective_stage: str
    reason: str


def _g(name: str, passed: bool, value: Any, threshold: str, detail: str) -> Gate:
    return Gate(name=name, passed=passed, value=value, threshold=threshold, detail=detail)


def gates_text(gates: list[Gate]) -> str:
    return " ".join(f"[{'pass' if g.passed else 'FAIL'}] {g.name}: {g.detail} (needs {g.threshold})." for g in gates)


def _backtest_gates(
    cfg: TradingConfig, store: Store, strategy: str, now_s: float
) -> tuple[list[Gate], dict[str, str], int]:
    gates_cfg = cfg.promotion
    risk = resolve_risk(cfg, strategy, mode="backtest")
    settings = risk.settings.model_dump()
    summaries, _ = store.result_list("backtest", strategy, limit=500)
    stresses, _ = store.result_list("stress_test", strategy, limit=500)
    stress_by_backtest: dict[str, list[str]] = {}
    for s in stresses:
        stress_by_backtest.setdefault(str(s.get("backtest_id")), []).append(s["id"])
    dated = []
    for s in summaries:
        try:
            created = iso_ms(s["created_at"]) / 1000
        except (KeyError, ValueError):
            continue
        dated.append((s["id"], (now_s - created) / DAY_S))
    recent = [(rid, age) for rid, age in dated if age <= gates_cfg.backtest_max_age_days]
    if not recent and dated:  # measure the newest one anyway: its age fails, the rest are still reported
        recent = dated[:1]
    if not recent:
        return _no_backtest_gates(cfg, strategy, risk.risk_profile, settings), {}, 0
    best: tuple[int, list[Gate], dict[str, str]] | None = None
    for result_id, age_days in recent:
        gates, evidence = _gates_of(
            cfg, store, strategy, result_id, age_days, settings, risk.risk_profile, stress_by_backtest
        )
        passed = sum(g.passed for g in gates)
        if best is None or passed > best[0]:
            best = (passed, gates, evidence)
        if passed == len(gates):
            break
    assert best is not None
    return best[1], best[2], len(recent)


STRESS_THRESHOLD = "a stress test of this backtest in which no scenario reached the emergency stop"


def _profile_threshold(profile: str) -> str:
    return f"the strategy's effective profile {profile} and its current risk settings"


def _drawdown_threshold(settings: dict[str, float]) -> str:
    return f"<= {settings['max_drawdown'] * 100:g} % (the profile's max_drawdown)"


def _data_threshold(cfg: TradingConfig) -> str:
    allowed = (
        " (synthetic allowed by promotion.backtest_allow_synthetic)" if cfg.promotion.backtest_allow_synthetic else ""
    )
    return "market candles" + allowed


def _no_backtest_gates(cfg: TradingConfig, strategy: str, profile: str, settings: dict[str, float]) -> list[Gate]:
    g = cfg.promotion
    missing = f"no stored backtest of '{strategy}'; run backtest with strategy '{strategy}' under its profile {profile}"
    none = "no backtest to measure"
    gates = [
        _g("backtest_recent", False, None, f"<= {g.backtest_max_age_days:g} days old", missing),
        _g("backtest_profile", False, None, _profile_threshold(profile), none),
        _g("backtest_max_drawdown", False, None, _drawdown_threshold(settings), none),
        _g("backtest_sharpe", False, None, f">= {g.backtest_min_sharpe:g}", none),
        _g("backtest_trades", False, None, f">= {g.backtest_min_trades}", none),
        _g("backtest_real_data", False, None, _data_threshold(cfg), none),
    ]
    if g.require_stress_test:
        gates.append(
            _g(
                "stress_test_passed",
                False,
                None,
                STRESS_THRESHOLD,
                "no backtest to stress-test yet",
            )
        )
    return gates


def _gates_of(
    cfg: TradingConfig,
    store: Store,
    strategy: str,
    result_id: str,
    age_days: float,
    settings: dict[str, float],
    profile: str,
    stress_by_backtest: dict[str, list[str]],
) -> tuple[list[Gate], dict[str, str]]:
    g = cfg.promotion
    record, _ = store.result_get(result_id)
    try:
        bt = BacktestResult.model_validate(record)
    except ValidationError:
        return [_g("backtest_readable", False, result_id, "a readable stored backtest", "the record is malformed")], {}
    gates = [
        _g(
            "backtest_recent",
            age_days <= g.backtest_max_age_days,
            round(age_days, 2),
            f"<= {g.backtest_max_age_days:g} days old",
            f"backtest {bt.id} is {age_days:.1f} days old",
        )
    ]
    differs = [
        f"{k} {bt.risk_settings.get(k)!r} vs {v:g}"
        for k, v in settings.items()
        if bt.risk_settings.get(k) is None or abs(float(bt.risk_settings[k]) - v) > 1e-12
    ]
    same_profile = bt.request.risk_profile == profile and not differs
    gates.append(
        _g(
            "backtest_profile",
            same_profile,
            bt.request.risk_profile,
            _profile_threshold(profile),
            f"run under {bt.request.risk_profile}"
            + (f"; settings differ: {', '.join(differs)}" if differs else ", same settings"),
        )
    )
    perf, adh = bt.performance, bt.risk_adherence
    dd = max(perf.max_drawdown_pct or 0.0, adh.max_drawdown_intraday_pct or 0.0)
    limit_pct = settings["max_drawdown"] * 100
    gates.append(
        _g(
            "backtest_max_drawdown",
            perf.max_drawdown_pct is not None and dd <= limit_pct,
            round(dd, 4),
            _drawdown_threshold(settings),
            f"largest drawdown {dd:.2f} % (daily {perf.max_drawdown_pct}, intraday {adh.max_drawdown_intraday_pct})",
        )
    )
    gates.append(
        _g(
            "backtest_sharpe",
            perf.sharpe is not None and perf.sharpe >= g.backtest_min_sharpe,
            perf.sharpe,
            f">= {g.backtest_min_sharpe:g}",
            f"Sharpe {perf.sharpe if perf.sharpe is not None else 'undefined'}",
        )
    )
    gates.append(
        _g(
            "backtest_trades",
            perf.trades >= g.backtest_min_trades,
            perf.trades,
            f">= {g.backtest_min_trades}",
            f"{perf.trades} closed trades",
        )
    )
    gates.append(
        _g(
            "backtest_real_data",
            g.backtest_allow_synthetic or not bt.synthetic,
            not bt.synthetic,
            _data_threshold(cfg),
            "synthetic (generated) candles" if bt.synthetic else f"{bt.data.exchange} candles",
        )
    )
    evidence = {"backtest": bt.id}
    if g.require_stress_test:
        passed_id, why = None, "no stored stress test of this backtest; run stress_test with its id"
        for sid in stress_by_backtest.get(bt.id, []):
            try:
                st = StressReport.model_validate(store.result_get(sid)[0])
            except ValidationError:
                continue
            ran = [s for s in st.scenarios if not s.skipped]
            stopped = [s.scenario for s in ran if s.emergency_stop_breached]
            if ran and not stopped:
                passed_id, why = st.id, f"stress test {st.id}: {len(ran)} scenario(s), none reached the emergency stop"
                break
            why = (
                f"stress test {st.id}: emergency stop reached under {', '.join(stopped)}"
                if stopped
                else f"stress test {st.id}: no scenario could run on the range"
            )
        gates.append(
            _g(
                "stress_test_passed",
                passed_id is not None,
                passed_id,
                STRESS_THRESHOLD,
                why,
            )
        )
        if passed_id:
            evidence["stress_test"] = passed_id
    return gates, evidence


def _paper_gates(cfg: TradingConfig, paper: PaperService, strategy: str) -> tuple[list[Gate], dict[str, str]]:
    g = cfg.promotion
    perf = paper.performance(strategy)
    return [
        _g(
            "paper_days",
            perf.days >= g.paper_min_days,
            perf.days,
            f">= {g.paper_min_days:g} days since the first paper fill",
            f"first paper fill {perf.first_fill_at or 'never'}; {perf.days:.2f} days",
        ),
        _g(
            "paper_trades",
            perf.trades >= g.paper_min_trades,
            perf.trades,
            f">= {g.paper_min_trades} closed paper trades",
            f"{perf.trades} closed paper trades",
        ),
        _g(
            "paper_sharpe",
            perf.sharpe is not None and perf.sharpe > g.paper_min_sharpe,
            perf.sharpe,
            f"> {g.paper_min_sharpe:g}",
            f"Sharpe of daily paper equity {perf.sharpe if perf.sharpe is not None else 'undefined (under 2 days)'}",
        ),
        _g(
            "paper_max_drawdown",
            perf.first_fill_at is not None and perf.max_drawdown < g.paper_max_drawdown,
            perf.max_drawdown,
            f"< {g.paper_max_drawdown * 100:g} %",
            f"largest paper drawdown {perf.max_drawdown * 100:.2f} %",
        ),
    ], {"paper_track_record": f"{perf.trades} trades since {perf.first_fill_at or '-'}"}


def _target(cfg: TradingConfig, strategy: str | None, to_stage: str) -> str:
    if strategy is not None:
        if strategy not in cfg.strategies:
            raise ConfigError(
                f"Unknown strategy '{strategy}'. Configured: {', '.join(sorted(cfg.strategies)) or 'none'}; add it "
                "with update_config first."
            )
        if not cfg.strategies[strategy].enabled:
            raise PolicyDenied(
                "strategy_disabled",
                f"strategy '{strategy}' is disabled, so it cannot be promoted.",
                f"enable it first (update_config strategies.{strategy}.enabled = true, which a person confirms).",
            )
    current = cfg.strategies[strategy].stage if strategy else cfg.stage
    if to_stage not in STAGES or STAGE_RANK[to_stage] != STAGE_RANK[current] + 1:
        who = f"strategy '{strategy}'" if strategy else "the global stage"
        raise PolicyDenied(
            "promotion_one_step",
            f"{who} is at {current}; a promotion goes one stage up at a time (exploration -> paper -> live), so "
            f"{to_stage} is not a valid target.",
            f"ask for {STAGES[STAGE_RANK[current] + 1]}" if current != "live" else "it is already at the top stage.",
        )
    return current


def evaluate(
    cfg: TradingConfig, store: Store, paper: PaperService, strategy: str | None, to_stage: str, now_s: float
) -> PromotionReport:
    """Every gate of a promotion, measured on the store. Changes nothing."""
    current = _target(cfg, strategy, to_stage)
    notes: list[str] = []
    considered = 0
    evidence: dict[str, str] = {}
    if strategy is None:
        affected = sorted(n for n, s in cfg.strategies.items() if STAGE_RANK[s.stage] >= STAGE_RANK[to_stage])
        gates = [
            _g(
                "person_confirmation",
                False,
                None,
                "the person confirms through MCP elicitation",
                "the global stage is a ceiling set by a person; raising it lets strategies already at "
                f"{to_stage} ({', '.join(affected) or 'none'}) act at that stage",
            )
        ]
    elif to_stage == "paper":
        gates, evidence, considered = _backtest_gates(cfg, store, strategy, now_s)
    else:
        gates, evidence = _paper_gates(cfg, paper, strategy)
        gates.append(
            _g(
                "person_confirmation",
                False,
                None,
                "the person confirms through MCP elicitation",
                "live trading is asked of the person once every other gate passes",
            )
        )
    if strategy is not None and STAGE_RANK[cfg.stage] < STAGE_RANK[to_stage]:
        notes.append(
            f"the global stage is {cfg.stage}: after this promotion '{strategy}' stays effectively at {cfg.stage} "
            f"until the global stage is raised too (request_stage_promotion without a strategy)."
        )
    return PromotionReport(
        strategy=strategy,
        from_stage=current,
        to_stage=to_stage,
        promoted=False,
        gates=gates,
        evidence=evidence,
        candidates_considered=considered,
        confirmation="not asked",
        notes=notes,
    )


async def request_promotion(
    config: ConfigStore,
    store: Store,
    paper: PaperService,
    strategy: str | None,
    to_stage: str,
    reason: str,
    confirm: Confirm,
    now: Callable[[], float] = time.time,
) -> PromotionReport:
    cfg = config.load()
    if strategy is not None and to_stage == "live":
        await paper.reconcile()  # the track record at today's prices, not at the monitor's last marks
    report = evaluate(cfg, store, paper, strategy, to_stage, now())
    evidence_gates = [g for g in report.gates if g.name != "person_confirmation"]
    failed = [g for g in evidence_gates if not g.passed]
    who = f"'{strategy}'" if strategy else "the global stage"
    if failed:
        raise PolicyDenied(
            "promotion_gates",
            f"promotion of {who} {report.from_stage} -> {to_stage} refused: {len(failed)} of "
            f"{len(evidence_gates)} gates failed. " + gates_text(report.gates),
            "produce the missing evidence (stored backtests and stress tests for paper, a paper track record for "
            "live); tool arguments cannot stand in for it.",
        )
    confirmation = "not needed"
    needs_person = any(g.name == "person_confirmation" for g in report.gates)
    if needs_person:
        asked = next(g for g in report.gates if g.name == "person_confirmation")
        question = (
            f"Promote {who} from {report.from_stage} to {to_stage}? "
            + (f"Evidence: {gates_text(evidence_gates)} " if evidence_gates else f"Note: {asked.detail}. ")
            + f"Reason given: {reason or 'none'}. Confirm only if you, the person, want this."
        )
        try:
            confirmation = await confirm("promotion_needs_confirmation", question)
        except ConfirmationRequired as e:
            raise ConfirmationRequired(e.rule, f"{e.reason} Gates: {gates_text(report.gates)}", e.remedy) from None
        cfg = config.load()
        report = evaluate(cfg, store, paper, strategy, to_stage, now())  # evidence again: time passed
        if any(not g.passed for g in report.gates if g.name != "person_confirmation"):
            raise PolicyDenied(
                "promotion_gates",
                "the evidence changed while the person was asked; nothing was changed. " + gates_text(report.gates),
                "ask again.",
            )
        report.gates = [
            g if g.name != "person_confirmation" else g.model_copy(update={"passed": True, "value": True})
            for g in report.gates
        ]

    def write(data: dict[str, Any]) -> dict[str, Any]:
        node = data["strategies"][strategy] if strategy else data
        if node.get("stage") != report.from_stage:
            raise ConfigError(
                f"the stage of {who} changed while this promotion was checked (now {node.get('stage')}); nothing was "
                "written. Ask again."
            )
        node["stage"] = to_stage
        return data

    _, new = config.update(write)
    why = (
        f"promoted by request_stage_promotion; evidence {report.evidence or '-'}; {confirmation}; reason: "
        f"{reason or '-'}"
    )
    store.record_stage_change(strategy, report.from_stage, to_stage, why)
    return report.model_copy(
        update={
            "promoted": True,
            "confirmation": confirmation,
            "effective_stage": effective_stage(new, strategy) if strategy else new.stage,
        }
    )


def demote(config: ConfigStore, store: Store, strategy: str | None, to_stage: str | None, reason: str) -> StageChange:
    """Lower a stage at once, without evidence (also while halted)."""
    cfg = config.load()
    if strategy is not None and strategy not in cfg.strategies:
        raise ConfigError(f"Unknown strategy '{strategy}'. Configured: {', '.join(sorted(cfg.strategies)) or 'none'}.")
    current = cfg.strategies[strategy].stage if strategy else cfg.stage
    who = f"strategy '{strategy}'" if strategy else "the global stage"
    if current == "exploration":
        raise PolicyDenied(
            "already_lowest_stage",
            f"{who} is already at exploration, the lowest stage.",
            "nothing to demote.",
        )
    target = to_stage or STAGES[STAGE_RANK[current] - 1]
    if STAGE_RANK[target] >= STAGE_RANK[current]:
        raise PolicyDenied(
            "not_a_demotion",
            f"{who} is at {current}; {target} is not lower.",
            "use request_stage_promotion to go up (with evidence), or pick a lower stage.",
        )

    def write(data: dict[str, Any]) -> dict[str, Any]:
        node = data["strategies"][strategy] if strategy else data
        if STAGE_RANK[node["stage"]] <= STAGE_RANK[target]:
            raise ConfigError(f"{who} is already at {node['stage']}; nothing was written.")
        node["stage"] = target
        return data

    old, new = config.update(write)
    before = old.strategies[strategy].stage if strategy else old.stage
    why = f"demoted by demote_stage: {reason or '-'}"
    store.record_stage_change(strategy, before, target, why)
    return StageChange(
        strategy=strategy,
        from_stage=before,
        to_stage=target,
        effective_stage=effective_stage(new, strategy) if strategy else new.stage,
        reason=why,
    )

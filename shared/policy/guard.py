"""The guard: a pure decision on one tool call. It fails closed: any exception inside is a denial."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.config.models import STAGE_RANK, TradingConfig
from shared.config.resolve import effective_stage
from shared.policy.checks import CAPABILITIES, CAPABILITY_MIN_STAGE, TradingStateName, Violation


@dataclass(frozen=True, slots=True)
class CallRecord:
    server: str
    tool: str
    capability: str
    strategy: str | None = None
    halt_exempt: bool = False
    reduces_risk: bool = False  # closing or cancelling: no stage needed (a demoted strategy can still exit)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str = ""
    reason: str = ""
    remedy: str = ""
    effective_stage: str | None = None
    violations: tuple[Violation, ...] = ()

    @property
    def label(self) -> str:
        return "allow" if self.allowed else "deny"


CAPABILITY_WHAT = {"paper": "paper orders", "live": "real orders"}


def _deny(rule: str, reason: str, remedy: str, stage: str | None = None) -> Decision:
    return Decision(False, rule, reason, remedy, stage)


def _stage_denial(call: CallRecord, cfg: TradingConfig, stage: str) -> Decision | None:
    """Paper and live are granted per strategy, from its effective stage; None when the stage allows the call."""
    needed = CAPABILITY_MIN_STAGE[call.capability]
    strategy = call.strategy
    if needed is not None and not call.reduces_risk:
        if strategy is None:
            return _deny(
                "strategy_required",
                f"'{call.tool}' needs the '{call.capability}' capability, which is granted per strategy.",
                "pass the strategy the order belongs to.",
                stage,
            )
        if strategy not in cfg.strategies:
            return _deny(
                "unknown_strategy",
                f"strategy '{strategy}' is not in the configuration, so it is at stage exploration.",
                f"configured strategies: {', '.join(sorted(cfg.strategies)) or 'none'}.",
                stage,
            )
        if not cfg.strategies[strategy].enabled:
            return _deny(
                "strategy_disabled",
                f"strategy '{strategy}' is disabled in the configuration.",
                f"enable it with update_config (strategies.{strategy}.enabled = true).",
                stage,
            )
        if STAGE_RANK[stage] < STAGE_RANK[needed]:
            own, glob = cfg.strategies[strategy].stage, cfg.stage
            return _deny(
                "stage_too_low",
                f"the '{call.capability}' capability ({CAPABILITY_WHAT[call.capability]}) needs stage {needed}; "
                f"strategy '{strategy}' is effectively at {stage} "
                f"(its own stage {own}, global stage {glob}: the lower one counts).",
                "promotion needs recorded evidence (the evidence-gated request_stage_promotion tool); the global "
                "stage must be raised too if it is the lower one.",
                stage,
            )
    return None


def _decide(
    call: CallRecord, cfg: TradingConfig, trading_state: TradingStateName, checks: Sequence[Violation | None]
) -> Decision:
    if call.capability not in CAPABILITIES:
        return _deny(
            "unknown_capability",
            f"tool '{call.tool}' declares capability {call.capability!r}, which the policy does not know.",
            "this is a server bug; report it. The call was not run.",
        )
    strategy = call.strategy
    stage = effective_stage(cfg, strategy)
    if trading_state != "ACTIVE" and call.capability != "read" and not call.halt_exempt:
        return _deny(
            "trading_halted",
            f"trading state is {trading_state}; only reads, tightening and stage demotions work until it is reset.",
            "review what triggered the halt (get_paper_portfolio, get_journal); tightening and demotions still "
            "work, and resuming needs reset_kill_switch, confirmed by a person.",
            stage,
        )
    denial = _stage_denial(call, cfg, stage)
    if denial is not None:
        return denial
    failed = tuple(v for v in checks if v is not None)
    if len(failed) == 1:
        v = failed[0]
        return Decision(False, v.rule, v.reason, v.remedy, stage, failed)
    if failed:
        reason = f"{len(failed)} of {len(checks)} checks failed: " + " ".join(
            f"({i}) [{v.rule}] {v.reason} Remedy: {v.remedy}" for i, v in enumerate(failed, 1)
        )
        return Decision(False, ",".join(v.rule for v in failed), reason, "fix each failed check above.", stage, failed)
    return Decision(True, "", "", "", stage)


def decide(
    call: CallRecord,
    cfg: TradingConfig,
    trading_state: TradingStateName,
    checks: Sequence[Violation | None] = (),
) -> Decision:
    """Allow or deny `call`. Pure: same inputs, same answer; an internal error denies."""
    try:
        return _decide(call, cfg, trading_state, checks)
    except Exception as e:  # fail closed: a broken guard must never allow
        return _deny(
            "guard_error",
            f"the policy check itself failed ({type(e).__name__}); the call was refused to be safe.",
            "check the configuration with get_config; report the error if it persists.",
        )

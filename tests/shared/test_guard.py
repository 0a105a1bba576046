from __future__ import annotations

import itertools

import pytest

from shared.config.models import StrategyConfig, TradingConfig
from shared.policy.checks import Violation
from shared.policy.guard import CallRecord, decide


def _cfg(global_stage: str, strategy_stage: str, enabled: bool = True) -> TradingConfig:
    cfg = TradingConfig(stage=global_stage)
    cfg.strategies["s"] = StrategyConfig(stage=strategy_stage, enabled=enabled)
    return cfg


STAGES = ("exploration", "paper", "live")
CAPS = ("read", "research", "paper", "live", "admin")


def _expected(cap: str, global_stage: str, own: str, state: str) -> bool:
    if state == "HALTED" and cap != "read":
        return False
    stage = STAGES[min(STAGES.index(global_stage), STAGES.index(own))]
    if cap == "paper":
        return stage in ("paper", "live")
    if cap == "live":
        return stage == "live"
    return True


@pytest.mark.parametrize(
    ("cap", "global_stage", "stage", "state"), list(itertools.product(CAPS, STAGES, STAGES, ("ACTIVE", "HALTED")))
)
def test_guard_matrix_capability_by_stage_by_trading_state(cap, global_stage, stage, state):
    decision = decide(CallRecord("srv", "tool", cap, "s"), _cfg(global_stage, stage), state)
    assert decision.allowed is _expected(cap, global_stage, stage, state)
    if not decision.allowed:
        assert decision.rule and decision.reason and decision.remedy


def test_the_lower_global_stage_denies_paper_orders_and_says_which_stage_counts():
    decision = decide(CallRecord("srv", "place_paper_order", "paper", "s"), _cfg("exploration", "paper"), "ACTIVE")
    assert not decision.allowed and decision.rule == "stage_too_low"
    assert "own stage paper, global stage exploration" in decision.reason
    assert "request_stage_promotion" in decision.remedy


def test_halted_trading_still_allows_exempt_tools_such_as_demotion():
    cfg = _cfg("live", "live")
    assert decide(CallRecord("srv", "demote_stage", "admin", "s", halt_exempt=True), cfg, "HALTED").allowed
    denied = decide(CallRecord("srv", "update_config", "admin"), cfg, "HALTED")
    assert denied.rule == "trading_halted"


def test_paper_capability_needs_a_configured_enabled_strategy():
    cfg = _cfg("live", "live", enabled=False)
    assert decide(CallRecord("srv", "t", "paper", None), cfg, "ACTIVE").rule == "strategy_required"
    assert decide(CallRecord("srv", "t", "paper", "ghost"), cfg, "ACTIVE").rule == "unknown_strategy"
    assert decide(CallRecord("srv", "t", "paper", "s"), cfg, "ACTIVE").rule == "strategy_disabled"


def test_an_unknown_capability_is_denied():
    assert decide(CallRecord("srv", "t", "superuser"), TradingConfig(), "ACTIVE").rule == "unknown_capability"


def test_the_guard_fails_closed_when_its_inputs_break_it():
    decision = decide(CallRecord("srv", "t", "read", "s"), None, "ACTIVE")  # type: ignore[arg-type]
    assert not decision.allowed and decision.rule == "guard_error"


def test_a_limit_violation_passed_to_the_guard_denies_with_its_numbers():
    v = Violation("max_leverage", "leverage 3x exceeds the limit 2x.", "use at most 2x.", 3, 2)
    decision = decide(CallRecord("srv", "t", "paper", "s"), _cfg("live", "paper"), "ACTIVE", [None, v])
    assert (decision.allowed, decision.rule) == (False, "max_leverage")
    assert "3x" in decision.reason

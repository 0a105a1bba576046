from __future__ import annotations

import re

import pytest

from shared.config.models import RiskOverrides, StrategyConfig, TradingConfig
from shared.config.resolve import effective_stage, resolve_risk
from shared.errors import InvalidArgumentsError, PolicyDenied


def test_strategy_overrides_beat_its_profile():
    risk = resolve_risk(TradingConfig(), "mean_reversion", mode="backtest")
    assert risk.risk_profile == "conservative"
    assert risk.settings.max_position_size == 0.05 and risk.sources["max_position_size"] == "override"
    assert risk.settings.max_leverage == 1.0 and risk.sources["max_leverage"] == "override"
    assert risk.settings.max_portfolio_risk == 0.01 and risk.sources["max_portfolio_risk"] == "profile:conservative"
    # not in the conservative template: inherited from the global settings
    assert risk.settings.emergency_stop == 0.25 and risk.sources["emergency_stop"] == "global"


def test_an_override_looser_than_the_profile_still_wins():
    cfg = TradingConfig()
    cfg.strategies["trend_following"] = StrategyConfig(
        risk_profile="conservative", risk_overrides=RiskOverrides(max_leverage=3.0)
    )
    assert resolve_risk(cfg, "trend_following", mode="backtest").settings.max_leverage == 3.0


def test_global_settings_are_the_base_layer_for_unconfigured_strategies():
    cfg = TradingConfig(global_risk_profile="aggressive")
    risk = resolve_risk(cfg, "my_own_strategy", mode="backtest")
    assert not risk.configured and risk.risk_profile == "aggressive"
    assert risk.settings.max_leverage == 5.0


def test_a_per_call_loosening_is_refused_in_paper():
    with pytest.raises(PolicyDenied) as err:
        resolve_risk(TradingConfig(), "mean_reversion", per_call={"max_position_size": 0.2}, mode="paper")
    assert err.value.rule == "tighten_only_outside_backtests"
    assert "max_position_size 0.2 (configured 0.05)" in str(err.value)


def test_a_per_call_looser_profile_is_refused_in_paper_but_allowed_in_backtests():
    with pytest.raises(PolicyDenied, match="risk_profile aggressive"):
        resolve_risk(TradingConfig(), "mean_reversion", risk_profile="aggressive", mode="paper")
    risk = resolve_risk(TradingConfig(), "trend_following", risk_profile="aggressive", mode="backtest")
    assert risk.risk_profile == "aggressive" and risk.settings.max_leverage == 5.0


def test_a_per_call_loosening_is_allowed_in_backtests():
    risk = resolve_risk(TradingConfig(), "mean_reversion", per_call={"max_position_size": 0.2}, mode="backtest")
    assert risk.settings.max_position_size == 0.2 and risk.sources["max_position_size"] == "per-call"


def test_a_per_call_tightening_is_allowed_in_paper():
    risk = resolve_risk(TradingConfig(), "mean_reversion", per_call={"max_position_size": 0.01}, mode="paper")
    assert risk.settings.max_position_size == 0.01
    tighter = resolve_risk(TradingConfig(), "trend_following", risk_profile="conservative", mode="live")
    assert tighter.settings.max_leverage == 1.0


def test_a_lower_var_confidence_counts_as_loosening():
    with pytest.raises(PolicyDenied, match=re.escape("var_confidence 0.9")):
        resolve_risk(TradingConfig(), "trend_following", per_call={"var_confidence": 0.9}, mode="paper")


def test_invalid_per_call_values_are_reported_with_the_field():
    with pytest.raises(InvalidArgumentsError, match=re.escape("max_position_size: got 1.5")):
        resolve_risk(TradingConfig(), "trend_following", per_call={"max_position_size": 1.5}, mode="backtest")
    with pytest.raises(InvalidArgumentsError, match="Unknown risk field 'max_lev'"):
        resolve_risk(TradingConfig(), "trend_following", per_call={"max_lev": 1}, mode="backtest")


@pytest.mark.parametrize(
    ("global_stage", "own", "expected"),
    [
        ("exploration", "paper", "exploration"),
        ("live", "paper", "paper"),
        ("paper", "live", "paper"),
        ("live", "live", "live"),
    ],
)
def test_effective_stage_is_the_lower_of_global_and_strategy(global_stage, own, expected):
    cfg = TradingConfig(stage=global_stage)
    cfg.strategies["trend_following"] = StrategyConfig(stage=own)
    assert effective_stage(cfg, "trend_following") == expected
    assert effective_stage(cfg, "not_configured") == "exploration"

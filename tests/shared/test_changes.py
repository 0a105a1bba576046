from __future__ import annotations

import pytest

from shared.config.changes import apply_changes, leaf_changes, loosenings, stage_moves
from shared.config.file import validate_config_data
from shared.config.models import TradingConfig
from shared.errors import ConfigError


def _changed(changes: dict) -> TradingConfig:
    return validate_config_data(apply_changes(TradingConfig().model_dump(mode="json"), changes))


def test_tightening_is_not_loosening():
    new = _changed({"global_risk_settings.max_leverage": 1.5, "portfolio_limits.max_daily_trades": 10})
    assert loosenings(TradingConfig(), new) == []


def test_every_looser_limit_is_named_with_old_and_new_values():
    new = _changed(
        {"strategies.trend_following.risk_profile": "aggressive", "portfolio_limits.min_account_balance": 500}
    )
    found = loosenings(TradingConfig(), new)
    assert "strategy 'trend_following': risk_profile moderate -> aggressive" in found
    assert "strategy 'trend_following': max_leverage 2 -> 5" in found
    assert "portfolio_limits.min_account_balance 1000 -> 500" in found


def test_removing_an_override_that_was_tighter_than_the_profile_is_loosening():
    base = _changed({"strategies.trend_following.risk_overrides.max_leverage": 1.0})
    new = validate_config_data(
        apply_changes(base.model_dump(mode="json"), {"strategies.trend_following.risk_overrides.max_leverage": None})
    )
    assert loosenings(base, new) == ["strategy 'trend_following': max_leverage 1 -> 2"]
    # an override equal to the profile's own value changes nothing when removed
    assert (
        loosenings(TradingConfig(), _changed({"strategies.mean_reversion.risk_overrides.max_position_size": None}))
        == []
    )


def test_server_addresses_news_addresses_and_re_enabling_need_approval():
    base = _changed({"strategies.trend_following.enabled": False})
    new = validate_config_data(
        apply_changes(
            base.model_dump(mode="json"),
            {
                "strategies.trend_following.enabled": True,
                "mcp_config.jesse_host": "0.0.0.0",
                "news_priorities.coindesk.url": "http://169.254.169.254/latest",
                "price_config.providers.kraken.base_url": "http://prices.example",
                "price_config.outlier_bps": 50,
            },
        )
    )
    found = loosenings(base, new)
    assert "mcp_config.jesse_host 127.0.0.1 -> 0.0.0.0" in found
    assert "strategies.trend_following.enabled false -> true" in found
    assert any(f.startswith("news_priorities.coindesk.url") and "169.254.169.254" in f for f in found)
    assert "price_config.providers.kraken.base_url - -> http://prices.example" in found
    assert not any("outlier" in f for f in found)  # a tighter outlier threshold is not sensitive


def test_removing_a_strategy_above_exploration_is_a_recorded_demotion():
    _, demotions = stage_moves(TradingConfig(), _changed({"strategies.mean_reversion": None}))
    assert [(c.path, c.old, c.new) for c in demotions] == [("strategies.mean_reversion.stage", "paper", "exploration")]


def test_a_new_strategy_with_a_looser_profile_than_the_global_one_is_loosening():
    new = _changed({"strategies.breakout": {"risk_profile": "aggressive"}})
    assert any(
        s.startswith("strategy 'breakout': risk_profile moderate -> aggressive")
        for s in loosenings(TradingConfig(), new)
    )


def test_stage_raises_and_demotions_are_told_apart():
    raises, demotions = stage_moves(
        TradingConfig(), _changed({"stage": "paper", "strategies.mean_reversion.stage": "exploration"})
    )
    assert [(c.path, c.old, c.new) for c in raises] == [("stage", "exploration", "paper")]
    assert [(c.path, c.new) for c in demotions] == [("strategies.mean_reversion.stage", "exploration")]
    raises, _ = stage_moves(TradingConfig(), _changed({"strategies.breakout.stage": "paper"}))
    assert raises[0].path == "strategies.breakout.stage"


def test_a_bad_path_is_refused_with_the_keys_that_exist():
    with pytest.raises(ConfigError, match=r"no key 'global_risk' in the top level; keys there: .*global_risk_settings"):
        apply_changes(TradingConfig().model_dump(mode="json"), {"global_risk.max_leverage": 1})
    with pytest.raises(ConfigError, match="stage is a value, not a section"):
        apply_changes(TradingConfig().model_dump(mode="json"), {"stage.x": 1})
    with pytest.raises(ConfigError, match="No changes"):
        apply_changes({}, {})


def test_null_removes_a_named_entry_and_leaf_changes_list_it():
    data = TradingConfig().model_dump(mode="json")
    new = apply_changes(data, {"strategies.trend_following": None})
    assert "trend_following" not in new["strategies"] and "trend_following" in data["strategies"]
    assert any(c.path.startswith("strategies.trend_following") and c.new is None for c in leaf_changes(data, new))

from __future__ import annotations

import pytest

from shared.config.changes import apply_changes, loosenings
from shared.config.file import validate_config_data
from shared.config.models import TradingConfig


def _changed(**changes) -> TradingConfig:
    data = apply_changes(TradingConfig().model_dump(mode="json"), {k.replace("__", "."): v for k, v in changes.items()})
    return validate_config_data(data)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("promotion__backtest_min_sharpe", 0.5, "promotion.backtest_min_sharpe 1 -> 0.5"),
        ("promotion__backtest_min_trades", 10, "promotion.backtest_min_trades 30 -> 10"),
        ("promotion__backtest_max_age_days", 90.0, "promotion.backtest_max_age_days 30 -> 90"),
        ("promotion__backtest_allow_synthetic", True, "promotion.backtest_allow_synthetic false -> true"),
        ("promotion__require_stress_test", False, "promotion.require_stress_test true -> false"),
        ("promotion__paper_min_days", 1.0, "promotion.paper_min_days 7 -> 1"),
        ("promotion__paper_max_drawdown", 0.2, "promotion.paper_max_drawdown 0.08 -> 0.2"),
        ("paper__daily_loss_limit", 0.2, "paper.daily_loss_limit 0.05 -> 0.2"),
        ("promotion__backtest_min_days", 7.0, "promotion.backtest_min_days 30 -> 7"),
        ("promotion__backtest_allow_csv", True, "promotion.backtest_allow_csv false -> true"),
        ("paper__fee_bps", 2.0, "paper.fee_bps 10 -> 2"),
        ("paper__slippage_bps", 0.0, "paper.slippage_bps 5 -> 0"),
        ("paper__monitor_interval_s", 600.0, "paper.monitor_interval_s 15 -> 600"),
        ("price_config__quote_ttl_s", 60.0, "price_config.quote_ttl_s 5 -> 60"),
        ("price_config__max_age_s", 3600.0, "price_config.max_age_s 120 -> 3600"),
        ("price_config__outlier_bps", 1000.0, "price_config.outlier_bps 100 -> 1000"),
    ],
)
def test_weakening_a_promotion_gate_or_the_daily_loss_limit_counts_as_loosening(path, value, expected):
    assert expected in loosenings(TradingConfig(), _changed(**{path: value}))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("promotion__backtest_min_sharpe", 1.5),
        ("promotion__paper_min_days", 14.0),
        ("paper__daily_loss_limit", 0.02),
        ("paper__fee_bps", 20.0),
        ("paper__monitor_interval_s", 5.0),
        ("paper__slippage_bps", 10.0),
        ("price_config__quote_ttl_s", 1.0),
        ("price_config__max_age_s", 30.0),
        ("promotion__backtest_min_days", 60.0),
    ],
)
def test_stricter_gates_and_cost_settings_are_not_loosening(path, value):
    assert loosenings(TradingConfig(), _changed(**{path: value})) == []


def test_paper_settings_are_validated_with_their_bounds():
    with pytest.raises(Exception, match=r"paper\.daily_loss_limit"):
        _changed(paper__daily_loss_limit=1.5)
    with pytest.raises(Exception, match=r"promotion\.backtest_min_trades"):
        _changed(promotion__backtest_min_trades=0)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("price_config__providers__binance__enabled", False, "price_config.providers.binance.enabled true -> false"),
        ("price_config__providers__replay__enabled", True, "price_config.providers.replay.enabled false -> true"),
    ],
)
def test_switching_a_price_provider_on_or_off_needs_the_person(path, value, expected):
    assert loosenings(TradingConfig(), _changed(**{path: value})) == [expected]


def test_removing_a_price_provider_from_the_configuration_counts_as_disabling_it():
    data = TradingConfig().model_dump(mode="json")
    del data["price_config"]["providers"]["kraken"]
    assert loosenings(TradingConfig(), validate_config_data(data)) == [
        "price_config.providers.kraken removed (enabled true -> false)"
    ]

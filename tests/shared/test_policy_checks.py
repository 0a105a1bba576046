from __future__ import annotations

import pytest

from shared.policy import checks as policy


def test_position_size_limit_is_a_fraction_of_equity():
    assert policy.check_position_size(1_000, 10_000, 0.10) is None
    v = policy.check_position_size(1_500, 10_000, 0.10)
    assert v.rule == "max_position_size" and v.limit == pytest.approx(1_000)
    assert "1,000.00 USD" in v.remedy


def test_risk_per_trade_is_size_times_stop_distance():
    # 10,000 USD x 2 % stop = 200 USD risk; 2 % of 10,000 equity = 200 USD: exactly at the limit
    assert policy.check_risk_per_trade(10_000, 0.02, 10_000, 0.02) is None
    v = policy.check_risk_per_trade(12_000, 0.02, 10_000, 0.02)
    assert v.value == pytest.approx(240) and v.limit == pytest.approx(200)
    assert "10,000.00 USD" in v.remedy


def test_leverage_and_counts_and_balances():
    assert policy.check_leverage(2, 2) is None and policy.check_leverage(2.5, 2).rule == "max_leverage"
    assert policy.check_count_below("max_open_positions", 4, 5, "open positions") is None
    assert policy.check_count_below("max_open_positions", 5, 5, "open positions").value == 5
    assert policy.check_min_balance(999, 1000).rule == "min_account_balance"
    assert policy.check_account_usage(9_000, 600, 10_000, 0.95).rule == "max_account_usage"
    assert policy.check_account_usage(9_000, 500, 10_000, 0.95) is None
    assert policy.check_correlation(-0.8, "ETH-USDT", 0.7).rule == "max_correlation"


def test_drawdown_and_emergency_stop_trigger_at_their_thresholds():
    assert policy.drawdown(85, 100) == pytest.approx(0.15)
    assert policy.check_drawdown(86, 100, 0.15) is None
    assert policy.check_drawdown(85, 100, 0.15).rule == "max_drawdown"
    assert policy.check_emergency_stop(75, 100, 0.25).rule == "emergency_stop"
    assert policy.check_emergency_stop(76, 100, 0.25) is None

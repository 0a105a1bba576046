from __future__ import annotations

import anyio
import pytest

from trading_cli.render import gates_in_text

REFUSAL = (
    "Denied (promotion_needs_evidence): 2 of 3 gates fail. [pass] backtest_sharpe: 1.20 (needs >= 1). "
    "[FAIL] backtest_trades: 12 (needs >= 30). [FAIL] stress_test: none (needs every scenario, no breach). "
    "Remedy: run more backtests."
)


def test_every_gate_of_a_promotion_refusal_is_read_with_its_value_and_threshold():
    assert gates_in_text(REFUSAL) == [
        ("backtest_sharpe", True, "1.20", ">= 1"),
        ("backtest_trades", False, "12", ">= 30"),
        ("stress_test", False, "none", "every scenario, no breach"),
    ]


@pytest.mark.anyio
async def test_reading_gates_stays_linear_on_a_hostile_megabyte():
    hostile = "[pass] a: " + " (needs x" * 120_000 + "[FAIL] b: " + "). " * 100_000
    with anyio.fail_after(30):  # a hang guard only: the quadratic pattern took minutes on far less
        assert await anyio.to_thread.run_sync(gates_in_text, hostile) == []


def test_the_portfolio_shows_the_tail_risk_of_the_open_book_or_why_it_is_unmeasured():
    from trading_cli.render import tail_lines

    tail = {
        "confidence": 0.95,
        "daily_returns": 90,
        "max_cvar": 0.04,
        "estimates": [
            {"method": "historical", "var_pct": 1.2345, "cvar_pct": 2.5},
            {"method": "parametric", "var_pct": 1.1, "cvar_pct": 1.4},
        ],
    }
    [line] = tail_lines({"tail_risk": tail})
    assert "one-day at 95% (90 days; max_cvar 4 %)" in line
    assert "historical VaR 1.23 % / CVaR 2.50 %" in line and "parametric VaR 1.10 %" in line
    assert tail_lines({"tail_risk": None, "tail_risk_unmeasured": "BTC-USDT: no daily candles"}) == [
        "   one-day VaR/CVaR not measured: BTC-USDT: no daily candles"
    ]
    assert tail_lines({"tail_risk": None}) == []

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

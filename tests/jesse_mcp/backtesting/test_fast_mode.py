"""Fast mode with normal mode's daily equity rebuilt (daily_equity.py): equal to Jesse's normal mode, exactly.

Runs Jesse in this process (no pool) on 30 days of synthetic 1-minute candles with a 1h route, as planned by
build_plan, so the default of every run (fast mode) is what is tested.
"""

from __future__ import annotations

import numpy as np
import pytest

from jesse_mcp.backtesting.catalog import BUILTIN
from jesse_mcp.backtesting.daily_equity import (
    DAILY_KEYS,
    MINUTE_MS,
    Wallet,
    equity_at,
    normal_mode_sample_times,
)
from jesse_mcp.backtesting.plans import PlanRequest, RunPlan, build_plan, result_from
from jesse_mcp.candles.ops import generate_synthetic
from shared.config.models import TradingConfig
from shared.market.candles import CandleStore

START = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DAY = 86_400_000
STRATEGIES = ["trend_following", "mean_reversion", "momentum", "breakout"]
pytestmark = pytest.mark.slow  # each run is Jesse in this process (importing it alone takes seconds)


@pytest.fixture(scope="module")
def candles(tmp_path_factory) -> CandleStore:
    store = CandleStore(tmp_path_factory.mktemp("fast_mode") / "candles")
    generate_synthetic(store, "BTC-USDT", START, START + 50 * DAY, seed=7)  # 20 days of warm-up room, then 30
    return store


def _plan(candles: CandleStore, strategy: str, profile: str = "aggressive", **hp: float) -> RunPlan:
    req = PlanRequest(days=30, risk_profile=profile, hyperparameters=hp or None)
    return build_plan(cfg=TradingConfig(), candles=candles, strategy=BUILTIN[strategy], req=req)


def _both(plan: RunPlan) -> tuple[dict, dict]:
    from jesse_mcp.backtesting import engine

    return engine.run_backtest({**plan.spec, "fast_mode": False}), engine.run_backtest(plan.spec)


@pytest.mark.parametrize("profile", ["conservative", "aggressive"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_fast_mode_gives_the_normal_modes_daily_metrics_trade_metrics_trades_and_equity_exactly(
    candles, strategy, profile
):
    plan = _plan(candles, strategy, profile)
    assert plan.spec["fast_mode"] is True and plan.request.end_ms - plan.request.start_ms == 30 * DAY
    normal, fast = _both(plan)
    assert (normal["fast_mode"], fast["fast_mode"]) == (False, True)
    assert len(normal["trades"]) > 3 and fast["trades"] == normal["trades"]
    for key in DAILY_KEYS:
        assert fast["metrics"][key] == normal["metrics"][key], key
    assert all(normal["metrics"][k] is not None for k in DAILY_KEYS if k != "serenity_index")
    assert fast["metrics"] == normal["metrics"]  # the trade metrics too: every key Jesse returns
    assert fast["equity"] == normal["equity"] and len(fast["equity"]) == 31  # start, 29 days, the end


@pytest.mark.parametrize(
    ("strategy", "timeframe", "transform"),
    [
        ("trend_following", "15m", None),
        ("breakout", "4h", None),
        ("mean_reversion", "1h", {"kind": "bootstrap", "seed": 3, "block_minutes": 1440}),
        ("mean_reversion", "1h", {"kind": "scenario", "scenario": "flash_crash", "offset_minutes": 10 * 1440}),
        ("mean_reversion", "1h", {"kind": "scenario", "scenario": "gap_down", "offset_minutes": 10 * 1440}),
    ],
)
def test_other_timeframes_and_transformed_candles_keep_fast_mode_and_equal_the_normal_mode(
    candles, strategy, timeframe, transform
):
    req = PlanRequest(days=30, timeframe=timeframe, risk_profile="aggressive")
    plan = build_plan(cfg=TradingConfig(), candles=candles, strategy=BUILTIN[strategy], req=req)
    if transform:
        plan.spec["transform"] = transform
    normal, fast = _both(plan)
    assert fast["fast_mode"] is True and len(normal["trades"]) > 3
    assert (fast["metrics"], fast["trades"], fast["equity"]) == (normal["metrics"], normal["trades"], normal["equity"])


def test_jesse_fast_mode_alone_saves_the_daily_balance_late_and_changes_the_daily_metrics(candles):
    """Why the rebuild exists: on a 1h route, Jesse's own fast mode saves each daily balance 59 minutes later."""
    from jesse.research import backtest

    from jesse_mcp.backtesting import engine

    plan = _plan(candles, "trend_following")
    rows = engine.load_rows(plan.spec)
    inputs = engine.jesse_inputs(plan.spec, rows)
    inputs["routes"][0]["strategy"] = engine.strategy_class(plan.spec["strategy"])
    runs = {
        fast: backtest(**inputs, fast_mode=fast, generate_equity_curve=True, generate_logs=False)
        for fast in (False, True)
    }
    times = {fast: [round(p["time"] * 1000) for p in r["equity_curve"][0]["data"]] for fast, r in runs.items()}
    assert times[False] == normal_mode_sample_times(plan.request.start_ms, 30 * 1440)
    assert [b - a for a, b in zip(times[False][1:-1], times[True][1:-1], strict=True)] == [59 * MINUTE_MS] * 29
    trades = {fast: [engine._compact_trade(t) for t in r["trades"]] for fast, r in runs.items()}
    assert trades[True] == trades[False] and len(trades[True]) > 3
    assert any(runs[True]["metrics"][k] != runs[False]["metrics"][k] for k in DAILY_KEYS)


def test_a_run_whose_rebuilt_equity_disagrees_with_fast_modes_samples_runs_normal_mode_and_says_so(
    candles, monkeypatch, caplog
):
    from jesse_mcp.backtesting import daily_equity, engine

    plan = _plan(candles, "breakout")
    normal = engine.run_backtest({**plan.spec, "fast_mode": False})
    real = daily_equity.executed_orders
    monkeypatch.setattr(daily_equity, "executed_orders", lambda *a: real(*a)[1:])  # one order missed
    out = engine.run_backtest(plan.spec)
    assert out["fast_mode"] is False and "running normal mode" in caplog.text
    assert (out["metrics"], out["trades"], out["equity"]) == (normal["metrics"], normal["trades"], normal["equity"])
    assert result_from(plan, out).run.fast_mode is False


def test_the_result_reports_fast_mode_when_fast_mode_ran_and_its_daily_metrics_were_rebuilt(candles):
    from jesse_mcp.backtesting import engine

    plan = _plan(candles, "mean_reversion")
    result = result_from(plan, engine.run_backtest(plan.spec))
    assert result.run.fast_mode is True and result.performance.trades > 3


def test_a_run_without_trades_keeps_fast_mode_and_equals_normal_mode(candles):
    plan = _plan(candles, "momentum", roc_threshold=50.0)  # a 50 % rise in 12 hours: never on these candles
    normal, fast = _both(plan)
    assert fast["fast_mode"] is True and fast["trades"] == normal["trades"] == []
    assert (fast["metrics"], fast["equity"]) == (normal["metrics"], normal["equity"])


# --- the replay on its own, on hand-made orders -------------------------------------------------------------------
def test_normal_mode_samples_at_the_start_a_day_and_a_minute_later_then_daily_and_at_the_end():
    times = normal_mode_sample_times(START, 3 * 1440 + 30)
    assert [(t - START) // MINUTE_MS for t in times] == [0, 1441, 2881, 4321, 4350]


def test_a_daily_sample_on_the_last_minute_is_not_repeated():
    times = normal_mode_sample_times(START, 2881)
    assert [(t - START) // MINUTE_MS for t in times] == [0, 1441, 2881]


def _order(minute: int, qty: float, price: float, reduce_only: bool = False) -> dict:
    at = START + minute * MINUTE_MS
    order = {"executed_at": at, "created_at": at, "qty": qty, "filled_qty": qty, "price": price}
    return {**order, "reduce_only": reduce_only}


def _rows(closes: list[float]) -> np.ndarray:
    rows = np.zeros((len(closes), 6))
    rows[:, 0] = START + np.arange(len(closes)) * MINUTE_MS
    rows[:, 2] = closes
    return rows


def test_equity_is_the_balance_after_fees_and_realised_pnl_plus_the_open_position_at_the_close():
    # long 2 at 100 (minute 1), half closed at 110 (minute 3), the rest at 90 (minute 5); fee 0.1 %
    trades = [{"orders": [_order(1, 2.0, 100.0), _order(3, -1.0, 110.0, True), _order(5, -1.0, 90.0, True)]}]
    rows = _rows([100.0, 105.0, 108.0, 111.0, 95.0, 90.0])
    got = equity_at([START + m * MINUTE_MS for m in (0, 2, 4, 6)], trades, rows, Wallet(1000.0, 0.001))
    after_open = 1000.0 - 0.2
    after_half = after_open - 0.11 + 10.0
    after_close = after_half - 0.09 - 10.0
    assert got == pytest.approx([1000.0, after_open + 2 * (105.0 - 100.0), after_half + (111.0 - 100.0), after_close])


def test_a_short_that_is_flipped_long_realises_its_pnl_and_opens_the_rest_at_the_order_price():
    # short 1 at 100 (minute 1), buy 3 at 90 (minute 2): +10 realised, long 2 from 90; no fee
    trades = [{"orders": [_order(1, -1.0, 100.0), _order(2, 3.0, 90.0)]}]
    rows = _rows([100.0, 100.0, 95.0, 90.0])
    got = equity_at([START + m * MINUTE_MS for m in (1, 3)], trades, rows, Wallet(1000.0, 0.0))
    assert got == [1000.0, 1010.0 + 2 * (95.0 - 90.0)]

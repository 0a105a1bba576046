"""The protections inside a backtest (the strategy base runs shared.policy.protections, as paper trading does): the
conservative profile's locks are reported with their reasons, no entry opens while one is active, and without them
the same run trades more. Jesse runs in this process on 40 days of synthetic candles."""

from __future__ import annotations

from datetime import datetime

import pytest

from jesse_mcp.backtesting.catalog import BUILTIN
from jesse_mcp.backtesting.plans import PlanRequest, build_plan, result_from
from jesse_mcp.backtesting.results import T_CLOSED, T_OPENED
from jesse_mcp.candles.ops import generate_synthetic
from shared.config.models import TradingConfig
from shared.market.candles import CandleStore

START = 1_704_067_200_000  # 2024-01-01
DAY = 86_400_000
OFF = {  # protections that never trigger
    "cooldown_minutes": 0.0,
    "stoploss_guard_stops": 1000.0,
    "low_profit_max_loss": 10.0,
    "window_drawdown": 0.99,
}

pytestmark = pytest.mark.slow  # Jesse in this process


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from jesse_mcp.backtesting import engine

    candles = CandleStore(tmp_path_factory.mktemp("protections") / "candles")
    generate_synthetic(candles, "BTC-USDT", START, START + 60 * DAY, seed=11)
    req = PlanRequest(days=40, timeframe="15m", risk_profile="conservative", hyperparameters={"adx_min": 0})
    plan = build_plan(cfg=TradingConfig(), candles=candles, strategy=BUILTIN["trend_following"], req=req)
    out = engine.run_backtest(plan.spec)
    spec = {**plan.spec, "risk": {**plan.spec["risk"], **OFF}}
    return result_from(plan, out), result_from(plan, engine.run_backtest(spec)), out["trades"]


def test_the_locks_are_reported_with_their_reasons_and_the_refused_signals(runs):
    protected, _, _ = runs
    adherence = protected.risk_adherence
    rules = {k.rule for k in adherence.protection_locks}
    assert "cooldown" in rules  # conservative: 240 min after every exit
    assert all(k.reason and k.start < k.end for k in adherence.protection_locks)
    assert sum(adherence.entries_refused_by_protection.values()) > 0
    assert any("Protections refused entry signals" in n for n in protected.notes)


def test_no_entry_opens_while_a_lock_is_active(runs):
    protected, _, trades = runs
    locks = [(_ms(k.start), _ms(k.end)) for k in protected.risk_adherence.protection_locks]
    opened = [int(t[T_OPENED]) for t in trades]
    assert len(opened) > 3
    inside = [o for o in opened for lo, hi in locks if lo <= o < hi]
    assert inside == []
    # and each entry after an exit waited out the 240 min cooldown
    closes = [int(t[T_CLOSED]) for t in trades]
    assert all(o - c >= 240 * 60_000 for c, o in zip(closes, opened[1:], strict=False))


def test_without_the_protections_the_same_run_takes_more_trades(runs):
    protected, free, _ = runs
    assert free.risk_adherence.protection_locks == [] and free.risk_adherence.entries_refused_by_protection == {}
    assert free.performance.trades > protected.performance.trades

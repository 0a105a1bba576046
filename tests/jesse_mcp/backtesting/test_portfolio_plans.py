"""Planning a portfolio backtest (no Jesse needed): which markets, on which range, and what is refused with what
message. Each refusal says what to fix."""

from __future__ import annotations

import pytest

from jesse_mcp.backtesting.catalog import BUILTIN
from jesse_mcp.backtesting.plans import BacktestError, PlanRequest, build_plan, title_of
from jesse_mcp.candles.ops import generate_synthetic
from shared.config.models import TradingConfig
from shared.market.candles import CandleStore

START = 1_704_067_200_000  # 2024-01-01
DAY = 86_400_000


@pytest.fixture
def candles(tmp_path) -> CandleStore:
    store = CandleStore(tmp_path / "candles")
    generate_synthetic(store, "BTC-USDT", START, START + 30 * DAY, seed=1)
    generate_synthetic(store, "ETH-USDT", START + 5 * DAY, START + 30 * DAY, seed=2)  # starts later
    generate_synthetic(store, "SOL-USDT", START, START + 30 * DAY, seed=3)
    return store


def plan(candles: CandleStore, cfg: TradingConfig | None = None, **req):
    return build_plan(
        cfg=cfg or TradingConfig(), candles=candles, strategy=BUILTIN["trend_following"], req=PlanRequest(**req)
    )


def refused(candles: CandleStore, cfg: TradingConfig | None = None, **req) -> str:
    with pytest.raises(BacktestError) as e:
        plan(candles, cfg, **req)
    return str(e.value)


def test_a_portfolio_runs_on_the_range_every_market_has_and_says_so(candles):
    p = plan(candles, markets=("BTC-USDT", "ETH-USDT"), data_markets=("SOL-USDT",))
    r = p.request
    assert (r.markets, r.data_markets) == (["BTC-USDT", "ETH-USDT"], ["SOL-USDT"])
    assert [m.symbol for m in p.markets] == ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
    alone = plan(candles, symbol="ETH-USDT")  # the shortest market decides the start
    assert (r.start_ms, r.end_ms) == (alone.request.start_ms, alone.request.end_ms)
    assert any("the range every market has stored" in n for n in p.notes)
    assert p.spec["markets"] == ["BTC-USDT", "ETH-USDT"] and p.spec["data_markets"] == ["SOL-USDT"]
    assert set(p.spec["portfolio"]["limits"]) >= {"max_open_positions", "max_total_positions", "max_account_usage"}
    assert "synthetic:BTC-USDT+ETH-USDT" in title_of(p)


def test_an_unstored_market_among_several_is_named_with_what_is_stored(candles):
    text = refused(candles, markets=("BTC-USDT", "DOGE-USDT"))
    assert "No candles stored for DOGE-USDT" in text and "synthetic:BTC-USDT" in text and "import_candles" in text


def test_one_market_is_not_a_portfolio(candles):
    assert "at least 2 markets; got 1" in refused(candles, markets=("BTC-USDT",))


def test_a_market_named_twice_is_refused(candles):
    text = refused(candles, markets=("BTC-USDT", "ETH-USDT"), data_markets=("btc-usdt",))
    assert "BTC-USDT appears more than once" in text


def test_more_markets_than_the_limit_are_refused_with_the_knob(candles):
    cfg = TradingConfig.model_validate({"backtest_config": {"max_portfolio_markets": 2}})
    text = refused(candles, cfg, markets=("BTC-USDT", "ETH-USDT"), data_markets=("SOL-USDT",))
    assert "3 markets is more than backtest_config.max_portfolio_markets (2)" in text


def test_markets_on_several_exchanges_are_refused(candles):
    rows = candles.load("synthetic", "SOL-USDT", START, START + 30 * DAY)
    candles.save("binance", "ADA-USDT", rows, "csv:ada.csv", synthetic=False)
    text = refused(candles, markets=("BTC-USDT", "ADA-USDT"))
    assert "one account on one exchange" in text and "binance, synthetic" in text


def test_symbol_and_markets_together_or_data_markets_alone_are_refused(candles):
    assert "either symbol (one market) or markets" in refused(
        candles, symbol="BTC-USDT", markets=("ETH-USDT", "SOL-USDT")
    )
    assert "pass them with markets" in refused(candles, symbol="BTC-USDT", data_markets=("SOL-USDT",))


def test_markets_without_a_common_range_are_refused_with_each_stored_range(candles):
    generate_synthetic(candles, "XRP-USDT", START + 40 * DAY, START + 50 * DAY, seed=4)
    text = refused(candles, markets=("BTC-USDT", "XRP-USDT"))
    assert "no common range" in text and "BTC-USDT: 2024-01-01" in text and "XRP-USDT: 2024-02-10" in text

"""The replay provider: prices and candles from the local candle store, labelled replay."""

from __future__ import annotations

from decimal import Decimal

import httpx
import numpy as np
import pytest

from asset_price_mcp.providers import replay
from asset_price_mcp.providers.runtime import Provider
from asset_price_mcp.quotes import QuoteService
from shared.market.candles import MINUTE_MS, CandleStore

T0 = 1_704_067_200_000  # 2024-01-01T00:00Z


def store_minutes(root, symbol="BTC-USDT", minutes=180, exchange="binance", synthetic=False):
    i = np.arange(minutes, dtype=float)
    close = 100 + i
    rows = np.column_stack([T0 + i * MINUTE_MS, close - 0.5, close, close + 1, close - 1, np.ones(minutes)])
    CandleStore(root).save(exchange, symbol, rows, "test", synthetic=synthetic)


def test_a_quote_is_the_last_stored_close_at_or_before_now_and_says_replay(tmp_path):
    store_minutes(tmp_path)
    quotes = replay.local_quotes(str(tmp_path), ["BTC-USDT", "ETH-USDT"], now_ms=T0 + 60 * MINUTE_MS)
    q = quotes["BTC-USDT"]
    assert list(quotes) == ["BTC-USDT"] and q.price == Decimal("160.0") and q.extra["replay"] is True
    assert q.ts_ms == T0 + 61 * MINUTE_MS and q.currency == "USDT" and q.extra["exchange"] == "binance"


def test_candles_are_aggregated_to_the_interval_with_the_open_bar_marked(tmp_path):
    store_minutes(tmp_path, minutes=150)
    bars = replay.local_candles(str(tmp_path), "BTC-USDT", "1h", T0, T0 + 3 * 3_600_000, now_ms=T0 + 10**9)
    assert [b.open_ms for b in bars] == [T0, T0 + 3_600_000, T0 + 7_200_000]
    first = bars[0]
    assert (first.open, first.high, first.low, first.close) == (
        Decimal("99.5"),
        Decimal("160.0"),
        Decimal("99.0"),
        Decimal("159.0"),
    )
    assert first.volume == Decimal("60.0") and [b.closed for b in bars] == [True, True, False]  # 30 minutes of bar 3


def test_an_unknown_symbol_is_not_found(tmp_path):
    with pytest.raises(Exception, match="not in the candle store"):
        replay.local_candles(str(tmp_path), "ETH-USDT", "1h", T0, T0 + 3_600_000, now_ms=T0)


@pytest.mark.anyio
async def test_replay_prices_flow_through_the_quote_service_labelled_and_never_stale(tmp_path):
    store_minutes(tmp_path)
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    svc = QuoteService([Provider(replay, str(tmp_path))], client, clock=lambda: (T0 + 10**10) / 1000)
    (answer,) = await svc.prices(["BTC-USDT"])
    assert answer.replay and answer.price_exact == "279.0" and answer.sources[0].used and not answer.stale
    assert answer.synthetic is False


@pytest.mark.anyio
async def test_a_price_replayed_from_synthetic_candles_says_so(tmp_path):
    store_minutes(tmp_path, exchange="synthetic", synthetic=True)
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    svc = QuoteService([Provider(replay, str(tmp_path))], client, clock=lambda: (T0 + 10**10) / 1000)
    (answer,) = await svc.prices(["BTC-USDT"])
    await client.aclose()
    assert answer.replay and answer.synthetic

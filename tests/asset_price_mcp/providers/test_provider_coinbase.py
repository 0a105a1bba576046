"""Coinbase Exchange provider: request building and parsing of bodies written in its documented shapes."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from asset_price_mcp.providers import coinbase
from asset_price_mcp.providers.base import ProviderError

H = httpx.Headers()
HOUR = 3_600_000
T0 = 1_710_327_600  # 2024-03-13T11:00:00Z


def ticker(**fields: object) -> bytes:
    data = {
        "trade_id": 18502105,
        "price": "73367.8",
        "size": "0.00730812",
        "time": "2024-03-13T11:10:41.270099Z",
        "bid": "73360.34",
        "ask": "73369.19",
        "volume": "1207.50668151",
    }
    return json.dumps(data | fields).encode()


def failure(status: int, data: bytes, headers: httpx.Headers = H) -> ProviderError:
    with pytest.raises(ProviderError) as e:
        coinbase.parse_quotes(status, headers, data, ["BTC-USD"], 0)
    return e.value


# --- symbols and requests ------------------------------------------------------------------------------------------
def test_canonical_symbols_are_coinbase_product_ids():
    assert coinbase.provider_symbol("BTC-USD") == "BTC-USD"
    assert coinbase.provider_symbol("ETH-EUR") == "ETH-EUR"
    assert coinbase.provider_symbol("BTC-USDT") == "BTC-USDT"


def test_stocks_and_unlisted_quotes_are_not_served():
    assert coinbase.provider_symbol("AAPL") is None
    assert coinbase.provider_symbol("BTC-TRY") is None


def test_quotes_request_asks_one_product_ticker_at_the_configured_host():
    request = coinbase.quotes_request("http://127.0.0.1:9999/cb/", ["ETH-EUR"])
    assert request.method == "GET"
    assert str(request.url) == "http://127.0.0.1:9999/cb/products/ETH-EUR/ticker"


def test_quotes_request_refuses_a_batch_because_coinbase_has_none():
    assert coinbase.QUOTE_BATCH == 1
    with pytest.raises(ValueError, match="exactly one"):
        coinbase.quotes_request(coinbase.DEFAULT_BASE_URL, ["BTC-USD", "ETH-USD"])


def test_intervals_are_granularities_in_seconds_without_30m_and_4h():
    assert coinbase.INTERVALS == {"1m": "60", "5m": "300", "15m": "900", "1h": "3600", "1d": "86400"}
    with pytest.raises(ValueError, match="4h"):
        coinbase.candles_request(coinbase.DEFAULT_BASE_URL, "BTC-USD", "4h", None, None, 10)


def test_candles_request_sends_granularity_and_an_iso_window():
    request = coinbase.candles_request(coinbase.DEFAULT_BASE_URL, "BTC-USD", "1h", T0 * 1000, T0 * 1000 + 5 * HOUR, 300)
    assert request.url.host == "api.exchange.coinbase.com"
    assert request.url.path == "/products/BTC-USD/candles"
    assert dict(request.url.params) == {
        "granularity": "3600",
        "start": "2024-03-13T11:00:00Z",
        "end": "2024-03-13T16:00:00Z",
    }


def test_candles_window_wider_than_the_limit_is_narrowed_from_start():
    request = coinbase.candles_request(
        coinbase.DEFAULT_BASE_URL, "BTC-USD", "1h", T0 * 1000, T0 * 1000 + 1000 * HOUR, 3
    )
    assert request.url.params["end"] == "2024-03-13T13:00:00Z"  # three hourly bars: 11:00, 12:00, 13:00


def test_candles_window_never_exceeds_300_bars():
    request = coinbase.candles_request(coinbase.DEFAULT_BASE_URL, "BTC-USD", "1m", 0, 10**12, 10_000)
    assert request.url.params["start"] == "1970-01-01T00:00:00Z"
    assert request.url.params["end"] == "1970-01-01T04:59:00Z"  # 300 one-minute bars


def test_candles_window_with_only_an_end_reaches_back_limit_bars():
    request = coinbase.candles_request(coinbase.DEFAULT_BASE_URL, "BTC-USD", "1h", None, T0 * 1000, 2)
    assert (request.url.params["start"], request.url.params["end"]) == ("2024-03-13T10:00:00Z", "2024-03-13T11:00:00Z")


def test_candles_request_without_window_sends_only_the_granularity():
    request = coinbase.candles_request(coinbase.DEFAULT_BASE_URL, "BTC-USD", "1d", None, None, 10)
    assert dict(request.url.params) == {"granularity": "86400"}


# --- quotes --------------------------------------------------------------------------------------------------------
def test_ticker_becomes_an_exact_quote_with_the_trade_time_in_utc_ms():
    quote = coinbase.parse_quotes(200, H, ticker(), ["BTC-USD"], 0)["BTC-USD"]
    assert quote.price == Decimal("73367.8") and str(quote.price) == "73367.8"
    assert (quote.bid, quote.ask) == (Decimal("73360.34"), Decimal("73369.19"))
    assert quote.volume_24h == Decimal("1207.50668151")
    assert quote.ts_ms == T0 * 1000 + 641_270
    assert (quote.symbol, quote.provider, quote.currency) == ("BTC-USD", "coinbase", "USD")
    assert quote.extra["trade_id"] == 18502105


def test_usdt_market_reports_usdt_as_its_currency():
    assert coinbase.parse_quotes(200, H, ticker(), ["BTC-USDT"], 0)["BTC-USDT"].currency == "USDT"


def test_ticker_time_without_fraction_or_with_nanoseconds_is_understood():
    whole = coinbase.parse_quotes(200, H, ticker(time="2024-03-13T11:00:00Z"), ["BTC-USD"], 0)["BTC-USD"]
    nanos = coinbase.parse_quotes(200, H, ticker(time="2024-03-13T11:00:00.123456789Z"), ["BTC-USD"], 0)["BTC-USD"]
    assert (whole.ts_ms, nanos.ts_ms) == (T0 * 1000, T0 * 1000 + 123)


def test_ticker_without_a_readable_time_is_a_bad_response():
    assert failure(200, ticker(time="yesterday")).kind == "bad_response"


# --- failures ------------------------------------------------------------------------------------------------------
def test_unknown_product_404_is_not_found():
    e = failure(404, b'{"message":"NotFound"}')
    assert e.kind == "not_found" and "BTC-USD" in e.message and "NotFound" in e.message


def test_429_is_rate_limited_with_the_retry_after_seconds():
    e = failure(429, b'{"message":"Public rate limit exceeded"}', httpx.Headers({"Retry-After": "2"}))
    assert (e.kind, e.retry_after_s) == ("rate_limited", 2.0)


def test_400_quotes_the_coinbase_message():
    e = failure(400, b'{"message":"Unsupported granularity"}')
    assert e.kind == "bad_response" and "Unsupported granularity" in e.message


def test_5xx_is_unavailable():
    assert failure(502, b"Bad Gateway").kind == "unavailable"


def test_garbage_json_is_a_bad_response():
    assert failure(200, b'{"price": "73367.8",').kind == "bad_response"


def test_message_in_a_200_body_is_a_provider_error():
    assert failure(200, b'{"message":"product is delisted"}').kind == "provider_error"


# --- candles -------------------------------------------------------------------------------------------------------
def test_candles_are_reordered_from_low_high_open_close_and_keep_json_numbers_exact():
    rows = json.dumps([[T0, 73241.5, 73402.47, 73243.33, 73370.65, 1.56794406]]).encode()
    (candle,) = coinbase.parse_candles(200, H, rows, "BTC-USDT", "1h", now_ms=(T0 + 7200) * 1000)
    assert candle.open_ms == T0 * 1000
    assert (candle.open, candle.high, candle.low, candle.close) == (
        Decimal("73243.33"),
        Decimal("73402.47"),
        Decimal("73241.5"),
        Decimal("73370.65"),
    )
    assert str(candle.volume) == "1.56794406"


def test_candles_answered_newest_first_come_back_ascending_and_the_forming_bar_is_open():
    rows = json.dumps([[T0 + 7200, 3, 3, 3, 3, 1], [T0 + 3600, 2, 2, 2, 2, 1], [T0, 1, 1, 1, 1, 1]]).encode()
    candles = coinbase.parse_candles(200, H, rows, "BTC-USD", "1h", now_ms=(T0 + 7200 + 600) * 1000)
    assert [c.open_ms for c in candles] == [T0 * 1000, (T0 + 3600) * 1000, (T0 + 7200) * 1000]
    assert [c.closed for c in candles] == [True, True, False]
    assert [c.close for c in candles] == [Decimal(1), Decimal(2), Decimal(3)]


def test_candles_of_an_unknown_product_are_not_found():
    with pytest.raises(ProviderError) as e:
        coinbase.parse_candles(404, H, b'{"message":"NotFound"}', "FOO-USD", "1h", 0)
    assert e.value.kind == "not_found"


def test_candle_row_of_the_wrong_shape_is_a_bad_response():
    with pytest.raises(ProviderError) as e:
        coinbase.parse_candles(200, H, b"[[1710327600, 1, 2]]", "BTC-USD", "1h", 0)
    assert e.value.kind == "bad_response"

"""Binance provider: request building and parsing of bodies written in Binance's documented shapes."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from asset_price_mcp.providers import binance
from asset_price_mcp.providers.base import ProviderError

H = httpx.Headers()
MIN = 60_000


def ticker(symbol: str, last: str, close_time: int = 1_700_000_000_123, **fields: str) -> dict:
    row = {
        "symbol": symbol,
        "priceChange": "-10.00000000",
        "lastPrice": last,
        "bidPrice": "60755.17000000",
        "askPrice": "60755.19000000",
        "openPrice": "60765.18000000",
        "volume": "53076.84650000",
        "quoteVolume": "3289695271.67717710",
        "openTime": close_time - 86_400_000,
        "closeTime": close_time,
        "count": 1580643,
    }
    return row | fields


def kline(open_ms: int, o: str, h: str, lo: str, c: str, v: str = "1.5") -> list:
    return [open_ms, o, h, lo, c, v, open_ms + MIN - 1, "100.0", 7, "0.5", "50.0", "0"]


def body(data: object) -> bytes:
    return json.dumps(data).encode()


def failure(status: int, data: bytes, headers: httpx.Headers = H) -> ProviderError:
    with pytest.raises(ProviderError) as e:
        binance.parse_quotes(status, headers, data, ["BTC-USDT"], 0)
    return e.value


# --- symbols and requests ------------------------------------------------------------------------------------------
def test_canonical_symbols_map_to_binance_codes():
    assert binance.provider_symbol("BTC-USDT") == "BTCUSDT"
    assert binance.provider_symbol("ETH-BTC") == "ETHBTC"


def test_usd_quoted_pairs_and_stocks_are_not_served():
    assert binance.provider_symbol("BTC-USD") is None
    assert binance.provider_symbol("AAPL") is None
    assert binance.provider_symbol("btc-usdt") is None


def test_quotes_request_sends_one_compact_json_list_to_the_configured_host():
    request = binance.quotes_request("http://127.0.0.1:9999/binance/", ["BTC-USDT", "ETH-USDT"])
    assert request.method == "GET"
    assert str(request.url).startswith("http://127.0.0.1:9999/binance/api/v3/ticker/24hr?")
    assert request.url.params["symbols"] == '["BTCUSDT","ETHUSDT"]'


def test_quotes_request_refuses_more_symbols_than_one_batch_holds():
    with pytest.raises(ValueError, match="1 to 100"):
        binance.quotes_request(binance.DEFAULT_BASE_URL, ["BTC-USDT"] * 101)


def test_quotes_request_refuses_a_symbol_binance_does_not_serve():
    with pytest.raises(ValueError, match="BTC-USD"):
        binance.quotes_request(binance.DEFAULT_BASE_URL, ["BTC-USD"])


def test_candles_request_carries_symbol_interval_window_and_clamped_limit():
    request = binance.candles_request(binance.DEFAULT_BASE_URL, "BTC-USDT", "4h", 1_000, 2_000, 5_000)
    assert request.url.host == "data-api.binance.vision"
    assert request.url.path == "/api/v3/klines"
    assert dict(request.url.params) == {
        "symbol": "BTCUSDT",
        "interval": "4h",
        "limit": "1000",
        "startTime": "1000",
        "endTime": "2000",
    }


def test_candles_request_without_window_asks_only_for_the_newest_bars():
    request = binance.candles_request(binance.DEFAULT_BASE_URL, "BTC-USDT", "1m", None, None, 10)
    assert dict(request.url.params) == {"symbol": "BTCUSDT", "interval": "1m", "limit": "10"}


def test_every_canonical_interval_is_supported():
    assert {i: i for i in ("1m", "5m", "15m", "30m", "1h", "4h", "1d")} == binance.INTERVALS


def test_candles_request_refuses_an_unknown_interval_and_names_the_valid_ones():
    with pytest.raises(ValueError, match="1m, 5m"):
        binance.candles_request(binance.DEFAULT_BASE_URL, "BTC-USDT", "2h", None, None, 10)


# --- quotes --------------------------------------------------------------------------------------------------------
def test_batch_ticker_becomes_exact_quotes_keyed_by_the_canonical_symbols_asked():
    data = body([ticker("BTCUSDT", "60755.18"), ticker("ETHUSDT", "4123.5", bidPrice="4123.4", askPrice="4123.6")])
    quotes = binance.parse_quotes(200, H, data, ["BTC-USDT", "ETH-USDT"], 0)
    assert set(quotes) == {"BTC-USDT", "ETH-USDT"}
    btc = quotes["BTC-USDT"]
    assert btc.price == Decimal("60755.18") and str(btc.price) == "60755.18"
    assert (btc.bid, btc.ask) == (Decimal("60755.17"), Decimal("60755.19"))
    assert btc.volume_24h == Decimal("53076.84650000")
    assert btc.ts_ms == 1_700_000_000_123
    assert (btc.provider, btc.currency, btc.symbol) == ("binance", "USDT", "BTC-USDT")
    assert quotes["ETH-USDT"].price == Decimal("4123.5")


def test_single_symbol_ticker_object_is_understood_too():
    quotes = binance.parse_quotes(200, H, body(ticker("BTCUSDT", "60755.18")), ["BTC-USDT"], 0)
    assert quotes["BTC-USDT"].price == Decimal("60755.18")


def test_symbol_missing_from_a_good_batch_is_simply_absent():
    quotes = binance.parse_quotes(200, H, body([ticker("BTCUSDT", "1.0")]), ["BTC-USDT", "ETH-USDT"], 0)
    assert list(quotes) == ["BTC-USDT"]


def test_market_without_trades_in_24h_gives_no_quote():
    quotes = binance.parse_quotes(200, H, body([ticker("BTCUSDT", "0.00000000")]), ["BTC-USDT"], 0)
    assert quotes == {}


def test_empty_book_side_is_reported_as_no_bid():
    quotes = binance.parse_quotes(200, H, body([ticker("BTCUSDT", "5", bidPrice="0.00000000")]), ["BTC-USDT"], 0)
    assert quotes["BTC-USDT"].bid is None


# --- failures ------------------------------------------------------------------------------------------------------
def test_429_is_rate_limited_with_the_retry_after_seconds():
    e = failure(429, b'{"code":-1003,"msg":"Too many requests."}', httpx.Headers({"Retry-After": "7"}))
    assert (e.kind, e.retry_after_s) == ("rate_limited", 7.0)


def test_418_ip_ban_is_rate_limited_with_the_retry_after_seconds():
    e = failure(418, b'{"code":-1003,"msg":"Way too many requests; IP banned."}', httpx.Headers({"Retry-After": "120"}))
    assert (e.kind, e.retry_after_s) == ("rate_limited", 120.0)


def test_451_is_region_blocked():
    e = failure(451, b'{"code":0,"msg":"Service unavailable from a restricted location."}')
    assert e.kind == "region_blocked"


def test_403_firewall_limit_is_rate_limited():
    assert failure(403, b"<html>403 Forbidden</html>").kind == "rate_limited"


def test_invalid_symbol_error_body_is_not_found():
    e = failure(400, b'{"code":-1121,"msg":"Invalid symbol."}')
    assert e.kind == "not_found" and "BTC-USDT" in e.message


def test_other_binance_error_codes_are_bad_responses_that_quote_the_message():
    e = failure(400, b'{"code":-1100,"msg":"Illegal characters found in parameter \'symbols\'."}')
    assert e.kind == "bad_response" and "-1100" in e.message and "Illegal characters" in e.message


def test_5xx_is_unavailable():
    assert failure(503, b"").kind == "unavailable"


def test_garbage_json_is_a_bad_response():
    assert failure(200, b"<html>maintenance</html>").kind == "bad_response"


def test_ticker_with_a_non_numeric_price_is_a_bad_response():
    assert failure(200, body([ticker("BTCUSDT", "n/a")])).kind == "bad_response"


# --- candles -------------------------------------------------------------------------------------------------------
def test_klines_become_exact_candles_with_the_newest_still_open():
    t0 = 1_634_943_780_000
    rows = [kline(t0, "60685.22", "60729.84", "60670.90", "60719.27"), kline(t0 + MIN, "1", "2", "0.5", "1.5")]
    candles = binance.parse_candles(200, H, body(rows), "BTC-USDT", "1m", now_ms=t0 + MIN + 30_000)
    first, newest = candles
    assert (first.open_ms, first.open, first.high, first.low, first.close, first.volume) == (
        t0,
        Decimal("60685.22"),
        Decimal("60729.84"),
        Decimal("60670.90"),
        Decimal("60719.27"),
        Decimal("1.5"),
    )
    assert first.closed is True
    assert newest.closed is False


def test_bar_is_closed_exactly_when_its_interval_has_ended():
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
    rows = body([kline(t0, "1", "1", "1", "1")])
    assert binance.parse_candles(200, H, rows, "BTC-USDT", "1h", now_ms=t0 + 3_600_000)[0].closed is True
    assert binance.parse_candles(200, H, rows, "BTC-USDT", "1h", now_ms=t0 + 3_599_999)[0].closed is False


def test_candles_come_back_ascending_by_open_time():
    rows = [kline(3 * MIN, "3", "3", "3", "3"), kline(MIN, "1", "1", "1", "1"), kline(2 * MIN, "2", "2", "2", "2")]
    candles = binance.parse_candles(200, H, body(rows), "BTC-USDT", "1m", now_ms=10 * MIN)
    assert [c.open_ms for c in candles] == [MIN, 2 * MIN, 3 * MIN]


def test_klines_of_an_invalid_symbol_are_not_found():
    with pytest.raises(ProviderError) as e:
        binance.parse_candles(400, H, b'{"code":-1121,"msg":"Invalid symbol."}', "FOO-USDT", "1m", 0)
    assert e.value.kind == "not_found"


def test_truncated_kline_row_is_a_bad_response():
    with pytest.raises(ProviderError) as e:
        binance.parse_candles(200, H, body([[1, "1", "2"]]), "BTC-USDT", "1m", 0)
    assert e.value.kind == "bad_response"

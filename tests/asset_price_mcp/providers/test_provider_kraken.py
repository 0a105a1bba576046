"""Kraken provider: request building and parsing of bodies written in Kraken's documented shapes."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from asset_price_mcp.providers import kraken
from asset_price_mcp.providers.base import ProviderError

H = httpx.Headers()
T0 = 1_762_820_100  # a whole minute, in seconds


def entry(last: str, bid: str = "105944.2", ask: str = "105944.3") -> dict:
    return {
        "a": [ask, "1", "1.000"],
        "b": [bid, "1", "1.000"],
        "c": [last, "0.00009443"],
        "v": ["0.78648221", "163.28908096"],
        "p": ["105960.64756", "105904.39279"],
        "t": [35, 3276],
        "l": ["105853.50000", "104711.00000"],
        "h": ["106112.00000", "106613.10000"],
        "o": "106021.60000",
    }


def answer(result: dict, error: list[str] | None = None) -> bytes:
    return json.dumps({"error": error or [], "result": result}).encode()


def ohlc(time_s: int, price: str, volume: str = "0.5") -> list:
    return [time_s, price, price, price, price, price, volume, 3]


def failure(status: int, data: bytes) -> ProviderError:
    with pytest.raises(ProviderError) as e:
        kraken.parse_quotes(status, H, data, ["BTC-USD"], 0)
    return e.value


# --- symbols and requests ------------------------------------------------------------------------------------------
def test_btc_is_xbt_and_doge_is_xdg_at_kraken():
    assert kraken.provider_symbol("BTC-USD") == "XBTUSD"
    assert kraken.provider_symbol("BTC-USDT") == "XBTUSDT"
    assert kraken.provider_symbol("ETH-BTC") == "ETHXBT"
    assert kraken.provider_symbol("DOGE-EUR") == "XDGEUR"


def test_stocks_and_unlisted_quotes_are_not_served():
    assert kraken.provider_symbol("AAPL") is None
    assert kraken.provider_symbol("BTC-TRY") is None


def test_quotes_request_joins_pairs_with_commas_at_the_configured_host():
    request = kraken.quotes_request("http://127.0.0.1:9999/kr/", ["BTC-USD", "ETH-EUR", "SOL-USDT"])
    assert request.method == "GET"
    assert request.url.path == "/kr/0/public/Ticker"
    assert request.url.params["pair"] == "XBTUSD,ETHEUR,SOLUSDT"


def test_quotes_request_refuses_more_than_50_pairs():
    with pytest.raises(ValueError, match="1 to 50"):
        kraken.quotes_request(kraken.DEFAULT_BASE_URL, ["BTC-USD"] * 51)


def test_candles_request_sends_interval_in_minutes_and_since_just_before_start():
    request = kraken.candles_request(kraken.DEFAULT_BASE_URL, "BTC-USD", "4h", T0 * 1000, None, 100)
    assert request.url.host == "api.kraken.com"
    assert request.url.path == "/0/public/OHLC"
    assert dict(request.url.params) == {"pair": "XBTUSD", "interval": "240", "since": str(T0 - 1)}


def test_candles_request_without_start_omits_since():
    request = kraken.candles_request(kraken.DEFAULT_BASE_URL, "ETH-EUR", "1d", None, None, 10)
    assert dict(request.url.params) == {"pair": "ETHEUR", "interval": "1440"}


def test_every_canonical_interval_maps_to_kraken_minutes():
    assert kraken.INTERVALS == {"1m": "1", "5m": "5", "15m": "15", "30m": "30", "1h": "60", "4h": "240", "1d": "1440"}


# --- quotes --------------------------------------------------------------------------------------------------------
def test_results_keyed_by_kraken_names_map_back_to_the_symbols_asked():
    data = answer({"XXBTZUSD": entry("60755.18"), "XETHZEUR": entry("3000.1"), "XBTUSDT": entry("60760.5")})
    quotes = kraken.parse_quotes(200, H, data, ["BTC-USD", "ETH-EUR", "BTC-USDT"], now_ms=42)
    assert {s: q.price for s, q in quotes.items()} == {
        "BTC-USD": Decimal("60755.18"),
        "ETH-EUR": Decimal("3000.1"),
        "BTC-USDT": Decimal("60760.5"),
    }
    assert (quotes["BTC-USD"].currency, quotes["BTC-USDT"].currency) == ("USD", "USDT")
    assert quotes["BTC-USD"].extra["market"] == "XXBTZUSD"


def test_ticker_becomes_an_exact_quote_stamped_with_the_time_of_receipt():
    quote = kraken.parse_quotes(200, H, answer({"XBTUSDT": entry("105899.40000")}), ["BTC-USDT"], now_ms=42)["BTC-USDT"]
    assert str(quote.price) == "105899.40000" and quote.price == Decimal("105899.4")
    assert (quote.bid, quote.ask) == (Decimal("105944.2"), Decimal("105944.3"))
    assert quote.volume_24h == Decimal("163.28908096")  # the 24 h figure, not today's
    assert (quote.ts_ms, quote.provider, quote.symbol) == (42, "kraken", "BTC-USDT")


def test_one_unforeseen_key_answers_the_one_symbol_asked():
    quotes = kraken.parse_quotes(200, H, answer({"XBT/USD": entry("1.5")}), ["BTC-USD"], 0)
    assert quotes["BTC-USD"].price == Decimal("1.5")


def test_symbol_missing_from_a_good_batch_is_simply_absent():
    quotes = kraken.parse_quotes(200, H, answer({"XXBTZUSD": entry("1")}), ["BTC-USD", "ETH-USD"], 0)
    assert list(quotes) == ["BTC-USD"]


def test_warnings_in_the_error_array_do_not_spoil_the_result():
    data = answer({"XXBTZUSD": entry("1")}, ["WGeneral:Deprecated pair name"])
    assert list(kraken.parse_quotes(200, H, data, ["BTC-USD"], 0)) == ["BTC-USD"]


# --- failures ------------------------------------------------------------------------------------------------------
def test_unknown_asset_pair_in_a_200_answer_is_not_found():
    e = failure(200, answer({}, ["EQuery:Unknown asset pair"]))
    assert e.kind == "not_found" and "Unknown asset pair" in e.message


def test_rate_limit_error_in_a_200_answer_is_rate_limited():
    assert failure(200, answer({}, ["EAPI:Rate limit exceeded"])).kind == "rate_limited"


def test_service_unavailable_error_is_unavailable():
    assert failure(200, answer({}, ["EService:Unavailable"])).kind == "unavailable"


def test_other_error_strings_are_provider_errors():
    e = failure(200, answer({}, ["EGeneral:Invalid arguments"]))
    assert e.kind == "provider_error" and "EGeneral:Invalid arguments" in e.message


def test_5xx_is_unavailable():
    assert failure(520, b"<html>cloudflare</html>").kind == "unavailable"


def test_garbage_json_is_a_bad_response():
    assert failure(200, b"\xff\xfe not json").kind == "bad_response"


def test_answer_without_a_result_object_is_a_bad_response():
    assert failure(200, b'{"error": []}').kind == "bad_response"


# --- candles -------------------------------------------------------------------------------------------------------
def test_ohlc_becomes_exact_candles_and_the_uncommitted_last_bar_is_open():
    row = [T0, "106038.2", "106040.0", "106030.1", "106035.5", "106036.0", "0.12345678", 4]
    data = answer({"XBTUSDT": [row, ohlc(T0 + 60, "105899.4")], "last": T0})
    candles = kraken.parse_candles(200, H, data, "BTC-USDT", "1m", now_ms=(T0 + 150) * 1000)
    first, newest = candles
    assert (first.open_ms, first.open, first.high, first.low, first.close, first.volume) == (
        T0 * 1000,
        Decimal("106038.2"),
        Decimal("106040.0"),
        Decimal("106030.1"),
        Decimal("106035.5"),
        Decimal("0.12345678"),
    )
    assert (first.closed, newest.closed) == (True, False)


def test_bar_after_last_stays_open_even_when_its_interval_has_passed():
    data = answer({"XXBTZUSD": [ohlc(T0, "1"), ohlc(T0 + 60, "2")], "last": T0})
    candles = kraken.parse_candles(200, H, data, "BTC-USD", "1m", now_ms=(T0 + 3600) * 1000)
    assert [c.closed for c in candles] == [True, False]


def test_bar_is_open_until_its_interval_has_ended():
    data = answer({"XXBTZUSD": [ohlc(T0, "1")], "last": T0})
    assert kraken.parse_candles(200, H, data, "BTC-USD", "1m", now_ms=(T0 + 59) * 1000)[0].closed is False
    assert kraken.parse_candles(200, H, data, "BTC-USD", "1m", now_ms=(T0 + 60) * 1000)[0].closed is True


def test_candles_come_back_ascending_by_open_time():
    data = answer({"XXBTZUSD": [ohlc(T0 + 120, "3"), ohlc(T0, "1"), ohlc(T0 + 60, "2")], "last": T0 + 120})
    candles = kraken.parse_candles(200, H, data, "BTC-USD", "1m", now_ms=(T0 + 600) * 1000)
    assert [c.open_ms for c in candles] == [T0 * 1000, (T0 + 60) * 1000, (T0 + 120) * 1000]


def test_candles_of_an_unknown_pair_are_not_found():
    with pytest.raises(ProviderError) as e:
        kraken.parse_candles(200, H, answer({}, ["EQuery:Unknown asset pair"]), "FOO-USD", "1m", 0)
    assert e.value.kind == "not_found"


def test_ohlc_answer_without_the_pair_is_a_bad_response():
    with pytest.raises(ProviderError) as e:
        kraken.parse_candles(200, H, answer({"last": T0}), "BTC-USD", "1m", 0)
    assert e.value.kind == "bad_response"

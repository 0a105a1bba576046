"""CoinGecko: simple/price requests and the parser, on bodies written in CoinGecko's documented shape."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from asset_price_mcp.providers import coingecko as cg
from asset_price_mcp.providers.base import ProviderError

NOW_MS = 1_750_000_000_000
BASE = "http://127.0.0.1:9/api/v3"


def body(data) -> bytes:
    return json.dumps(data).encode()


def parse(raw: bytes | str, symbols: list[str], status: int = 200, headers=None):
    raw = raw.encode() if isinstance(raw, str) else raw
    return cg.parse_quotes(status, httpx.Headers(headers or {}), raw, symbols, NOW_MS)


# --- module surface and symbols ------------------------------------------------------------------------------------
def test_the_module_declares_its_name_base_url_and_batch_size():
    assert (cg.NAME, cg.DEFAULT_BASE_URL, cg.BASE_URL_ENV) == (
        "coingecko",
        "https://api.coingecko.com/api/v3",
        "COINGECKO_BASE_URL",
    )
    assert cg.QUOTE_BATCH == 100
    assert cg.INTERVALS == {}


def test_canonical_coins_map_to_coingecko_id_and_vs_currency():
    assert cg.provider_symbol("BTC-USD") == "bitcoin/usd"
    assert cg.provider_symbol("ETH-EUR") == "ethereum/eur"
    assert cg.provider_symbol("BNB-JPY") == "binancecoin/jpy"
    assert cg.provider_symbol("ETH-BTC") == "ethereum/btc"


def test_usdt_quotes_are_not_served_because_usdt_is_no_vs_currency():
    assert cg.provider_symbol("BTC-USDT") is None


def test_stocks_fx_unknown_coins_and_non_canonical_spellings_are_not_served():
    for symbol in ("AAPL", "SPY", "EUR-USD", "XAU-USD", "WIF-USDT", "btc-usd", "BTCUSD", "???"):
        assert cg.provider_symbol(symbol) is None, symbol


# --- requests ------------------------------------------------------------------------------------------------------
def test_quotes_request_joins_distinct_ids_and_vs_currencies_once_each():
    req = cg.quotes_request(BASE, ["BTC-USD", "ETH-USD", "BTC-EUR"])
    assert req.method == "GET"
    assert req.url.params["ids"] == "bitcoin,ethereum"
    assert req.url.params["vs_currencies"] == "usd,eur"


def test_quotes_request_asks_for_the_update_time_and_full_precision():
    params = cg.quotes_request(BASE, ["BTC-USD"]).url.params
    assert params["include_last_updated_at"] == "true"
    assert params["precision"] == "full"


def test_quotes_request_honours_the_base_url_and_its_path():
    req = cg.quotes_request(BASE + "/", ["BTC-USD"])
    assert str(req.url).startswith("http://127.0.0.1:9/api/v3/simple/price?")


def test_quotes_request_refuses_a_symbol_it_does_not_serve():
    with pytest.raises(ValueError, match="does not serve"):
        cg.quotes_request(BASE, ["BTC-USDT"])


def test_quotes_request_refuses_more_than_one_batch():
    with pytest.raises(ValueError, match="1 to 100"):
        cg.quotes_request(BASE, ["BTC-USD"] * 101)


def test_candles_are_not_supported_and_say_so():
    with pytest.raises(ProviderError) as err:
        cg.candles_request(BASE, "BTC-USD", "1h", None, None, 100)
    assert err.value.kind == "not_found"
    assert "CoinGecko candles are not supported" in err.value.message


# --- parsing -------------------------------------------------------------------------------------------------------
def test_the_price_matrix_becomes_one_quote_per_asked_symbol():
    raw = '{"bitcoin": {"usd": 67187.33, "eur": 61950.5}, "ethereum": {"usd": 3421.07}}'
    quotes = parse(raw, ["BTC-USD", "BTC-EUR", "ETH-USD"])
    assert {s: q.price for s, q in quotes.items()} == {
        "BTC-USD": Decimal("67187.33"),
        "BTC-EUR": Decimal("61950.5"),
        "ETH-USD": Decimal("3421.07"),
    }
    assert quotes["BTC-EUR"].currency == "EUR"
    assert quotes["BTC-USD"].provider == "coingecko"


def test_prices_keep_every_digit_a_float_would_lose():
    quotes = parse(
        '{"pepe": {"usd": 0.000012345678901234567}, "bitcoin": {"usd": 67187.123456789012345}}', ["PEPE-USD", "BTC-USD"]
    )
    assert quotes["PEPE-USD"].price == Decimal("0.000012345678901234567")
    assert quotes["BTC-USD"].price == Decimal("67187.123456789012345")
    assert isinstance(quotes["BTC-USD"].price, Decimal)


def test_last_updated_at_seconds_give_the_quote_time_in_ms():
    quotes = parse('{"bitcoin": {"usd": 67187.33, "last_updated_at": 1711356300}}', ["BTC-USD"])
    assert quotes["BTC-USD"].ts_ms == 1_711_356_300_000


def test_without_last_updated_at_the_quote_time_is_now():
    assert parse('{"bitcoin": {"usd": 67187.33}}', ["BTC-USD"])["BTC-USD"].ts_ms == NOW_MS


def test_the_24h_volume_is_kept_as_quote_currency_volume_not_base_volume():
    q = parse('{"bitcoin": {"usd": 67187.33, "usd_24h_vol": 31234567890.12}}', ["BTC-USD"])["BTC-USD"]
    assert q.volume_24h is None
    assert q.extra["volume_24h_quote"] == Decimal("31234567890.12")


def test_a_coin_missing_from_a_good_answer_is_simply_absent():
    quotes = parse('{"bitcoin": {"usd": 67187.33}}', ["BTC-USD", "ETH-USD", "BTC-EUR"])
    assert set(quotes) == {"BTC-USD"}


def test_an_empty_answer_means_no_quotes_not_an_error():
    assert parse("{}", ["BTC-USD"]) == {}


def test_null_and_zero_prices_are_absent():
    assert parse('{"bitcoin": {"usd": null}, "ethereum": {"usd": 0}}', ["BTC-USD", "ETH-USD"]) == {}


def test_one_garbled_price_does_not_sink_the_batch():
    quotes = parse('{"bitcoin": {"usd": "n/a"}, "ethereum": {"usd": 3421.07}}', ["BTC-USD", "ETH-USD"])
    assert set(quotes) == {"ETH-USD"}


def test_only_garbled_prices_are_a_bad_response():
    with pytest.raises(ProviderError) as err:
        parse('{"bitcoin": {"usd": "n/a"}}', ["BTC-USD"])
    assert err.value.kind == "bad_response"


def test_coin_not_found_404_is_not_found():
    with pytest.raises(ProviderError) as err:
        parse(body({"error": "coin not found"}), ["BTC-USD"], status=404)
    assert err.value.kind == "not_found"
    assert "coin not found" in err.value.message


def test_429_with_retry_after_is_rate_limited_with_the_wait():
    raw = body({"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}})
    with pytest.raises(ProviderError) as err:
        parse(raw, ["BTC-USD"], status=429, headers={"Retry-After": "30"})
    assert err.value.kind == "rate_limited"
    assert err.value.retry_after_s == 30.0
    assert "exceeded the Rate Limit" in err.value.message


def test_429_without_retry_after_is_rate_limited_without_a_wait():
    with pytest.raises(ProviderError) as err:
        parse("Throttled", ["BTC-USD"], status=429)
    assert (err.value.kind, err.value.retry_after_s) == ("rate_limited", None)


def test_a_5xx_is_unavailable():
    with pytest.raises(ProviderError) as err:
        parse("<html>502 Bad Gateway</html>", ["BTC-USD"], status=502)
    assert err.value.kind == "unavailable"


def test_an_error_envelope_in_a_200_body_is_a_provider_error():
    raw = body({"status": {"error_code": 10002, "error_message": "API Key Missing"}})
    with pytest.raises(ProviderError) as err:
        parse(raw, ["BTC-USD"])
    assert err.value.kind == "provider_error"
    assert "API Key Missing" in err.value.message


def test_a_non_json_200_body_is_a_bad_response():
    with pytest.raises(ProviderError) as err:
        parse("<html>maintenance</html>", ["BTC-USD"])
    assert err.value.kind == "bad_response"


def test_a_json_list_instead_of_the_matrix_is_a_bad_response():
    with pytest.raises(ProviderError) as err:
        parse("[1, 2]", ["BTC-USD"])
    assert err.value.kind == "bad_response"


def test_parse_candles_refuses_like_the_request_builder():
    with pytest.raises(ProviderError) as err:
        cg.parse_candles(200, httpx.Headers(), b"[]", "BTC-USD", "1h", NOW_MS)
    assert err.value.kind == "not_found"

"""Yahoo chart v8: requests and the parser, on bodies written in Yahoo's chart shape."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from asset_price_mcp.providers import yahoo
from asset_price_mcp.providers.base import ProviderError

BASE = "http://127.0.0.1:9"
DAY = 86_400
T0 = 1_739_836_800  # 2025-02-18 00:00 UTC, a day boundary
NOT_FOUND = (
    '{"chart":{"result":null,"error":{"code":"Not Found","description":"No data found, symbol may be delisted"}}}'
)


def meta(**kw) -> dict:
    m = {"currency": "USD", "symbol": "BTC-USD", "exchangeName": "CCC", "instrumentType": "CRYPTOCURRENCY"}
    m["currentTradingPeriod"] = {"regular": {"timezone": "UTC", "start": T0 + DAY, "end": T0 + 2 * DAY - 60}}
    return m | kw


def chart(meta_: dict, stamps: list[int] | None = None, rows: list[list] | None = None) -> bytes:
    """A chart answer: `rows` are [open, high, low, close, volume] per timestamp (None for Yahoo's nulls)."""
    result: dict = {"meta": meta_, "indicators": {"quote": [{}]}}
    if stamps is not None:
        cols = list(zip(*rows, strict=True)) if rows else [[]] * 5
        result["timestamp"] = stamps
        result["indicators"]["quote"] = [dict(zip(["open", "high", "low", "close", "volume"], cols, strict=True))]
    return json.dumps({"chart": {"result": [result], "error": None}}).encode()


def quotes(raw: bytes | str, symbol: str = "BTC-USD", status: int = 200, headers=None, now_ms: int = 0):
    raw = raw.encode() if isinstance(raw, str) else raw
    return yahoo.parse_quotes(status, httpx.Headers(headers or {}), raw, [symbol], now_ms)


def candles(raw: bytes | str, interval: str = "1d", now_ms: int = (T0 + 10 * DAY) * 1000, symbol: str = "BTC-USD"):
    raw = raw.encode() if isinstance(raw, str) else raw
    return yahoo.parse_candles(200, httpx.Headers(), raw, symbol, interval, now_ms)


def failure(raw: str, status: int, headers=None) -> ProviderError:
    with pytest.raises(ProviderError) as err:
        quotes(raw, status=status, headers=headers)
    return err.value


# --- module surface and symbols ------------------------------------------------------------------------------------
def test_the_module_declares_its_name_base_url_and_one_symbol_batches():
    assert (yahoo.NAME, yahoo.DEFAULT_BASE_URL, yahoo.BASE_URL_ENV) == (
        "yahoo",
        "https://query1.finance.yahoo.com",
        "YAHOO_BASE_URL",
    )
    assert yahoo.QUOTE_BATCH == 1
    assert yahoo.INTERVALS == {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "60m", "1d": "1d"}


@pytest.mark.parametrize(
    ("symbol", "code"),
    [
        ("AAPL", "AAPL"),
        ("SPY", "SPY"),
        ("BRK.B", "BRK-B"),
        ("BTC-USD", "BTC-USD"),
        ("EUR-USD", "EURUSD=X"),
        ("USD-JPY", "USDJPY=X"),
        ("XAU-USD", "GC=F"),
        ("XAG-USD", "SI=F"),
    ],
)
def test_canonical_symbols_map_to_yahoo_codes(symbol, code):
    assert yahoo.provider_symbol(symbol) == code


def test_non_usd_crypto_unknown_metals_pairs_and_non_canonical_spellings_are_not_served():
    for symbol in ("BTC-USDT", "ETH-EUR", "XAU-EUR", "aapl", "BTCUSD", "???"):
        assert yahoo.provider_symbol(symbol) is None, symbol


# --- requests ------------------------------------------------------------------------------------------------------
def test_quotes_request_asks_for_one_symbols_chart_over_one_day_at_the_base_url():
    req = yahoo.quotes_request(BASE + "/", ["XAU-USD"])
    assert str(req.url) == "http://127.0.0.1:9/v8/finance/chart/GC=F?interval=1d&range=1d"


def test_quotes_request_takes_exactly_one_symbol():
    with pytest.raises(ValueError, match="exactly one"):
        yahoo.quotes_request(BASE, ["AAPL", "MSFT"])


def test_candles_request_sends_start_and_end_as_period1_and_period2_seconds():
    req = yahoo.candles_request(BASE, "AAPL", "1h", 1_700_000_000_000, 1_700_100_000_500, 10)
    assert req.url.path == "/v8/finance/chart/AAPL"
    params = req.url.params
    assert params["interval"] == "60m"
    assert (params["period1"], params["period2"]) == ("1700000000", "1700100001")
    assert "range" not in params


def test_candles_request_with_only_an_end_reaches_back_limit_bars():
    params = yahoo.candles_request(BASE, "SPY", "1d", None, 1_700_000_000_000, 10).url.params
    assert (params["period1"], params["period2"]) == (str(1_700_000_000 - 10 * DAY), "1700000000")


def test_candles_request_with_only_a_start_reaches_forward_limit_bars():
    params = yahoo.candles_request(BASE, "BTC-USD", "5m", 1_700_000_000_000, None, 12).url.params
    assert (params["period1"], params["period2"]) == ("1700000000", str(1_700_000_000 + 3600))


def test_candles_request_without_times_picks_the_shortest_range_holding_the_bars():
    assert yahoo.candles_request(BASE, "BTC-USD", "1d", None, None, 20).url.params["range"] == "1mo"
    assert yahoo.candles_request(BASE, "BTC-USD", "1h", None, None, 24).url.params["range"] == "1d"


def test_candles_request_allows_for_closed_markets_when_choosing_a_range():
    # 100 daily stock bars need ~150 calendar days
    assert yahoo.candles_request(BASE, "AAPL", "1d", None, None, 100).url.params["range"] == "6mo"


def test_candles_request_never_asks_for_a_range_the_interval_refuses():
    assert yahoo.candles_request(BASE, "AAPL", "1m", None, None, 1000).url.params["range"] == "5d"
    assert yahoo.candles_request(BASE, "AAPL", "15m", None, None, 1000).url.params["range"] == "1mo"


def test_candles_request_refuses_an_interval_yahoo_lacks():
    with pytest.raises(ValueError, match="4h"):
        yahoo.candles_request(BASE, "AAPL", "4h", None, None, 10)


# --- quotes --------------------------------------------------------------------------------------------------------
def test_the_quote_is_the_regular_market_price_at_its_time_in_its_currency():
    q = quotes(chart(meta(regularMarketPrice=95219.02, regularMarketTime=1739941320)))["BTC-USD"]
    assert (q.price, q.ts_ms, q.currency, q.provider) == (Decimal("95219.02"), 1_739_941_320_000, "USD", "yahoo")
    assert q.extra["exchangeName"] == "CCC"


def test_the_quote_price_keeps_every_digit():
    raw = chart(meta()).replace(b'"currency"', b'"regularMarketPrice": 1.0842000000000000001, "currency"')
    assert quotes(raw)["BTC-USD"].price == Decimal("1.0842000000000000001")


def test_without_a_market_time_the_quote_time_is_now():
    assert quotes(chart(meta(regularMarketPrice=10)), now_ms=123)["BTC-USD"].ts_ms == 123


def test_a_quote_for_a_mapped_code_names_the_yahoo_code():
    q = quotes(chart(meta(regularMarketPrice=2650.5, currency="USD", symbol="GC=F")), symbol="XAU-USD")
    assert q["XAU-USD"].extra["yahoo_symbol"] == "GC=F"


def test_a_chart_without_a_price_is_a_bad_response():
    assert failure(chart(meta()).decode(), 200).kind == "bad_response"


def test_a_404_chart_error_is_not_found_with_yahoos_description():
    err = failure(NOT_FOUND, 404)
    assert err.kind == "not_found"
    assert "No data found, symbol may be delisted" in err.message


def test_a_422_range_error_is_not_found():
    raw = '{"chart":{"result":null,"error":{"code":"Unprocessable Entity","description":"1m data not available"}}}'
    assert failure(raw, 422).kind == "not_found"


def test_a_429_is_rate_limited_with_the_wait():
    err = failure("Too Many Requests", 429, {"Retry-After": "12"})
    assert (err.kind, err.retry_after_s) == ("rate_limited", 12.0)


def test_a_5xx_is_unavailable():
    assert failure("<html>oops</html>", 503).kind == "unavailable"


def test_an_error_inside_a_200_chart_is_a_provider_error():
    raw = '{"chart":{"result":null,"error":{"code":"Internal","description":"try later"}}}'
    assert failure(raw, 200).kind == "provider_error"


def test_an_empty_result_is_not_found():
    assert failure('{"chart":{"result":[],"error":null}}', 200).kind == "not_found"


def test_a_non_json_body_is_a_bad_response():
    assert failure("<html>consent</html>", 200).kind == "bad_response"


# --- candles -------------------------------------------------------------------------------------------------------
def test_chart_arrays_become_exact_candles_with_times_in_ms():
    raw = chart(meta(), [T0 - DAY, T0], [[1.5, 2.25, 1.25, 2.0, 100], [2.0, 3.0, 1.75, 2.5, 200]])
    out = candles(raw)
    assert [c.open_ms for c in out] == [(T0 - DAY) * 1000, T0 * 1000]
    assert (out[1].open, out[1].high, out[1].low, out[1].close, out[1].volume) == tuple(
        Decimal(x) for x in ("2.0", "3.0", "1.75", "2.5", "200")
    )
    assert all(c.closed for c in out)


def test_candle_prices_keep_every_digit():
    raw = chart(meta(), [T0], [[1, 1, 1, 1, 1]]).replace(b"[1]", b"[95607.8671875000000001]", 1)
    assert candles(raw)[0].open == Decimal("95607.8671875000000001")


def test_bars_holding_a_null_are_skipped_not_filled_in():
    rows = [[1, 2, 1, 2, 10], [None, None, None, None, None], [2, 3, 2, 3, None], [3, 4, 3, 4, 30]]
    out = candles(chart(meta(), [T0 - 3 * DAY, T0 - 2 * DAY, T0 - DAY, T0], rows))
    assert [c.open_ms // 1000 for c in out] == [T0 - 3 * DAY, T0]


def test_candles_come_out_ascending_even_if_the_arrays_are_not():
    out = candles(chart(meta(), [T0, T0 - DAY], [[2, 2, 2, 2, 2], [1, 1, 1, 1, 1]]))
    assert [c.close for c in out] == [Decimal(1), Decimal(2)]


def test_a_bar_not_over_at_now_is_not_closed():
    raw = chart(meta(), [T0, T0 + 3600], [[1, 1, 1, 1, 1], [2, 2, 2, 2, 2]])
    out = candles(raw, interval="1h", now_ms=(T0 + 3600 + 1800) * 1000)
    assert [c.closed for c in out] == [True, False]


def test_the_live_bar_stamped_at_the_last_trade_moves_to_its_interval_start():
    raw = chart(meta(regularMarketTime=T0 + DAY + 18_120), [T0 + DAY + 18_120], [[1, 2, 1, 2, 5]])
    (bar,) = candles(raw, now_ms=(T0 + DAY + 18_200) * 1000)
    assert (bar.open_ms, bar.closed) == ((T0 + DAY) * 1000, False)


def test_a_live_row_repeating_the_last_bucket_is_merged_into_it():
    stamps = [T0, T0 + DAY, T0 + DAY + 18_120]
    rows = [[1, 1, 1, 1, 1], [10, 12, 9, 11, 500], [10, 13, 9.5, 12.5, 520]]
    out = candles(chart(meta(regularMarketTime=T0 + DAY + 18_120), stamps, rows), now_ms=(T0 + DAY + 18_200) * 1000)
    assert [c.open_ms // 1000 for c in out] == [T0, T0 + DAY]
    live = out[-1]
    assert (live.open, live.high, live.low, live.close, live.volume, live.closed) == (
        Decimal(10),
        Decimal(13),
        Decimal(9),
        Decimal("12.5"),
        Decimal(520),
        False,
    )


def test_live_bars_of_a_market_opening_off_the_hour_align_to_its_session():
    session = T0 + DAY + 14 * 3600 + 1800  # 14:30 UTC, like New York's 09:30 in winter
    m = meta(
        currency="USD", symbol="AAPL", currentTradingPeriod={"regular": {"start": session, "end": session + 23400}}
    )
    raw = chart(
        m, [session, session + 3600, session + 3600 + 1500], [[1, 1, 1, 1, 1], [2, 2, 2, 2, 2], [3, 3, 3, 3, 3]]
    )
    out = candles(raw, interval="1h", now_ms=(session + 3600 + 1600) * 1000, symbol="AAPL")
    assert [c.open_ms // 1000 for c in out] == [session, session + 3600]
    assert out[-1].close == Decimal(3)


def test_an_old_closed_last_bar_keeps_its_own_time():
    raw = chart(meta(regularMarketTime=T0 + DAY + 100), [T0 - 5 * DAY + 3600], [[1, 1, 1, 1, 1]])
    (bar,) = candles(raw)
    assert bar.open_ms == (T0 - 5 * DAY + 3600) * 1000


def test_a_span_without_bars_gives_no_candles():
    assert candles(chart(meta())) == []


def test_price_arrays_shorter_than_the_timestamps_are_a_bad_response():
    raw = json.dumps(
        {
            "chart": {
                "result": [
                    {
                        "meta": meta(),
                        "timestamp": [T0, T0 + DAY],
                        "indicators": {"quote": [{"open": [1], "high": [1], "low": [1], "close": [1], "volume": [1]}]},
                    }
                ],
                "error": None,
            }
        }
    )
    with pytest.raises(ProviderError) as err:
        candles(raw)
    assert err.value.kind == "bad_response"


def test_a_404_for_candles_is_not_found():
    with pytest.raises(ProviderError) as err:
        yahoo.parse_candles(404, httpx.Headers(), NOT_FOUND.encode(), "AAPL", "1d", 0)
    assert err.value.kind == "not_found"

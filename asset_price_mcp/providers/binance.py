"""Binance spot market data (`data-api.binance.vision`, the public market-data-only host).

Quotes come from `GET /api/v3/ticker/24hr?symbols=[...]` (up to 100 markets per request), candles from
`GET /api/v3/klines` (12-field arrays, at most 1000 per request, the newest one still open). Binance has no USD
market, only stablecoins (BTC-USDT, BTC-USDC ...), so BTC-USD is not served here.

Traps: 429/418 carry `Retry-After` (rate limited, 418 = IP banned for a while), 451 means the host refuses this
region, 403 is its web-application firewall, and 400 `{"code":-1121,"msg":"Invalid symbol."}` means an unknown market;
with `symbols=[...]` one unknown market fails the whole batch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

from asset_price_mcp.providers.base import (
    INTERVAL_MS,
    Candle,
    ProviderError,
    Quote,
    dec,
    http_failure,
    join_url,
    load_json,
    positive_or_none,
    retry_after_seconds,
)

NAME = "binance"
DEFAULT_BASE_URL = "https://data-api.binance.vision"
BASE_URL_ENV = "BINANCE_BASE_URL"
QUOTE_BATCH = 100
MAX_CANDLES = 1000
INTERVALS: dict[str, str] = {i: i for i in ("1m", "5m", "15m", "30m", "1h", "4h", "1d")}

# Quote assets with spot markets at Binance; USD itself is absent (Binance.com lists no fiat-USD books).
_QUOTE_ASSETS = frozenset({"USDT", "USDC", "FDUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY"})
_CANONICAL = re.compile(r"^([A-Z0-9]{1,20})-([A-Z0-9]{2,10})$")
_UNKNOWN_SYMBOL = -1121


# --- symbols -------------------------------------------------------------------------------------------------------
def provider_symbol(symbol: str) -> str | None:
    """BTC-USDT -> BTCUSDT; None for stocks, USD-quoted pairs and quotes Binance does not list."""
    m = _CANONICAL.match(symbol)
    if m is None or m[2] not in _QUOTE_ASSETS or m[1] == m[2]:
        return None
    return m[1] + m[2]


def _code(symbol: str) -> str:
    code = provider_symbol(symbol)
    if code is None:
        raise ValueError(f"Binance does not serve {symbol!r}: ask provider_symbol() first.")
    return code


def _quote_asset(symbol: str) -> str:
    return symbol.rsplit("-", 1)[1]


# --- requests ------------------------------------------------------------------------------------------------------


def quotes_request(base_url: str, symbols: list[str]) -> httpx.Request:
    """One 24 h ticker request for up to QUOTE_BATCH markets: `symbols=["BTCUSDT","ETHUSDT"]` (compact JSON)."""
    if not 1 <= len(symbols) <= QUOTE_BATCH:
        raise ValueError(f"Binance takes 1 to {QUOTE_BATCH} symbols per quotes request, not {len(symbols)}.")
    codes = json.dumps([_code(s) for s in symbols], separators=(",", ":"))
    return httpx.Request("GET", join_url(base_url, "/api/v3/ticker/24hr"), params={"symbols": codes})


def candles_request(
    base_url: str, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
) -> httpx.Request:
    """Klines from start_ms (or the `limit` newest up to end_ms, or the newest); limit clamped to 1..MAX_CANDLES."""
    if interval not in INTERVALS:
        raise ValueError(f"Binance has no {interval!r} interval; use one of {', '.join(INTERVALS)}.")
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise ValueError(f"end_ms {end_ms} is before start_ms {start_ms}.")
    params: dict[str, str | int] = {
        "symbol": _code(symbol),
        "interval": INTERVALS[interval],
        "limit": max(1, min(limit, MAX_CANDLES)),
    }
    if start_ms is not None:
        params["startTime"] = start_ms
    if end_ms is not None:
        params["endTime"] = end_ms
    return httpx.Request("GET", join_url(base_url, "/api/v3/klines"), params=params)


# --- parsing -------------------------------------------------------------------------------------------------------
def _bad(message: str) -> ProviderError:
    return ProviderError(NAME, "bad_response", message)


def _failure(status: int, headers: Mapping[str, str], body: bytes, asked: list[str]) -> ProviderError:
    if status in (418, 429, 451) or status >= 500:
        return http_failure(NAME, status, headers, body)
    if status == 403:
        return ProviderError(
            NAME, "rate_limited", "HTTP 403: web application firewall limit", retry_after_seconds(headers)
        )
    try:
        err = json.loads(body)
    except ValueError:
        err = None
    if isinstance(err, dict) and "code" in err:
        if err["code"] == _UNKNOWN_SYMBOL:
            return ProviderError(NAME, "not_found", f"unknown symbol among {', '.join(asked)} ({err.get('msg')})")
        return _bad(f"HTTP {status}, error {err['code']}: {err.get('msg')}")
    return http_failure(NAME, status, headers, body)


def _checked(status: int, headers: Mapping[str, str], body: bytes, asked: list[str]) -> Any:
    if not 200 <= status < 300:
        raise _failure(status, headers, body, asked)
    return load_json(body, NAME)


def _ms(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal) or value != int(value):
        raise _bad(f"{what} is not an integer time: {value!r}")
    return int(value)


def parse_quotes(
    status: int, headers: Mapping[str, str], body: bytes, symbols: list[str], now_ms: int
) -> dict[str, Quote]:
    """24 h tickers -> quotes keyed by the canonical symbols asked; markets with no trade in 24 h are left out."""
    data = _checked(status, headers, body, symbols)
    rows = data if isinstance(data, list) else [data]  # a single-`symbol` request answers with one object
    wanted = {provider_symbol(s): s for s in symbols}
    out: dict[str, Quote] = {}
    for row in rows:
        if not isinstance(row, dict):
            raise _bad(f"a ticker is not an object: {str(row)[:80]!r}")
        canonical = wanted.get(row.get("symbol"))
        if canonical is None:
            continue
        price = dec(row.get("lastPrice"), NAME, f"{canonical} lastPrice")
        if price <= 0:  # no trade in the window (halted or delisted market): not a price
            continue
        out[canonical] = Quote(
            symbol=canonical,
            price=price,
            ts_ms=_ms(row.get("closeTime"), f"{canonical} closeTime"),
            provider=NAME,
            bid=positive_or_none(row, "bidPrice", NAME, f"{canonical} bidPrice"),
            ask=positive_or_none(row, "askPrice", NAME, f"{canonical} askPrice"),
            volume_24h=dec(row["volume"], NAME, f"{canonical} volume") if row.get("volume") is not None else None,
            currency=_quote_asset(canonical),
            extra={"market": row["symbol"]},
        )
    return out


def parse_candles(
    status: int, headers: Mapping[str, str], body: bytes, symbol: str, interval: str, now_ms: int
) -> list[Candle]:
    """Klines `[open ms, o, h, l, c, volume, close ms, ...]` -> candles, ascending; the forming bar is not closed."""
    if interval not in INTERVALS:
        raise ValueError(f"Binance has no {interval!r} interval.")
    data = _checked(status, headers, body, [symbol])
    if not isinstance(data, list):
        raise _bad(f"klines are not a list: {str(data)[:80]!r}")
    step = INTERVAL_MS[interval]
    by_open: dict[int, Candle] = {}
    for row in data:
        if not isinstance(row, list) or len(row) < 6:
            raise _bad(f"a kline is not a [time, open, high, low, close, volume, ...] array: {str(row)[:80]!r}")
        open_ms = _ms(row[0], "kline open time")
        o, h, lo, c, v = (dec(x, NAME, f"kline {open_ms} {f}") for x, f in zip(row[1:6], "ohlcv", strict=True))
        by_open[open_ms] = Candle(open_ms, o, h, lo, c, v, closed=open_ms + step <= now_ms)
    return [by_open[t] for t in sorted(by_open)]

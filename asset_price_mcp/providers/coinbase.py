"""Coinbase Exchange public market data (`api.exchange.coinbase.com`).

Quotes come from `GET /products/{BASE-QUOTE}/ticker` (no batch endpoint: one market per request), candles from
`GET /products/{id}/candles?granularity=<seconds>&start=<ISO>&end=<ISO>`: rows `[time s, low, high, open, close,
volume]`, newest first, at most 300 per request (a wider window is rejected), granularities 60, 300, 900, 3600,
21600 and 86400 only (so no 30m and no 4h). Product ids already are canonical symbols (BTC-USD, ETH-EUR).

Traps: 404 `{"message":"NotFound"}` for an unknown product; start/end are ignored unless both are sent; candle
numbers are JSON numbers, parsed here as exact decimals.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from asset_price_mcp.providers.base import (
    Candle,
    ProviderError,
    Quote,
    dec,
    http_failure,
    join_url,
    load_json,
    positive_or_none,
    whole_seconds,
)

NAME = "coinbase"
DEFAULT_BASE_URL = "https://api.exchange.coinbase.com"
BASE_URL_ENV = "COINBASE_BASE_URL"
QUOTE_BATCH = 1
MAX_CANDLES = 300
INTERVALS: dict[str, str] = {"1m": "60", "5m": "300", "15m": "900", "1h": "3600", "1d": "86400"}

_QUOTE_ASSETS = frozenset({"USD", "USDT", "USDC", "EUR", "GBP", "BTC", "ETH", "DAI"})
_CANONICAL = re.compile(r"^([A-Z0-9]{1,20})-([A-Z0-9]{2,10})$")
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$")


# --- symbols -------------------------------------------------------------------------------------------------------
def provider_symbol(symbol: str) -> str | None:
    """BTC-USD -> BTC-USD (Coinbase product ids are BASE-QUOTE); None for stocks and quotes Coinbase lacks."""
    m = _CANONICAL.match(symbol)
    if m is None or m[2] not in _QUOTE_ASSETS or m[1] == m[2]:
        return None
    return symbol


def _code(symbol: str) -> str:
    code = provider_symbol(symbol)
    if code is None:
        raise ValueError(f"Coinbase does not serve {symbol!r}: ask provider_symbol() first.")
    return code


# --- requests ------------------------------------------------------------------------------------------------------


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def quotes_request(base_url: str, symbols: list[str]) -> httpx.Request:
    """The ticker of exactly one product: Coinbase Exchange has no batch ticker."""
    if len(symbols) != QUOTE_BATCH:
        raise ValueError(f"Coinbase takes exactly one symbol per quotes request, not {len(symbols)}.")
    return httpx.Request("GET", join_url(base_url, f"/products/{_code(symbols[0])}/ticker"))


def candles_request(
    base_url: str, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
) -> httpx.Request:
    """Candles in a window of at most `limit` bars (clamped to 1..MAX_CANDLES).

    Coinbase has no count parameter: with neither start nor end it answers the newest 300 bars (trim them); with one
    bound the other is derived from `limit`; a wider start..end window is narrowed to `limit` bars from start, because
    Coinbase rejects windows of more than 300 bars. Some answered bars may precede start: trim them.
    """
    if interval not in INTERVALS:
        raise ValueError(f"Coinbase has no {interval!r} interval; use one of {', '.join(INTERVALS)}.")
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise ValueError(f"end_ms {end_ms} is before start_ms {start_ms}.")
    granularity = int(INTERVALS[interval])
    params: dict[str, str | int] = {"granularity": granularity}
    if start_ms is not None or end_ms is not None:
        span_ms = (max(1, min(limit, MAX_CANDLES)) - 1) * granularity * 1000
        if start_ms is None:
            start_ms = (end_ms or 0) - span_ms
        if end_ms is None or end_ms - start_ms > span_ms:
            end_ms = start_ms + span_ms
        params["start"] = _iso(-(-start_ms // 1000) * 1000)  # rounded up: never reach back before start
        params["end"] = _iso(end_ms)
    return httpx.Request("GET", join_url(base_url, f"/products/{_code(symbol)}/candles"), params=params)


# --- parsing -------------------------------------------------------------------------------------------------------
def _bad(message: str) -> ProviderError:
    return ProviderError(NAME, "bad_response", message)


def _message(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return str(data["message"]) if isinstance(data, dict) and "message" in data else None


def _checked(status: int, headers: Mapping[str, str], body: bytes, symbol: str) -> Any:
    if 200 <= status < 300:
        return load_json(body, NAME)
    message = _message(body)
    if status == 404:
        raise ProviderError(NAME, "not_found", f"no product {symbol} ({message or 'HTTP 404'})")
    if status in (400, 422) and message is not None:
        raise _bad(f"HTTP {status}: {message}")
    raise http_failure(NAME, status, headers, body)


def _time_ms(value: Any, what: str) -> int:
    """ISO 8601 (`2024-03-13T11:10:41.270099Z`, any number of fraction digits) -> UTC epoch ms."""
    m = _ISO.match(value) if isinstance(value, str) else None
    if m is None:
        raise _bad(f"{what} is not an ISO 8601 time: {value!r}")
    zone = m[3] or "+00:00"
    try:
        moment = datetime.fromisoformat(m[1].replace(" ", "T") + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        raise _bad(f"{what} is not a valid time: {value!r}") from None
    return int(moment.timestamp()) * 1000 + int((m[2] or "0")[:3].ljust(3, "0"))


def parse_quotes(
    status: int, headers: Mapping[str, str], body: bytes, symbols: list[str], now_ms: int
) -> dict[str, Quote]:
    """A product ticker `{trade_id, price, size, time, bid, ask, volume}` -> the quote of the one symbol asked."""
    if len(symbols) != 1:
        raise ValueError(f"Coinbase answers one symbol per quotes request, not {len(symbols)}.")
    symbol = symbols[0]
    data = _checked(status, headers, body, symbol)
    if not isinstance(data, dict):
        raise _bad(f"the ticker is not an object: {str(data)[:80]!r}")
    if "price" not in data and "message" in data:
        raise ProviderError(NAME, "provider_error", f"{symbol}: {data['message']}")
    price = dec(data.get("price"), NAME, f"{symbol} price")
    if price <= 0:
        return {}
    extra = {"market": symbol} | {k: data[k] for k in ("trade_id", "size") if data.get(k) is not None}
    quote = Quote(
        symbol=symbol,
        price=price,
        ts_ms=_time_ms(data.get("time"), f"{symbol} time"),
        provider=NAME,
        bid=positive_or_none(data, "bid", NAME, f"{symbol} bid"),
        ask=positive_or_none(data, "ask", NAME, f"{symbol} ask"),
        volume_24h=dec(data["volume"], NAME, f"{symbol} volume") if data.get("volume") is not None else None,
        currency=symbol.rsplit("-", 1)[1],
        extra=extra,
    )
    return {symbol: quote}


def parse_candles(
    status: int, headers: Mapping[str, str], body: bytes, symbol: str, interval: str, now_ms: int
) -> list[Candle]:
    """Rows `[time s, low, high, open, close, volume]` (newest first) -> candles ascending by open time."""
    if interval not in INTERVALS:
        raise ValueError(f"Coinbase has no {interval!r} interval.")
    data = _checked(status, headers, body, symbol)
    if not isinstance(data, list):
        if isinstance(data, dict) and "message" in data:
            raise ProviderError(NAME, "provider_error", f"{symbol}: {data['message']}")
        raise _bad(f"candles are not a list: {str(data)[:80]!r}")
    step_ms = int(INTERVALS[interval]) * 1000
    by_open: dict[int, Candle] = {}
    for row in data:
        if not isinstance(row, list) or len(row) < 6:
            raise _bad(f"a candle is not a [time, low, high, open, close, volume] array: {str(row)[:80]!r}")
        open_ms = whole_seconds(row[0], NAME, "candle time") * 1000
        lo, h, o, c, v = (dec(x, NAME, f"candle {open_ms} {f}") for x, f in zip(row[1:6], "lhocv", strict=True))
        by_open[open_ms] = Candle(open_ms, o, h, lo, c, v, closed=open_ms + step_ms <= now_ms)
    return [by_open[t] for t in sorted(by_open)]

"""Kraken spot public market data (`api.kraken.com/0/public`).

Quotes come from `GET /0/public/Ticker?pair=XBTUSD,ETHEUR` (up to 50 pairs per request), candles from
`GET /0/public/OHLC?pair=..&interval=<minutes>&since=<s>`: rows `[time s, open, high, low, close, vwap, volume,
count]` plus a `last` field, only the 720 most recent bars (older ones cannot be fetched), the final bar still open.

Traps: Kraken calls BTC "XBT" (and DOGE "XDG"); it answers HTTP 200 with an `error` array
(`EQuery:Unknown asset pair`, `EAPI:Rate limit exceeded` ...), and keys results by its own pair names, which may differ
from the name asked (`XBTUSD` -> `XXBTZUSD`, `ETHEUR` -> `XETHZEUR`, but `XBTUSDT` -> `XBTUSDT`). One unknown pair
fails a whole batch. The ticker carries no time: quotes are stamped with the time of receipt.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
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
    whole_seconds,
)

NAME = "kraken"
DEFAULT_BASE_URL = "https://api.kraken.com"
BASE_URL_ENV = "KRAKEN_BASE_URL"
QUOTE_BATCH = 50
MAX_CANDLES = 720
INTERVALS: dict[str, str] = {"1m": "1", "5m": "5", "15m": "15", "30m": "30", "1h": "60", "4h": "240", "1d": "1440"}

_QUOTE_ASSETS = frozenset({"USD", "EUR", "GBP", "CAD", "JPY", "CHF", "AUD", "USDT", "USDC", "BTC", "ETH"})
_KRAKEN_ASSET = {"BTC": "XBT", "DOGE": "XDG"}  # canonical -> Kraken's asset code, where they differ
_CANONICAL = re.compile(r"^([A-Z0-9]{1,20})-([A-Z0-9]{2,10})$")
_RATE_LIMITED = ("EAPI:Rate limit exceeded", "EGeneral:Too many requests", "EGeneral:Temporary lockout")


# --- symbols -------------------------------------------------------------------------------------------------------
def _assets(symbol: str) -> tuple[str, str] | None:
    m = _CANONICAL.match(symbol)
    if m is None or m[2] not in _QUOTE_ASSETS or m[1] == m[2]:
        return None
    return _KRAKEN_ASSET.get(m[1], m[1]), _KRAKEN_ASSET.get(m[2], m[2])


def provider_symbol(symbol: str) -> str | None:
    """BTC-USD -> XBTUSD, ETH-BTC -> ETHXBT; None for stocks and quotes Kraken lacks."""
    assets = _assets(symbol)
    return None if assets is None else assets[0] + assets[1]


def _result_keys(symbol: str) -> list[str]:
    """The names Kraken may key this pair's result by: as asked, then its X- (crypto) / Z- (fiat) prefixed forms."""
    assets = _assets(symbol)
    if assets is None:
        return []
    base, quote = assets
    forms = [base + quote, f"X{base}Z{quote}", f"X{base}X{quote}", f"X{base}{quote}", f"{base}Z{quote}"]
    return list(dict.fromkeys(forms))


def _code(symbol: str) -> str:
    code = provider_symbol(symbol)
    if code is None:
        raise ValueError(f"Kraken does not serve {symbol!r}: ask provider_symbol() first.")
    return code


# --- requests ------------------------------------------------------------------------------------------------------


def quotes_request(base_url: str, symbols: list[str]) -> httpx.Request:
    """One ticker request for up to QUOTE_BATCH pairs: `pair=XBTUSD,ETHEUR`."""
    if not 1 <= len(symbols) <= QUOTE_BATCH:
        raise ValueError(f"Kraken takes 1 to {QUOTE_BATCH} symbols per quotes request, not {len(symbols)}.")
    pairs = ",".join(_code(s) for s in symbols)
    return httpx.Request("GET", join_url(base_url, "/0/public/Ticker"), params={"pair": pairs})


def candles_request(
    base_url: str, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
) -> httpx.Request:
    """OHLC from start_ms on (`since` is exclusive, so one second earlier is sent).

    Kraken has no end or count parameter and always answers at most the 720 newest bars: `end_ms` and `limit` are
    checked but not sent, so trim the answer to the window and count you wanted.
    """
    if interval not in INTERVALS:
        raise ValueError(f"Kraken has no {interval!r} interval; use one of {', '.join(INTERVALS)}.")
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise ValueError(f"end_ms {end_ms} is before start_ms {start_ms}.")
    params: dict[str, str | int] = {"pair": _code(symbol), "interval": INTERVALS[interval]}
    if start_ms is not None:
        params["since"] = math.ceil(start_ms / 1000) - 1
    return httpx.Request("GET", join_url(base_url, "/0/public/OHLC"), params=params)


# --- parsing -------------------------------------------------------------------------------------------------------
def _bad(message: str) -> ProviderError:
    return ProviderError(NAME, "bad_response", message)


def _error(errors: list[str]) -> ProviderError:
    text = "; ".join(errors)
    if any(e.startswith("EQuery:Unknown asset pair") for e in errors):
        return ProviderError(NAME, "not_found", text)
    if any(e.startswith(_RATE_LIMITED) for e in errors):
        return ProviderError(NAME, "rate_limited", text)
    if any(e.startswith("EService:") for e in errors):  # EService:Unavailable / Busy: Kraken itself is down
        return ProviderError(NAME, "unavailable", text)
    return ProviderError(NAME, "provider_error", text)


def _result(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The `result` object of a good answer; the `error` array (HTTP 200 included) raised as a typed failure."""
    if not 200 <= status < 300:
        raise http_failure(NAME, status, headers, body)
    data = load_json(body, NAME)
    if not isinstance(data, dict):
        raise _bad(f"the answer is not an object: {str(data)[:80]!r}")
    errors = data.get("error") or []
    if not isinstance(errors, list):
        raise _bad(f"the error field is not a list: {errors!r}")
    # Entries start with a severity: E for errors, W for warnings (which do not spoil the result).
    failures = [str(e) for e in errors if not (isinstance(e, str) and e.startswith("W"))]
    if failures:
        raise _error(failures)
    result = data.get("result")
    if not isinstance(result, dict):
        raise _bad(f"no result object in {str(data)[:80]!r}")
    return result


def _match(result: dict[str, Any], symbols: list[str]) -> dict[str, str]:
    """canonical symbol -> the result key that answers it."""
    found: dict[str, str] = {}
    for s in symbols:
        key = next((k for k in _result_keys(s) if k in result and k not in found.values()), None)
        if key is not None:
            found[s] = key
    keys = [k for k in result if k != "last"]
    if not found and len(symbols) == 1 and len(keys) == 1:  # an alias we did not foresee (e.g. an odd altname)
        found[symbols[0]] = keys[0]
    return found


def _first(entry: dict[str, Any], field: str, index: int, what: str) -> Decimal:
    values = entry.get(field)
    if not isinstance(values, list) or len(values) <= index:
        raise _bad(f"{what} ({field!r}) is missing")
    return dec(values[index], NAME, what)


def parse_quotes(
    status: int, headers: Mapping[str, str], body: bytes, symbols: list[str], now_ms: int
) -> dict[str, Quote]:
    """Ticker entries (`c` last trade, `b` bid, `a` ask, `v` volume today/24 h) -> quotes keyed by the symbols asked."""
    result = _result(status, headers, body)
    out: dict[str, Quote] = {}
    for symbol, key in _match(result, symbols).items():
        entry = result[key]
        if not isinstance(entry, dict):
            raise _bad(f"the ticker of {key} is not an object")
        price = _first(entry, "c", 0, f"{symbol} last price")
        if price <= 0:
            continue
        bid, ask = _first(entry, "b", 0, f"{symbol} bid"), _first(entry, "a", 0, f"{symbol} ask")
        out[symbol] = Quote(
            symbol=symbol,
            price=price,
            ts_ms=now_ms,  # Kraken's ticker has no timestamp
            provider=NAME,
            bid=bid if bid > 0 else None,
            ask=ask if ask > 0 else None,
            volume_24h=_first(entry, "v", 1, f"{symbol} 24 h volume"),
            currency=symbol.rsplit("-", 1)[1],
            extra={"market": key},
        )
    return out


def parse_candles(
    status: int, headers: Mapping[str, str], body: bytes, symbol: str, interval: str, now_ms: int
) -> list[Candle]:
    """OHLC rows `[time s, open, high, low, close, vwap, volume, count]` -> candles, ascending.

    A bar is closed when its end is not after now_ms and Kraken has committed it (its time is not after `last`).
    """
    if interval not in INTERVALS:
        raise ValueError(f"Kraken has no {interval!r} interval.")
    result = _result(status, headers, body)
    key = _match(result, [symbol]).get(symbol)
    if key is None:
        raise _bad(f"no OHLC for {symbol} among {', '.join(result) or 'no keys'}")
    rows = result[key]
    if not isinstance(rows, list):
        raise _bad(f"the OHLC of {key} is not a list")
    last = result.get("last")
    last_s = whole_seconds(last, NAME, "last") if last is not None else None
    step_ms = int(INTERVALS[interval]) * 60_000
    by_open: dict[int, Candle] = {}
    for row in rows:
        if not isinstance(row, list) or len(row) < 7:
            raise _bad(f"an OHLC row is not a [time, o, h, l, c, vwap, volume, count] array: {str(row)[:80]!r}")
        time_s = whole_seconds(row[0], NAME, "OHLC time")
        o, h, lo, c = (dec(x, NAME, f"OHLC {time_s} {f}") for x, f in zip(row[1:5], "ohlc", strict=True))
        volume = dec(row[6], NAME, f"OHLC {time_s} volume")
        committed = last_s is None or time_s <= last_s
        closed = committed and time_s * 1000 + step_ms <= now_ms
        by_open[time_s * 1000] = Candle(time_s * 1000, o, h, lo, c, volume, closed=closed)
    return [by_open[t] for t in sorted(by_open)]

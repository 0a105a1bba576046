"""Yahoo Finance chart API v8: stocks, ETFs, FX, metals (through COMEX futures) and USD crypto, one symbol a request.

`GET /v8/finance/chart/{code}?interval=1d&range=1d` answers `{"chart": {"result": [{"meta": {...}, "timestamp":
[...], "indicators": {"quote": [{"open": [...], "high": [...], "low": [...], "close": [...], "volume": [...]}]}}],
"error": null}}`. The quote is `meta.regularMarketPrice` at `meta.regularMarketTime` (seconds) in `meta.currency`;
candles are the parallel arrays, timestamps in seconds.

Traps: an unknown or delisted symbol is HTTP 404 with `{"chart": {"result": null, "error": {"code": "Not Found",
"description": "No data found, symbol may be delisted"}}}`; a range outside what an interval keeps (1m: 30 days,
intraday: 60 days) is 422 with the same envelope; the price arrays hold nulls where no trade happened (those bars are
skipped, never filled in); the newest bar is still open and stamped with the time of the latest trade rather than
its interval's start (it is moved back to its start, merged into the previous row when Yahoo also sent that bucket).
XAU-USD and XAG-USD are the front-month gold and silver futures (GC=F, SI=F), close to but not the spot price.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from asset_price_mcp.providers.base import INTERVAL_MS, Candle, ProviderError, Quote, dec, http_failure
from asset_price_mcp.symbols import UnknownSymbol, parse_symbol

NAME = "yahoo"
DEFAULT_BASE_URL = "https://query1.finance.yahoo.com"
BASE_URL_ENV = "YAHOO_BASE_URL"
QUOTE_BATCH = 1
# Per request; 1000 bars of any interval stays inside Yahoo's per-request span limits (1m: 8 days, 60m: 730 days).
MAX_CANDLES = 1000
INTERVALS: dict[str, str] = {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "60m", "1d": "1d"}

_DAY_MS = 86_400_000
# Yahoo's named ranges (days they cover, rounded up) and the longest one each interval accepts.
_RANGES = (("1d", 1), ("5d", 5), ("1mo", 31), ("3mo", 92), ("6mo", 183), ("1y", 366), ("2y", 731), ("5y", 1827))
_RANGES += (("10y", 3653),)
_MAX_RANGE = {"1m": "5d", "5m": "1mo", "15m": "1mo", "30m": "1mo", "1h": "2y", "1d": "10y"}
_METAL_CODES = {"XAU-USD": "GC=F", "XAG-USD": "SI=F", "XPT-USD": "PL=F", "XPD-USD": "PA=F"}


# --- symbols -------------------------------------------------------------------------------------------------------
def provider_symbol(symbol: str) -> str | None:
    """AAPL -> AAPL, BRK.B -> BRK-B, BTC-USD -> BTC-USD, EUR-USD -> EURUSD=X, XAU-USD -> GC=F; None otherwise."""
    try:
        inst = parse_symbol(symbol)
    except UnknownSymbol:
        return None
    if inst.symbol != symbol:
        return None
    if inst.kind in ("stock", "etf"):
        return inst.symbol.replace(".", "-")  # Yahoo writes share classes with a dash
    if inst.kind == "fx":
        return f"{inst.base}{inst.quote}=X"
    if inst.kind == "metal":
        return _METAL_CODES.get(inst.symbol)
    return inst.symbol if inst.quote == "USD" else None  # Yahoo's crypto (CoinMarketCap-fed) is USD-quoted here


def _code(symbol: str) -> str:
    code = provider_symbol(symbol)
    if code is None:
        raise ValueError(f"Yahoo does not serve {symbol!r}: ask provider_symbol() first.")
    return code


def _is_crypto(symbol: str) -> bool:
    return parse_symbol(symbol).kind == "crypto"


# --- requests ------------------------------------------------------------------------------------------------------
def _url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/v8/finance/chart/{quote(code, safe='=^')}"


def quotes_request(base_url: str, symbols: list[str]) -> httpx.Request:
    """The chart of one symbol over the last day, small, whose meta carries the current price."""
    if len(symbols) != 1:
        raise ValueError(f"Yahoo takes exactly one symbol per quotes request, not {len(symbols)}.")
    return httpx.Request("GET", _url(base_url, _code(symbols[0])), params={"interval": "1d", "range": "1d"})


def candles_request(
    base_url: str, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
) -> httpx.Request:
    """Bars in [start_ms, end_ms] (period1/period2, seconds), or `limit` bars from start or back from end; with
    neither, the shortest named `range` that holds `limit` bars. Yahoo has no count parameter: the caller trims."""
    if interval not in INTERVALS:
        raise ValueError(f"Yahoo has no {interval!r} interval; use one of {', '.join(INTERVALS)}.")
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise ValueError(f"end_ms {end_ms} is before start_ms {start_ms}.")
    step = INTERVAL_MS[interval]
    span = max(1, min(limit, MAX_CANDLES)) * step
    params: dict[str, str | int] = {"interval": INTERVALS[interval], "includePrePost": "false"}
    if start_ms is None and end_ms is None:
        params["range"] = _range_for(span if _is_crypto(symbol) else _session_span(span, step), interval)
    else:
        first = start_ms if start_ms is not None else end_ms - span  # type: ignore[operator]
        last = end_ms if end_ms is not None else start_ms + span  # type: ignore[operator]
        params["period1"] = first // 1000
        params["period2"] = -(-last // 1000)  # rounded up so a bar opening at end_ms is inside
    return httpx.Request("GET", _url(base_url, _code(symbol)), params=params)


def _session_span(span_ms: int, step_ms: int) -> int:
    """Calendar time holding `span_ms` of trading for markets that close: ~6.5 h a weekday intraday, 5 days in 7."""
    return span_ms * 5 if step_ms < _DAY_MS else span_ms * 3 // 2


def _range_for(span_ms: int, interval: str) -> str:
    """The shortest named range covering the span, but no longer than the interval accepts (fewer bars, no error)."""
    names = [name for name, _ in _RANGES]
    cap = names.index(_MAX_RANGE[interval])
    fits = [i for i, (_, days) in enumerate(_RANGES) if days * _DAY_MS >= span_ms]
    return names[min(fits[0] if fits else cap, cap)]


# --- parsing -------------------------------------------------------------------------------------------------------
def _bad(message: str) -> ProviderError:
    return ProviderError(NAME, "bad_response", message)


def _chart(status: int, headers: Mapping[str, str], body: bytes, code: str) -> dict[str, Any]:
    """The one chart result, or the failure Yahoo reported (its `chart.error` envelope, or the HTTP status)."""
    try:
        data = json.loads(body, parse_float=Decimal)  # exact decimals, never through float
    except (ValueError, RecursionError):
        data = None
    chart = data.get("chart") if isinstance(data, dict) else None
    error = chart.get("error") if isinstance(chart, dict) else None
    if not 200 <= status < 300:
        e = http_failure(NAME, status, headers, body)
        if isinstance(error, dict):
            text = f"{code}: {error.get('code')}: {error.get('description')}"
            kind = "not_found" if status in (404, 422) else e.kind  # unknown symbol, or no data for that span
            e = ProviderError(NAME, kind, text, e.retry_after_s)
        raise e
    if not isinstance(chart, dict):
        raise _bad(f"no chart object in the answer: {body[:80]!r}")
    if isinstance(error, dict):
        raise ProviderError(NAME, "provider_error", f"{code}: {error.get('code')}: {error.get('description')}")
    results = chart.get("result")
    if not results:
        raise ProviderError(NAME, "not_found", f"{code}: no data")
    if not isinstance(results, list) or not isinstance(results[0], dict):
        raise _bad(f"chart.result is not a list of objects: {str(results)[:80]!r}")
    return results[0]


def _seconds(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal) or value != int(value):
        return None
    return int(value)


def parse_quotes(
    status: int, headers: Mapping[str, str], body: bytes, symbols: list[str], now_ms: int
) -> dict[str, Quote]:
    """meta.regularMarketPrice at meta.regularMarketTime (now_ms when absent), in meta.currency."""
    (symbol,) = symbols
    code = _code(symbol)
    meta = _chart(status, headers, body, code).get("meta")
    if not isinstance(meta, dict):
        raise _bad(f"{code}: the chart has no meta object")
    price = dec(meta.get("regularMarketPrice"), NAME, f"{code} regularMarketPrice")
    at = _seconds(meta.get("regularMarketTime"))
    extra = {k: meta[k] for k in ("exchangeName", "instrumentType") if isinstance(meta.get(k), str)}
    if code != symbol:
        extra["yahoo_symbol"] = code
    currency = meta.get("currency")
    return {
        symbol: Quote(
            symbol=symbol,
            price=price,
            ts_ms=at * 1000 if at else now_ms,
            provider=NAME,
            currency=currency if isinstance(currency, str) else None,
            extra=extra,
        )
    }


def _rows(result: dict[str, Any], code: str) -> list[tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]]:
    """(open s, o, h, l, c, v) for every bar with all five values; bars holding a null are skipped."""
    stamps = result.get("timestamp") or []  # absent when the span holds no bar
    indicators = result.get("indicators")
    quotes = (indicators.get("quote") if isinstance(indicators, dict) else None) or [{}]
    q = quotes[0] if isinstance(quotes, list) and isinstance(quotes[0], dict) else None
    if not isinstance(stamps, list) or q is None:
        raise _bad(f"{code}: timestamp or indicators.quote has an unknown shape")
    columns = [q.get(f) or [] for f in ("open", "high", "low", "close", "volume")]
    if stamps and any(not isinstance(c, list) or len(c) != len(stamps) for c in columns):
        raise _bad(f"{code}: the price arrays do not match the {len(stamps)} timestamps")
    rows = []
    for i, stamp in enumerate(stamps):
        t = _seconds(stamp)
        if t is None:
            raise _bad(f"{code}: timestamp {stamp!r} is not whole seconds")
        values = [c[i] for c in columns]
        if any(v is None for v in values):
            continue
        o, h, lo, c, v = (dec(x, NAME, f"{code} bar {t} {f}") for x, f in zip(values, "ohlcv", strict=True))
        rows.append((t, o, h, lo, c, v))
    return rows


def _anchor_s(meta: Any) -> int:
    """A known bar boundary: the current regular session's start (09:30 New York for US stocks), else the epoch."""
    try:
        start = meta["currentTradingPeriod"]["regular"]["start"]
    except (KeyError, TypeError):
        return 0
    return _seconds(start) or 0


def parse_candles(
    status: int, headers: Mapping[str, str], body: bytes, symbol: str, interval: str, now_ms: int
) -> list[Candle]:
    """The chart arrays -> candles, ascending, one per bucket; a bar not yet over at now_ms is closed=False."""
    if interval not in INTERVALS:
        raise ValueError(f"Yahoo has no {interval!r} interval.")
    code = _code(symbol)
    result = _chart(status, headers, body, code)
    step = INTERVAL_MS[interval]
    bars: dict[int, list[Any]] = {}
    for t, o, h, lo, c, v in sorted(_rows(result, code), key=lambda r: r[0]):
        bars[t * 1000] = [t * 1000, o, h, lo, c, v]
    meta = result.get("meta")
    live_s = _seconds(meta.get("regularMarketTime")) if isinstance(meta, dict) else None
    if bars and (max(bars) == (live_s or 0) * 1000 or max(bars) + step > now_ms):
        _align_live_bar(bars, _anchor_s(meta) * 1000, step)
    return [
        Candle(open_ms, o, h, lo, c, v, closed=open_ms + step <= now_ms)
        for open_ms, o, h, lo, c, v in (bars[t] for t in sorted(bars))
    ]


def _align_live_bar(bars: dict[int, list[Any]], anchor_ms: int, step: int) -> None:
    """Yahoo stamps the still-forming newest bar with its latest trade time, not its bucket's start: move it there.
    When Yahoo also sent that bucket as its own row, merge the two: the bucket's open, the wider high and low, the
    live close, and the larger volume (the live row's is the running total for the bucket, or a fragment of it)."""
    last = max(bars)
    start = anchor_ms + (last - anchor_ms) // step * step
    if start == last:
        return
    live = bars.pop(last)
    prev = bars.get(start)
    if prev is None:
        bars[start] = [start, *live[1:]]
    else:
        bars[start] = [start, prev[1], max(prev[2], live[2]), min(prev[3], live[3]), live[4], max(prev[5], live[5])]

"""What every provider module speaks: canonical symbols in, exact quotes and candles out, typed failures.

A provider module is pure: it builds `httpx.Request`s and parses (status, headers, body bytes) into these types or
raises `ProviderError`. Sending, retries, timeouts, breakers and caching live in `asset_price_mcp.quotes`, so every
parser can be tested on response bodies alone. Prices are `Decimal` parsed from the provider's text (never through
float); times are UTC epoch milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from shared.net.http import parse_retry_after

# Canonical candle intervals and their length in milliseconds; each provider supports a subset (its INTERVALS).
INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}

FailureKind = Literal[
    "rate_limited",  # 429 / 418: back off (retry_after_s when the provider says)
    "region_blocked",  # Binance 451: this host will not serve this region
    "not_found",  # unknown symbol or coin at this provider
    "unavailable",  # 5xx, timeouts, connection errors
    "bad_response",  # unparseable body, or a shape the parser does not know
    "provider_error",  # an error the provider reported in a 200 body (e.g. Kraken's error array)
]


class ProviderError(Exception):
    def __init__(self, provider: str, kind: FailureKind, message: str, retry_after_s: float | None = None):
        super().__init__(f"{provider}: {message}")
        self.provider, self.kind, self.message, self.retry_after_s = provider, kind, message, retry_after_s


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str  # canonical, e.g. BTC-USDT, BTC-USD, AAPL
    price: Decimal  # last trade (or the provider's current price)
    ts_ms: int  # when the provider says the price was valid
    provider: str
    bid: Decimal | None = None
    ask: Decimal | None = None
    volume_24h: Decimal | None = None  # in the base asset
    currency: str | None = None  # quote currency as the provider reports it (USD, USDT, EUR ...)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Candle:
    open_ms: int  # open time, UTC epoch ms
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    closed: bool  # False for the newest, still-forming bar


def dec(value: Any, provider: str, what: str) -> Decimal:
    """A provider's number (string or JSON number) as an exact Decimal; refuses null, NaN, inf and garbage."""
    if value is None or isinstance(value, bool):
        raise ProviderError(provider, "bad_response", f"{what} is missing")
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ProviderError(provider, "bad_response", f"{what} is not a number: {value!r}") from None
    if not d.is_finite():
        raise ProviderError(provider, "bad_response", f"{what} is not a finite number: {value!r}")
    return d


def whole_seconds(value: Any, provider: str, what: str) -> int:
    """A provider's epoch time in whole seconds (a JSON integer); refuses booleans, fractions and garbage."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal) or value != int(value):
        raise ProviderError(provider, "bad_response", f"{what} is not whole seconds: {value!r}")
    return int(value)


def retry_after_seconds(headers: Any) -> float | None:
    """Retry-After from any header mapping (names are case-insensitive) as seconds; None when absent."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            return parse_retry_after(value)
    return None


def join_url(base_url: str, path: str) -> str:
    """A configured base URL (trailing slash or not, path prefix kept) joined with an endpoint path."""
    return base_url.rstrip("/") + path


def load_json(body: bytes, provider: str) -> Any:
    """A response body as JSON with every non-integer number an exact Decimal (never through float)."""
    try:
        return json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise ProviderError(provider, "bad_response", f"the body is not JSON: {body[:80]!r}") from None


def positive_or_none(data: dict[str, Any], key: str, provider: str, what: str) -> Decimal | None:
    """An optional price field: None when absent or not positive (an empty side of the book is sent as 0)."""
    if data.get(key) is None:
        return None
    d = dec(data[key], provider, what)
    return d if d > 0 else None


def http_failure(provider: str, status: int, headers: Any, body: bytes) -> ProviderError:
    """The common mapping of non-2xx statuses; providers refine it for their own error bodies."""
    snippet = body[:200].decode("utf-8", "replace")
    if status in (429, 418):
        return ProviderError(provider, "rate_limited", f"HTTP {status} (rate limited)", retry_after_seconds(headers))
    if status == 451:
        return ProviderError(provider, "region_blocked", "HTTP 451: not available in this region")
    if status == 404:
        return ProviderError(provider, "not_found", f"HTTP 404: {snippet}")
    if status >= 500:
        return ProviderError(provider, "unavailable", f"HTTP {status}")
    return ProviderError(provider, "bad_response", f"HTTP {status}: {snippet}")

"""CoinGecko (public API v3): quotes only, many coins and currencies per request.

Quotes come from `GET /simple/price?ids=bitcoin,ethereum&vs_currencies=usd,eur&include_last_updated_at=true`, which
answers a matrix `{"bitcoin": {"usd": 67187.33, "eur": 61900.1, "last_updated_at": 1711356300}, ...}`: prices are
JSON numbers (parsed straight to Decimal, never through float) and `last_updated_at` is in seconds. CoinGecko speaks
coin ids, not tickers (`asset_price_mcp.symbols.COINGECKO_IDS`), and an aggregate price: no bid/ask.

Traps: unknown ids are simply left out of a 200 answer; `coins/{id}` style endpoints answer 404
`{"error": "coin not found"}` (not_found); 429 `{"status": {"error_code": 429, "error_message": ...}}` with
`Retry-After` (rate_limited). USDT is not a CoinGecko vs_currency (its list: fiat codes plus btc, eth, ltc, bch, bnb,
eos, xrp, xlm, link, dot, yfi, sol, xau, xag, bits, sats), so BTC-USDT is not served here: answering it with the USD
price would blur the USD/USDT distinction the other providers keep. Candles are not offered in this version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

from asset_price_mcp.providers.base import Candle, ProviderError, Quote, dec, http_failure
from asset_price_mcp.symbols import COINGECKO_IDS, FIAT, UnknownSymbol, parse_symbol

NAME = "coingecko"
DEFAULT_BASE_URL = "https://api.coingecko.com/api/v3"
BASE_URL_ENV = "COINGECKO_BASE_URL"
QUOTE_BATCH = 100
MAX_CANDLES = 0  # no candles from CoinGecko in this version
INTERVALS: dict[str, str] = {}

# Quotes served here: the symbols module's fiat codes and the coins CoinGecko also prices against, all of them in its
# supported_vs_currencies list. Stablecoins (USDT, USDC ...) are not vs_currencies.
VS_CURRENCIES = FIAT | {"BTC", "ETH", "BNB"}


# --- symbols -------------------------------------------------------------------------------------------------------
def provider_symbol(symbol: str) -> str | None:
    """BTC-USD -> "bitcoin/usd" (coin id / vs_currency); None for coins without a known id and quotes not offered."""
    try:
        inst = parse_symbol(symbol)
    except UnknownSymbol:
        return None
    if inst.symbol != symbol or inst.kind != "crypto" or inst.quote not in VS_CURRENCIES:
        return None
    coin_id = COINGECKO_IDS.get(inst.base)
    return f"{coin_id}/{inst.quote.lower()}" if coin_id is not None else None


def _code(symbol: str) -> tuple[str, str]:
    code = provider_symbol(symbol)
    if code is None:
        raise ValueError(f"CoinGecko does not serve {symbol!r}: ask provider_symbol() first.")
    coin_id, vs = code.split("/")
    return coin_id, vs


# --- requests ------------------------------------------------------------------------------------------------------
def quotes_request(base_url: str, symbols: list[str]) -> httpx.Request:
    """One simple/price request for up to QUOTE_BATCH symbols: the distinct ids and vs_currencies, comma-joined."""
    if not 1 <= len(symbols) <= QUOTE_BATCH:
        raise ValueError(f"CoinGecko takes 1 to {QUOTE_BATCH} symbols per quotes request, not {len(symbols)}.")
    codes = [_code(s) for s in symbols]
    params = {
        "ids": ",".join(dict.fromkeys(coin_id for coin_id, _ in codes)),
        "vs_currencies": ",".join(dict.fromkeys(vs for _, vs in codes)),
        "include_last_updated_at": "true",
        "include_24hr_vol": "true",
        "precision": "full",
    }
    return httpx.Request("GET", base_url.rstrip("/") + "/simple/price", params=params)


def candles_request(
    base_url: str, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
) -> httpx.Request:
    raise _no_candles()


def _no_candles() -> ProviderError:
    return ProviderError(NAME, "not_found", "CoinGecko candles are not supported in this version; ask another provider")


# --- parsing -------------------------------------------------------------------------------------------------------
def _bad(message: str) -> ProviderError:
    return ProviderError(NAME, "bad_response", message)


def _error_text(data: Any) -> str | None:
    """CoinGecko's own error text: `{"error": "..."}` or `{"status": {"error_code": .., "error_message": ".."}}`."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("error"), str):
        return data["error"]
    status = data.get("status")
    if isinstance(status, dict) and ("error_code" in status or "error_message" in status):
        return f"error {status.get('error_code')}: {status.get('error_message')}"
    return None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_float=Decimal)  # prices are JSON numbers: exact decimals, no float on the way
    except (ValueError, RecursionError):
        return None


def _checked(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    data = _json(body)
    text = _error_text(data)
    if not 200 <= status < 300:
        e = http_failure(NAME, status, headers, body)
        if text is not None:
            e = ProviderError(NAME, e.kind, f"HTTP {status}: {text}", e.retry_after_s)
        raise e
    if data is None:
        raise _bad(f"the body is not JSON: {body[:80]!r}")
    if not isinstance(data, dict):
        raise _bad(f"simple/price did not answer an object: {str(data)[:80]!r}")
    return data


def _seconds_to_ms(value: Any, fallback_ms: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal) or value <= 0:
        return fallback_ms
    return int(value) * 1000


def _price(entry: dict[str, Any], vs: str, symbol: str) -> Decimal | None:
    """The price, or None when the cell is absent, null or not positive (CoinGecko's 0 means no market data)."""
    if entry.get(vs) is None:
        return None
    price = dec(entry[vs], NAME, f"{symbol} price")
    return price if price > 0 else None


def parse_quotes(
    status: int, headers: Mapping[str, str], body: bytes, symbols: list[str], now_ms: int
) -> dict[str, Quote]:
    """The simple/price matrix -> quotes keyed by canonical symbol; coins or currencies missing from it are absent."""
    data = _checked(status, headers, body)
    ids = {_code(s)[0] for s in symbols}
    text = _error_text(data)
    if text is not None and not ids & set(data):
        raise ProviderError(NAME, "provider_error", text)
    out: dict[str, Quote] = {}
    garbled: list[str] = []
    for symbol in symbols:
        coin_id, vs = _code(symbol)
        entry = data.get(coin_id)
        if not isinstance(entry, dict):
            continue
        try:
            price = _price(entry, vs, symbol)
        except ProviderError as e:
            garbled.append(e.message)
            continue
        if price is None:
            continue
        extra: dict[str, Any] = {"coingecko_id": coin_id}
        vol = entry.get(f"{vs}_24h_vol")
        if isinstance(vol, int | Decimal) and not isinstance(vol, bool):
            extra["volume_24h_quote"] = Decimal(vol)  # in the quote currency, so not Quote.volume_24h (base asset)
        out[symbol] = Quote(
            symbol=symbol,
            price=price,
            ts_ms=_seconds_to_ms(entry.get("last_updated_at"), now_ms),
            provider=NAME,
            currency=vs.upper(),
            extra=extra,
        )
    if garbled and not out:
        raise _bad("; ".join(garbled[:3]))
    return out


def parse_candles(
    status: int, headers: Mapping[str, str], body: bytes, symbol: str, interval: str, now_ms: int
) -> list[Candle]:
    raise _no_candles()

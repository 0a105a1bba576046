"""The prompts of asset_price_mcp (price check, market snapshot) and the completion of symbols and intervals.

Prompt texts write every tool as a call, `tool(argument=...)`; tests/test_prompts.py checks each call against the
server's tools and their parameters. Symbols complete to the canonical spellings the server answers with (`BTC-USD`,
`BTC-USDT`, `XAU-USD`, `EUR-USD`, `SPY`) and to coin names (`bitcoin`), all from asset_price_mcp.symbols.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated

from pydantic import Field

from asset_price_mcp.symbols import COINGECKO_IDS, CRYPTO_BASES, DEFAULT_QUOTE, ETFS, FIAT, METALS, parse_symbol
from shared.errors import InvalidArgumentsError
from shared.server.completion import Completions, list_of, one_of
from shared.server.registry import GuardedServer

MAX_SYMBOLS = 100  # get_prices takes at most this many


@cache
def known_symbols() -> tuple[str, ...]:
    """Canonical symbols of the known crypto bases (against USD and USDT), metals, FX, ETFs, and coin names."""
    pairs = [f"{base}-{quote}" for base in CRYPTO_BASES for quote in (DEFAULT_QUOTE, "USDT")]
    pairs += [f"{code}-{DEFAULT_QUOTE}" for code in METALS | FIAT]
    canonical = {s for s in (*pairs, *ETFS) if _canonical(s)}  # drops USDT-USDT, USD-USD and the like
    return tuple(sorted(canonical | set(COINGECKO_IDS.values())))


def _canonical(symbol: str) -> bool:
    try:
        return parse_symbol(symbol).symbol == symbol
    except ValueError:
        return False


def symbol_list(text: str) -> list[str]:
    """The items of a comma-separated list, trimmed, empty ones dropped, at most MAX_SYMBOLS."""
    return [s.strip() for s in text.split(",") if s.strip()][:MAX_SYMBOLS]


def price_check(
    symbols: Annotated[
        str,
        Field(
            description="Comma-separated symbols, any usual spelling: BTC, ETH-USDT, AAPL, EUR/USD.", max_length=2000
        ),
    ],
) -> str:
    """Check current prices across providers, and flag disagreement, stale values and failures."""
    items = symbol_list(symbols)
    if not items:
        raise InvalidArgumentsError("Give at least one symbol, e.g. BTC or BTC, ETH, AAPL.")
    call = f"get_price(symbol={items[0]!r})" if len(items) == 1 else f"get_prices(symbols={items!r})"
    return (
        f"Check the current price of {', '.join(items)}.\n"
        f"1. Call {call}.\n"
        "2. For each symbol report the consensus price with its currency, as_of and age_s, and how many sources "
        "agreed (sources_used). Flag: spread_bps above 50 (the providers disagree), any outliers (providers "
        "excluded, by name), stale=true (every provider failed: this is the last good value, give its age), "
        "replay=true (stored history, not a live price), and failures.\n"
        "3. If a symbol was not understood, show the suggestions from the error and ask which one was meant; "
        "do not guess.\n"
        "4. If any provider failed, call list_providers() and say which are unhealthy (circuit breaker, last "
        "error). Report prices only; no advice."
    )


def market_snapshot(
    symbol: Annotated[
        str, Field(description="One symbol, any usual spelling: BTC, ETH-USDT, AAPL, gold.", max_length=40)
    ],
    interval: Annotated[
        str, Field(description="Candle interval: 1m, 5m, 15m, 30m, 1h, 4h or 1d.", max_length=16)
    ] = "1h",
    days: Annotated[float, Field(description="How many days of candles to read.", gt=0, le=3650)] = 7,
) -> str:
    """A snapshot of one market: the price now and how it moved over the last days."""
    return (
        f"Give me a market snapshot of {symbol}.\n"
        f"1. Call get_price(symbol={symbol!r}) for the consensus price now, with its spread and sources.\n"
        f"2. Call get_ohlcv(symbol={symbol!r}, interval={interval!r}, days={days:g}). From the candles report the "
        "change over the period in %, the high and the low, where the latest close sits in that range, and the "
        "typical candle range in % as a measure of volatility. Mention gaps, and say if the data is replay.\n"
        "3. If either call reports failures, call list_providers() and name the unhealthy providers.\n"
        "4. Keep it factual: a snapshot of what happened, not a forecast or a recommendation."
    )


def add_prompts(server: GuardedServer, intervals: tuple[str, ...]) -> None:
    """Register the prompts and the completion of symbols (also of prices://{symbol}) and intervals."""
    server.prompt(name="price_check", title="Price check")(price_check)
    server.prompt(name="market_snapshot", title="Market snapshot")(market_snapshot)
    completions = Completions()
    completions.prompt("price_check", symbols=list_of(known_symbols()))
    completions.prompt("market_snapshot", symbol=one_of(known_symbols()), interval=one_of(intervals))
    completions.template("prices://{symbol}", symbol=one_of(known_symbols()))
    completions.install(server)

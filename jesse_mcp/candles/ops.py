"""Candle data operations behind the jesse_mcp tools: list, import (exchange, CSV, synthetic), fill gaps."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import httpx
from pydantic import BaseModel, Field

from jesse_mcp.candles.binance import ImportReport, KlineRange, base_url, import_binance
from jesse_mcp.candles.csv_import import read_csv_candles, synthetic_candles
from shared.market.candles import MINUTE_MS, CandleError, CandleStore, MarketInfo, iso
from shared.market.exchanges import ExchangeError, jesse_name, store_key
from shared.net.http import make_client
from shared.policy.readable import ReadableFolders

When = datetime | date


class ListedMarket(MarketInfo):
    jesse_exchange: str | None = Field(
        description="Jesse's name of the exchange (what a backtest hands Jesse); None for synthetic data."
    )


class CandleList(BaseModel):
    markets: list[ListedMarket]
    count: int


class CsvImportReport(BaseModel):
    exchange: str
    symbol: str
    file: str
    layout: str = Field(description="The column layout that was detected.")
    imported_rows: int
    market: MarketInfo


class SyntheticReport(BaseModel):
    symbol: str
    rows: int
    seed: int
    regimes: list[tuple[str, str, str]] = Field(description="(regime, first UTC minute, last UTC minute).")
    market: MarketInfo
    note: str = "SYNTHETIC data: generated, not recorded from any market. Results on it say so."


def to_ms(value: When) -> int:
    """A date (midnight UTC) or datetime (naive = UTC) to epoch milliseconds."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def resolve_range(start: When | None, end: When | None, days: int | None, now_ms: int | None = None) -> tuple[int, int]:
    """start/end, start and `days` after it, or the last `days` up to now (or up to `end`)."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    if days is not None and start is not None:
        if end is not None:
            raise CandleError("Give start with either end or days, not both.")
        start_ms = to_ms(start)
        return start_ms, start_ms + days * 1440 * MINUTE_MS
    end_ms = to_ms(end) if end is not None else now_ms - now_ms % MINUTE_MS
    if days is not None:
        start_ms = end_ms - days * 1440 * MINUTE_MS
    elif start is not None:
        start_ms = to_ms(start)
    else:
        raise CandleError("Give a start date (e.g. 2025-06-01) or a number of days (e.g. days=90).")
    if end_ms <= start_ms:
        raise CandleError(f"The end {iso(end_ms)} must be after the start {iso(start_ms)}.")
    return start_ms, end_ms


def list_markets(store: CandleStore, exchange: str | None = None, symbol: str | None = None) -> CandleList:
    stored = store.markets()
    key = None if exchange is None else store_key(exchange, (m.exchange for m in stored))
    markets = [
        ListedMarket(**m.model_dump(), jesse_exchange=jesse_name(m.exchange))
        for m in stored
        if (key is None or m.exchange == key) and (symbol is None or m.symbol == symbol.upper())
    ]
    return CandleList(markets=markets, count=len(markets))


def stored_key(store: CandleStore, exchange: str) -> str:
    """The store key of an exchange named either way, also accepting labels already in the store."""
    return store_key(exchange, (m.exchange for m in store.markets()))


def fill_gaps(store: CandleStore, exchange: str, symbol: str) -> MarketInfo:
    return store.fill_gaps(stored_key(store, exchange), symbol)


def binance_key(exchange: str) -> str:
    """import_candles fetches Binance's spot klines: only that exchange, named either way."""
    key = store_key(exchange)
    if key != "binance":
        raise ExchangeError(
            f"import_candles fetches from Binance Spot only (store key binance), not {exchange!r}. For other "
            "exchanges, download their 1-minute candles as CSV into $TRADING_MCP_HOME/imports/ and use "
            f"import_candles_csv with exchange={exchange!r}."
        )
    return key


async def import_from_exchange(
    store: CandleStore,
    symbol: str,
    start_ms: int,
    end_ms: int,
    transport: httpx.AsyncBaseTransport | None = None,
    progress=None,
) -> ImportReport:
    async with make_client(base_url(), transport=transport) as client:
        return await import_binance(client, store, KlineRange(symbol, start_ms, end_ms), progress=progress)


def import_csv(store: CandleStore, readable: ReadableFolders, path: str, exchange: str, symbol: str) -> CsvImportReport:
    """Import a CSV that `readable` allows (imports/ or a configured folder); relative paths are in imports/."""
    key = stored_key(store, exchange)
    real = readable.resolve(path)
    rows, layout = read_csv_candles(real, symbol)
    market = store.save(key, symbol, rows, f"csv:{real.name}", synthetic=False)
    return CsvImportReport(
        exchange=market.exchange,
        symbol=market.symbol,
        file=str(path),
        layout=layout.description,
        imported_rows=len(rows),
        market=market,
    )


def generate_synthetic(store: CandleStore, symbol: str, start_ms: int, end_ms: int, seed: int) -> SyntheticReport:
    minutes = (end_ms - start_ms) // MINUTE_MS
    if minutes > 3 * 525_600:
        raise CandleError("Synthetic data is limited to 3 years of minutes per call.")
    rows, regimes = synthetic_candles(start_ms - start_ms % MINUTE_MS, minutes, seed=seed)
    market = store.save("synthetic", symbol, rows, f"synthetic(seed={seed})", synthetic=True)
    return SyntheticReport(symbol=market.symbol, rows=len(rows), seed=seed, regimes=regimes, market=market)

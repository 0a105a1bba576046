"""The candle tools of jesse_mcp (thin: the work is in jesse_mcp/candles/)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from mcp.server.fastmcp import Context
from pydantic import Field

from jesse_mcp.candles import ops as candle_ops
from jesse_mcp.candles.binance import ImportReport
from shared.market.candles import CandleStore, MarketInfo
from shared.policy.readable import ReadableFolders
from shared.server.registry import ToolRegistry

Symbol = Annotated[str, Field(description="Market symbol, e.g. BTC-USDT.", min_length=2, max_length=32)]
Exchange = Annotated[
    str,
    Field(
        description="Exchange: a store key (binance, binance-perp, bybit-usdt-perp, synthetic, ...) or Jesse's name "
        "(Binance Spot, Binance Perpetual Futures, Bybit USDT Perpetual, ...), any case.",
        min_length=1,
        max_length=48,
    ),
]
Start = Annotated[candle_ops.When | None, Field(description="UTC start, e.g. 2025-06-01 or 2025-06-01T12:00:00.")]
End = Annotated[candle_ops.When | None, Field(description="UTC end (exclusive); default now.")]
Days = Annotated[
    int | None,
    Field(description="N days: after start if start is given, else the last N days up to end (or now).", ge=1, le=3650),
]


def register_candle_tools(tools: ToolRegistry, store: CandleStore, readable: Callable[[], ReadableFolders]) -> None:
    @tools.read(title="Stored candles")
    def list_candles(exchange: Exchange | None = None, symbol: Symbol | None = None) -> candle_ops.CandleList:
        """The 1-minute candle data stored for backtests: per exchange (store key and Jesse's name) and symbol, the
        range, row count, exact gaps (missing minutes), filled gaps, sources, and whether the data is synthetic."""
        return candle_ops.list_markets(store, exchange, symbol)

    @tools.research(idempotent=True, open_world=True, title="Import candles")
    async def import_candles(
        symbol: Symbol,
        exchange: Annotated[
            str,
            Field(
                description="Binance Spot (store key binance), whose public REST API is used (BINANCE_BASE_URL).",
                min_length=1,
                max_length=48,
            ),
        ] = "binance",
        start: Start = None,
        end: End = None,
        days: Days = None,
        ctx: Context | None = None,
    ) -> ImportReport:
        """Fetch closed 1-minute candles from the exchange into the store: paginated, resumes after data already
        stored, honours rate limits, reports exact gaps (exchange outages). Progress is reported while it runs."""
        candle_ops.binance_key(exchange)
        start_ms, end_ms = candle_ops.resolve_range(start, end, days)

        async def progress(done: int, total: int) -> None:
            if ctx is not None:
                await ctx.report_progress(done, total, f"{done} of {total} minutes")

        return await candle_ops.import_from_exchange(store, symbol, start_ms, end_ms, progress=progress)

    _register_local_candle_tools(tools, store, readable)
    _register_gap_tools(tools, store)


def _register_local_candle_tools(
    tools: ToolRegistry, store: CandleStore, readable: Callable[[], ReadableFolders]
) -> None:
    @tools.research(idempotent=True, title="Generate synthetic candles")
    def generate_synthetic_candles(
        symbol: Symbol,
        start: Start = None,
        end: End = None,
        days: Days = None,
        seed: Annotated[int, Field(description="Same seed, same candles.", ge=0, le=2**32 - 1)] = 7,
    ) -> candle_ops.SyntheticReport:
        """Generate deterministic 1-minute candles (exchange 'synthetic') cycling through trend, range, crash and
        recovery regimes, for offline use. Everything built on them is labelled synthetic."""
        start_ms, end_ms = candle_ops.resolve_range(start, end, days)
        return candle_ops.generate_synthetic(store, symbol, start_ms, end_ms, seed)

    @tools.research(idempotent=True, title="Import candles from CSV")
    def import_candles_csv(
        path: Annotated[
            str,
            Field(
                description="CSV (or .csv.gz) file in $TRADING_MCP_HOME/imports/ (a relative path is taken there) "
                "or in a folder listed in import_config.folders.",
                max_length=1024,
            ),
        ],
        symbol: Symbol,
        exchange: Exchange = "binance",
    ) -> candle_ops.CsvImportReport:
        """Import a CSV of 1-minute candles from imports/ or a configured import folder (hidden and .env files
        never). Detects the layout: a header naming timestamp/time/date, open, high, low, close, volume in any
        order (epoch s/ms/us or ISO times), Binance's headerless kline CSV, or a symbol column (pass the symbol).
        Malformed rows are reported with their line number."""
        return candle_ops.import_csv(store, readable(), path, exchange, symbol)


def _register_gap_tools(tools: ToolRegistry, store: CandleStore) -> None:
    @tools.research(idempotent=True, title="Fill candle gaps")
    def fill_candle_gaps(exchange: Exchange, symbol: Symbol) -> MarketInfo:
        """Fill every gap of a stored market with flat candles at the previous close and zero volume. An explicit
        choice, recorded in the market's `filled` list; Jesse needs contiguous minutes."""
        return candle_ops.fill_gaps(store, exchange, symbol)

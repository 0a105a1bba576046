"""asset_price_mcp: prices from several public providers, behind the shared policy guard."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import Field

from asset_price_mcp.lookup import (
    INTERVAL_ALIASES,
    PriceLookup,
    PriceResult,
    PricesResult,
    ProvidersResult,
    TimeWindow,
)
from asset_price_mcp.ohlcv import OhlcvAnswer, OhlcvService
from asset_price_mcp.prompts import add_prompts
from asset_price_mcp.quotes import QuoteService
from asset_price_mcp.service import build_quote_service
from shared.config.models import TradingConfig
from shared.errors import ConfigError
from shared.server.common import add_policy_resource, register_common_tools, run_server
from shared.server.registry import GuardedServer, ServerDeps, ToolRegistry

INSTRUCTIONS = (
    "Prices of crypto assets, stocks, ETFs, FX and metals from several public providers at once (Binance, "
    "Coinbase, Kraken, CoinGecko, Yahoo), cross-checked: each answer is the median of the fresh answers, with the "
    "spread, the sources, outliers and failures. Every call is checked against the trading policy and journaled."
)

SymbolArg = Annotated[
    str,
    Field(
        description="Any usual spelling: BTC, BTC-USDT, btcusdt, XBT/USD, bitcoin, $AAPL, EUR/USD, gold.",
        min_length=1,
        max_length=40,
    ),
]


def build_server(deps: ServerDeps) -> GuardedServer:
    tools = ToolRegistry(deps)
    register_common_tools(tools)
    try:
        cfg = deps.config.load()
    except ConfigError:  # every call reports the broken file; the server still starts
        cfg = TradingConfig()
    quotes: QuoteService = build_quote_service(cfg, deps.extras.home, deps.extras.price_transport)
    lookup = PriceLookup(quotes, OhlcvService(quotes.net, cfg.price_config.candle_ttl_s))
    deps.extras.quotes = quotes
    _add_price_tools(tools, lookup)
    _add_market_tools(tools, lookup)
    server = tools.build(instructions=INSTRUCTIONS)
    add_policy_resource(server)

    @server.resource("prices://{symbol}", name="price", title="Consensus price", mime_type="application/json")
    async def price_resource(symbol: str) -> str:
        """The consensus price of a symbol (as get_price)."""
        return (await lookup.price(symbol)).model_dump_json(indent=2)

    add_prompts(server, tuple(INTERVAL_ALIASES))
    return server


def _add_price_tools(tools: ToolRegistry, lookup: PriceLookup) -> None:
    @tools.read(title="Price", open_world=True)
    async def get_price(symbol: SymbolArg) -> PriceResult:
        """The price of one symbol: the median of the fresh answers of every provider that has it, with the spread
        (basis points), each source's price and age, outliers excluded and named, and failures. When every
        provider fails, the last good value is returned only flagged stale with its age."""
        return await lookup.price(symbol)

    @tools.read(title="Prices", open_world=True)
    async def get_prices(
        symbols: Annotated[
            list[str], Field(description="Up to 100 symbols, any usual spelling.", min_length=1, max_length=100)
        ],
    ) -> PricesResult:
        """Prices of up to 100 symbols in one call, asked concurrently and in each provider's batches. A symbol
        that cannot be priced gets its own error; the others are unaffected."""
        return await lookup.prices(symbols)


def _add_market_tools(tools: ToolRegistry, lookup: PriceLookup) -> None:
    @tools.read(title="Candles", open_world=True)
    async def get_ohlcv(
        symbol: SymbolArg,
        interval: Annotated[
            str, Field(description="1m, 5m, 15m, 30m, 1h, 4h or 1d (aliases: 1hour, 60m, daily).", max_length=16)
        ] = "1h",
        start: Annotated[datetime | date | None, Field(description="UTC start, e.g. 2025-06-01.")] = None,
        end: Annotated[datetime | date | None, Field(description="UTC end (exclusive); default now.")] = None,
        days: Annotated[float | None, Field(description="Instead of start: days back from end.", gt=0, le=3650)] = None,
        hours: Annotated[
            float | None, Field(description="Instead of start: hours back from end.", gt=0, le=87_600)
        ] = None,
        include_open_bar: Annotated[bool, Field(description="Also return the bar that has not closed yet.")] = False,
    ) -> OhlcvAnswer:
        """OHLCV candles from the first healthy provider that has the symbol and interval, paginated across its
        limits, oldest first. Closed bars only unless include_open_bar; missing bars are reported as gaps."""
        return await lookup.ohlcv(symbol, interval, TimeWindow(start, end, days, hours), include_open_bar)

    @tools.read(title="Price providers")
    def list_providers() -> ProvidersResult:
        """Each enabled provider's health: circuit-breaker state, successes, errors by kind, last error, latency."""
        return lookup.providers()


def main(argv: list[str] | None = None) -> None:
    run_server("asset-price-mcp", "asset_price", build_server, argv)

"""asset_price_mcp: prices from several public providers, behind the shared policy guard."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from asset_price_mcp.ohlcv import OhlcvAnswer, OhlcvService
from asset_price_mcp.prompts import add_prompts
from asset_price_mcp.quotes import PriceAnswer, PriceError, PriceFailure, QuoteService
from asset_price_mcp.service import build_quote_service
from asset_price_mcp.symbols import Instrument, UnknownSymbol, parse_symbol, suggest
from shared.config.models import TradingConfig
from shared.errors import ConfigError, InvalidArgumentsError
from shared.server.common import add_policy_resource, register_common_tools, run_server
from shared.server.registry import GuardedServer, ServerDeps, ToolRegistry

INSTRUCTIONS = (
    "Prices of crypto assets, stocks, ETFs, FX and metals from several public providers at once (Binance, "
    "Coinbase, Kraken, CoinGecko, Yahoo), cross-checked: each answer is the median of the fresh answers, with the "
    "spread, the sources, outliers and failures. Every call is checked against the trading policy and journaled."
)

INTERVAL_ALIASES = {
    "1m": ("1m", "1min", "1minute", "m1"),
    "5m": ("5m", "5min", "5minutes", "m5"),
    "15m": ("15m", "15min", "15minutes", "m15"),
    "30m": ("30m", "30min", "30minutes", "m30"),
    "1h": ("1h", "60m", "60min", "1hour", "1hr", "h1", "hourly"),
    "4h": ("4h", "240m", "4hour", "4hours", "h4"),
    "1d": ("1d", "1day", "d1", "daily", "24h", "1440m"),
}
_ALIAS = {a: canonical for canonical, aliases in INTERVAL_ALIASES.items() for a in aliases}

SymbolArg = Annotated[
    str,
    Field(
        description="Any usual spelling: BTC, BTC-USDT, btcusdt, XBT/USD, bitcoin, $AAPL, EUR/USD, gold.",
        min_length=1,
        max_length=40,
    ),
]


class PriceResult(PriceAnswer):
    asked: str = Field(description="The symbol as it was given.")
    kind: str = Field(description="crypto, stock, etf, fx or metal.")


class PricesResult(BaseModel):
    prices: list[PriceResult | PriceFailure]
    count: int
    failed: int


class ProvidersResult(BaseModel):
    providers: list[dict[str, Any]]


def instrument(text: str) -> Instrument:
    try:
        return parse_symbol(text)
    except UnknownSymbol as e:
        raise InvalidArgumentsError(str(e)) from None


def interval_of(text: str) -> str:
    key = text.strip().lower().replace(" ", "")
    if key not in _ALIAS:
        raise InvalidArgumentsError(
            f"Unknown interval {text!r}; use one of {', '.join(INTERVAL_ALIASES)} (aliases "
            "like 1hour, 60m, daily work too)."
        )
    return _ALIAS[key]


def to_ms(value: datetime | date) -> int:
    """A date (midnight UTC) or datetime (naive = UTC) as epoch milliseconds."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def time_range(
    start: datetime | date | None, end: datetime | date | None, days: float | None, hours: float | None, now_s: float
) -> tuple[int, int]:
    end_ms = to_ms(end) if end is not None else int(now_s * 1000)
    if start is not None and (days is not None or hours is not None):
        raise InvalidArgumentsError("Give start (with optional end), or days/hours back from end, not both.")
    if start is not None:
        start_ms = to_ms(start)
    else:
        span_h = (days or 0) * 24 + (hours or 0)
        if span_h <= 0:
            raise InvalidArgumentsError("Give start, or days or hours (e.g. days=7 or hours=24).")
        start_ms = end_ms - int(span_h * 3_600_000)
    if end_ms <= start_ms:
        raise InvalidArgumentsError("end must be after start.")
    return start_ms, end_ms


def build_server(deps: ServerDeps) -> GuardedServer:
    tools = ToolRegistry(deps)
    register_common_tools(tools)
    try:
        cfg = deps.config.load()
    except ConfigError:  # every call reports the broken file; the server still starts
        cfg = TradingConfig()
    quotes: QuoteService = build_quote_service(cfg, deps.extras.home, deps.extras.price_transport)
    candles = OhlcvService(quotes.net, cfg.price_config.candle_ttl_s)
    deps.extras.quotes = quotes

    def result(asked: str, inst: Instrument, answer: PriceAnswer) -> PriceResult:
        return PriceResult(**answer.model_dump(), asked=asked, kind=inst.kind)

    @tools.read(title="Price", open_world=True)
    async def get_price(symbol: SymbolArg) -> PriceResult:
        """The price of one symbol: the median of the fresh answers of every provider that has it, with the spread
        (basis points), each source's price and age, outliers excluded and named, and failures. When every
        provider fails, the last good value is returned only flagged stale with its age."""
        inst = instrument(symbol)
        return result(symbol, inst, await price_of(inst))

    async def price_of(inst: Instrument) -> PriceAnswer:
        try:
            return await quotes.price(inst.symbol)
        except PriceError as e:
            hints = [s for s in suggest(inst.symbol) if s != inst.symbol]
            if str(e).startswith("No provider knows") and hints:
                raise PriceError(f"{e} Did you mean: {', '.join(hints)}?") from None
            raise

    @tools.read(title="Prices", open_world=True)
    async def get_prices(
        symbols: Annotated[
            list[str], Field(description="Up to 100 symbols, any usual spelling.", min_length=1, max_length=100)
        ],
    ) -> PricesResult:
        """Prices of up to 100 symbols in one call, asked concurrently and in each provider's batches. A symbol
        that cannot be priced gets its own error; the others are unaffected."""
        parsed: list[tuple[str, Instrument | str]] = []
        for text in symbols:
            try:
                parsed.append((text, parse_symbol(text)))
            except UnknownSymbol as e:
                parsed.append((text, str(e)))
        canon = [i.symbol for _, i in parsed if isinstance(i, Instrument)]
        answers = {a.symbol: a for a in await quotes.prices(canon)} if canon else {}
        out: list[PriceResult | PriceFailure] = []
        for text, inst in parsed:
            if isinstance(inst, str):
                out.append(PriceFailure(symbol=text, error=inst))
                continue
            a = answers[inst.symbol]
            out.append(a if isinstance(a, PriceFailure) else result(text, inst, a))
        return PricesResult(prices=out, count=len(out), failed=sum(isinstance(a, PriceFailure) for a in out))

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
        inst = instrument(symbol)
        start_ms, end_ms = time_range(start, end, days, hours, time.time())
        return await candles.ohlcv(inst.symbol, interval_of(interval), start_ms, end_ms, not include_open_bar)

    @tools.read(title="Price providers")
    def list_providers() -> ProvidersResult:
        """Each enabled provider's health: circuit-breaker state, successes, errors by kind, last error, latency."""
        return ProvidersResult(providers=quotes.health())

    server = tools.build(instructions=INSTRUCTIONS)
    add_policy_resource(server)

    @server.resource("prices://{symbol}", name="price", title="Consensus price", mime_type="application/json")
    async def price_resource(symbol: str) -> str:
        """The consensus price of a symbol (as get_price)."""
        inst = instrument(symbol)
        return result(symbol, inst, await price_of(inst)).model_dump_json(indent=2)

    add_prompts(server, tuple(INTERVAL_ALIASES))
    return server


def main(argv: list[str] | None = None) -> None:
    run_server("asset-price-mcp", "asset_price", build_server, argv)

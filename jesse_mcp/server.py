"""jesse_mcp: the MCP surface (thin tools) over configuration, stages and the Jesse worker pool."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Annotated, Any

import anyio
from mcp.server.fastmcp import Context
from pydantic import Field, JsonValue

from jesse_mcp.backtesting.service import BacktestService
from jesse_mcp.backtesting.workers import DEFAULT_WARMUP, WorkerPool
from jesse_mcp.candles import ops as candle_ops
from jesse_mcp.candles.binance import ImportReport
from jesse_mcp.tools.prompts import add_prompts
from jesse_mcp.tools.research import add_backtest_resources, register_analysis_tools, register_backtest_tools
from jesse_mcp.tools.trading import register_paper_tools
from jesse_mcp.trading.monitor import PaperMonitor
from jesse_mcp.trading.paper import PaperService
from jesse_mcp.trading.prices import ConfiguredPrices
from shared.config import updates as config_ops
from shared.config.models import BacktestConfig
from shared.errors import ConfigError
from shared.market.candles import CandleStore, MarketInfo
from shared.policy.readable import ReadableFolders
from shared.server.common import StrategyArg, add_policy_resource, register_common_tools, run_server
from shared.server.confirm import require_confirmation
from shared.server.registry import GuardedServer, ServerDeps, ToolRegistry

INSTRUCTIONS = (
    "Backtesting and configuration for trading strategies on the Jesse framework. Every call is checked against "
    "the risk policy (profiles conservative/moderate/aggressive, stages exploration/paper/live) and journaled. "
    "Use get_policy to see what is allowed; changes that loosen risk need the person's confirmation."
)


def build_server(
    deps: ServerDeps, warmup: tuple[str, ...] = DEFAULT_WARMUP, pool: WorkerPool | None = None
) -> GuardedServer:
    """The jesse-mcp server. `pool` lets several servers (tests, benchmarks) share one warm worker pool."""
    tools = ToolRegistry(deps)
    register_common_tools(tools)
    try:
        workers = deps.config.load().backtest_config.workers
    except ConfigError:  # every call reports the broken file; the server still starts
        workers = BacktestConfig().workers
    pool = pool if pool is not None else WorkerPool(workers, warmup, workdir=deps.extras["home"] / "jesse")
    deps.extras["pool"] = pool

    @tools.tool(
        capability="read",
        read_only=True,
        destructive=False,
        idempotent=True,
        open_world=False,
        title="Configuration",
    )
    def get_config() -> config_ops.ConfigView:
        """The whole configuration (risk profiles, limits, strategies, stages, news sources, server settings),
        its file path, and which environment variables are set. Secrets are never shown."""
        return config_ops.config_view(deps.config)

    # halt-exempt: while halted it still runs, but config_ops lets only tightening and demotions through
    @tools.tool(
        capability="admin",
        read_only=False,
        destructive=True,
        idempotent=True,
        open_world=False,
        title="Change configuration",
        halt_exempt=True,
    )
    async def update_config(
        changes: Annotated[
            dict[str, JsonValue],
            Field(
                description='Dotted path -> new value, e.g. {"strategies.trend_following.risk_profile": '
                '"conservative"}. null removes a strategy or an override.',
                min_length=1,
            ),
        ],
        reason: Annotated[str, Field(description="Why, recorded in the journal.", max_length=500)] = "",
        ctx: Context | None = None,
    ) -> config_ops.ConfigUpdateResult:
        """Change configuration values, validated as a whole and written atomically. Tightening applies at once;
        loosening any risk or portfolio limit asks the person to confirm. Never raises a stage (promotion needs
        recorded evidence); demotions are allowed. While trading is halted only tightening and demotions work."""
        confirm = partial(require_confirmation, ctx)
        return await config_ops.update_config(deps.config, deps.store, changes, reason, confirm)

    @tools.tool(
        capability="read",
        read_only=True,
        destructive=False,
        idempotent=True,
        open_world=False,
        title="Trading stages",
        strategy_arg="strategy",
    )
    def get_stage(strategy: StrategyArg = None) -> config_ops.StageView:
        """Global stage and each strategy's own and effective stage (the lower of the two counts), with the
        recent history of stage changes."""
        return config_ops.stage_view(deps.config.load(), deps.store, strategy)

    def readable() -> ReadableFolders:  # read per call: a folder the person adds counts at once
        return ReadableFolders(deps.extras["home"], tuple(deps.config.load().import_config.folders))

    register_candle_tools(tools, CandleStore(deps.extras["home"] / "candles"), readable)
    service = BacktestService(deps.extras["home"], deps.config.load, deps.store, pool)
    deps.extras["backtests"] = service
    register_backtest_tools(tools, service)
    register_analysis_tools(tools, service)
    paper = PaperService(
        deps.store,
        deps.config.load,
        deps.extras.get("paper_prices")
        or ConfiguredPrices(deps.config.load, deps.extras["home"], deps.extras.get("price_transport")),
        clock=deps.extras.get("clock", time.time),
        server=deps.server_name,
    )
    deps.extras["paper"] = paper
    register_paper_tools(tools, paper, service)
    monitor = PaperMonitor(paper)
    deps.extras["paper_monitor"] = monitor
    deps.extras.setdefault("background", []).append(monitor.session_loop)  # HTTP: also with no session open

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        # The lifespan runs once per MCP session (several at once over HTTP): the pool and the monitor are shared
        # and counted.
        pool.attach()  # Jesse's import happens in the workers, in the background; initialize does not wait
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(monitor.session_loop)
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
        finally:
            pool.detach()

    server = tools.build(instructions=INSTRUCTIONS, lifespan=lifespan)
    add_policy_resource(server)
    add_backtest_resources(server, service)
    add_prompts(server, service)
    return server


def main(argv: list[str] | None = None) -> None:
    run_server("jesse-mcp", "jesse", build_server, argv)


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
    @tools.tool(
        capability="read", read_only=True, destructive=False, idempotent=True, open_world=False, title="Stored candles"
    )
    def list_candles(exchange: Exchange | None = None, symbol: Symbol | None = None) -> candle_ops.CandleList:
        """The 1-minute candle data stored for backtests: per exchange (store key and Jesse's name) and symbol, the
        range, row count, exact gaps (missing minutes), filled gaps, sources, and whether the data is synthetic."""
        return candle_ops.list_markets(store, exchange, symbol)

    @tools.tool(
        capability="research",
        read_only=False,
        destructive=False,
        idempotent=True,
        open_world=True,
        title="Import candles",
    )
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

    @tools.tool(
        capability="research",
        read_only=False,
        destructive=False,
        idempotent=True,
        open_world=False,
        title="Generate synthetic candles",
    )
    def generate_synthetic_candles(
        symbol: Symbol,
        start: Start = None,
        end: End = None,
        days: Days = None,
        seed: Annotated[int, Field(description="Same seed, same candles.", ge=0)] = 7,
    ) -> candle_ops.SyntheticReport:
        """Generate deterministic 1-minute candles (exchange 'synthetic') cycling through trend, range, crash and
        recovery regimes, for offline use. Everything built on them is labelled synthetic."""
        start_ms, end_ms = candle_ops.resolve_range(start, end, days)
        return candle_ops.generate_synthetic(store, symbol, start_ms, end_ms, seed)

    @tools.tool(
        capability="research",
        read_only=False,
        destructive=False,
        idempotent=True,
        open_world=False,
        title="Import candles from CSV",
    )
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

    @tools.tool(
        capability="research",
        read_only=False,
        destructive=False,
        idempotent=True,
        open_world=False,
        title="Fill candle gaps",
    )
    def fill_candle_gaps(exchange: Exchange, symbol: Symbol) -> MarketInfo:
        """Fill every gap of a stored market with flat candles at the previous close and zero volume. An explicit
        choice, recorded in the market's `filled` list; Jesse needs contiguous minutes."""
        return candle_ops.fill_gaps(store, exchange, symbol)

"""jesse_mcp: the MCP surface (thin tools) over configuration, stages and the Jesse worker pool."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio

from jesse_mcp.backtesting.pools import make_pool
from jesse_mcp.backtesting.ray_pool import RayPool
from jesse_mcp.backtesting.service import BacktestService
from jesse_mcp.backtesting.workers import DEFAULT_WARMUP, WorkerPool
from jesse_mcp.optimization.runner import OptimizationRunner
from jesse_mcp.tools.candles import register_candle_tools
from jesse_mcp.tools.config import register_config_tools
from jesse_mcp.tools.optimization import register_optimization_tools
from jesse_mcp.tools.prompts import add_prompts
from jesse_mcp.tools.research import add_backtest_resources, register_analysis_tools, register_backtest_tools
from jesse_mcp.tools.trading import register_paper_tools
from jesse_mcp.trading.monitor import PaperMonitor
from jesse_mcp.trading.paper import PaperService
from jesse_mcp.trading.prices import ConfiguredPrices
from shared.config.models import BacktestConfig
from shared.errors import ConfigError
from shared.market.candles import CandleStore
from shared.policy.readable import ReadableFolders
from shared.server.common import add_policy_resource, register_common_tools, run_server
from shared.server.registry import GuardedServer, ServerDeps, ToolRegistry

INSTRUCTIONS = (
    "Backtesting and configuration for trading strategies on the Jesse framework. Every call is checked against "
    "the risk policy (profiles conservative/moderate/aggressive, stages exploration/paper/live) and journaled. "
    "Use get_policy to see what is allowed; changes that loosen risk need the person's confirmation."
)


def build_server(
    deps: ServerDeps, warmup: tuple[str, ...] = DEFAULT_WARMUP, pool: WorkerPool | RayPool | None = None
) -> GuardedServer:
    """The jesse-mcp server. `pool` lets several servers (tests, benchmarks) share one warm worker pool; without it
    backtests run in local worker processes, or on the Ray cluster RAY_ADDRESS or backtest_config.ray_address names."""
    tools = ToolRegistry(deps)
    register_common_tools(tools)
    register_config_tools(tools)
    try:
        backtest_config = deps.config.load().backtest_config
    except ConfigError:  # every call reports the broken file; the server still starts
        backtest_config = BacktestConfig()
    pool = pool if pool is not None else make_pool(backtest_config, warmup, workdir=deps.extras.home / "jesse")
    deps.extras.pool = pool

    def readable() -> ReadableFolders:  # read per call: a folder the person adds counts at once
        return ReadableFolders(deps.extras.home, tuple(deps.config.load().import_config.folders))

    register_candle_tools(tools, CandleStore(deps.extras.home / "candles"), readable)
    service = BacktestService(deps.extras.home, deps.config.load, deps.store, pool)
    deps.extras.backtests = service
    register_backtest_tools(tools, service)
    register_analysis_tools(tools, service)
    optimizations = deps.extras.optimizations = OptimizationRunner(deps.extras.home, service, deps.config.load)
    register_optimization_tools(tools, optimizations)
    paper = deps.extras.paper = _paper_service(deps)
    register_paper_tools(tools, paper, service)
    monitor = PaperMonitor(paper)
    deps.extras.paper_monitor = monitor
    deps.extras.background.append(monitor.session_loop)  # HTTP: also with no session open

    server = tools.build(instructions=INSTRUCTIONS, lifespan=_lifespan(pool, monitor))
    add_policy_resource(server)
    add_backtest_resources(server, service)
    add_prompts(server, service)
    return server


def _paper_service(deps: ServerDeps) -> PaperService:
    prices = deps.extras.paper_prices or ConfiguredPrices(
        deps.config.load, deps.extras.home, deps.extras.price_transport
    )
    clock = deps.extras.clock or time.time
    return PaperService(deps.store, deps.config.load, prices, clock=clock, server=deps.server_name)


def _lifespan(pool: WorkerPool | RayPool, monitor: PaperMonitor) -> Callable[[Any], AbstractAsyncContextManager[None]]:
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

    return lifespan


def main(argv: list[str] | None = None) -> None:
    run_server("jesse-mcp", "jesse", build_server, argv)

"""What a server's tools, resources and prompts may use: configuration, state, and named optional objects.

`ServerExtras` names every object the servers, `run_server` and the tests pass around beside the configuration and
the state database. Objects whose type lives in a server package are typed `Any` here (shared/ never imports the
server packages); the field name says what they are.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shared.config.store import ConfigStore
from shared.server.http_edge import HttpPolicy
from shared.state.store import Store

BackgroundJob = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class ServerExtras:
    """Inputs (set before a server is built) and the services it built (for tests and benchmarks to reach)."""

    home: Path  # TRADING_MCP_HOME: candles, results, the Jesse workers' folder
    # Set by run_server: where streamable HTTP binds, and the edge policy (Host, Origin, token).
    http: tuple[str, int] = ("127.0.0.1", 8000)
    http_policy: HttpPolicy | None = None
    # Process-wide jobs that run for as long as an HTTP server does, sessions or none (the paper monitor).
    background: list[BackgroundJob] = field(default_factory=list)
    # Injected by tests and benchmarks: the clock, and the network seams.
    clock: Callable[[], float] | None = None
    price_transport: httpx.AsyncBaseTransport | None = None
    news_transport: httpx.AsyncBaseTransport | None = None
    paper_prices: Any = None  # jesse_mcp.trading prices source for the paper ledger
    # Built by the servers.
    quotes: Any = None  # asset_price_mcp.quotes.QuoteService
    discovery: Any = None  # discovery_mcp.service.DiscoveryService
    pool: Any = None  # jesse_mcp.backtesting WorkerPool
    backtests: Any = None  # jesse_mcp.backtesting BacktestService
    optimizations: Any = None  # jesse_mcp.optimization OptimizationRunner
    paper: Any = None  # jesse_mcp.trading paper service
    paper_monitor: Any = None  # jesse_mcp.trading paper monitor


@dataclass
class ServerDeps:
    """What every tool of a server may use."""

    server_name: str
    config: ConfigStore
    store: Store
    extras: ServerExtras

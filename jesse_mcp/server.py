"""jesse_mcp: the MCP surface (thin tools) over configuration, stages and the Jesse worker pool."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

from mcp.server.fastmcp import Context
from pydantic import Field, JsonValue

from jesse_mcp import config_ops
from jesse_mcp.workers import DEFAULT_WARMUP, WorkerPool
from shared.confirm import require_confirmation
from shared.server_common import StrategyArg, add_policy_resource, register_common_tools, run_server
from shared.tooling import GuardedServer, ServerDeps, ToolRegistry

INSTRUCTIONS = (
    "Backtesting and configuration for trading strategies on the Jesse framework. Every call is checked against "
    "the risk policy (profiles conservative/moderate/aggressive, stages exploration/paper/live) and journaled. "
    "Use get_policy to see what is allowed; changes that loosen risk need the person's confirmation."
)


def build_server(deps: ServerDeps, warmup: tuple[str, ...] = DEFAULT_WARMUP) -> GuardedServer:
    tools = ToolRegistry(deps)
    register_common_tools(tools)
    pool = WorkerPool(deps.config.load().backtest_config.workers, warmup)
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

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        pool.start_in_background()  # Jesse's import happens in the workers; initialize does not wait
        try:
            yield
        finally:
            pool.shutdown()

    server = tools.build(instructions=INSTRUCTIONS, lifespan=lifespan)
    add_policy_resource(server)
    return server


def main(argv: list[str] | None = None) -> None:
    run_server("jesse-mcp", "jesse_mcp_port", build_server, argv)

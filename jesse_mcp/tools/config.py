"""The configuration and stage tools of jesse_mcp (thin: the work is in shared.config.updates)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from mcp.server.fastmcp import Context
from pydantic import Field, JsonValue

from shared.config import updates as config_ops
from shared.server.common import StrategyArg
from shared.server.confirm import require_confirmation
from shared.server.registry import ToolRegistry


def register_config_tools(tools: ToolRegistry) -> None:
    deps = tools.deps

    @tools.read(title="Configuration")
    def get_config() -> config_ops.ConfigView:
        """The whole configuration (risk profiles, limits, strategies, stages, news sources, server settings),
        its file path, and which environment variables are set. Secrets are never shown."""
        return config_ops.config_view(deps.config)

    # halt-exempt: while halted it still runs, but config_ops lets only tightening and demotions through
    @tools.admin(destructive=True, idempotent=True, title="Change configuration", halt_exempt=True)
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

    @tools.read(title="Trading stages", strategy_arg="strategy")
    def get_stage(strategy: StrategyArg = None) -> config_ops.StageView:
        """Global stage and each strategy's own and effective stage (the lower of the two counts), with the
        recent history of stage changes."""
        return config_ops.stage_view(deps.config.load(), deps.store, strategy)

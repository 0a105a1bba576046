"""Helpers for tests that talk to the servers through real (in-memory) MCP sessions."""

from __future__ import annotations

import json
from typing import Any

from mcp import types

from asset_price_mcp.server import build_server as build_prices
from discovery_mcp.server import build_server as build_discovery
from jesse_mcp.server import build_server as build_jesse
from shared.server.registry import GuardedServer, ServerDeps


def all_servers(deps: ServerDeps) -> dict[str, GuardedServer]:
    """The three servers on one state folder; Jesse workers warm up on nothing, so tests stay fast."""
    return {
        "jesse-mcp": build_jesse(deps, warmup=()),
        "asset-price-mcp": build_prices(deps),
        "discovery-mcp": build_discovery(deps),
    }


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def payload(result: types.CallToolResult) -> Any:
    assert not result.isError, text_of(result)
    return result.structuredContent if result.structuredContent is not None else json.loads(text_of(result))


def accept(confirm: bool = True):
    calls: list[str] = []

    async def callback(context, params: types.ElicitRequestParams) -> types.ElicitResult:
        calls.append(params.message)
        return types.ElicitResult(action="accept", content={"confirm": confirm})

    callback.calls = calls  # type: ignore[attr-defined]
    return callback


def respond(action: str):
    async def callback(context, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action=action)

    return callback

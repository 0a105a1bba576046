"""Real MCP client sessions to the three servers over stdio (each server started as a child process)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any, TextIO

import anyio
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

SERVERS: dict[str, str] = {
    "jesse-mcp": "jesse_mcp",
    "asset-price-mcp": "asset_price_mcp",
    "discovery-mcp": "discovery_mcp",
}
ALIASES: dict[str, str] = {
    "jesse": "jesse-mcp",
    "jesse_mcp": "jesse-mcp",
    "backtest": "jesse-mcp",
    "asset-price": "asset-price-mcp",
    "asset_price_mcp": "asset-price-mcp",
    "prices": "asset-price-mcp",
    "price": "asset-price-mcp",
    "discovery": "discovery-mcp",
    "discovery_mcp": "discovery-mcp",
    "news": "discovery-mcp",
}


class CliError(Exception):
    """A usage problem the person must fix; printed without a traceback."""


def canonical_server(name: str) -> str:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in SERVERS:
        raise CliError(f"unknown server {name!r}; use one of: {', '.join(SERVERS)} (or jesse, prices, discovery)")
    return key


def server_parameters(server: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    """Start the server with this same interpreter, passing the whole environment (home, keys, base URLs)."""
    merged = dict(os.environ)
    merged.update(env or {})
    return StdioServerParameters(command=sys.executable, args=["-m", SERVERS[server]], env=merged)


async def terminal_elicitation(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    """Ask the person at the terminal. Only offered when stdin is a TTY: a script can never confirm."""
    print(f"\n[confirmation requested] {params.message}", file=sys.stderr)
    answer = await anyio.to_thread.run_sync(lambda: input("Type 'yes' to confirm, anything else refuses: "))
    if answer.strip().lower() == "yes":
        return types.ElicitResult(action="accept", content={"confirm": True})
    return types.ElicitResult(action="decline")


@contextlib.asynccontextmanager
async def open_session(
    server: str,
    env: dict[str, str] | None = None,
    *,
    interactive: bool | None = None,
    errlog: TextIO | None = None,
) -> AsyncIterator[ClientSession]:
    if interactive is None:
        interactive = sys.stdin.isatty()
    params = server_parameters(server, env)
    async with (
        stdio_client(params, errlog=errlog or sys.stderr) as (read, write),
        ClientSession(read, write, elicitation_callback=terminal_elicitation if interactive else None) as session,
    ):
        await session.initialize()
        yield session


def result_payload(result: types.CallToolResult) -> Any:
    """The structured result when there is one, else the text content (parsed as JSON when it is JSON)."""
    if result.structuredContent is not None:
        return result.structuredContent
    texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
    text = "\n".join(texts)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


def error_text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))

"""Protocol-level answers of every server: the JSON-RPC error codes MCP (2025-11-25) names for unknown tools,
prompts and resources, the size bounds on their parameters, and the project's version in `serverInfo`.

FastMCP turns every exception of a tool call into an `isError` result and reports unknown prompts and resources
as error code 0 with a traceback in the log. The SDK's low-level server passes an `McpError` through unchanged, so
these checks run in front of its handlers and raise one, before FastMCP looks at the request.
"""

from __future__ import annotations

import tomllib
from collections.abc import Awaitable, Callable
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mcp import types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import McpError

from shared.redact import redact_text
from shared.server.limits import arguments_problem, uri_problem

RESOURCE_NOT_FOUND = -32002  # MCP spec, "Resources: Error Handling"
MAX_NAME = 128  # longest tool, prompt or strategy name echoed or journaled
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@cache
def project_version() -> str:
    """trading-mcp's version: the installed distribution's, else the one in pyproject.toml (a source checkout)."""
    try:
        return version("trading-mcp")
    except PackageNotFoundError:
        try:
            return tomllib.loads(PYPROJECT.read_text())["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0+unknown"


def protocol_error(code: int, message: str) -> McpError:
    return McpError(types.ErrorData(code=code, message=message))


Handler = Callable[[Any], Awaitable[types.ServerResult]]
Check = Callable[[Any], None]


def _gate(server: Server, request_type: type, check: Check) -> None:
    inner: Handler = server.request_handlers[request_type]

    async def handler(req: Any) -> types.ServerResult:
        check(req.params)  # raises McpError: the low-level server answers with its code, and logs no traceback
        return await inner(req)

    server.request_handlers[request_type] = handler


def install_gates(fastmcp: Any, on_unknown_tool: Callable[[str, dict[str, Any]], str]) -> None:
    """Check tools/call, prompts/get and resources/read names (and prompt/URI sizes) before FastMCP runs them.

    `on_unknown_tool(name, arguments)` journals the call and returns the message for the model."""
    low: Server = fastmcp._mcp_server
    low.version = project_version()

    def tool_known(params: types.CallToolRequestParams) -> None:
        if fastmcp._tool_manager.get_tool(params.name) is None:
            raise protocol_error(types.INVALID_PARAMS, on_unknown_tool(params.name, params.arguments or {}))

    def prompt_known(params: types.GetPromptRequestParams) -> None:
        name = redact_text(params.name[:MAX_NAME])
        if fastmcp._prompt_manager.get_prompt(params.name) is None:
            known = ", ".join(sorted(p.name for p in fastmcp._prompt_manager.list_prompts())) or "(none)"
            raise protocol_error(types.INVALID_PARAMS, f"Unknown prompt '{name}'. Prompts here: {known}.")
        problem = arguments_problem(params.arguments or {}, f"prompt {name}")
        if problem:
            raise protocol_error(types.INVALID_PARAMS, problem)

    def resource_known(params: types.ReadResourceRequestParams) -> None:
        uri = str(params.uri)
        problem = uri_problem(uri)
        if problem:
            raise protocol_error(types.INVALID_PARAMS, problem)
        manager = fastmcp._resource_manager
        if uri in {str(r.uri) for r in manager.list_resources()}:
            return
        if any(t.matches(uri) is not None for t in manager.list_templates()):
            return
        raise protocol_error(
            RESOURCE_NOT_FOUND, f"Resource not found: {redact_text(uri[:200])}. resources/list names those served."
        )

    _gate(low, types.CallToolRequest, tool_known)
    _gate(low, types.GetPromptRequest, prompt_known)
    _gate(low, types.ReadResourceRequest, resource_known)

"""Real MCP client sessions to the three servers over stdio (each server started as a child process)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any, TextIO

import anyio
import httpx
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError

from shared.redact import redact_text
from shared.server.http_edge import TOKEN_ENV

# The --url of the command line; open_session uses it when it is given no URL of its own.
SESSION_URL: ContextVar[str | None] = ContextVar("trading_mcp_session_url", default=None)
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0, read=300.0)  # the SDK's defaults, with a shorter connect

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


# jesse-mcp tools that run Jesse in its workers: for these the server starts its zygote before importing itself
# (jesse_mcp/__main__.py), for the others it need not (a one-call session then ends before Jesse is imported)
JESSE_TOOLS = frozenset(
    {
        "backtest",
        "compare_risk_profiles",
        "backtest_batch",
        "stress_test",
        "monte_carlo",
        "validate_strategy",
        "optimize_strategy",
        "list_strategies",
    }
)
EARLY_ZYGOTE_ENV = "JESSE_MCP_EARLY_ZYGOTE"


def env_for(server: str, tool: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment for a one-call session of `tool`."""
    out = dict(env or {})
    if server in ("jesse", "jesse-mcp"):
        out.setdefault(EARLY_ZYGOTE_ENV, "1" if tool in JESSE_TOOLS else "0")
    return out


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
    url: str | None = None,
    interactive: bool | None = None,
    errlog: TextIO | None = None,
) -> AsyncIterator[ClientSession]:
    """An initialized session: over stdio to a child process, or over streamable HTTP when a URL is given (as the
    argument, or by `--url` through SESSION_URL). Over HTTP `server` only checks the server that answers."""
    async with connect(server, env, url=url, interactive=interactive, errlog=errlog) as (session, _):
        yield session


@contextlib.asynccontextmanager
async def connect(
    server: str | None,
    env: dict[str, str] | None = None,
    *,
    url: str | None = None,
    interactive: bool | None = None,
    errlog: TextIO | None = None,
) -> AsyncIterator[tuple[ClientSession, types.InitializeResult]]:
    """open_session that also yields the server's initialize result (its name, over HTTP)."""
    if interactive is None:
        interactive = sys.stdin.isatty()
    elicit = terminal_elicitation if interactive else None
    url = url or SESSION_URL.get()
    if url is not None:
        async with http_session(url, server, env, elicit) as opened:
            yield opened
        return
    if server is None:
        raise CliError("name a server: one of " + ", ".join(SERVERS))
    params = server_parameters(server, env)
    async with (
        stdio_client(params, errlog=errlog or sys.stderr) as (read, write),
        ClientSession(read, write, elicitation_callback=elicit) as session,
    ):
        yield session, await session.initialize()


@contextlib.asynccontextmanager
async def http_session(
    url: str, server: str | None, env: dict[str, str] | None, elicit: Any
) -> AsyncIterator[tuple[ClientSession, types.InitializeResult]]:
    """A streamable-HTTP session, with `Authorization: Bearer $TRADING_MCP_TOKEN` when that is set. Network and
    HTTP failures become a CliError that says what to fix (never showing the token)."""
    url = check_url(url)
    token = (env or {}).get(TOKEN_ENV) or os.environ.get(TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    host = httpx.URL(url).host
    if token and httpx.URL(url).scheme == "http" and host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"trading-mcp: warning: the bearer token goes to {host} over plain http; anyone on the network path can "
            "read it. Put the server behind TLS (https://) or reach it through an SSH tunnel.",
            file=sys.stderr,
        )
    try:
        async with (
            httpx.AsyncClient(headers=headers, timeout=HTTP_TIMEOUT, follow_redirects=True) as client,
            streamable_http_client(url, http_client=client) as (read, write, _),
            ClientSession(read, write, elicitation_callback=elicit) as session,
        ):
            try:
                info = await session.initialize()
            except McpError as e:  # e.g. a 404: the SDK reports it as a terminated session
                raise CliError(
                    f"{redact_text(url)} did not open an MCP session ({e.error.message}); the servers' endpoint is "
                    "http://<host>:<port>/mcp."
                ) from None
            name = info.serverInfo.name
            if server is not None and name != server:
                raise CliError(f"{redact_text(url)} serves {name}, not {server}: point --url at the {server} server.")
            yield session, info
    except (httpx.HTTPError, ExceptionGroup) as e:
        problem = _connection_problem(e, url, has_token=bool(token))
        if problem is None:
            raise
        raise problem from None


def check_url(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as e:
        raise CliError(f"--url is not a valid URL ({e}); write it as http://127.0.0.1:8002/mcp") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise CliError(
            f"--url must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8002/mcp (got {url!r})"
        )
    if parsed.userinfo:
        raise CliError(f"put no credentials in --url; the client sends ${TOKEN_ENV} as a bearer token instead.")
    return url


def leaf_errors(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for sub in error.exceptions for leaf in leaf_errors(sub)]
    return [error]


def _connection_problem(error: BaseException, url: str, *, has_token: bool) -> CliError | None:
    """What went wrong reaching the server, said as what to do; None when the error is not about the connection."""
    leaves = leaf_errors(error)
    for leaf in leaves:
        if isinstance(leaf, CliError):
            return leaf
    http_errors = [leaf for leaf in leaves if isinstance(leaf, httpx.HTTPError)]
    if not http_errors:
        return None
    e, where = http_errors[0], redact_text(url)
    if isinstance(e, httpx.HTTPStatusError):
        code = e.response.status_code
        if code == 401 and not has_token:
            return CliError(f"{where} needs a bearer token (HTTP 401): set {TOKEN_ENV} to the server's token.")
        if code == 401:
            return CliError(f"{where} refused the bearer token (HTTP 401): set {TOKEN_ENV} to the server's token.")
        if code == 421:
            return CliError(
                f"{where} does not serve this host name (HTTP 421): use the address the server is bound to, or "
                "add the name to TRADING_MCP_ALLOWED_HOSTS where the server runs."
            )
        return CliError(f"{where} answered HTTP {code} {e.response.reason_phrase}; is it a trading-mcp server's /mcp?")
    if isinstance(e, httpx.ConnectError | httpx.ConnectTimeout):
        return CliError(
            f"cannot reach {where} ({redact_text(str(e)) or type(e).__name__}): start the server there with "
            "--transport streamable-http, or leave out --url to use stdio."
        )
    if isinstance(e, httpx.TimeoutException):
        return CliError(f"{where} did not answer in time ({type(e).__name__}).")
    return CliError(f"cannot talk to {where}: {type(e).__name__}: {redact_text(str(e))}")


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

"""What every server has: dependencies, the policy and journal tools, the policy resource, and `main()`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

from pydantic import Field

from shared.config.models import McpConfig
from shared.config.store import ConfigStore, config_path, trading_home
from shared.errors import ConfigError, TradingMcpError
from shared.policy.views import Decision, JournalPage, PolicyView, journal_page, policy_view
from shared.redact import redact_text
from shared.server.http_edge import TOKEN_ENV, HttpSecurityError, http_policy
from shared.server.registry import GuardedServer, ServerDeps, ServerExtras, ToolRegistry
from shared.state.store import Store

StrategyArg = Annotated[
    str | None,
    Field(description="Strategy name (e.g. trend_following); omit for the global policy.", max_length=64),
]


def make_deps(server_name: str, home: Path | None = None) -> ServerDeps:
    """Open the configuration and state database under `home` (default: $TRADING_MCP_HOME)."""
    root = Path(home) if home is not None else trading_home()
    root.mkdir(parents=True, exist_ok=True)
    cfg_path = config_path() if home is None else root / "config.json"
    deps = ServerDeps(server_name, ConfigStore(cfg_path), Store(root / "state.db"), ServerExtras(home=root))
    try:
        deps.config.load()  # creates the defaults on first run
    except ConfigError as e:  # the server still starts; every call is denied with the problem (config_invalid)
        logging.getLogger(server_name).error("%s", e)
    return deps


def register_common_tools(tools: ToolRegistry) -> None:
    deps = tools.deps

    @tools.read(title="Effective policy", strategy_arg="strategy")
    def get_policy(strategy: StrategyArg = None) -> PolicyView:
        """Effective risk profile and settings, portfolio limits, stage and trading state, for one strategy or
        the global policy; lists which capabilities (read, research, paper, live, admin) a call would get now."""
        return policy_view(deps.config.load(), deps.store, strategy)

    @tools.read(title="Audit journal")
    def get_journal(
        limit: Annotated[int, Field(description="Most recent entries to return.", ge=1, le=500)] = 20,
        tool: Annotated[str | None, Field(description="Only calls of this tool.", max_length=64)] = None,
        decision: Annotated[
            Decision | None,
            Field(description="allow, deny, invalid, or system (what the paper ledger did by itself: stops, halts)."),
        ] = None,
        since: Annotated[datetime | None, Field(description="Only calls at or after this UTC ISO-8601 time.")] = None,
        server: Annotated[str | None, Field(description="jesse-mcp, asset-price-mcp or discovery-mcp.")] = None,
    ) -> JournalPage:
        """Recent tool calls of all three servers from the audit journal, newest first: decision, rule and
        reason of denials, outcome, duration. Arguments are shown with secrets redacted."""
        return journal_page(deps.store, limit=limit, tool=tool, decision=decision, since=since, server=server)


def add_policy_resource(server: GuardedServer) -> None:
    deps = server.deps

    @server.resource("policy://current", name="policy", title="Current policy", mime_type="application/json")
    def current_policy() -> str:
        """The global policy now: stage, trading state, effective risk settings and portfolio limits."""
        return policy_view(deps.config.load(), deps.store, None).model_dump_json(indent=2)


class RedactingFilter(logging.Filter):
    """Secrets never reach stderr: API keys in request URLs (httpx logs them), URL passwords, secret env values."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def setup_logging() -> None:
    level = os.environ.get("TRADING_MCP_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(stream=sys.stderr, level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    if level == "INFO":
        logging.getLogger("mcp").setLevel(logging.WARNING)  # the SDK logs every request at INFO
        for name in ("httpx", "httpcore"):  # every request URL at INFO, and some carry API keys
            logging.getLogger(name).setLevel(logging.WARNING)


def run_server(
    prog: str, listen_key: str, build: Callable[[ServerDeps], GuardedServer], argv: list[str] | None = None
) -> None:
    """Command line of every server: stdio by default, or streamable HTTP on --host/--port (defaults from
    mcp_config.<listen_key>_host and _port)."""
    parser = argparse.ArgumentParser(prog=prog, description=f"{prog}: an MCP server of the trading-mcp suite.")
    parser.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio")
    parser.add_argument("--host", help="bind address for streamable HTTP (default from mcp_config, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port for streamable HTTP (default from mcp_config)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        deps = make_deps(prog)
    except (TradingMcpError, OSError) as e:
        print(f"{prog}: cannot start: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        mcp_config = deps.config.load().mcp_config
    except ConfigError:
        mcp_config = McpConfig()
    host = args.host or getattr(mcp_config, f"{listen_key}_host")
    port = args.port or getattr(mcp_config, f"{listen_key}_port")
    if args.transport == "streamable-http":
        try:  # before anything starts: a non-loopback bind without a good token never serves a request
            deps.extras.http_policy = http_policy(prog, host, port)
        except HttpSecurityError as e:
            deps.store.close()
            print(f"{prog}: refusing to serve on {host}: {e}", file=sys.stderr)
            raise SystemExit(2) from None
    deps.extras.http = (host, port)
    server = build(deps)
    if args.transport == "stdio":
        server.run("stdio")
        return
    policy = deps.extras.http_policy
    auth = "bearer token required" if policy and policy.token else f"no token ({TOKEN_ENV} not set)"
    logging.getLogger(prog).info("serving streamable HTTP on http://%s:%s/mcp, %s", host, port, auth)
    server.run("streamable-http")

"""`trading-mcp`: a real MCP client of the three servers, for people at a terminal and for CI scripts."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio
from mcp.shared.exceptions import McpError

from trading_cli.client import (
    SERVERS,
    SESSION_URL,
    CliError,
    canonical_server,
    connect,
    env_for,
    error_text,
    leaf_errors,
    open_session,
    result_payload,
)
from trading_cli.render import render


def _parse_args(pairs: list[str], raw_json: str | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if raw_json:
        try:
            loaded = json.loads(raw_json)
        except json.JSONDecodeError as e:
            raise CliError(f"--json is not valid JSON ({e.msg} at column {e.colno}): {raw_json!r}") from None
        if not isinstance(loaded, dict):
            raise CliError('--json must be a JSON object, e.g. \'{"strategy": "trend_following"}\'')
        args.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--arg takes key=value, got {pair!r}")
        try:
            args[key] = json.loads(value)  # numbers, true/false, null, lists and objects as JSON
        except json.JSONDecodeError:
            args[key] = value  # anything else is a string
    return args


async def cmd_call(server: str, tool: str, arguments: dict[str, Any], as_json: bool) -> int:
    async with open_session(server, env_for(server, tool)) as session:
        result = await session.call_tool(tool, arguments)
    at = f" at {SESSION_URL.get()}" if SESSION_URL.get() else ""
    print(f"-> {server}.{tool}{at} {json.dumps(arguments)}", file=sys.stderr)
    if result.isError:
        print(f"error: {error_text(result)}", file=sys.stderr)
        return 1
    payload = result_payload(result)
    print(json.dumps(payload, indent=2) if as_json else render(payload, indent=""))
    return 0


async def cmd_tools(servers: list[str | None], as_json: bool) -> int:
    """`servers` is [None] with --url and no server named: list whichever server answers there."""
    listing: dict[str, list[dict[str, Any]]] = {}
    for server in servers:
        env = env_for(server, "tools/list") if server else None
        async with connect(server, env, interactive=False) as (session, info):
            tools = (await session.list_tools()).tools
        listing[info.serverInfo.name] = [
            {
                "name": t.name,
                "description": t.description,
                "annotations": t.annotations.model_dump(exclude_none=True) if t.annotations else {},
                "meta": t.meta,
            }
            for t in tools
        ]
    if as_json:
        print(json.dumps(listing, indent=2))
        return 0
    for server, tools in listing.items():
        print(f"{server} ({len(tools)} tools)")
        for t in tools:
            first = (t["description"] or "").split("\n")[0]
            cap = (t["meta"] or {}).get("trading_mcp", {}).get("capability", "?")
            print(f"  {t['name']:<24} [{cap}] {first[:90]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trading-mcp", description="Client of the trading-mcp servers.")
    parser.add_argument(
        "--url",
        help="talk to one server over streamable HTTP (e.g. http://127.0.0.1:8002/mcp) instead of starting it over "
        "stdio; sends $TRADING_MCP_TOKEN as a bearer token when set",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    call = sub.add_parser("call", help="call one tool: trading-mcp call jesse get_policy --json '{...}'")
    call.add_argument("server", help=f"one of {', '.join(SERVERS)} (or jesse, prices, discovery)")
    call.add_argument("tool")
    call.add_argument(
        "--arg", action="append", default=[], metavar="KEY=VALUE", help="value parsed as JSON if it can be"
    )
    call.add_argument("--json", dest="raw_json", help="all arguments as one JSON object")
    call.add_argument("--output-json", action="store_true", help="print the raw structured result")
    tools = sub.add_parser("tools", help="list the tools of one or all servers")
    tools.add_argument("server", nargs="?")
    tools.add_argument("--json", action="store_true")
    ask = sub.add_parser("ask", help='a plain-English command: trading-mcp ask "backtest trend_following safely"')
    ask.add_argument(
        "text",
        nargs="+",
        help="the command (quotes optional). Text that matches no known command is sent to GLM to choose a tool, "
        "only when ZHIPUAI_API_KEY is set",
    )
    ask.add_argument("--json", action="store_true", help="print the raw structured result")
    ask.add_argument("--yes", action="store_true", help="run a call that GLM chose even if it is not read-only")
    demo = sub.add_parser("demo", help="a guided, offline tour of the three servers")
    demo.add_argument("--home", help="TRADING_MCP_HOME for the demo (default: a fresh temporary folder)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    token = SESSION_URL.set(args.url)  # open_session picks it up, for every command that opens sessions
    try:
        code = _run(args)
    finally:
        SESSION_URL.reset(token)
    raise SystemExit(code)


def _run(args: argparse.Namespace) -> int:
    try:
        if args.url and args.command == "demo":
            raise CliError("--url does not apply to demo, which starts its own servers in a temporary folder")
        if args.command == "call":
            code = anyio.run(
                cmd_call,
                canonical_server(args.server),
                args.tool,
                _parse_args(args.arg, args.raw_json),
                args.output_json,
            )
        elif args.command == "ask":
            from trading_cli.ask.command import cmd_ask

            code = anyio.run(cmd_ask, " ".join(args.text), args.json, args.yes)
        elif args.command == "tools":
            servers: list[str | None] = [canonical_server(args.server)] if args.server else list(SERVERS)
            if args.url and not args.server:
                servers = [None]
            code = anyio.run(cmd_tools, servers, args.json)
        else:
            from trading_cli.demo import run_demo

            code = anyio.run(run_demo, args.home)
    except CliError as e:
        print(f"trading-mcp: {e}", file=sys.stderr)
        code = 2
    except (McpError, OSError, ExceptionGroup) as e:
        leaves = leaf_errors(e)
        if not all(isinstance(x, McpError | OSError) for x in leaves):
            raise
        reason = "; ".join(str(x) for x in leaves)
        where = f"the server at {args.url} closed the session" if args.url else "the server stopped or could not start"
        more = "" if args.url else "; its own error output is above"
        print(f"trading-mcp: {where} ({reason}){more}.", file=sys.stderr)
        code = 3
    return code


if __name__ == "__main__":
    main()

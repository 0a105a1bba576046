"""`trading-mcp demo`: an offline tour of the three servers over real MCP stdio sessions."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp import ClientSession

from trading_cli.client import SERVERS, error_text, open_session, result_payload
from trading_cli.render import render


class Demo:
    def __init__(self, home: Path):
        self.home = home
        self.env = {
            "TRADING_MCP_HOME": str(home),
            "TRADING_MCP_CONFIG": str(home / "config.json"),
            "TRADING_MCP_LOG_LEVEL": "WARNING",
        }
        self.surprises: list[str] = []

    async def call(
        self, session: ClientSession, server: str, tool: str, args: dict[str, Any], expect: str = "ok"
    ) -> Any:
        print(f"\n-> {server}.{tool} {json.dumps(args)}")
        result = await session.call_tool(tool, args)
        if result.isError:
            print(f"   refused: {error_text(result)}")
            if expect == "ok":
                self.surprises.append(f"{tool} failed: {error_text(result)[:200]}")
            return None
        payload = result_payload(result)
        print(render(payload))
        if expect != "ok":
            self.surprises.append(f"{tool} {args} was expected to be refused but succeeded")
        return payload

    async def policy_servers(self) -> None:
        for server in ("asset-price-mcp", "discovery-mcp"):
            print(f"\n== {server} ==")
            async with open_session(server, self.env, interactive=False) as session:
                tools = (await session.list_tools()).tools
                print(f"tools/list: {', '.join(t.name for t in tools)}")
                strategy = None if server == "asset-price-mcp" else "mean_reversion"
                await self.call(session, server, "get_policy", {"strategy": strategy} if strategy else {})
                await self.call(session, server, "get_journal", {"limit": 3, "server": server})

    async def jesse_server(self) -> None:
        server = "jesse-mcp"
        print(f"\n== {server} ==  (Jesse worker processes start in the background; tools answer at once)")
        async with open_session(server, self.env, interactive=False) as session:
            tools = (await session.list_tools()).tools
            print(f"tools/list: {', '.join(t.name for t in tools)}")
            await self.call(session, server, "get_stage", {})
            print("\n# Loosening a risk setting needs a person's confirmation; this client offers none:")
            await self.call(
                session,
                server,
                "update_config",
                {
                    "changes": {"strategies.trend_following.risk_profile": "aggressive"},
                    "reason": "demo: try to loosen",
                },
                expect="refused",
            )
            print("\n# Tightening never needs confirmation:")
            await self.call(
                session,
                server,
                "update_config",
                {
                    "changes": {
                        "strategies.trend_following.risk_overrides.max_leverage": 1.5,
                        "portfolio_limits.max_trades_per_day": 10,
                    },
                    "reason": "demo: tighten",
                },
            )
            await self.call(session, server, "get_policy", {"strategy": "trend_following"})
            print("\n# update_config never raises a stage; promotion needs recorded evidence:")
            await self.call(session, server, "update_config", {"changes": {"stage": "paper"}}, expect="refused")
            print("\n# Arguments are strict: a number where a name belongs, and an unknown key:")
            await self.call(session, server, "get_policy", {"strategy": 7}, expect="refused")
            await self.call(
                session,
                server,
                "get_policy",
                {"strategy": "trend_following", "profile": "x"},
                expect="refused",
            )
            print("\n# Every call above, allowed or not, is in the audit journal:")
            result = await session.call_tool("get_journal", {"limit": 12})
            for row in reversed(result_payload(result)["entries"]):
                print(
                    f"   {row['ts']}  {row['server']:<16} {row['tool']:<14} {row['decision']:<8} "
                    f"{row['outcome']:<18} {row['rule'] or ''}"
                )


async def run_demo(home: str | None = None) -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trading-mcp-demo-") as tmp:
        root = Path(home) if home else Path(tmp)
        print("trading-mcp demo: three guarded MCP servers, driven over real MCP stdio sessions, offline.")
        print(f"state folder: {root} ({'given' if home else 'temporary; your own configuration is untouched'})")
        print(f"servers: {', '.join(SERVERS)}")
        demo = Demo(root)
        await demo.policy_servers()
        await demo.jesse_server()
    print(f"\ndemo finished in {time.perf_counter() - started:.1f} s")
    if demo.surprises:
        print("UNEXPECTED:\n  " + "\n  ".join(demo.surprises))
        return 1
    return 0

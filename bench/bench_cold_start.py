"""Cold start of each server over stdio: from process start to an answered `tools/list`.

For jesse_mcp, asset_price_mcp and discovery_mcp, starts `python -m <module>` with a fresh TRADING_MCP_HOME and
TRADING_MCP_CONFIG, connects the real MCP stdio client, initializes and lists the tools; leaving the context
managers ends the server (the shutdown time is shown too). 5 runs each; prints min/median/max seconds.
Target: < 1.5 s per server.

Run: uv run python bench/bench_cold_start.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

MODULES = ("jesse_mcp", "asset_price_mcp", "discovery_mcp")
RUNS = 5
RUN_LIMIT_S = 60


async def one_run(module: str, home: Path) -> tuple[float, float, int]:
    """Seconds to an answered tools/list, seconds to end the server, number of tools."""
    env = dict(os.environ, TRADING_MCP_HOME=str(home), TRADING_MCP_CONFIG=str(home / "config.json"))
    params = StdioServerParameters(command=sys.executable, args=["-m", module], env=env)
    with open(home / "stderr.log", "w") as errlog, anyio.fail_after(RUN_LIMIT_S):
        t0 = time.perf_counter()
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            ready = time.perf_counter() - t0
            t1 = time.perf_counter()
        return ready, time.perf_counter() - t1, len(tools)


async def bench() -> None:
    print(f"{RUNS} cold starts per server, python -m <module> over stdio (target < 1.5 s to tools/list)")
    for module in MODULES:
        ready, ended = [], []
        for _ in range(RUNS):
            with tempfile.TemporaryDirectory(prefix=f"bench-cold-{module}-") as tmp:
                r, e, n_tools = await one_run(module, Path(tmp))
            ready.append(r)
            ended.append(e)
        print(
            f"{module:<16} tools/list: min {min(ready):.3f} s  median {statistics.median(ready):.3f} s  "
            f"max {max(ready):.3f} s   ({n_tools} tools; shutdown median {statistics.median(ended):.3f} s)"
        )


if __name__ == "__main__":
    anyio.run(bench)

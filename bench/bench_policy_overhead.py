"""Per-call overhead of the policy wrapper: a guarded no-op tool versus a bare FastMCP no-op tool.

Both servers run in the same process over in-memory MCP sessions; rounds are interleaved (order alternating) after
a warm-up. The guarded path includes strict argument validation, the guard decision and the journal write.
Reports per-call mean and median microseconds of each and the ratio guarded/bare. Target: ratio <= 1.5.

Run: uv run python bench/bench_policy_overhead.py
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import anyio
from mcp.client.session import ClientSession
from mcp.server.fastmcp import FastMCP
from mcp.shared.memory import create_connected_server_and_client_session
from pydantic_settings.sources.utils import IncompleteFieldDefinitionWarning

from shared.server.common import make_deps
from shared.server.registry import ToolRegistry

ROUNDS, CALLS, WARMUP = 5, 400, 200
TIME_LIMIT_S = 300


def noop(x: int = 0) -> int:
    """No-op."""
    return x


def build_guarded(home: Path) -> tuple[FastMCP, Path]:
    deps = make_deps("bench", home)
    tools = ToolRegistry(deps)
    tools.tool(capability="read", read_only=True, destructive=False, idempotent=True, open_world=False)(noop)
    return tools.build(instructions="bench"), deps.store.path


def build_bare() -> FastMCP:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteFieldDefinitionWarning)
        server = FastMCP("bare")
    server.tool()(noop)
    return server


async def timed_calls(session: ClientSession, n: int) -> list[int]:
    samples = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        result = await session.call_tool("noop", {"x": i})
        samples.append(time.perf_counter_ns() - t0)
        if result.isError:
            raise RuntimeError(f"noop failed: {result.content}")
    return samples


async def bench(home: Path) -> None:
    guarded, db_path = build_guarded(home)
    bare = build_bare()
    logging.getLogger("mcp").setLevel(logging.WARNING)  # the SDK logs every request at INFO; same for both
    times: dict[str, list[int]] = {"guarded": [], "bare": []}
    with anyio.fail_after(TIME_LIMIT_S):
        async with (
            create_connected_server_and_client_session(guarded._mcp_server) as g,
            create_connected_server_and_client_session(bare._mcp_server) as b,
        ):
            sessions = {"guarded": g, "bare": b}
            for session in sessions.values():
                await timed_calls(session, WARMUP)
            for r in range(ROUNDS):
                order = ["guarded", "bare"] if r % 2 == 0 else ["bare", "guarded"]
                for name in order:
                    times[name].extend(await timed_calls(sessions[name], CALLS))
    means, medians = {}, {}
    print(f"{ROUNDS} interleaved rounds x {CALLS} calls each, after {WARMUP} warm-up calls per server")
    for name, samples in times.items():
        us = [s / 1000 for s in samples]
        means[name], medians[name] = statistics.fmean(us), statistics.median(us)
        print(f"{name:>8}: mean {means[name]:8.1f} us   median {medians[name]:8.1f} us   (n={len(us)})")
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT COUNT(*) FROM journal WHERE tool = 'noop'").fetchone()[0]
    expected = WARMUP + ROUNDS * CALLS
    print(f"journal rows for guarded noop: {rows} (calls made: {expected})")
    print(f"median ratio guarded/bare: {medians['guarded'] / medians['bare']:.2f}")
    print(f"ratio guarded/bare: {means['guarded'] / means['bare']:.2f} (target <= 1.5)")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        os.environ["TRADING_MCP_HOME"] = tmp
        os.environ.pop("TRADING_MCP_CONFIG", None)
        anyio.run(bench, Path(tmp))


if __name__ == "__main__":
    main()

"""A 1 MB string argument: time to its refusal, and what it costs another session meanwhile.

jesse-mcp is built in-process (no Jesse workers) with two in-memory MCP sessions on one server. Measures: the
median time until a 1 MB `strategy` argument of get_policy is refused (target < 100 ms, transport included), and
the median latency of get_policy on the second session while the first keeps sending 1 MB arguments, as a ratio to
get_policy's latency with no load, measured in the same run (target: close to 1).

Run: uv run python bench/bench_edge.py
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

import anyio
from mcp.client.session import ClientSession
from mcp.shared.memory import create_connected_server_and_client_session as connect

from jesse_mcp.server import build_server
from shared.server.common import make_deps

BIG = "x" * 1_048_576
REFUSALS, CALLS = 20, 60


async def policy_latencies(session: ClientSession, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        result = await session.call_tool("get_policy", {})
        out.append((time.perf_counter() - t0) * 1000)
        assert not result.isError
    return out


async def refusal_times(session: ClientSession, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        result = await session.call_tool("get_policy", {"strategy": BIG})
        out.append((time.perf_counter() - t0) * 1000)
        assert result.isError and "1,048,576 characters" in result.content[0].text
    return out


async def main() -> None:
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        deps = make_deps("jesse-mcp", Path(tmp))
        server = build_server(deps, warmup=())
        async with connect(server) as loud, connect(server) as quiet:
            await policy_latencies(quiet, 10)  # warm-up
            await refusal_times(loud, 3)
            baseline = await policy_latencies(quiet, CALLS)
            alone = await refusal_times(loud, REFUSALS)
            loaded: list[float] = []
            during: list[float] = []

            async def load() -> None:
                during.extend(await refusal_times(loud, REFUSALS * 3))

            async with anyio.create_task_group() as tg:
                tg.start_soon(load)
                loaded = await policy_latencies(quiet, CALLS)
        deps.store.close()
    base, load_med = statistics.median(baseline), statistics.median(loaded)
    print(f"1 MB argument refused: median {statistics.median(alone):.1f} ms, max {max(alone):.1f} ms (target < 100)")
    print(f"  ... while get_policy runs on another session: median {statistics.median(during):.1f} ms")
    print(f"get_policy, no load: median {base:.2f} ms; during 1 MB refusals: median {load_med:.2f} ms")
    print(f"ratio loaded/unloaded get_policy latency: {load_med / base:.2f}x")


if __name__ == "__main__":
    anyio.run(main)

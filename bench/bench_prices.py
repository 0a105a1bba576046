"""asset-price-mcp: batched, concurrent prices, and the cost of a cached price.

1. `get_prices` for 50 symbols through an in-memory MCP session, against a local server on 127.0.0.1 that speaks
   the providers' protocols and adds 50 ms to every request. Baseline, same run: one request to that server.
   Target: wall time <= 3x one request's latency (batches and concurrency, not 50 round trips).
2. A cached `get_price` (answered from the quote cache) through an in-memory MCP session, against a bare FastMCP
   no-op tool call in the same run, rounds interleaved. Target: ratio <= 1.5.

Run: uv run python bench/bench_prices.py
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import anyio
import httpx
from mcp.server.fastmcp import FastMCP
from mcp.shared.memory import create_connected_server_and_client_session as connect
from pydantic_settings.sources.utils import IncompleteFieldDefinitionWarning

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from asset_price_mcp.server import build_server
from shared.server.common import make_deps
from tests.fake_price_server import FakeMarket

DELAY_S = 0.05
SYMBOLS = [f"C{i:02d}-USDT" for i in range(50)]
ROUNDS, CALLS = 5, 300
TIME_LIMIT_S = 300


def noop(x: int = 0) -> int:
    """No-op."""
    return x


def bare_server() -> FastMCP:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteFieldDefinitionWarning)
        server = FastMCP("bare")
    server.tool()(noop)
    return server


async def one_request_latency(url: str) -> float:
    async with httpx.AsyncClient() as client:
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            await client.get(f"{url}/products/C00-USDT/ticker")
            samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


async def main() -> None:
    logging.disable(logging.CRITICAL)
    table = {s: f"{100 + i}.5" for i, s in enumerate(SYMBOLS)}
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeMarket(
            {"binance": table, "kraken": table, "coinbase": table}, delay_s=DELAY_S, lifetime_s=TIME_LIMIT_S
        ) as market,
    ):
        os.environ.update(market.env())
        deps = make_deps("bench", Path(tmp))
        server = build_server(deps)
        with anyio.fail_after(TIME_LIMIT_S):
            single = await one_request_latency(market.url)
            walls = []
            async with connect(server) as client:
                for _ in range(5):
                    before = len(market.requests)
                    t0 = time.perf_counter()
                    result = await client.call_tool("get_prices", {"symbols": SYMBOLS})
                    walls.append(time.perf_counter() - t0)
                    assert not result.isError and result.structuredContent["failed"] == 0, result
                    requests = len(market.requests) - before
                    deps.extras.quotes._cache.clear()  # every round asks the providers again
            wall = statistics.median(walls)
            print(f"one request to the local server (+{DELAY_S * 1000:.0f} ms): {single * 1000:.1f} ms")
            print(f"get_prices, 50 symbols, cold cache: median {wall * 1000:.1f} ms over 5 ({requests} HTTP requests)")
            print(f"  ratio {wall / single:.2f} (target <= 3)")

            bare, guarded = [], []
            async with connect(server) as client, connect(bare_server()) as bare_client:
                await client.call_tool("get_price", {"symbol": "C00-USDT"})  # fill the cache
                deps.extras.quotes.quote_ttl_s = 3600  # keep it warm for the whole measurement
                for r in range(ROUNDS):
                    for name in ("bare", "priced") if r % 2 == 0 else ("priced", "bare"):
                        t0 = time.perf_counter()
                        for i in range(CALLS):
                            if name == "bare":
                                await bare_client.call_tool("noop", {"x": i})
                            else:
                                await client.call_tool("get_price", {"symbol": "C00-USDT"})
                        per_call = (time.perf_counter() - t0) / CALLS
                        (bare if name == "bare" else guarded).append(per_call)
            b, g = statistics.median(bare), statistics.median(guarded)
            print(f"cached get_price: {g * 1e6:.0f} us per call | bare no-op tool: {b * 1e6:.0f} us per call")
            print(f"  ratio {g / b:.2f} (target <= 1.5)")
        deps.store.close()


if __name__ == "__main__":
    anyio.run(main)

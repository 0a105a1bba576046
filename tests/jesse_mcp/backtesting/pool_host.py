"""A stand-in for the jesse-mcp server in the worker-lifetime tests: builds WorkerPools as the server does (attach),
keeps one worker busy with a task that does not end, one idle, and one still warming up, prints the pids of every
process the pools run (workers and zygotes) as one JSON line on stdout, then waits to be killed. The start method
comes from JESSE_MCP_WORKER_START. Run as `python -m tests.jesse_mcp.backtesting.pool_host WORKDIR`."""

from __future__ import annotations

import functools
import json
import sys

import anyio

from jesse_mcp.backtesting.workers import WorkerPool
from tests.timeouts import hang_guard


def _states(*pools: WorkerPool) -> list[str]:
    return sorted(w["state"] for pool in pools for w in pool.status())


async def main(workdir: str) -> None:
    pool = WorkerPool(2, warmup=(), workdir=workdir)
    slow = WorkerPool(1, warmup=("tests.jesse_mcp.backtesting.slow_warmup",), workdir=workdir)
    pool.attach()
    slow.attach()
    busy = functools.partial(
        pool.run, "tests.jesse_mcp.backtesting.worker_tasks", "sleep", {"seconds": 3600}, timeout_s=3600
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(busy)
        with anyio.fail_after(hang_guard(120)):
            while _states(pool, slow) != ["busy", "ready", "starting"]:
                await anyio.sleep(0.02)
        print(json.dumps([pid for p in (pool, slow) for pid in p.process_ids()]), flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])

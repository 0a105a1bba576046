"""The overhead of running backtests on Ray actors instead of local worker processes.

The same N backtests (trend_following, 1h, 60 days each out of 90 synthetic days, each its own range) run through
BacktestService.execute_all on a local WorkerPool of K workers and on a RayPool of K actors on a one-node Ray cluster
this script starts on 127.0.0.1 (K CPUs). Both pools are warmed (Jesse imported, one untimed run) before timing; the
Ray side puts each range's candles once (first round) and reuses them. Printed: wall time of each side (median of
--repeat rounds) and the ratio Ray / local, measured in this run; target <= 1.3 (the object store and the client
round trips should cost little next to a backtest). Both sides must return the same metrics.

Run: uv run python bench/bench_ray.py [--runs 6] [--actors 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jesse_mcp.backtesting.plans import PlanRequest
from jesse_mcp.backtesting.ray_connect import disconnect
from jesse_mcp.backtesting.ray_pool import RayPool
from jesse_mcp.backtesting.service import BacktestService
from jesse_mcp.backtesting.workers import WorkerPool
from jesse_mcp.candles.ops import generate_synthetic
from shared.market.candles import CandleStore
from shared.server.common import make_deps
from tests.jesse_mcp.backtesting.ray_cluster import LocalRayCluster

START = 1_704_067_200_000
DAY = 86_400_000
TARGET = 1.3


async def _ready(pool, timeout: float = 600) -> None:
    with anyio.fail_after(timeout):
        while len(pool.status()) < pool.size or any(s["state"] != "ready" for s in pool.status()):
            if any(s["state"] == "failed" for s in pool.status()):
                raise RuntimeError(f"a worker failed: {pool.status()}")
            await anyio.sleep(0.1)


async def _specs(service: BacktestService, runs: int) -> list[dict]:
    specs = []
    for i in range(runs):
        end = datetime(2024, 3, 10 + i, tzinfo=UTC)
        plan = await service.plan("trend_following", PlanRequest(end=end, days=60, risk_profile="moderate"))
        specs.append(plan.spec)
    return specs


async def _time(service: BacktestService, specs: list[dict], repeat: int) -> tuple[float, list[dict]]:
    await service.execute(specs[0])  # warm: Jesse's first run in a worker compiles and caches
    times, outs = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        outs = await service.execute_all(specs)
        times.append(time.perf_counter() - started)
    return statistics.median(times), outs


async def main(runs: int, actors: int, repeat: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    generate_synthetic(CandleStore(home / "candles"), "BTC-USDT", START, START + 90 * DAY, seed=7)
    deps = make_deps("jesse-mcp", home)
    cluster = LocalRayCluster(num_cpus=actors).start()
    local = WorkerPool(actors, workdir=home / "jesse")
    remote = RayPool(cluster.address, actors)
    local.attach()
    remote.attach()
    try:
        await _ready(local)
        await _ready(remote)
        local_svc = BacktestService(home, deps.config.load, deps.store, local)
        remote_svc = BacktestService(home, deps.config.load, deps.store, remote)
        specs = await _specs(local_svc, runs)
        local_s, local_outs = await _time(local_svc, specs, repeat)
        ray_s, ray_outs = await _time(remote_svc, specs, repeat)
    finally:
        remote.detach()
        disconnect()  # before the cluster goes, so the client does not try to reconnect
        local.detach()
        cluster.stop()
        deps.store.close()
    same = [a["metrics"] for a in local_outs] == [b["metrics"] for b in ray_outs]
    ratio = ray_s / local_s
    print(f"{runs} backtests on {actors} local workers: {local_s:.2f} s (median of {repeat})")
    print(f"{runs} backtests on {actors} Ray actors:    {ray_s:.2f} s (median of {repeat})")
    print(f"ratio Ray / local: {ratio:.2f} (target <= {TARGET}); same metrics: {same}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()
    anyio.run(main, a.runs, a.actors, a.repeat)

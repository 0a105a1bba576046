"""The worker pool's start and memory, zygote (fork) against the old spawned workers, measured in the same run.

For each start method (JESSE_MCP_WORKER_START=spawn, the baseline, then fork), `--runs` times: start
`jesse-mcp` over stdio with a fresh TRADING_MCP_HOME holding 40 synthetic days, and measure
(a) seconds from process start to the first `backtest` result (10 days, trend_following 1h; the server's default
    three workers), target <= 8 s on 2 cores (it was about 20 s with spawned workers);
(b) once all three workers are ready: the pool's memory, all its processes (fork: the zygote and its three workers;
    spawn: the three workers), as RSS and as PSS (/proc/<pid>/smaps_rollup: shared copy-on-write pages divided among
    the processes sharing them, the honest figure for a fork). Target: the pool's PSS <= 1.5x one spawned worker's.
Ratios are printed against the spawn run of the same invocation.

Run: uv run python bench/bench_pool.py [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_backtest import backtest_args, busy_cpu_s, call

from jesse_mcp.candles.ops import generate_synthetic
from shared.market.candles import CandleStore
from trading_cli.client import open_session

DAY_MS = 86_400_000
START_MS = 1_704_067_200_000
WORKERS = 3
LIMIT_S = 300


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(root: int) -> list[int]:
    parents = {int(p): _ppid(int(p)) for p in os.listdir("/proc") if p.isdigit()}
    out, frontier = [], [root]
    while frontier:
        kids = [pid for pid, parent in parents.items() if parent in frontier]
        out += kids
        frontier = kids
    return out


def pool_processes() -> list[int]:
    """The zygote and workers below this process (by their command line), not the server or a resource tracker."""
    found = []
    for pid in descendants(os.getpid()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "jesse_mcp.backtesting.zygote" in cmd or ("spawn_main" in cmd and "resource_tracker" not in cmd):
            found.append(pid)
    return found


def memory_kb(pid: int) -> tuple[int, int]:
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    rss = int(re.search(r"^Rss:\s+(\d+)", text, re.M).group(1))
    pss = int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))
    return rss, pss


async def one_run(method: str) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-pool-{method}-") as tmp:
        home = Path(tmp)
        generate_synthetic(CandleStore(home / "candles"), "BTC-USDT", START_MS, START_MS + 40 * DAY_MS, seed=7)
        env = {
            "TRADING_MCP_HOME": str(home),
            "TRADING_MCP_CONFIG": str(home / "config.json"),
            "TRADING_MCP_LOG_LEVEL": "INFO",
            "JESSE_CACHE_DIR": str(home / "jesse-cache"),
            "JESSE_MCP_WORKER_START": method,
        }
        errlog = home / "server-stderr.log"
        with open(errlog, "w") as err, anyio.fail_after(LIMIT_S):
            t0 = time.perf_counter()
            async with open_session("jesse-mcp", env, interactive=False, errlog=err) as session:
                await call(session, "backtest", backtest_args("moderate", days=10))
                first = time.perf_counter() - t0
                while len(re.findall(r"jesse worker \d+ ready after", errlog.read_text())) < WORKERS:
                    await anyio.sleep(0.2)
                all_ready = time.perf_counter() - t0
                mem = {pid: memory_kb(pid) for pid in pool_processes()}
    return {"first_s": first, "all_ready_s": all_ready, "mem": mem}


def summary(method: str, runs: list[dict]) -> dict:
    first = statistics.median(r["first_s"] for r in runs)
    ready = statistics.median(r["all_ready_s"] for r in runs)
    last = runs[-1]["mem"]
    rss, pss = sum(v[0] for v in last.values()) / 1024, sum(v[1] for v in last.values()) / 1024
    per = ", ".join(f"{r / 1024:.0f}/{p / 1024:.0f}" for r, p in last.values())
    print(
        f"{method:<6} first backtest {first:.2f} s, all {WORKERS} workers ready {ready:.2f} s (medians of "
        f"{len(runs)}); pool of {len(last)} processes: RSS {rss:.0f} MB, PSS {pss:.0f} MB (RSS/PSS each: {per} MB)"
    )
    return {"first": first, "rss": rss, "pss": pss, "one_pss": min(v[1] for v in last.values()) / 1024, "n": last}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    busy, wall = busy_cpu_s(), time.perf_counter()
    results = {}
    for method in ("spawn", "fork"):
        runs = [anyio.run(one_run, method) for _ in range(args.runs)]
        results[method] = summary(method, runs)
    wall = time.perf_counter() - wall
    spawn, fork = results["spawn"], results["fork"]
    print(f"machine: {os.cpu_count()} CPUs, {(busy_cpu_s() - busy) / wall:.2f} cores busy on average (this included)")
    print(
        f"(a) start -> first backtest: fork {fork['first']:.2f} s vs spawn {spawn['first']:.2f} s, ratio "
        f"{fork['first'] / spawn['first']:.2f} (target <= 8 s)"
    )
    one = spawn["one_pss"]
    print(
        f"(b) pool PSS: fork {fork['pss']:.0f} MB = {fork['pss'] / one:.2f}x one spawned worker ({one:.0f} MB), "
        f"spawn {spawn['pss']:.0f} MB = {spawn['pss'] / one:.2f}x (target <= 1.5x, PSS); RSS fork "
        f"{fork['rss']:.0f} MB vs spawn {spawn['rss']:.0f} MB, ratio {fork['rss'] / spawn['rss']:.2f}"
    )


if __name__ == "__main__":
    main()

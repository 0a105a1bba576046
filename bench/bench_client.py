"""trading-mcp, the client: wall time of whole commands, and the share of it that is process start and imports.

1. `trading-mcp ask "price of BTC"` against a warm local price source: Coinbase and Kraken (the providers that list
   BTC-USD) pointed at a fake market on 127.0.0.1 (tests/fake_price_server.py) through <NAME>_BASE_URL, in a
   temporary TRADING_MCP_HOME whose configuration turns the other providers off. One run warms bytecode and the page
   cache, then RUNS runs of the installed console script (no `uv run`); the median is the total. Its parts, each
   measured alone (median of RUNS), in the order they happen:
     - client interpreter start            python -c pass
     - client imports                      python -c "import trading_cli.__main__, trading_cli.ask.command" - start
     - server interpreter start            python -c pass (the ask command spawns asset-price-mcp over stdio)
     - server imports                      python -c "import asset_price_mcp.server" - start
     - server build and MCP initialize     spawn to an answered initialize, over stdio - the two above
     - the rest                            total - all of the above: the call (two HTTP requests), the answer, the
                                           table, and ending the server.
   The server's quote cache lives in its process, so every `ask` asks the market again. The largest top-level
   imports of each side (python -X importtime, cumulative) are listed too. `uv run trading-mcp ...` costs more
   (uv checks the environment first); that is shown on one line of its own.
2. `trading-mcp demo` wall time: DEMO_RUNS runs, each printed, and the median. Skip with --skip-demo.

Nothing leaves 127.0.0.1. Every subprocess has a timeout, and none starts after TIME_LIMIT_S.

Run: uv run python bench/bench_client.py [--skip-demo]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from shared.config.store import ConfigStore
from tests.fake_price_server import FakeMarket

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7
DEMO_RUNS = 3
STEP_TIMEOUT_S = 120
DEMO_TIMEOUT_S = 300
TIME_LIMIT_S = 1200
CLI = str(Path(sys.executable).parent / "trading-mcp")
ASK = [CLI, "ask", "price of BTC"]
CLIENT_IMPORTS = "import trading_cli.__main__, trading_cli.ask.command"
SERVER_IMPORTS = "import asset_price_mcp.server"
PROVIDERS = ("coinbase", "kraken")
DEADLINE = time.monotonic() + TIME_LIMIT_S


def run(cmd: list[str], env: dict[str, str], timeout: float = STEP_TIMEOUT_S) -> tuple[float, str]:
    """Wall seconds of one command, and its stdout; a failure stops the benchmark with the command's output."""
    timeout = min(timeout, DEADLINE - time.monotonic())
    if timeout <= 0:
        raise SystemExit(f"time limit of {TIME_LIMIT_S} s reached before {' '.join(cmd)}")
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall, done.stdout


def median_of(cmd: list[str], env: dict[str, str], runs: int = RUNS) -> float:
    return statistics.median(run(cmd, env)[0] for _ in range(runs))


async def initialize_s(env: dict[str, str]) -> float:
    """Spawn asset-price-mcp and wait for its answer to initialize (what `ask` waits for before calling)."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "asset_price_mcp"], env=env)
    with open(os.devnull, "w") as errlog, anyio.fail_after(STEP_TIMEOUT_S):
        t0 = time.perf_counter()
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return time.perf_counter() - t0


def top_imports(code: str, env: dict[str, str], n: int = 7) -> str:
    """The n costliest packages (cumulative ms, first import) under `python -X importtime -c code`, the project's
    own packages left out; nested packages are counted in their parents too, so the figures overlap."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    own = {"trading_cli", "asset_price_mcp", "shared", "jesse_mcp", "discovery_mcp", "encodings", "site"}
    top: dict[str, int] = {}
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        name = parts[-1].strip()
        if len(parts) == 3 and parts[1].strip().isdigit() and "." not in name and name not in own:
            top[name] = max(top.get(name, 0), int(parts[1]))
    ranked = sorted(top.items(), key=lambda kv: kv[1], reverse=True)[:n]
    return ", ".join(f"{name} {us / 1000:.0f}" for name, us in ranked)


def configure(home: Path) -> None:
    def local_providers(data: dict) -> dict:
        providers = {n: {**p, "enabled": n in PROVIDERS} for n, p in data["price_config"]["providers"].items()}
        return {**data, "price_config": {**data["price_config"], "providers": providers}}

    ConfigStore(home / "config.json").update(local_providers)


def ask_bench(home: Path) -> None:
    prices = {"coinbase": {"BTC-USD": "60000.50"}, "kraken": {"BTC-USD": "60001.00"}}
    with FakeMarket(prices, lifetime_s=TIME_LIMIT_S) as market:
        env = {
            **os.environ,
            **market.env(),
            "TRADING_MCP_HOME": str(home),
            "TRADING_MCP_CONFIG": str(home / "config.json"),
            "TRADING_MCP_LOG_LEVEL": "WARNING",
        }
        configure(home)
        _, out = run(ASK, env)  # warm-up, and proof that the answer came from the local market
        before = len(market.requests)
        if "60,00" not in out:
            raise SystemExit(f"unexpected answer from ask:\n{out}")
        walls = [run(ASK, env)[0] for _ in range(RUNS)]
        asked = (len(market.requests) - before) / RUNS
        start = median_of([sys.executable, "-c", "pass"], env)
        client = median_of([sys.executable, "-c", CLIENT_IMPORTS], env) - start
        server = median_of([sys.executable, "-c", SERVER_IMPORTS], env) - start
        ready = statistics.median(anyio.run(initialize_s, env) for _ in range(RUNS))
        uv = shutil.which("uv")
        via_uv = None
        if uv:
            via_uv = median_of([uv, "run", "--no-sync", "--project", str(ROOT), "trading-mcp", *ASK[1:]], env, 3)
        client_top = top_imports(CLIENT_IMPORTS, env)
        server_top = top_imports(SERVER_IMPORTS, env)
    total = statistics.median(walls)
    parts = [
        ("client interpreter start", start),
        ("client imports (trading_cli, mcp client)", client),
        ("server interpreter start", start),
        ("server imports (asset_price_mcp.server)", server),
        ("server build and MCP initialize", ready - start - server),
        ("the rest: call, 2 HTTP requests, answer, shutdown", total - start - client - ready),
    ]
    print(f'1. trading-mcp ask "price of BTC", local market on 127.0.0.1 ({", ".join(PROVIDERS)}), {RUNS} runs')
    print(
        f"   wall time: median {total:.3f} s (min {min(walls):.3f}, max {max(walls):.3f}); "
        f"{asked:.1f} market requests per run"
    )
    print(f"   {'part':<52} {'seconds':>8} {'share':>7}")
    for name, seconds in parts:
        print(f"   {name:<52} {seconds:>8.3f} {seconds / total:>6.0%}")
    startup = 2 * start + client + server
    print(f"   {'process start + imports (both processes)':<52} {startup:>8.3f} {startup / total:>6.0%}")
    if via_uv is not None:
        print(
            f"   uv run --no-sync trading-mcp ask ...: median {via_uv:.3f} s (3 runs; uv adds {via_uv - total:.3f} s)"
        )
    print(f"   costliest client imports (ms, overlapping): {client_top}")
    print(f"   costliest server imports (ms, overlapping): {server_top}")


def demo_bench(runs: int) -> None:
    print(f"\n2. trading-mcp demo (offline: synthetic candles, sample feeds, replay prices), {runs} runs")
    walls = []
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
            env = {**os.environ, "TRADING_MCP_HOME": tmp, "TRADING_MCP_CONFIG": f"{tmp}/config.json"}
            wall, out = run([CLI, "demo", "--home", f"{tmp}/home"], env, DEMO_TIMEOUT_S)
        if "UNEXPECTED" in out:
            raise SystemExit(f"the demo reported surprises:\n{out[-3000:]}")
        walls.append(wall)
        print(f"   run {i + 1}: {wall:.1f} s")
    print(f"   median {statistics.median(walls):.1f} s (target: under 60 s on 2 cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--demo-runs", type=int, default=DEMO_RUNS)
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} (other work on the machine skews timings)")
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        ask_bench(Path(tmp))
    if not args.skip_demo:
        demo_bench(args.demo_runs)


if __name__ == "__main__":
    main()

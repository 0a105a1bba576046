"""Backtest figures of issue 3 on a year of 1-minute candles (525,600 rows), trend_following on the 1h route.

1. One `backtest` tool call through a real stdio MCP session to jesse-mcp (a child process, `python -m jesse_mcp`,
   with a fresh TRADING_MCP_HOME; the tool runs Jesse's fast mode with normal mode's daily metrics rebuilt) versus
   `jesse.research.backtest` in its normal mode, called in this process on the same candles, strategy and config
   (rebuilt from the tool result's `request` and `risk_settings`): ratio of medians, target <= 0.5 with a warm
   worker. Both sides get one untimed run first; all of Jesse's metrics of both must be equal.
2. `compare_risk_profiles` (three runs in parallel in the pool) versus the three profiles as three `backtest`
   calls one after another in the same session: ratio of medians, target <= 0.65.
3. Loading the stored year (`CandleStore.load` plus the private copy the engine makes): target <= 0.3 s
   (bench_candles.py measures the CSV import).

`--modes` measures instead one engine run (jesse_mcp.backtesting.engine.run_backtest, in this process, store load
included) in Jesse's normal mode versus fast mode with the rebuilt daily equity: ratio of medians, results equal.
`--batch` measures instead `backtest_batch` of 12 runs (the 4 built-ins x 3 profiles, in parallel in the pool)
versus the same 12 as `backtest` calls one after another in the same session: ratio of medians, rows equal.

Data: a synthetic year (exchange 'synthetic', seed 7) by default; `--real` imports the team's 90-day Binance
BTCUSDT 1-minute file instead (../shared/data/candles) and runs the same measurements on those 90 days. No network;
the server is reached over stdio only; every wait has a time limit; the temporary home and the server end with it.

Run: uv run python bench/bench_backtest.py [--repeat 3] [--real] [--modes | --batch]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import signal
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from mcp import ClientSession

from jesse_mcp.candles.ops import generate_synthetic, import_csv
from shared.market.candles import MINUTE_MS, CandleStore
from shared.market.exchanges import jesse_exchange
from shared.policy.readable import ReadableFolders
from trading_cli.client import error_text, open_session, result_payload

YEAR_START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DAY_MS = 86_400_000
YEAR_DAYS = 365
REAL = Path(__file__).resolve().parents[2] / "shared/data/candles/binance_spot_BTCUSDT_1m_20250520_20250818.csv.gz"
STRATEGY, TIMEFRAME, PROFILE = "trend_following", "1h", "moderate"
PROFILES = ("conservative", "moderate", "aggressive")
BUILTINS = ("trend_following", "mean_reversion", "momentum", "breakout")
BATCH_KEYS = ("net_profit_pct", "sharpe", "sortino", "max_drawdown_pct", "trades")
WORKERS = 3  # the default backtest_config.workers
START_LIMIT_S = 120  # server start and the one Jesse import the workers are forked from (~8 s on 2 cores)
CALL_LIMIT_S = 900  # one tool call or one direct run on a year
LOAD_RUNS = 5


@contextlib.contextmanager
def alarm_after(seconds: int) -> Iterator[None]:
    """A time limit on synchronous work in this process (the direct Jesse run), where anyio cannot cancel."""

    def expire(*_: Any) -> None:
        raise TimeoutError(f"direct run took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (Linux /proc/stat), to spot other work."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds of this process and its ended children (the server, and through it its workers)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def prepare_data(home: Path, real: bool) -> tuple[str, str, str]:
    """Fill the store; returns (exchange, symbol, description of the data)."""
    store = CandleStore(home / "candles")
    if real:
        report = import_csv(store, ReadableFolders(home, (str(REAL.parent),)), str(REAL), "binance", "BTC-USDT")
        m = report.market
        return "binance", "BTC-USDT", f"real Binance BTCUSDT 1m, {m.rows:,} rows ({m.first} .. {m.last}, ~90 days)"
    report = generate_synthetic(store, "BTC-USDT", YEAR_START_MS, YEAR_START_MS + YEAR_DAYS * DAY_MS, seed=7)
    m = report.market
    return "synthetic", "BTC-USDT", f"synthetic year, {m.rows:,} rows ({m.first} .. {m.last}, seed 7)"


def measure_store_load(home: Path, exchange: str, symbol: str) -> tuple[float, float, int]:
    """Median and max seconds to load the whole stored market into memory (memory map + private copy)."""
    store = CandleStore(home / "candles")
    times, rows = [], 0
    for _ in range(LOAD_RUNS):
        t = time.perf_counter()
        rows = len(np.array(store.load(exchange, symbol)))
        times.append(time.perf_counter() - t)
    return statistics.median(times), max(times), rows


# --- the tool side ------------------------------------------------------------------------------------------------
async def call(session: ClientSession, tool: str, args: dict[str, Any]) -> tuple[float, Any]:
    """Seconds from request to answer, and the structured result; a tool error stops the benchmark."""
    with anyio.fail_after(CALL_LIMIT_S):
        t = time.perf_counter()
        result = await session.call_tool(tool, args)
        elapsed = time.perf_counter() - t
    if result.isError:
        raise RuntimeError(f"{tool} failed: {error_text(result)}")
    return elapsed, result_payload(result)


def backtest_args(profile: str, **extra: Any) -> dict[str, Any]:
    return {"strategy": STRATEGY, "timeframe": TIMEFRAME, "risk_profile": profile, **extra}


async def wait_for_workers(session: ClientSession, errlog: Path) -> float:
    """Seconds until all workers have imported Jesse (their log lines) and a cheap backtest answers."""
    t = time.perf_counter()
    with anyio.fail_after(START_LIMIT_S):
        await call(session, "list_strategies", {})
        while len(re.findall(r"jesse worker \d+ ready after", log := errlog.read_text())) < WORKERS:
            if "jesse worker failed to start" in log:
                raise RuntimeError(f"a Jesse worker failed to start; the server's log:\n{log}")
            await anyio.sleep(0.2)
    await call(session, "backtest", backtest_args(PROFILE, days=10))
    return time.perf_counter() - t


async def tool_side(home: Path, repeat: int) -> dict[str, Any]:
    env = {
        "TRADING_MCP_HOME": str(home),
        "TRADING_MCP_CONFIG": str(home / "config.json"),
        "TRADING_MCP_LOG_LEVEL": "INFO",  # the pool logs each worker's readiness at INFO
        "JESSE_CACHE_DIR": str(home / "jesse-cache"),
    }
    errlog = home / "server-stderr.log"
    out: dict[str, Any] = {"tool": [], "worker": [], "compare": [], "sequential": []}
    # the session's context managers must open and close in one task: one overall limit around them, and one
    # limit per call inside
    with open(errlog, "w") as err, anyio.fail_after(START_LIMIT_S + (6 * repeat + 6) * CALL_LIMIT_S):
        async with open_session("jesse-mcp", env, interactive=False, errlog=err) as session:
            out["ready_s"] = await wait_for_workers(session, errlog)
            print(f"workers ready after {out['ready_s']:.1f} s; warming up", flush=True)
            # warm: one compare gives each of the three workers one full run; then one backtest (untimed)
            await call(session, "compare_risk_profiles", {"strategy": STRATEGY, "timeframe": TIMEFRAME})
            await call(session, "backtest", backtest_args(PROFILE))
            for _ in range(repeat):
                elapsed, result = await call(session, "backtest", backtest_args(PROFILE))
                out["tool"].append(elapsed)
                out["worker"].append(result["run"]["duration_s"])
                out["result"] = result
                print(f"  backtest tool call: {elapsed:.2f} s", flush=True)
            for _ in range(repeat):
                elapsed, comparison = await call(
                    session, "compare_risk_profiles", {"strategy": STRATEGY, "timeframe": TIMEFRAME}
                )
                out["compare"].append(elapsed)
                out["compare_runs"] = [r["run"]["duration_s"] for r in comparison["results"]]
                t = time.perf_counter()
                for profile in PROFILES:
                    await call(session, "backtest", backtest_args(profile))
                out["sequential"].append(time.perf_counter() - t)
                print(f"  compare: {elapsed:.2f} s, 3 sequential: {out['sequential'][-1]:.2f} s", flush=True)
    return out


# --- the direct side ----------------------------------------------------------------------------------------------
def direct_run_factory(home: Path, result: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """The same run as the tool's, given to jesse.research.backtest in this process (as
    jesse_mcp.backtesting.engine builds it)."""
    from jesse.research import backtest

    from jesse_mcp.backtesting.strategies.trend_following import TrendFollowing

    req, risk = result["request"], result["risk_settings"]
    warm_minutes = req["warmup_candles"] * 60  # the 1h route
    lev = req["leverage"]
    venue = jesse_exchange(req["exchange"])  # the name the server hands Jesse for this market
    config = {
        "starting_balance": req["starting_balance"],
        "fee": req["fee_rate"],
        "type": "futures",
        "futures_leverage": int(lev) if float(lev).is_integer() else lev,
        "futures_leverage_mode": "cross",
        "exchange": venue,
        "warm_up_candles": req["warmup_candles"],
    }
    symbol, key = req["symbol"], f"{venue}-{req['symbol']}"
    store = CandleStore(home / "candles")

    def run() -> dict[str, Any]:
        rows = np.array(store.load(req["exchange"], symbol, req["start_ms"] - warm_minutes * MINUTE_MS, req["end_ms"]))
        return backtest(  # Jesse's normal mode: the baseline the tool's fast mode must beat and equal
            config,
            [{"exchange": venue, "strategy": TrendFollowing, "symbol": symbol, "timeframe": req["timeframe"]}],
            [],
            {key: {"exchange": venue, "symbol": symbol, "candles": rows[warm_minutes:]}},
            {key: {"exchange": venue, "symbol": symbol, "candles": rows[:warm_minutes]}},
            hyperparameters={**req["hyperparameters"], "_risk": dict(risk)},
            fast_mode=False,
            generate_equity_curve=True,
            generate_logs=False,
        )

    return run


def direct_side(home: Path, result: dict[str, Any], repeat: int) -> tuple[list[float], dict[str, Any]]:
    run = direct_run_factory(home, result)
    with alarm_after(CALL_LIMIT_S):
        metrics = run()["metrics"]  # warm (untimed): imports Jesse here
    times = []
    for _ in range(repeat):
        with alarm_after(CALL_LIMIT_S):
            t = time.perf_counter()
            metrics = run()["metrics"]
            times.append(time.perf_counter() - t)
        print(f"  direct run: {times[-1]:.2f} s", flush=True)
    return times, metrics


# --- normal mode versus fast mode, in this process ----------------------------------------------------------------
def modes_side(home: Path, repeat: int) -> None:
    """Median seconds of one engine run (store load included) in each mode, and whether the results are equal."""
    from jesse_mcp.backtesting import engine
    from jesse_mcp.backtesting.catalog import BUILTIN
    from jesse_mcp.backtesting.plans import PlanRequest, build_plan
    from shared.config.models import TradingConfig

    req = PlanRequest(timeframe=TIMEFRAME, risk_profile=PROFILE)
    plan = build_plan(cfg=TradingConfig(), candles=CandleStore(home / "candles"), strategy=BUILTIN[STRATEGY], req=req)
    out, times = {}, {False: [], True: []}
    for fast in (False, True):  # warm (untimed): imports Jesse, fills its caches
        with alarm_after(CALL_LIMIT_S):
            out[fast] = engine.run_backtest({**plan.spec, "fast_mode": fast})
    for _ in range(repeat):
        for fast in (False, True):
            with alarm_after(CALL_LIMIT_S):
                run = engine.run_backtest({**plan.spec, "fast_mode": fast})
            times[fast].append(run["duration_s"])
        print(f"  normal {times[False][-1]:.2f} s, fast {times[True][-1]:.2f} s", flush=True)
    same = all(out[False][k] == out[True][k] for k in ("metrics", "trades", "equity"))
    normal_s, fast_s = statistics.median(times[False]), statistics.median(times[True])
    print(f"\nsummary ({plan.request.start} .. {plan.request.end}, {TIMEFRAME} route, {STRATEGY}, {PROFILE}):")
    print(
        f"  one run, {len(out[True]['trades'])} trades: normal mode {normal_s:.2f} s | fast mode + rebuilt daily "
        f"equity {fast_s:.2f} s (ran fast: {out[True]['fast_mode']}) | ratio {fast_s / normal_s:.2f}, speed-up "
        f"{normal_s / fast_s:.1f}x (medians of {repeat}); metrics, trades and equity {'equal' if same else 'DIFFER'}"
    )


# --- backtest_batch versus the same runs one after another -------------------------------------------------------
def batch_rows(rows: list[dict[str, Any]]) -> dict[tuple[str, str], tuple]:
    return {(r["strategy"], r["risk_profile"]): tuple(r[k] for k in BATCH_KEYS) for r in rows}


async def batch_side(home: Path, repeat: int) -> None:
    """backtest_batch of the 4 built-ins x 3 profiles versus 12 sequential backtest calls, one session."""
    env = {"TRADING_MCP_HOME": str(home), "TRADING_MCP_CONFIG": str(home / "config.json")}
    env |= {"TRADING_MCP_LOG_LEVEL": "INFO", "JESSE_CACHE_DIR": str(home / "jesse-cache")}
    args = {"strategies": list(BUILTINS), "risk_profiles": list(PROFILES), "timeframes": [TIMEFRAME]}
    errlog, times = home / "server-stderr.log", {"batch": [], "sequential": []}
    with open(errlog, "w") as err, anyio.fail_after(START_LIMIT_S + (26 * repeat + 13) * CALL_LIMIT_S):
        async with open_session("jesse-mcp", env, interactive=False, errlog=err) as session:
            print(f"workers ready after {await wait_for_workers(session, errlog):.1f} s; warming up", flush=True)
            await call(session, "backtest_batch", args)  # warm (untimed): every worker runs each strategy
            for _ in range(repeat):
                elapsed, report = await call(session, "backtest_batch", args)
                times["batch"].append(elapsed)
                t, sequential = time.perf_counter(), []
                for strategy in BUILTINS:
                    for profile in PROFILES:
                        result = (await call(session, "backtest", {**backtest_args(profile), "strategy": strategy}))[1]
                        perf = result["performance"]
                        sequential.append({"strategy": strategy, "risk_profile": profile, **perf})
                times["sequential"].append(time.perf_counter() - t)
                same = batch_rows(report["rows"]) == batch_rows(sequential)
                print(
                    f"  backtest_batch ({report['succeeded']}/{report['runs']} ran): {elapsed:.2f} s, 12 sequential: "
                    f"{times['sequential'][-1]:.2f} s; rows {'equal' if same else 'DIFFER'}",
                    flush=True,
                )
    batch_s, seq_s = statistics.median(times["batch"]), statistics.median(times["sequential"])
    print(
        f"\nsummary (a year, {TIMEFRAME} route, {WORKERS} workers, {os.cpu_count()} CPUs): backtest_batch of 12: "
        f"{batch_s:.2f} s | 12 sequential backtest calls: {seq_s:.2f} s | ratio {batch_s / seq_s:.2f} "
        f"(medians of {repeat})"
    )


# --- report -------------------------------------------------------------------------------------------------------
def report(args: argparse.Namespace, data: str, tool: dict[str, Any], direct: list[float], metrics: dict) -> None:
    tool_metrics = tool["result"]["jesse_metrics"]
    req = tool["result"]["request"]
    print(f"data: {data}; traded {req['start']} .. {req['end']} after {req['warmup_candles']} warm-up candles")
    others, wall = tool["others_cpu"]
    print(
        f"machine: {os.cpu_count()} CPUs; other processes used {max(others, 0.0):.0f} CPU-s during the "
        f"{wall:.0f} s of measurements ({max(others, 0.0) / wall:.2f} cores on average; anything well above 0 skews "
        "the figures, the parallel ones most)"
    )
    clean = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in metrics.items()}
    differ = sorted(k for k in clean if tool_metrics.get(k) != clean[k])
    print(
        f"same run: tool (run.fast_mode {tool['result']['run']['fast_mode']}) vs direct normal mode, "
        f"{len(clean)} Jesse metrics -> {'all equal' if not differ else 'DIFFER: ' + ', '.join(differ)}"
    )
    fmt = ", ".join
    print(f"backtest tool calls (s): {fmt(f'{x:.2f}' for x in tool['tool'])}")
    print(f"  of which inside the worker (run.duration_s): {fmt(f'{x:.2f}' for x in tool['worker'])}")
    print(f"direct jesse.research.backtest incl. store load + copy (s): {fmt(f'{x:.2f}' for x in direct)}")
    print(f"compare_risk_profiles (s): {fmt(f'{x:.2f}' for x in tool['compare'])}")
    print(f"  runs inside the workers, last compare (s): {fmt(f'{x:.2f}' for x in tool['compare_runs'])}")
    print(f"3 sequential backtests (s): {fmt(f'{x:.2f}' for x in tool['sequential'])}")
    span = "a year" if not args.real else "90 days (real data, not a year)"
    tool_s, direct_s = statistics.median(tool["tool"]), statistics.median(direct)
    compare_s, seq_s = statistics.median(tool["compare"]), statistics.median(tool["sequential"])
    print()
    print(f"summary ({span}, {TIMEFRAME} route, {STRATEGY}; medians of {args.repeat}):")
    print(
        f"  backtest via stdio MCP (median of {args.repeat}): {tool_s:.2f} s | direct jesse.research.backtest: "
        f"{direct_s:.2f} s (normal mode) | ratio {tool_s / direct_s:.2f} (target <= 0.5)"
    )
    print(
        f"  compare_risk_profiles: {compare_s:.2f} s | 3 sequential backtests: {seq_s:.2f} s | ratio "
        f"{compare_s / seq_s:.2f} (target <= 0.65)"
    )
    load_s, load_max, rows = tool["load"]
    print(
        f"  store load of {span}: {load_s:.3f} s (median of {LOAD_RUNS}, max {load_max:.3f} s, {rows:,} rows; "
        "target <= 0.3 for a year)"
    )
    print("  (CSV import of a year: bench/bench_candles.py)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each measurement (default 3)")
    parser.add_argument("--real", action="store_true", help="the real 90-day Binance BTCUSDT file instead")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--modes", action="store_true", help="only: one run in normal vs fast mode, in this process")
    only.add_argument("--batch", action="store_true", help="only: backtest_batch of 12 vs 12 sequential backtests")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.real and not REAL.exists():
        raise SystemExit(f"--real needs {REAL}")
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp:
        home = Path(tmp)
        os.environ["JESSE_CACHE_DIR"] = str(home / "jesse-cache")  # before Jesse is imported here
        t = time.perf_counter()
        exchange, symbol, data = prepare_data(home, args.real)
        print(f"{data}: stored in {time.perf_counter() - t:.1f} s", flush=True)
        if args.modes or args.batch:
            busy, own, wall = busy_cpu_s(), own_cpu_s(), time.perf_counter()
            if args.modes:
                modes_side(home, args.repeat)
            else:
                anyio.run(batch_side, home, args.repeat)
            others, wall = busy_cpu_s() - busy - (own_cpu_s() - own), time.perf_counter() - wall
            print(f"  machine: other processes used {max(others, 0.0) / wall:.2f} cores on average meanwhile")
            return
        load = measure_store_load(home, exchange, symbol)
        busy, own, wall = busy_cpu_s(), own_cpu_s(), time.perf_counter()
        tool = anyio.run(tool_side, home, args.repeat)
        tool["load"] = load
        direct, metrics = direct_side(home, tool["result"], args.repeat)
        wall = time.perf_counter() - wall
        tool["others_cpu"] = (busy_cpu_s() - busy - (own_cpu_s() - own), wall)
        report(args, data, tool, direct, metrics)


if __name__ == "__main__":
    main()

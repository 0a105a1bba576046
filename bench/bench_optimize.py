"""Trials per minute: optimize_strategy's optimizer vs jesse.research.optimize, on the same synthetic 1-minute
candles (a year by default), the same strategy (trend_following), the same hyperparameter space, the same total
trial count and the same cores. Prints both rates and their ratio (ours / Jesse's; target >= 2).

    uv run python bench/bench_optimize.py [--days 365] [--trials-per-param 2] [--cores 2]

Ours: a warm worker pool (as a running server has), holdout 30 %, random sampler; the time is the whole study,
the final out-of-sample run included. Jesse's: its own Ray runtime started by this script on 127.0.0.1 (no
dashboard) in a child process that is killed if it outlives its bound; each Jesse trial runs a training and a
testing backtest, as Jesse's optimizer does. Trials = 5 hyperparameters x --trials-per-param (Jesse's rule).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

START = 1_704_067_200_000  # 2024-01-01
DAY = 86_400_000
SPACE = {"fast_period": (5, 20), "slow_period": (21, 60), "adx_period": (5, 14), "adx_min": (0.0, 60.0)}
STRATEGY = textwrap.dedent(
    """
    from jesse_mcp.backtesting.strategies.trend_following import TrendFollowing

    class BenchTrend(TrendFollowing):
        catalog_name = "trend_following"

        def hyperparameters(self):
            return [
                {"name": "fast_period", "type": int, "min": 5, "max": 20, "default": 10},
                {"name": "slow_period", "type": int, "min": 21, "max": 60, "default": 40},
                {"name": "adx_period", "type": int, "min": 5, "max": 14, "default": 10},
                {"name": "adx_min", "type": float, "min": 0.0, "max": 60.0, "default": 20.0},
                {"name": "allow_short", "type": int, "min": 0, "max": 1, "default": 1},
            ]

        @property
        def risk(self):
            return RISK
    """
)


def _plan_spec(home: Path, days: int) -> tuple[dict, int, int]:
    """The run spec our optimizer uses for the whole range, and the holdout split."""
    from jesse_mcp.backtesting.catalog import BUILTIN
    from jesse_mcp.backtesting.plans import PlanRequest, build_plan
    from shared.config.models import TradingConfig
    from shared.market.candles import CandleStore

    plan = build_plan(
        cfg=TradingConfig(),
        candles=CandleStore(home / "candles"),
        strategy=BUILTIN["trend_following"],
        req=PlanRequest(timeframe="1h", warmup_candles=240, risk_profile="aggressive"),
    )
    r = plan.request
    tf = 3_600_000
    split = r.start_ms + int((r.end_ms - r.start_ms) // tf * 0.7) * tf
    return plan.spec, split, r.end_ms


def jesse_child(args: dict) -> None:
    """In a child process, in a folder holding strategies/BenchTrend: Ray on 127.0.0.1, then Jesse's optimize."""
    import ray
    from jesse.research import optimize

    from jesse_mcp.backtesting.engine import jesse_inputs, load_rows

    spec, split = args["spec"], args["split"]
    train = {**spec, "end_ms": split}
    test = {**spec, "start_ms": split}
    a, b = jesse_inputs(train, load_rows(train)), jesse_inputs(test, load_rows(test))
    route = {**a["routes"][0], "strategy": "BenchTrend"}
    config = {
        "exchange": {
            "name": a["config"]["exchange"],
            "balance": a["config"]["starting_balance"],
            "fee": a["config"]["fee"],
            "type": "futures",
            "futures_leverage": a["config"]["futures_leverage"],
            "futures_leverage_mode": "cross",
        },
        "warm_up_candles": a["config"]["warm_up_candles"],
    }
    ray.init(num_cpus=args["cores"], include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        started = time.perf_counter()
        out = optimize(
            config,
            [route],
            [],
            a["candles"],
            a["warmup_candles"],
            b["candles"],
            b["warmup_candles"],
            cpu_cores=args["cores"],
            trials=args["trials_per_param"],
            progress_bar=False,
        )
        elapsed = time.perf_counter() - started
    finally:
        ray.shutdown()
    print(json.dumps({"elapsed_s": elapsed, "trials": out["total_trials"], "completed": out["completed_trials"]}))


def run_jesse(home: Path, spec: dict, split: int, cores: int, per_param: int, bound_s: float) -> dict:
    project = home / "jesse_project"
    (project / "strategies" / "BenchTrend").mkdir(parents=True, exist_ok=True)
    risk = f"RISK = {spec['risk']!r}  # the aggressive profile, as our runs get it\n"
    (project / "strategies" / "BenchTrend" / "__init__.py").write_text(risk + STRATEGY)
    payload = json.dumps({"spec": spec, "split": split, "cores": cores, "trials_per_param": per_param})
    env = {**os.environ, "PYTHONPATH": f"{project}{os.pathsep}{ROOT}", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--jesse-child", payload],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=bound_s)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the child and the Ray processes it started
    return json.loads(out.decode().strip().splitlines()[-1])


async def run_ours(home: Path, cores: int, trials: int) -> tuple[float, int]:
    from jesse_mcp.backtesting.plans import PlanRequest
    from jesse_mcp.backtesting.service import BacktestService
    from jesse_mcp.backtesting.workers import WorkerPool
    from jesse_mcp.optimization.models import OptimizeRequest
    from jesse_mcp.optimization.runner import OptimizationRunner
    from jesse_mcp.optimization.space import Narrowing
    from shared.config.models import TradingConfig
    from shared.state.store import Store

    pool = WorkerPool(cores, workdir=home / "jesse")
    pool.attach()
    store = Store(home / "state.db")
    try:
        service = BacktestService(home, TradingConfig, store, pool)
        while not all(w["state"] == "ready" for w in pool.status()) or len(pool.status()) < cores:
            await anyio.sleep(0.2)  # every worker has imported Jesse, as in a server that has been up a while
        runner = OptimizationRunner(home, service, TradingConfig)
        req = OptimizeRequest(
            strategy="trend_following",
            base=PlanRequest(timeframe="1h", risk_profile="aggressive"),
            trials=trials,
            sampler="random",
            space={k: Narrowing(lo, hi) for k, (lo, hi) in SPACE.items()},
            min_trades=0,
            batch_size=cores,
        )
        started = time.perf_counter()
        study = await runner.start(req, wait=True)
        elapsed = time.perf_counter() - started
        return elapsed, runner.view(study, 0, 1).trials_done
    finally:
        store.close()
        pool.detach()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--trials-per-param", type=int, default=2)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--bound-s", type=float, default=3600)
    ap.add_argument("--jesse-child")
    a = ap.parse_args()
    if a.jesse_child:
        jesse_child(json.loads(a.jesse_child))
        return
    from jesse_mcp.candles.ops import generate_synthetic
    from shared.market.candles import CandleStore

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        generate_synthetic(CandleStore(home / "candles"), "BTC-USDT", START, START + a.days * DAY, seed=5)
        trials = 5 * a.trials_per_param
        ours_s, ours_n = anyio.run(run_ours, home, a.cores, trials)
        spec, split, _ = _plan_spec(home, a.days)
        theirs = run_jesse(home, spec, split, a.cores, a.trials_per_param, a.bound_s)
    ours_rate = ours_n / ours_s * 60
    their_rate = theirs["completed"] / theirs["elapsed_s"] * 60
    print(f"{a.days} days of 1-minute candles, 1h trend_following, {trials} trials, {a.cores} cores")
    print(f"optimize_strategy (warm pool): {ours_n} trials in {ours_s:.1f} s = {ours_rate:.1f} trials/min")
    print(
        f"jesse.research.optimize (Ray):  {theirs['completed']} trials in {theirs['elapsed_s']:.1f} s = "
        f"{their_rate:.1f} trials/min"
    )
    print(f"ratio (ours / Jesse's): {ours_rate / their_rate:.2f}  (target >= 2)")


if __name__ == "__main__":
    main()

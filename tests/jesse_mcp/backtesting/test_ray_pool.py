"""The Ray pool against a real one-node Ray cluster on 127.0.0.1: the same results as local workers, user strategies
shipped as source, progress forwarded, timeouts and cancellation that stop the task, a cluster dying mid-run."""

from __future__ import annotations

import os
import re

import anyio
import pytest
from mcp.shared.memory import create_connected_server_and_client_session as connect

from jesse_mcp.backtesting.plans import PlanRequest
from jesse_mcp.backtesting.ray_connect import disconnect
from jesse_mcp.backtesting.ray_pool import RayPool
from jesse_mcp.backtesting.service import BacktestService
from jesse_mcp.backtesting.workers import WorkerError, WorkerPool, WorkerTimeout
from jesse_mcp.candles.ops import generate_synthetic
from jesse_mcp.optimization.models import OptimizeRequest
from jesse_mcp.optimization.runner import OptimizationRunner
from jesse_mcp.optimization.space import Narrowing
from jesse_mcp.server import build_server
from shared.market.candles import CandleStore
from shared.server.common import make_deps
from tests.jesse_mcp.backtesting.ray_cluster import LocalRayCluster
from tests.jesse_mcp.backtesting.test_backtests import USER_STRATEGY
from tests.mcp_helpers import payload
from tests.timeouts import hang_guard

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.xdist_group("ray-cluster")]
START = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DAY = 86_400_000
TASKS = "tests.jesse_mcp.backtesting.worker_tasks"
ENGINE = "jesse_mcp.backtesting.engine"


@pytest.fixture(scope="module")
def cluster():
    c = LocalRayCluster(num_cpus=2).start()
    yield c
    disconnect()  # first, or the client keeps trying to reach the cluster after it is gone
    c.stop()


@pytest.fixture(scope="module")
def ray_jesse(cluster):
    """One actor that imports Jesse (the cluster's other CPU is for the cold pools below)."""
    pool = RayPool(cluster.address, 1)
    pool.attach()
    yield pool
    pool.detach()


@pytest.fixture(scope="module")
def local_jesse(tmp_path_factory):
    pool = WorkerPool(1, workdir=tmp_path_factory.mktemp("jesse-work"))
    pool.attach()
    yield pool
    pool.detach()


@pytest.fixture
def cold(cluster):
    """One actor with no warm-up: quick to start, for the tests of stopping tasks."""
    pool = RayPool(cluster.address, 1, warmup=())
    pool.attach()
    yield pool
    pool.detach()


@pytest.fixture(scope="module")
def bt_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("ray_home")
    generate_synthetic(CandleStore(home / "candles"), "BTC-USDT", START, START + 40 * DAY, seed=11)
    (home / "strategies").mkdir()
    (home / "strategies" / "every_fourth.py").write_text(USER_STRATEGY)
    return home


@pytest.fixture
def deps(bt_home):
    d = make_deps("jesse-mcp", bt_home)
    yield d
    d.store.close()


async def _ready(pool: RayPool) -> list[dict]:
    with anyio.fail_after(hang_guard(300)):
        while not pool.status() or any(s["state"] != "ready" for s in pool.status()):
            assert not any(s["state"] == "failed" for s in pool.status()), pool.status()
            await anyio.sleep(0.05)
    return pool.status()


def _same(out: dict) -> dict:
    return {k: v for k, v in out.items() if k != "duration_s"}


async def test_a_backtest_on_ray_gives_the_same_metrics_and_trades_as_on_local_workers(
    deps, bt_home, ray_jesse, local_jesse
):
    local = BacktestService(bt_home, deps.config.load, deps.store, local_jesse)
    remote = BacktestService(bt_home, deps.config.load, deps.store, ray_jesse)
    plan = await local.plan("trend_following", PlanRequest(days=20, risk_profile="moderate"))
    reports: list[tuple[float, float, str]] = []

    async def progress(done: float, total: float, message: str) -> None:
        reports.append((done, total, message))

    here = await local.execute(plan.spec)
    there = await remote.execute(plan.spec, progress)
    assert here["trades"] and _same(there) == _same(here)
    assert reports[-1][0] == reports[-1][1] and reports[-1][2].endswith("done")  # Jesse's progress forwarded


async def test_a_portfolio_backtest_on_ray_puts_its_markets_together_and_equals_local_workers(
    tmp_path, ray_jesse, local_jesse
):
    for i, symbol in enumerate(["BTC-USDT", "ETH-USDT"]):
        generate_synthetic(CandleStore(tmp_path / "candles"), symbol, START, START + 30 * DAY, seed=31 + i)
    d = make_deps("jesse-mcp", tmp_path)
    try:
        local = BacktestService(tmp_path, d.config.load, d.store, local_jesse)
        remote = BacktestService(tmp_path, d.config.load, d.store, ray_jesse)
        req = PlanRequest(days=15, markets=("BTC-USDT", "ETH-USDT"), risk_profile="aggressive")
        plan = await local.plan("momentum", req)
        here = await local.execute(plan.spec)
        there = await remote.execute(plan.spec)
    finally:
        d.store.close()
    assert {t[-1] for t in here["trades"]} == {"BTC-USDT", "ETH-USDT"}  # each trade's market, last
    assert _same(there) == _same(here)


async def test_an_optimization_on_ray_runs_the_same_trials_with_the_same_values_as_on_local_workers(
    deps, bt_home, ray_jesse, local_jesse, tmp_path
):
    """Same seed and the random sampler: identical trial parameters, values and answer on both pools."""
    request = OptimizeRequest(
        strategy="trend_following",
        base=PlanRequest(timeframe="1h", days=14),
        trials=4,
        seed=5,
        sampler="random",
        space={"fast_period": Narrowing(5, 15), "slow_period": Narrowing(20, 40), "adx_period": Narrowing(5, 14)},
        min_trades=1,
        batch_size=2,
    )
    views = []
    for pool, folder in ((local_jesse, "local"), (ray_jesse, "ray")):
        service = BacktestService(bt_home, deps.config.load, deps.store, pool)
        runner = OptimizationRunner(tmp_path / folder, service, deps.config.load)
        try:
            views.append(runner.view(await runner.start(request, wait=True), 0, 100))
        finally:
            runner.close()
    here, there = ([(t.number, t.params, t.values, t.state) for t in v.trials] for v in views)
    assert len(here) == 4 and there == here
    assert views[1].report.out_of_sample == views[0].report.out_of_sample
    assert views[1].report.verdict == views[0].report.verdict


async def test_walk_forward_windows_run_many_on_ray_as_on_local_workers_with_each_range_put_once(
    deps, bt_home, ray_jesse, local_jesse
):
    service = BacktestService(bt_home, deps.config.load, deps.store, local_jesse)
    specs = [(await service.plan("breakout", PlanRequest(days=d))).spec for d in (8, 12, 8)]
    here = await local_jesse.run(ENGINE, "run_many", {"specs": specs}, timeout_s=hang_guard(300))
    before = len(ray_jesse._rows)
    there = await ray_jesse.run(ENGINE, "run_many", {"specs": specs}, timeout_s=hang_guard(300))
    assert [_same(r) for r in there] == [_same(r) for r in here] and "error" not in here[0]
    assert len(ray_jesse._rows) - before == 2  # two distinct ranges: the third spec's candles were put already


async def test_a_user_strategy_is_shipped_to_the_cluster_and_backtests_the_same_through_mcp(
    deps, bt_home, ray_jesse, local_jesse
):
    server = build_server(deps, pool=ray_jesse)
    args = {"strategy": "every_fourth", "days": 10, "risk_profile": "conservative", "hyperparameters": {"every": 6}}
    async with connect(server) as client:
        listed = payload(await client.call_tool("list_strategies", {}))
        made = payload(await client.call_tool("backtest", args))
    user = next(s for s in listed["strategies"] if s["name"] == "every_fourth")
    assert user["hyperparameters"][0]["name"] == "every" and user["error"] is None
    local = BacktestService(bt_home, deps.config.load, deps.store, local_jesse)
    stored = local.load_backtest(made["id"])
    plan = await local.replan(stored[0], "again")
    here = await local.execute(plan.spec)
    assert made["performance"]["trades"] == len(here["trades"]) > 5
    assert stored[1] == here["trades"]


async def test_a_broken_user_strategy_is_explained_with_the_servers_path(deps, bt_home, ray_jesse):
    bad = bt_home / "strategies" / "broken_one.py"
    bad.write_text("import not_a_module_anywhere\n")
    try:
        service = BacktestService(bt_home, deps.config.load, deps.store, ray_jesse)
        described = await service._describe_user({"broken_one": bad})
    finally:
        bad.unlink()
    assert described["broken_one"]["error"].startswith(f"{bad} failed to import: ModuleNotFoundError")


async def test_a_task_over_its_time_limit_on_ray_is_killed_and_its_actor_replaced(cold):
    (first,) = await _ready(cold)
    with pytest.raises(WorkerTimeout, match=re.escape("time limit of 0.5 s")):
        await cold.run(TASKS, "sleep", {"seconds": 60}, timeout_s=0.5)
    await _gone(first["pid"])
    (second,) = await _ready(cold)
    assert second["pid"] != first["pid"]
    assert await cold.run(TASKS, "square", {"x": 3}, timeout_s=hang_guard(60)) == 9


async def test_a_cancelled_task_on_ray_really_stops(cold):
    (first,) = await _ready(cold)
    with anyio.move_on_after(0.5):
        await cold.run(TASKS, "sleep", {"seconds": 60}, timeout_s=hang_guard(120))
    await _gone(first["pid"])


async def test_a_task_that_fails_on_ray_reports_its_error_and_keeps_the_actor(cold):
    (first,) = await _ready(cold)
    with pytest.raises(WorkerError, match="the task failed: ValueError: no such thing"):
        await cold.run(TASKS, "fail", {"message": "no such thing"}, timeout_s=hang_guard(60))
    assert cold.status()[0]["pid"] == first["pid"] and cold.status()[0]["state"] == "ready"


async def _gone(pid: int) -> None:
    """The actor's process (on this machine: the cluster is local) has ended."""
    with anyio.fail_after(hang_guard(60)):
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            await anyio.sleep(0.05)


# Last in the module: Ray's client holds one connection per process, so connecting to another cluster ends the
# module cluster's session (and its actors).
async def test_a_cluster_that_dies_mid_run_gives_a_clear_error_not_a_hang(monkeypatch):
    monkeypatch.setenv("RAY_CLIENT_RECONNECT_GRACE_PERIOD", "5")  # Ray's client retries 30 s by default: same path
    doomed = LocalRayCluster(num_cpus=1).start()
    pool = RayPool(doomed.address, 1, warmup=())
    pool.attach()
    try:
        await _ready(pool)
        with anyio.fail_after(hang_guard(120)):
            async with anyio.create_task_group() as tg:

                async def kill_once_running() -> None:
                    while pool.status()[0]["state"] != "busy":
                        await anyio.sleep(0.05)
                    await anyio.to_thread.run_sync(doomed.kill)

                tg.start_soon(kill_once_running)
                with pytest.raises(WorkerError) as raised:
                    await pool.run(TASKS, "sleep", {"seconds": 600}, timeout_s=hang_guard(600))
    finally:
        pool.detach()
        disconnect()
        doomed.stop()
    assert f"the Ray cluster at {doomed.address} lost the task" in str(raised.value)
    assert "ray status" in str(raised.value)

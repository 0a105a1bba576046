"""Which pool runs backtests (local workers unless a Ray cluster is configured; RAY_ADDRESS wins), and a Ray address
that cannot be used failing fast with an error that says what to check."""

from __future__ import annotations

import os
import subprocess
import sys

import anyio
import pytest

from jesse_mcp.backtesting.pools import make_pool, ray_address
from jesse_mcp.backtesting.ray_pool import RayPool
from jesse_mcp.backtesting.workers import WorkerError, WorkerPool
from shared.config.models import BacktestConfig
from tests.jesse_mcp.backtesting.ray_cluster import free_port
from tests.timeouts import hang_guard


def test_backtests_run_in_local_workers_when_no_cluster_is_configured():
    pool = make_pool(BacktestConfig(workers=2), environ={})
    assert isinstance(pool, WorkerPool) and pool.size == 2


def test_the_configured_ray_address_selects_the_ray_pool_with_the_configured_actors():
    pool = make_pool(BacktestConfig(ray_address="ray://head:10001", ray_actors=7), environ={})
    assert isinstance(pool, RayPool) and (pool.address, pool.size) == ("ray://head:10001", 7)


def test_the_ray_address_environment_variable_wins_over_the_configuration():
    cfg = BacktestConfig(ray_address="ray://configured:10001")
    assert ray_address(cfg, {"RAY_ADDRESS": "ray://from-env:10001"}) == "ray://from-env:10001"
    assert ray_address(cfg, {"RAY_ADDRESS": "  "}) == "ray://configured:10001"
    assert ray_address(BacktestConfig(), {}) is None


def test_building_the_pool_does_not_connect_to_the_cluster():
    pool = make_pool(BacktestConfig(ray_address="ray://127.0.0.1:1"), environ={})
    assert pool.status() == []


@pytest.mark.anyio
async def test_an_unreachable_cluster_fails_fast_naming_the_address_and_what_to_check():
    address = f"ray://127.0.0.1:{free_port()}"  # nothing listens there
    pool = RayPool(address, 1, warmup=())
    pool.attach()
    try:
        with anyio.fail_after(hang_guard(30)), pytest.raises(WorkerError) as raised:
            await pool.run("tests.jesse_mcp.backtesting.worker_tasks", "square", {"x": 2}, timeout_s=30)
    finally:
        pool.detach()
    text = str(raised.value)
    assert f"Could not reach the Ray cluster at {address}: nothing answers on 127.0.0.1" in text
    assert "ray start --head --ray-client-server-port" in text and "unset RAY_ADDRESS" in text


@pytest.mark.anyio
async def test_a_bare_cluster_address_is_refused_with_the_client_form_to_use():
    pool = RayPool("10.0.0.5:6379", 1, warmup=())
    pool.attach()
    try:
        with anyio.fail_after(hang_guard(30)), pytest.raises(WorkerError, match=r"Use ray://<head host>:<client port>"):
            await pool.run("tests.jesse_mcp.backtesting.worker_tasks", "square", {"x": 2}, timeout_s=30)
    finally:
        pool.detach()


@pytest.mark.slow
def test_the_server_starts_without_importing_ray_even_with_a_cluster_configured(tmp_path):
    code = (
        "import sys\n"
        "from jesse_mcp.server import build_server\n"
        "from shared.server.common import make_deps\n"
        "for address in ('', 'ray://127.0.0.1:1'):\n"
        "    import os; os.environ['RAY_ADDRESS'] = address\n"
        "    deps = make_deps('jesse-mcp', __import__('pathlib').Path(sys.argv[1]))\n"
        "    build_server(deps, warmup=())\n"
        "    print(type(deps.extras.pool).__name__, 'ray' in sys.modules)\n"
    )
    env = {**os.environ, "TRADING_MCP_HOME": str(tmp_path), "TRADING_MCP_CONFIG": str(tmp_path / "config.json")}
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True, timeout=hang_guard(120)
    )
    assert done.stdout.split("\n")[:2] == ["WorkerPool False", "RayPool False"], done.stderr

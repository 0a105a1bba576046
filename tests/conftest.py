from __future__ import annotations

import os
from pathlib import Path

import pytest

from jesse_mcp.backtesting.workers import WorkerPool
from shared.server.common import make_deps
from shared.server.registry import ServerDeps

# gRPC's fork handlers (Ray's client uses gRPC) run at every fork of a process that has imported it; the test
# processes fork often (Jesse pools, subprocesses) and the handlers then stall for tens of seconds under load. Read
# when gRPC is imported, so set before any test imports Ray; the test cluster gets the same (ray_cluster.py).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make `--dist loadgroup` (pyproject's addopts) group again. pytest-xdist 3.8 puts a test in its xdist_group by
    renaming it `nodeid@group` through `item._nodeid`, which pytest 9.2 no longer reads (the id is `item._id`, a
    NodeId): so every group was split across workers, and their shared fixtures built on each. This finishes the
    renaming on the workers; it does nothing once xdist's own renaming shows in the nodeid."""
    if not getattr(config.option, "loadgroup", False):  # set by xdist on its workers under --dist loadgroup
        return
    try:
        from _pytest.nodeid import NodeId  # pytest 9.2; older versions read xdist's renaming themselves
    except ImportError:
        return
    for item in items:
        marks = item.iter_markers("xdist_group")
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks})
        if names and "@" not in item.nodeid.rpartition("]")[2] and isinstance(getattr(item, "_id", None), NodeId):
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")


@pytest.fixture(scope="session", autouse=True)
def jesse_cache(tmp_path_factory) -> None:
    """Jesse keeps a file cache in storage/temp of the current folder unless told otherwise: not in the repo."""
    os.environ.setdefault("JESSE_CACHE_DIR", str(tmp_path_factory.mktemp("jesse-cache")))


@pytest.fixture(scope="session")
def jesse_pool(tmp_path_factory) -> WorkerPool:
    """The warm pool of real Jesse workers (forked from one process that imports jesse.research once, 6-9 s of CPU)
    that every test of real Jesse backtests shares. Mark such tests `xdist_group("jesse-pool")`: xdist (pyproject's
    addopts) then runs them on one worker, and the pool starts once rather than once per worker. Two workers:
    parallel runs still overlap, and a third would only compete for the same two cores."""
    pool = WorkerPool(2, workdir=tmp_path_factory.mktemp("jesse-work"))
    pool.attach()  # held for the session, so sessions ending never shut it down
    yield pool
    pool.detach()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh TRADING_MCP_HOME for each test; the user's own folder is never touched."""
    monkeypatch.setenv("TRADING_MCP_HOME", str(tmp_path))
    monkeypatch.setenv("TRADING_MCP_CONFIG", str(tmp_path / "config.json"))
    return tmp_path


@pytest.fixture
def deps(home: Path) -> ServerDeps:
    d = make_deps("test-server", home)
    yield d
    d.store.close()

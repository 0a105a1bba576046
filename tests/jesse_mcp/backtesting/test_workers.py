from __future__ import annotations

import logging
import os
import re
import sys

import anyio
import pytest
from mcp.shared.memory import create_connected_server_and_client_session as connect

from jesse_mcp.backtesting import zygote
from jesse_mcp.backtesting.workers import WorkerError, WorkerPool
from jesse_mcp.server import build_server
from tests.timeouts import hang_guard

pytestmark = pytest.mark.anyio


@pytest.fixture
def pool():
    """One worker that warms up on nothing; always shut down."""
    p = WorkerPool(1, warmup=())
    p.start_in_background()
    yield p
    p.shutdown()


async def _ready(pool: WorkerPool, timeout: float = hang_guard(120)) -> None:
    with anyio.fail_after(timeout):
        while not pool.status() or any(w["state"] != "ready" for w in pool.status()):
            await anyio.sleep(0.05)


async def test_initialize_and_tools_list_do_not_wait_for_the_workers_warm_up(deps):
    server = build_server(deps, warmup=("tests.jesse_mcp.backtesting.slow_warmup",))
    async with connect(server) as client:
        tools = (await client.list_tools()).tools
        size = deps.config.load().backtest_config.workers
        with anyio.fail_after(hang_guard(120)):
            while len(deps.extras.pool.status()) < size:
                await anyio.sleep(0.01)
        states = [w["state"] for w in deps.extras.pool.status()]
    assert "get_config" in {t.name for t in tools}
    assert states == ["starting"] * size  # still importing, yet the session answered


async def test_a_worker_runs_a_task_and_returns_its_result(pool):
    assert await pool.run("tests.jesse_mcp.backtesting.worker_tasks", "square", {"x": 12.0}, timeout_s=30) == 144.0


async def test_a_task_over_its_time_limit_is_killed_and_the_worker_replaced(pool):
    await _ready(pool)
    first_pid = pool.status()[0]["pid"]
    with pytest.raises(WorkerError, match=re.escape("time limit of 0.5 s")):
        await pool.run("tests.jesse_mcp.backtesting.worker_tasks", "sleep", {"seconds": 30}, timeout_s=0.5)
    await _ready(pool)
    assert pool.status()[0]["pid"] != first_pid
    assert await pool.run("tests.jesse_mcp.backtesting.worker_tasks", "square", {"x": 3}, timeout_s=30) == 9


async def test_a_cancelled_task_really_stops(pool):
    await _ready(pool)
    first_pid = pool.status()[0]["pid"]
    with anyio.move_on_after(0.3):
        await pool.run("tests.jesse_mcp.backtesting.worker_tasks", "sleep", {"seconds": 30}, timeout_s=60)
    await _ready(pool)
    assert pool.status()[0]["pid"] != first_pid


async def test_a_failing_task_reports_its_error_and_the_worker_stays(pool):
    with pytest.raises(WorkerError, match="the task failed: ValueError: bad input"):
        await pool.run("tests.jesse_mcp.backtesting.worker_tasks", "fail", {"message": "bad input"}, timeout_s=30)
    assert await pool.run("tests.jesse_mcp.backtesting.worker_tasks", "square", {"x": 2}, timeout_s=30) == 4


async def test_what_a_worker_prints_goes_to_stderr_not_stdout(capfd):
    # The pool is made in the test body: pytest swaps capfd's file out between fixture setup and the call, so a
    # worker spawned from a fixture's background thread could inherit the wrong stderr.
    pool = WorkerPool(1, warmup=())
    pool.start_in_background()
    try:
        await pool.run("tests.jesse_mcp.backtesting.worker_tasks", "shout", {"text": "jesse-says-hello"}, timeout_s=30)
    finally:
        pool.shutdown()
    out, err = capfd.readouterr()
    assert "jesse-says-hello" in err and "jesse-says-hello" not in out


async def test_a_warm_up_that_fails_is_reported():
    pool = WorkerPool(1, warmup=("no_such_module_xyz",))
    pool.start_in_background()
    try:
        with pytest.raises(WorkerError, match="no Jesse worker could start: ModuleNotFoundError"):
            with anyio.fail_after(hang_guard(120)):
                while True:
                    try:
                        await pool.run(
                            "tests.jesse_mcp.backtesting.worker_tasks", "square", {"x": 1}, timeout_s=5, wait_s=0.2
                        )
                    except WorkerError as e:
                        if "could start" in str(e):
                            raise
    finally:
        pool.shutdown()


@pytest.mark.slow
@pytest.mark.xdist_group("jesse-pool")
async def test_real_workers_import_jesse_research_once_and_become_ready(jesse_pool):
    pool = jesse_pool  # the suite's warm pool (conftest): real workers, started with the default warm-up
    await _ready(pool, timeout=hang_guard(300))
    assert all(w["ready_after_s"] > 0 for w in pool.status())
    assert await pool.run(
        "tests.jesse_mcp.backtesting.worker_tasks", "is_loaded", {"module": "jesse.research"}, timeout_s=30
    )


needs_zygote = pytest.mark.skipif(not zygote.available(), reason="the zygote needs fork and pidfds (Linux)")


def _zygote_pid(pool: WorkerPool) -> int:
    (pid,) = set(pool.process_ids()) - {w["pid"] for w in pool.status()}
    return pid


@needs_zygote
async def test_forked_workers_share_one_import_of_their_warm_up(tmp_path, monkeypatch):
    imports = tmp_path / "imports"
    monkeypatch.setenv("COUNTED_WARMUP_FILE", str(imports))
    pool = WorkerPool(3, warmup=("tests.jesse_mcp.backtesting.counted_warmup",), start_method="fork")
    pool.start_in_background()
    try:
        await _ready(pool)
        workers = {w["pid"] for w in pool.status()}
        assert imports.read_text().split() == [str(_zygote_pid(pool))]  # once, in the zygote, not in a worker
        assert len(workers) == 3 and None not in workers
    finally:
        pool.shutdown()


@needs_zygote
async def test_a_replacement_for_a_killed_worker_is_forked_without_importing_again(tmp_path, monkeypatch):
    imports = tmp_path / "imports"
    monkeypatch.setenv("COUNTED_WARMUP_FILE", str(imports))
    pool = WorkerPool(1, warmup=("tests.jesse_mcp.backtesting.counted_warmup",), start_method="fork")
    pool.start_in_background()
    try:
        await _ready(pool)
        first_pid = pool.status()[0]["pid"]
        with pytest.raises(WorkerError, match="time limit"):
            await pool.run("tests.jesse_mcp.backtesting.worker_tasks", "sleep", {"seconds": 30}, timeout_s=0.5)
        await _ready(pool)
        assert pool.status()[0]["pid"] != first_pid
        assert len(imports.read_text().split()) == 1
    finally:
        pool.shutdown()


@needs_zygote
async def test_the_zygote_forks_from_a_single_thread_even_after_importing_numpy(caplog):
    # counted by the zygote itself before its first fork (OpenBLAS ends its own threads at a fork, so a later look
    # from outside would not see them)
    caplog.set_level(logging.INFO, logger="jesse_mcp.backtesting.workers")
    pool = WorkerPool(1, warmup=("numpy", "jesse_mcp.backtesting.engine"), start_method="fork")
    pool.start_in_background()
    try:
        await _ready(pool)
    finally:
        pool.shutdown()
    (record,) = [r for r in caplog.records if "jesse zygote" in r.getMessage()]
    assert record.args[-1] == 1 and record.levelno == logging.INFO


async def test_a_spawned_pool_still_runs_tasks_where_the_zygote_is_not_wanted():
    pool = WorkerPool(1, warmup=(), start_method="spawn")
    pool.start_in_background()
    try:
        assert await pool.run("tests.jesse_mcp.backtesting.worker_tasks", "square", {"x": 5}, timeout_s=30) == 25
        assert pool.process_ids() == [pool.status()[0]["pid"]]  # no zygote
    finally:
        pool.shutdown()


def test_an_unknown_start_method_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="start_method must be 'fork' or 'spawn', not 'thread'"):
        WorkerPool(1, warmup=(), start_method="thread")


def test_a_forked_worker_ended_twice_from_two_threads_is_a_no_op_the_second_time():
    """A cancelled task's release and the pool's shutdown may both close a worker: the second close, and a join or
    kill after it, must not touch the descriptor (EBADF, or worse a number reused since)."""
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        worker = zygote.Forked(child.pid, os.pidfd_open(child.pid))
        assert worker.is_alive()
        worker.kill()
        worker.join(hang_guard(10))
        assert not worker.is_alive()
        worker.close()
        worker.close()
        worker.join(1)
        worker.kill()
        assert not worker.is_alive() and worker.pidfd == -1
    finally:
        child.kill()
        child.wait()


def test_shutting_down_during_the_zygotes_warm_up_ends_its_keeper_without_an_error(monkeypatch):
    """The keeper thread waits on the zygote's control pipe while shutdown closes it: the keeper must see a dead zygote,
    never a pipe closed under its read (a TypeError inside multiprocessing, raised in a daemon thread)."""
    import threading
    import time

    errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    before = set(threading.enumerate())  # other tests' pools may still be ending
    pool = WorkerPool(1, warmup=("tests.jesse_mcp.backtesting.slow_warmup",))
    pool.start_in_background()
    deadline = time.monotonic() + hang_guard(60)
    while not (keepers := [t for t in set(threading.enumerate()) - before if t.name == "jesse-zygote-keeper"]):
        assert time.monotonic() < deadline, "the zygote's keeper never started"
        time.sleep(0.01)
    time.sleep(0.2)  # the keeper is in its read of the warm-up reply
    pool.shutdown()
    for keeper in keepers:
        keeper.join(hang_guard(10))
        assert not keeper.is_alive()
    assert errors == []


def test_closing_a_zygote_never_closes_its_pipe_under_a_read_of_the_warm_up_reply():
    """The exact race: the reply arrives while close() runs. close() must wait for the reader, not pull the pipe away
    between the reply's header and its body."""
    import multiprocessing as mp
    import threading

    handle = zygote.Zygote((), None)
    ours, theirs = mp.Pipe()
    handle._control = ours
    outcome: list[object] = []

    def read() -> None:
        try:
            outcome.append(handle.wait_ready())
        except BaseException as e:  # the assertion below names it
            outcome.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    threading.Timer(0.3, theirs.send, (("ready", 1.5, 1),)).start()  # while close() is under way
    handle.close()
    reader.join(hang_guard(10))
    assert outcome == [1.5] and ours.closed


async def test_a_zygote_started_early_is_the_one_the_pool_forks_from(tmp_path):
    zygote.start_early((), str(tmp_path))
    early = zygote._early
    assert early is not None and early.process.poll() is None  # importing while the server would import itself
    pool = WorkerPool(1, warmup=(), workdir=tmp_path)
    pool.attach()
    try:
        await _ready(pool)
        assert early.pid in pool.process_ids() and zygote._early is None
        assert await pool.run("os", "getppid", {}, timeout_s=hang_guard(60)) == early.pid
    finally:
        pool.detach()
    assert early.process.poll() is not None  # ended with the pool


def test_an_early_zygote_no_pool_adopts_is_ended(tmp_path):
    zygote.start_early((), str(tmp_path))
    other = zygote._early
    fresh = zygote.adopt(("json",), str(tmp_path))  # another warm-up: a zygote of its own
    assert fresh is not other and fresh.process is None and other.process.poll() is not None
    zygote.start_early((), str(tmp_path))
    early = zygote._early
    zygote.discard_early()  # the configuration names a Ray cluster
    assert zygote._early is None and early.process.poll() is not None

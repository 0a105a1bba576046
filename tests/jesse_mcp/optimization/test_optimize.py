"""optimize_strategy on real Jesse workers: reproducible studies, infeasible trials never best, Pareto fronts,
background studies (get, list, cancel) and resuming a study its server left unfinished."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp.shared.memory import create_connected_server_and_client_session as connect
from mcp.types import ImageContent

from jesse_mcp.backtesting.plans import PlanRequest
from jesse_mcp.candles.ops import generate_synthetic
from jesse_mcp.optimization.models import OptimizeRequest
from jesse_mcp.optimization.runner import OptimizationRunner
from jesse_mcp.optimization.space import Narrowing
from jesse_mcp.server import build_server
from shared.market.candles import CandleStore
from shared.server.common import make_deps
from shared.state import results as result_store
from tests.mcp_helpers import payload
from tests.timeouts import hang_guard

START = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DAY = 86_400_000
SPACE = {"fast_period": Narrowing(5, 20), "slow_period": Narrowing(21, 60), "adx_period": Narrowing(5, 14)}
pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.xdist_group("jesse-pool")]


@pytest.fixture(scope="module")
def opt_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("opt_home")
    for symbol, seed in (("BTC-USDT", 11), ("ETH-USDT", 12)):
        generate_synthetic(CandleStore(home / "candles"), symbol, START, START + 20 * DAY, seed=seed)
    return home


@pytest.fixture
def server(opt_home, jesse_pool):
    deps = make_deps("jesse-mcp", opt_home)
    yield build_server(deps, pool=jesse_pool), deps
    deps.extras.optimizations.close()
    deps.store.close()


def _request(**changes) -> OptimizeRequest:
    base = {
        "strategy": "trend_following",
        "symbols": ("BTC-USDT",),
        "base": PlanRequest(timeframe="1h"),
        "trials": 6,
        "seed": 7,
        "space": SPACE,
        "min_trades": 1,
        "batch_size": 2,
    }
    return OptimizeRequest(**{**base, **changes})


def _trials(runner: OptimizationRunner, study_id: str) -> list[tuple[dict, dict | None, str]]:
    return [(r.params, r.values, r.state) for r in runner.view(study_id, 0, 1000).trials]


async def test_the_same_seed_and_batch_size_give_the_same_trials_and_the_same_answer(server):
    _, deps = server
    runner = deps.extras.optimizations
    first = await runner.start(_request(), wait=True)
    second = await runner.start(_request(), wait=True)
    assert first != second
    assert _trials(runner, first) == _trials(runner, second)
    assert len(_trials(runner, first)) == 6
    a, b = runner.view(first, 0, 10).report, runner.view(second, 0, 10).report
    assert a.chosen_hyperparameters == b.chosen_hyperparameters
    assert a.out_of_sample == b.out_of_sample and a.deflated_sharpe == b.deflated_sharpe
    assert a.importances == b.importances and a.verdict == b.verdict
    assert a.study["batch_size"] == 2 and a.study["seed"] == 7
    assert a.deflated_sharpe.n_trials == a.trials.feasible + a.trials.infeasible
    assert result_store.listed(deps.store)[1] == 0  # trials are never stored as backtests
    assert "strategies.trend_following.custom_params" in a.adopt.changes


async def test_infeasible_trials_are_counted_and_never_chosen(server):
    _, deps = server
    runner = deps.extras.optimizations
    study = await runner.start(_request(trials=4, min_trades=100_000), wait=True)
    report = runner.view(study, 0, 10).report
    assert (report.trials.infeasible, report.trials.feasible, report.trials.failed) == (4, 0, 0)
    assert report.chosen_hyperparameters is None and report.top_trials == [] and report.adopt is None
    assert report.verdict.startswith("No feasible trial")
    assert all(
        "fewer than min_trades 100000" in r.reasons[0] and r.state == "infeasible"
        for r in runner.view(study, 0, 10).trials
    )


async def test_walk_forward_optimizes_each_window_and_runs_its_choice_on_the_next(server):
    _, deps = server
    runner = deps.extras.optimizations
    study = await runner.start(_request(trials=3, validation="walk_forward", folds=2, sampler="random"), wait=True)
    report = runner.view(study, 0, 10).report
    assert [f.fold for f in report.folds] == [1, 2] and report.trials.total == 6
    first, second = report.folds
    assert first.out_of_sample.split(" .. ")[0] == first.in_sample.split(" .. ")[1] == second.in_sample.split(" .. ")[0]
    assert report.chosen_hyperparameters == second.chosen_hyperparameters  # the most recent fold's choice
    assert all(f.trials.total == 3 for f in report.folds)


async def test_a_study_left_running_by_a_stopped_server_resumes_to_the_uninterrupted_answer(server, opt_home):
    _, deps = server
    runner = deps.extras.optimizations
    whole = await runner.start(_request(sampler="random"), wait=True)
    ids_before = set(runner.ids())
    with anyio.CancelScope() as scope:  # the server stops mid-study: no cancel_optimization, nothing recorded

        async def stop_after_three(done, _total, _message):
            if done == 3:
                scope.cancel()

        await runner.start(_request(sampler="random"), wait=True, progress=stop_after_three)
    (cut,) = set(runner.ids()) - ids_before
    restarted = OptimizationRunner(opt_home, deps.extras.backtests, deps.config.load)
    assert restarted.view(cut, 0, 10).status == "interrupted"
    assert [r.state for r in restarted.view(cut, 0, 10).trials].count("running") == 2  # the batch it was running
    await restarted.resume(cut, wait=True)
    assert restarted.view(cut, 0, 10).status == "finished"
    assert _trials(restarted, cut) == _trials(runner, whole)
    assert (
        restarted.view(cut, 0, 10).report.chosen_hyperparameters
        == runner.view(whole, 0, 10).report.chosen_hyperparameters
    )


async def test_two_objectives_give_a_pareto_front_over_two_markets_through_mcp(server):
    srv, _ = server
    seen = []

    async def on_progress(progress, total, message):
        seen.append(message)

    args = {
        "strategy": "trend_following",
        "symbols": ["BTC-USDT", "ETH-USDT"],
        "objective": ["net_profit", "max_drawdown"],
        "trials": 4,
        "min_trades": 1,
        "space": {k: {"min": v.min, "max": v.max} for k, v in SPACE.items()},
    }
    async with connect(srv) as client:
        view = payload(await client.call_tool("optimize_strategy", args, progress_callback=on_progress))
        report = view["report"]
        assert report["study"]["sampler"] == "nsga2"
        assert report["markets"] == ["synthetic:BTC-USDT", "synthetic:ETH-USDT"]
        assert set(report["out_of_sample"]["per_market"]) == {"synthetic:BTC-USDT", "synthetic:ETH-USDT"}
        front = report["pareto_front"]
        assert front and all(r["state"] == "feasible" for r in front)
        feasible = [r for r in view["trials"] if r["state"] == "feasible"]
        for f in front:  # nothing feasible is better on both objectives
            fv = f["values"]
            assert not any(
                o["values"]["net_profit"] >= fv["net_profit"]
                and o["values"]["max_drawdown"] <= fv["max_drawdown"]
                and o["values"] != fv
                for o in feasible
            )
        assert [m.split(":")[0] for m in seen] == [f"trial {i}/4 (#{i - 1})" for i in range(1, 5)]
        pictured = await client.call_tool("get_optimization", {"id": view["id"], "picture": True, "limit": 2})
        assert any(isinstance(c, ImageContent) for c in pictured.content)
        assert payload(pictured)["more"] is True and len(payload(pictured)["trials"]) == 2
        listed = payload(await client.call_tool("list_optimizations", {}))
        assert view["id"] in [s["id"] for s in listed["studies"]]


async def test_a_portfolio_optimization_runs_each_trial_as_one_account_over_both_markets(server):
    srv, _ = server
    args = {
        "strategy": "trend_following",
        "symbols": ["BTC-USDT", "ETH-USDT"],
        "portfolio": True,
        "trials": 3,
        "min_trades": 1,
        "space": {k: {"min": v.min, "max": v.max} for k, v in SPACE.items()},
    }
    async with connect(srv) as client:
        report = payload(await client.call_tool("optimize_strategy", args))["report"]
        assert report["markets"] == ["synthetic:BTC-USDT+ETH-USDT"]
        assert report["out_of_sample"]["per_market"].keys() == {"synthetic:BTC-USDT+ETH-USDT"}
        alone = await client.call_tool("optimize_strategy", {**args, "symbols": ["BTC-USDT"]})
    assert alone.isError and "name at least 2 symbols" in alone.content[0].text


async def test_a_background_study_is_read_while_running_and_cancel_stops_its_workers(server, jesse_pool):
    _, deps = server
    runner = deps.extras.optimizations
    before = {w["pid"] for w in jesse_pool.status()}
    # 1m routes: trials long enough that one is surely running when cancel comes (5m ones ended in between)
    study = await runner.start(_request(trials=200, base=PlanRequest(timeframe="1m")), wait=False)
    assert runner.view(study, 0, 10).status == "running"

    def busy(view) -> bool:  # trials told, and a batch running in the workers right now
        return view.trials_done >= 2 and any(w["state"] == "busy" for w in jesse_pool.status())

    await anyio.to_thread.run_sync(runner.wait_until, study, busy, hang_guard(120))
    running = runner.view(study, 0, 100)
    assert running.status == "running" and running.best_so_far is not None and running.report is None
    cancelled = await runner.cancel(study)
    assert cancelled.status == "cancelled" and 2 <= cancelled.trials_done < 200
    assert before - {w["pid"] for w in jesse_pool.status()}  # the busy workers were killed and replaced


async def test_cancelling_a_study_a_call_waits_for_ends_that_call_as_cancelled(server):
    _, deps = server
    runner = deps.extras.optimizations
    ids_before = set(runner.ids())
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: runner.start(_request(trials=200, base=PlanRequest(timeframe="5m")), wait=True))

        def started() -> str:
            new = set(runner.ids()) - ids_before
            while not new:
                with runner._changed:
                    runner._changed.wait(0.2)
                new = set(runner.ids()) - ids_before
            (study,) = new
            runner.wait_until(study, lambda v: v.trials_done >= 2, hang_guard(120))
            return study

        with anyio.fail_after(hang_guard(150)):
            study = await anyio.to_thread.run_sync(started)
            view = await runner.cancel(study)
    assert view.status == "cancelled" and view.trials_done < 200  # and the waiting call returned


async def test_proposals_the_strategy_refuses_are_skipped_and_never_count_as_trials(server):
    _, deps = server
    runner = deps.extras.optimizations
    overlapping = {"fast_period": Narrowing(20, 40), "slow_period": Narrowing(21, 41), "adx_period": Narrowing(5, 14)}
    study = await runner.start(_request(space=overlapping, sampler="random"), wait=True)
    view = runner.view(study, 0, 1000)
    assert len(view.trials) == 6 and all(t.params["fast_period"] < t.params["slow_period"] for t in view.trials)
    assert all(isinstance(t.params["fast_period"], int) for t in view.trials)  # ints stay ints
    report = view.report
    assert report.trials.total == 6 and report.trials.failed == 0
    [note] = [n for n in report.notes if "skipped without a backtest" in n]
    assert int(note.split()[0]) > 0  # about half of this space is fast >= slow
    chosen = report.adopt.changes["strategies.trend_following.custom_params"]
    assert isinstance(chosen["fast_period"], int)

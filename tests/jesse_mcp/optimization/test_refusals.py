"""optimize_strategy refusals that come before any trial (limits, search space), and the ranking rule that keeps
infeasible trials from ever being best. No Jesse worker imports Jesse here."""

from __future__ import annotations

import optuna
import pytest
from mcp.shared.memory import create_connected_server_and_client_session as connect
from optuna.distributions import IntDistribution
from optuna.trial import create_trial

from jesse_mcp.optimization.report import pareto, ranked
from jesse_mcp.server import build_server
from shared.server.common import make_deps
from tests.mcp_helpers import text_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def cold(home):
    deps = make_deps("jesse-mcp", home)
    yield build_server(deps, warmup=()), deps
    deps.extras.optimizations.close()
    deps.store.close()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ({"trials": 201}, "201 trials x 1 fold(s) = 201 is above optimize_config.max_trials (200)"),
        ({"trials": 80, "validation": "walk_forward", "folds": 3}, "= 240 is above optimize_config.max_trials (200)"),
        ({"budget_s": 4000}, "budget_s 4000 is above optimize_config.max_budget_s (3600)"),
        ({"space": {"fast": {"min": 1}}}, "Unknown hyperparameter(s) in space: fast."),
        ({"space": {"fast_period": {"min": 1}}}, "widens the declared range 3 .. 200 of fast_period"),
    ],
)
async def test_a_study_beyond_its_limits_or_space_is_refused_before_anything_is_stored(cold, home, args, says):
    server, _ = cold
    async with connect(server) as client:
        result = await client.call_tool("optimize_strategy", {"strategy": "trend_following", **args})
    assert result.isError and says in text_of(result)
    assert list(home.glob("optimization/opt_*.json")) == []  # no study recorded


async def test_more_concurrent_studies_than_configured_are_refused_naming_the_setting(cold):
    server, deps = cold
    deps.extras.optimizations._active.update({"opt_a": None, "opt_b": None})  # two studies already running
    async with connect(server) as client:
        result = await client.call_tool("optimize_strategy", {"strategy": "trend_following"})
    assert result.isError
    assert "2 optimization(s) are running, the most optimize_config.max_concurrent_studies (2) allows" in text_of(
        result
    )


async def test_an_unknown_study_id_says_where_to_find_the_ids(cold):
    server, _ = cold
    async with connect(server) as client:
        result = await client.call_tool("get_optimization", {"id": "opt_missing0"})
    assert result.isError and "list_optimizations" in text_of(result)


def _trial(number: int, values: list[float], feasible: bool) -> optuna.trial.FrozenTrial:
    t = create_trial(
        params={"x": number},
        distributions={"x": IntDistribution(0, 100)},
        values=values,
        user_attrs={"feasible": feasible},
    )
    t.number = number
    return t


def test_an_infeasible_trial_is_never_ranked_however_good_its_value():
    trials = [_trial(0, [1.0], True), _trial(1, [99.0], False), _trial(2, [2.0], True), _trial(3, [2.0], True)]
    assert [t.number for t in ranked(trials, ("sharpe",))] == [2, 3, 0]  # ties by trial number
    assert [t.number for t in ranked(trials, ("max_drawdown",))] == [0, 2, 3]  # smaller drawdown first


def test_the_pareto_front_keeps_feasible_non_dominated_trials_only():
    trials = [
        _trial(0, [10.0, 5.0], True),
        _trial(1, [8.0, 2.0], True),
        _trial(2, [7.0, 6.0], True),  # dominated by 0 (less profit, more drawdown)
        _trial(3, [50.0, 1.0], False),  # would dominate all, but breaches the profile
    ]
    assert [t.number for t in pareto(trials, ("net_profit", "max_drawdown"))] == [0, 1]

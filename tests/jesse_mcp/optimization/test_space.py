"""The search space: the declared hyperparameters, narrowed by the caller and never widened."""

from __future__ import annotations

import pytest
from optuna.distributions import FloatDistribution, IntDistribution

from jesse_mcp.backtesting.catalog import BUILTIN
from jesse_mcp.optimization.space import Narrowing, build_space
from shared.errors import InvalidArgumentsError

TREND = BUILTIN["trend_following"]
RANGES = "valid ranges: fast_period (int, 3 .. 200), slow_period (int, 5 .. 400)"


def test_the_default_space_is_every_declared_hyperparameter_with_its_range():
    space = build_space(TREND, None)
    assert list(space) == [p.name for p in TREND.params]
    assert space["fast_period"] == IntDistribution(3, 200, step=1)
    assert space["adx_min"] == FloatDistribution(0.0, 60.0)


def test_narrowing_keeps_inside_the_declared_range_and_min_equal_max_fixes_a_value():
    space = build_space(TREND, {"fast_period": Narrowing(5, 30, 5), "allow_short": Narrowing(0, 0)})
    assert space["fast_period"] == IntDistribution(5, 30, step=5)
    assert space["allow_short"] == IntDistribution(0, 0)
    assert space["slow_period"] == IntDistribution(5, 400)


def test_an_unknown_name_is_refused_listing_the_valid_ranges():
    with pytest.raises(InvalidArgumentsError) as e:
        build_space(TREND, {"fast": Narrowing(1, 2)})
    assert "Unknown hyperparameter(s) in space: fast." in str(e.value)
    assert RANGES in str(e.value)


@pytest.mark.parametrize(
    ("narrowing", "says"),
    [
        (Narrowing(1, 30), "space.fast_period = 1 .. 30 widens the declared range 3 .. 200"),
        (Narrowing(None, 500), "space.fast_period = 3 .. 500 widens the declared range 3 .. 200"),
        (Narrowing(30, 10), "space.fast_period: min 30 is above max 10"),
        (Narrowing(3.5, 10), "give whole-number bounds"),
    ],
)
def test_a_bound_outside_the_declared_range_is_refused_with_the_valid_ranges(narrowing, says):
    with pytest.raises(InvalidArgumentsError) as e:
        build_space(TREND, {"fast_period": narrowing})
    assert says in str(e.value) and RANGES in str(e.value)


@pytest.mark.parametrize(
    ("name", "narrowing", "says"),
    [
        ("fast_period", Narrowing(5, 30, 0.5), "step must be a whole number for an int hyperparameter, got 0.5"),
        ("fast_period", Narrowing(5, 30, 0), "step must be a positive number, got 0"),
        (
            "fast_period",
            Narrowing(5, 30, 7),
            "step 7 does not divide the range 5 .. 30 into whole steps; use a max of 26",
        ),
        ("adx_min", Narrowing(0, 10, 3), "step 3 does not divide the range 0 .. 10 into whole steps; use a max of 9"),
    ],
)
def test_a_bad_step_is_refused_saying_what_fits(name, narrowing, says):
    with pytest.raises(InvalidArgumentsError) as e:
        build_space(TREND, {name: narrowing})
    assert says in str(e.value) and RANGES in str(e.value)

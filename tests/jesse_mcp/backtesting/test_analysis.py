"""The numerics module: stress scenarios, trade Monte Carlo, candle bootstrap, Sharpe statistics, regimes."""

from __future__ import annotations

import itertools
import json
import math
from statistics import NormalDist

import numpy as np
import pytest

from jesse_mcp.backtesting.analysis import resampling
from jesse_mcp.backtesting.analysis.resampling import block_bootstrap_candles, max_drawdown_fraction, monte_carlo_trades
from jesse_mcp.backtesting.analysis.scenarios import (
    apply_price_path,
    crash_2020,
    flash_crash,
    gap_down,
    volatility_shock,
)
from jesse_mcp.backtesting.analysis.sharpe import (
    daily_closes,
    deflated_sharpe_ratio,
    detect_regimes,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_of,
)

TS, OPEN, CLOSE, HIGH, LOW, VOLUME = range(6)
DAY0_MS = 1_600_041_600_000  # 2020-09-14 00:00 UTC
DAY = 1440


def random_walk(days: int = 30, seed: int = 7, sigma: float = 0.001) -> np.ndarray:
    """Contiguous 1-minute candles of a seeded log random walk starting at 100, opens equal to the previous close."""
    n = days * DAY
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, sigma, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.001, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.001, n))
    return np.column_stack([DAY0_MS + 60_000 * np.arange(n), open_, close, high, low, rng.uniform(1, 10, n)])


def flat(days: int = 30, price: float = 100.0) -> np.ndarray:
    n = days * DAY
    rows = np.full((n, 6), price)
    rows[:, TS] = DAY0_MS + 60_000 * np.arange(n)
    rows[:, VOLUME] = 2.0
    return rows


@pytest.fixture(scope="module")
def candles() -> np.ndarray:
    rows = random_walk()
    rows.flags.writeable = False  # any in-place write by the code under test raises
    return rows


def assert_valid(out: np.ndarray, original: np.ndarray) -> None:
    assert out.shape == original.shape
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[:, TS], original[:, TS])
    assert np.all(out[:, OPEN:VOLUME] > 0)
    assert np.all(out[:, HIGH] >= np.maximum(out[:, OPEN], out[:, CLOSE]))
    assert np.all(out[:, LOW] <= np.minimum(out[:, OPEN], out[:, CLOSE]))
    assert np.all(out[:, VOLUME] >= 0)


def log_returns(rows: np.ndarray) -> np.ndarray:
    return np.diff(np.log(rows[:, CLOSE]))


SCENARIOS = [
    pytest.param(lambda rows: flash_crash(rows, 1000), id="flash_crash"),
    pytest.param(lambda rows: flash_crash(rows, 0, depth=0.9, recovery=0.0, recovery_minutes=0), id="flash_crash_0"),
    pytest.param(lambda rows: volatility_shock(rows, 1000), id="volatility_shock"),
    pytest.param(lambda rows: volatility_shock(rows, 1000, factor=60.0, minutes=3 * DAY), id="volatility_x60"),
    pytest.param(lambda rows: gap_down(rows, 1000), id="gap_down"),
    pytest.param(lambda rows: crash_2020(rows, 1000), id="crash_2020"),
    pytest.param(lambda rows: crash_2020(rows, 22 * DAY), id="crash_2020_cut"),
]


# ---------------------------------------------------------------------------------------------- price paths


def test_apply_price_path_scales_closes_and_keeps_opens_on_the_previous_close(candles):
    factor = np.linspace(1.0, 0.5, len(candles))
    out = apply_price_path(candles, factor)
    np.testing.assert_allclose(out[:, CLOSE], candles[:, CLOSE] * factor)
    np.testing.assert_array_equal(out[1:, OPEN], out[:-1, CLOSE])
    assert out[0, OPEN] == candles[0, OPEN]
    assert_valid(out, candles)


def test_apply_price_path_widens_wicks_to_cover_a_jumping_open(candles):
    factor = np.where(np.arange(len(candles)) < 500, 1.0, 2.0)  # minute 500 opens at 1x, closes at 2x
    out = apply_price_path(candles, factor)
    assert out[500, OPEN] == candles[500, OPEN]
    assert out[500, LOW] <= out[500, OPEN]
    assert_valid(out, candles)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_keeps_candles_valid_and_the_input_unchanged(candles, scenario):
    before = candles.copy()
    out, info = scenario(candles)
    assert_valid(out, candles)
    np.testing.assert_array_equal(candles, before)
    assert json.loads(json.dumps(info, allow_nan=False)) == info
    assert {"name", "first_index", "last_index", "parameters", "worst_factor", "level_after"} <= info.keys()


def test_scenarios_accept_a_writable_input_without_modifying_it():
    rows = random_walk(days=8)
    before = rows.copy()
    crash_2020(rows, 0)
    np.testing.assert_array_equal(rows, before)


# ---------------------------------------------------------------------------------------------- stress scenarios


def test_flash_crash_reaches_minus_depth_at_the_end_of_the_fall(candles):
    out, info = flash_crash(candles, 1000, depth=0.30, minutes=60)
    assert out[1059, CLOSE] / candles[1059, CLOSE] == pytest.approx(0.70)
    assert out[1059, LOW] == pytest.approx(candles[1059, LOW] * 0.70)
    assert np.argmin(out[:5000, LOW]) in range(1050, 1070)
    assert out[:5000, LOW].min() / candles[999, CLOSE] == pytest.approx(0.70, abs=0.03)
    assert info["worst_factor"] == pytest.approx(0.70)
    assert (info["first_index"], info["last_index"]) == (1000, 1419)


def test_flash_crash_settles_at_the_recovered_level_for_the_rest_of_the_series(candles):
    out, info = flash_crash(candles, 1000, depth=0.30, minutes=60, recovery=0.5, recovery_minutes=360)
    np.testing.assert_allclose(out[1419:, CLOSE] / candles[1419:, CLOSE], 1 - 0.3 * 0.5)
    np.testing.assert_array_equal(out[:1000], candles[:1000])
    assert info["level_after"] == pytest.approx(0.85)


def test_flash_crash_multiplies_volume_by_five_during_the_fall_only(candles):
    out, _ = flash_crash(candles, 1000, minutes=60)
    np.testing.assert_allclose(out[1000:1060, VOLUME], candles[1000:1060, VOLUME] * 5)
    np.testing.assert_array_equal(out[1060:, VOLUME], candles[1060:, VOLUME])


def test_gap_down_opens_below_the_previous_close_by_the_gap(candles):
    out, info = gap_down(candles, 2000, gap=0.15)
    assert out[2000, OPEN] == pytest.approx(out[1999, CLOSE] * 0.85)
    np.testing.assert_allclose(out[2000:, 1:5], candles[2000:, 1:5] * 0.85)
    np.testing.assert_array_equal(out[:2000], candles[:2000])
    assert info["level_after"] == pytest.approx(0.85)


def test_volatility_shock_multiplies_the_std_of_log_returns_in_the_window(candles):
    out, _ = volatility_shock(candles, 1000, factor=3.0, minutes=7 * DAY)
    window = slice(999, 1000 + 7 * DAY - 1)  # returns into minutes 1000 .. end of window
    ratio = np.std(log_returns(out)[window]) / np.std(log_returns(candles)[window])
    assert ratio == pytest.approx(3.0, rel=1e-6)


def test_volatility_shock_leaves_prices_outside_the_window_in_place(candles):
    out, info = volatility_shock(candles, 1000, factor=3.0, minutes=DAY)
    np.testing.assert_array_equal(out[:1000], candles[:1000])
    np.testing.assert_allclose(out[1000 + DAY :, 1:5], candles[1000 + DAY :, 1:5], rtol=1e-9)
    assert info["level_after"] == pytest.approx(1.0)


def test_volatility_shock_widens_wicks_relative_to_the_close(candles):
    out, _ = volatility_shock(candles, 1000, factor=2.0, minutes=DAY)
    i = 1500
    assert np.log(out[i, HIGH] / out[i, CLOSE]) >= 2.0 * np.log(candles[i, HIGH] / candles[i, CLOSE]) - 1e-12


def test_crash_2020_follows_the_march_2020_shape_on_a_flat_market():
    rows = flat(days=30)
    out, info = crash_2020(rows, DAY)
    level = out[:, CLOSE] / 100.0
    assert level[DAY + 719] == pytest.approx(0.85)
    assert level[DAY + 2159] == pytest.approx(0.50)  # -50 % after 36 hours
    assert level[DAY + 2159] / level[DAY + 719] == pytest.approx(0.50 / 0.85)  # most of it in the one day after
    assert level[DAY + 21 * DAY - 1 :] == pytest.approx(0.70)
    assert info["recovery_cut"] is False
    assert "March 2020" in info["shape"]


def test_crash_2020_triples_volatility_for_seven_days(candles):
    out, _ = crash_2020(candles, 1000)
    after_fall = slice(1000 + 2160, 1000 + 7 * DAY - 1)  # the bounce phase has a tiny drift only
    ratio = np.std(log_returns(out)[after_fall]) / np.std(log_returns(candles)[after_fall])
    assert ratio == pytest.approx(3.0, rel=0.02)


def test_crash_2020_cuts_the_recovery_at_the_end_of_the_data(candles):
    _, info = crash_2020(candles, 22 * DAY)
    assert info["recovery_cut"] is True
    assert info["last_index"] == len(candles) - 1


# ---------------------------------------------------------------------------------------------- Monte Carlo


def test_max_drawdown_is_the_largest_fall_from_a_running_peak():
    assert max_drawdown_fraction(np.array([100.0, 110.0, 90.0, 95.0, 120.0, 108.0])) == pytest.approx(20 / 110)
    assert max_drawdown_fraction(np.array([100.0, 101.0, 102.0])) == 0.0


def test_equity_at_or_below_zero_is_ruin_with_a_full_drawdown():
    assert max_drawdown_fraction(np.array([100.0, 150.0, -50.0, 250.0])) == 1.0
    result = monte_carlo_trades([50.0, -200.0, 300.0], 100.0, n_simulations=50)
    assert result["original"] == {"return_pct": -100.0, "max_drawdown_pct": 100.0}
    assert result["probability_of_ruin"] > 0
    assert result["max_drawdown_pct"]["p95"] == 100.0


def test_monte_carlo_reports_the_original_order_by_hand():
    result = monte_carlo_trades([10.0, -20.0, 5.0], 100.0, n_simulations=10)
    assert result["original"]["return_pct"] == pytest.approx(-5.0)
    assert result["original"]["max_drawdown_pct"] == pytest.approx(100 * 20 / 110)
    assert (result["method"], result["simulations"], result["trades"]) == ("shuffle", 10, 3)


def test_shuffle_keeps_the_final_return_exactly_and_varies_the_drawdown():
    pnls = np.random.default_rng(3).normal(5.0, 40.0, 300)
    result = monte_carlo_trades(pnls, 10_000.0, n_simulations=500, seed=1)
    returns = result["return_pct"]
    assert returns["p5"] == returns["p50"] == returns["p95"] == result["original"]["return_pct"]
    assert returns["mean"] == pytest.approx(returns["p50"])
    assert result["max_drawdown_pct"]["p5"] < result["max_drawdown_pct"]["p95"]


def test_shuffle_drawdown_probability_matches_the_six_orders_by_hand():
    # orders of (+10, -20, +5) from 100: drawdowns 20/110, 20/115, 20/80 x2, 20/115, 20/105 -> 3 of 6 exceed 0.19
    result = monte_carlo_trades([10.0, -20.0, 5.0], 100.0, n_simulations=20_000, drawdown_threshold=0.19)
    assert result["probability_drawdown_exceeds"] == pytest.approx(0.5, abs=0.02)
    assert result["max_drawdown_pct"]["p5"] >= 100 * 20 / 115 - 1e-9
    assert result["max_drawdown_pct"]["p95"] <= 25.0 + 1e-9
    assert result["probability_of_loss"] == 1.0


def test_bootstrap_varies_the_final_return_and_is_deterministic_for_a_seed():
    pnls = np.random.default_rng(3).normal(1.0, 40.0, 300)
    first = monte_carlo_trades(pnls, 10_000.0, n_simulations=300, method="bootstrap", seed=4)
    again = monte_carlo_trades(pnls, 10_000.0, n_simulations=300, method="bootstrap", seed=4)
    other = monte_carlo_trades(pnls, 10_000.0, n_simulations=300, method="bootstrap", seed=5)
    assert first == again
    assert first != other
    assert first["return_pct"]["p5"] < first["return_pct"]["p95"]
    assert 0.0 < first["probability_of_loss"] < 1.0
    assert first["probability_drawdown_exceeds"] is None


def test_monte_carlo_builds_many_paths_in_chunks(monkeypatch):
    monkeypatch.setattr(resampling, "_CHUNK_CELLS", 10)  # 5 paths of 2 trades per chunk
    # orders of (+10, -30) from 100: drawdowns 30/110 and 30/100, both above 0.25
    shuffled = monte_carlo_trades([10.0, -30.0], 100.0, n_simulations=23, drawdown_threshold=0.25)
    assert shuffled["simulations"] == 23
    assert shuffled["probability_drawdown_exceeds"] == 1.0
    assert shuffled["max_drawdown_pct"]["p5"] == pytest.approx(100 * 30 / 110)
    assert shuffled["max_drawdown_pct"]["p95"] == pytest.approx(30.0)
    resampled = monte_carlo_trades([10.0, -30.0], 100.0, n_simulations=23, method="bootstrap")
    assert resampled["simulations"] == 23 and resampled["max_drawdown_pct"]["p95"] == pytest.approx(60.0)


# ---------------------------------------------------------------------------------------------- block bootstrap


def test_block_bootstrap_keeps_timestamps_validity_and_the_starting_open(candles):
    out = block_bootstrap_candles(candles, seed=5)
    assert_valid(out, candles)
    assert out[0, OPEN] == pytest.approx(candles[0, OPEN])
    assert np.isin(out[:, VOLUME], candles[:, VOLUME]).all()


def test_block_bootstrap_draws_contiguous_blocks_of_original_minutes(candles):
    out = block_bootstrap_candles(candles, seed=5, block_minutes=DAY)
    source = np.searchsorted(np.sort(candles[:, VOLUME]), out[:, VOLUME])
    order = np.argsort(candles[:, VOLUME])[source]  # original minute of each new minute (volumes are unique)
    assert np.all(np.diff(order[:DAY]) == 1)
    np.testing.assert_allclose(log_returns(out)[: DAY - 1], log_returns(candles)[order[1] - 1 : order[DAY - 1]])


def test_block_bootstrap_is_deterministic_for_a_seed_and_differs_across_seeds(candles):
    first = block_bootstrap_candles(candles, seed=5)
    np.testing.assert_array_equal(first, block_bootstrap_candles(candles, seed=5))
    assert not np.array_equal(first, block_bootstrap_candles(candles, seed=6))


# ---------------------------------------------------------------------------------------------- Sharpe statistics


def phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_sharpe_of_is_mean_over_sample_std():
    assert sharpe_of([0.01, 0.03]) == pytest.approx(0.02 / math.sqrt(2 * 0.01**2))
    assert sharpe_of([0.01]) is None
    assert sharpe_of([0.001] * 10) is None


def test_probabilistic_sharpe_matches_the_formula_by_hand():
    assert probabilistic_sharpe_ratio(0.1, 101, 0.0, 3.0) == pytest.approx(phi(0.1 * 10 / math.sqrt(1.005)))
    expected = phi((0.1 - 0.05) * 10 / math.sqrt(1 + 0.1 + 5 / 4 * 0.01))
    assert probabilistic_sharpe_ratio(0.1, 101, -1.0, 6.0, benchmark=0.05) == pytest.approx(expected)


def test_probabilistic_sharpe_is_none_when_undefined():
    assert probabilistic_sharpe_ratio(0.1, 1, 0.0, 3.0) is None
    assert probabilistic_sharpe_ratio(1.0, 100, 3.0, 1.0) is None  # 1 - 3 + 0 <= 0


def test_probabilistic_sharpe_rises_with_the_sharpe_ratio():
    values = [probabilistic_sharpe_ratio(sr, 250, -0.5, 5.0) for sr in (-0.05, 0.0, 0.05, 0.1)]
    assert values == sorted(values) and len(set(values)) == 4


def test_expected_max_sharpe_for_a_thousand_trials():
    # Phi^-1(0.999) = 3.090232 from a normal table; the other quantile from the standard library
    g = 0.5772156649015329
    expected = (1 - g) * 3.090232306 + g * NormalDist().inv_cdf(1 - 1 / (1000 * math.e))
    assert expected_max_sharpe(1000, 1.0) == pytest.approx(expected, rel=1e-8)
    assert expected_max_sharpe(1000, 4.0) == pytest.approx(2 * expected, rel=1e-8)
    assert expected_max_sharpe(1, 1.0) == 0.0


def test_deflated_sharpe_matches_a_small_example_by_hand():
    r = [0.02, -0.01, 0.03, 0.0, 0.01, -0.02, 0.025, 0.005]
    n = len(r)
    mean = sum(r) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / (n - 1))
    m2 = sum((x - mean) ** 2 for x in r) / n
    skew = sum((x - mean) ** 3 for x in r) / n / m2**1.5
    kurt = sum((x - mean) ** 4 for x in r) / n / m2**2
    sr = mean / sd
    term = 1 - skew * sr + (kurt - 1) / 4 * sr**2
    sr0 = expected_max_sharpe(10, term / (n - 1))
    result = deflated_sharpe_ratio(np.array(r), 10)
    assert result["sharpe_per_period"] == pytest.approx(sr)
    assert (result["skew"], result["kurtosis"]) == (pytest.approx(skew), pytest.approx(kurt))
    assert result["expected_max_sharpe"] == pytest.approx(sr0)
    assert result["deflated_sharpe"] == pytest.approx(phi((sr - sr0) * math.sqrt(n - 1) / math.sqrt(term)))
    assert result["probabilistic_sharpe"] == pytest.approx(phi(sr * math.sqrt(n - 1) / math.sqrt(term)))


def test_deflated_sharpe_falls_as_more_trials_were_run():
    returns = np.random.default_rng(1).normal(0.002, 0.02, 500)
    values = [deflated_sharpe_ratio(returns, n)["deflated_sharpe"] for n in (1, 10, 100, 1000)]
    assert values == sorted(values, reverse=True) and len(set(values)) == 4
    assert values[0] == pytest.approx(deflated_sharpe_ratio(returns, 1)["probabilistic_sharpe"])


def test_deflated_sharpe_uses_the_variance_of_the_trial_sharpes():
    returns = np.random.default_rng(1).normal(0.002, 0.02, 500)
    trials = np.array([0.01, 0.05, -0.02, 0.08, 0.03])
    result = deflated_sharpe_ratio(returns, 20, trial_sharpes=trials)
    assert result["sharpe_variance"] == pytest.approx(np.var(trials, ddof=1))
    assert result["expected_max_sharpe"] == pytest.approx(expected_max_sharpe(20, np.var(trials, ddof=1)))


def test_deflated_sharpe_of_constant_returns_is_none_not_nan():
    result = deflated_sharpe_ratio(np.full(30, 0.001), 5)
    assert result["sharpe_per_period"] is None
    assert result["deflated_sharpe"] is None and result["probabilistic_sharpe"] is None
    json.dumps(result, allow_nan=False)


def test_deflated_sharpe_of_two_returns_is_defined():
    result = deflated_sharpe_ratio([0.01, 0.03], 3)
    assert result["kurtosis"] == pytest.approx(1.0)
    assert 0.0 <= result["deflated_sharpe"] <= result["probabilistic_sharpe"] <= 1.0


# ---------------------------------------------------------------------------------------------- regimes


def up_flat_down(seed: int = 2) -> np.ndarray:
    drift = np.concatenate([np.full(30, 0.01), np.zeros(30), np.full(30, -0.01)])
    noise = np.random.default_rng(seed).normal(0.0, 0.005, 90)
    return 100.0 * np.exp(np.cumsum(drift + noise))


def test_detect_regimes_finds_up_range_and_down_in_order():
    segments = detect_regimes(up_flat_down())
    assert [s["regime"] for s in segments] == ["trend_up", "range", "trend_down"]
    assert segments[0]["start"] == 0 and segments[-1]["end"] == 89
    assert all(a["end"] + 1 == b["start"] for a, b in itertools.pairwise(segments))
    assert sum(s["days"] for s in segments) == 90
    assert segments[0]["return_pct"] > 0 > segments[-1]["return_pct"]


def test_detect_regimes_segment_returns_compound_to_the_whole_series():
    close = up_flat_down()
    segments = detect_regimes(close)
    growth = math.prod(1 + s["return_pct"] / 100 for s in segments)
    assert growth == pytest.approx(close[-1] / close[0])


def test_detect_regimes_labels_a_sharp_fall_as_a_crash():
    close = np.concatenate([np.full(30, 100.0), 100.0 * 0.97 ** np.arange(1, 16), np.full(20, 100.0 * 0.97**15)])
    regimes = [s["regime"] for s in detect_regimes(close)]
    assert "crash" in regimes
    assert regimes[0] == "range"


def test_detect_regimes_merges_runs_shorter_than_min_days():
    close = up_flat_down()
    assert all(s["days"] >= 7 for s in detect_regimes(close, min_days=7))
    assert len(detect_regimes(close, min_days=90)) == 1


def test_daily_closes_takes_the_last_minute_of_each_utc_day():
    rows = random_walk(days=3)[600:]  # starts at 10:00 UTC: a partial first day
    starts, closes = daily_closes(rows)
    np.testing.assert_array_equal(starts, DAY0_MS + 86_400_000 * np.arange(3))
    np.testing.assert_array_equal(closes, rows[[DAY - 601, 2 * DAY - 601, -1], CLOSE])


# ---------------------------------------------------------------------------------------------- bad input

N = 30 * DAY


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: flash_crash(r, 1000, depth=1.5), "depth must be between 0 and 1 (exclusive), got 1.5"),
        (lambda r: flash_crash(r, N), f"at_index {N} is outside the data"),
        (lambda r: flash_crash(r, N - 100), "needs 420 minutes from at_index 43100 but only 100 are available"),
        (lambda r: flash_crash(r, 10, recovery_minutes=0), "recovery_minutes must be at least 1"),
        (lambda r: flash_crash(r, 10.5), "at_index must be a whole number"),
        (lambda r: flash_crash(r, -1), "at_index must be at least 0"),
        (lambda r: volatility_shock(r, 10, factor=0), "factor must be between 0 and 100"),
        (lambda r: volatility_shock(r, N - 5, minutes=10), "needs 10 minutes"),
        (lambda r: gap_down(r, 0), "at_index must be at least 1"),
        (lambda r: gap_down(r, 10, gap=float("nan")), "gap must be a finite number"),
        (lambda r: crash_2020(r, N - DAY), "crash_2020 needs 10080 minutes"),
        (lambda r: apply_price_path(r, np.ones(5)), "factor must have one value per candle (43200), got 5"),
        (lambda r: apply_price_path(r, -np.ones(N)), "factor must be above 0 everywhere"),
        (lambda r: block_bootstrap_candles(r, seed=1, block_minutes=N), "needs at least 2 blocks of data"),
        (lambda r: block_bootstrap_candles(r, seed=-1), "seed must be at least 0"),
        (lambda r: flash_crash(r[:, :5], 10), "shape (N, 6)"),
        (lambda r: flash_crash(np.delete(r, 7, axis=0), 10), "contiguous 1-minute candles"),
    ],
)
def test_bad_candle_input_says_what_to_fix(candles, call, message):
    with pytest.raises(ValueError) as error:
        call(candles)
    assert message in str(error.value)


def test_candles_with_a_bad_price_are_rejected_with_the_row():
    rows = random_walk(days=1)
    rows[12, CLOSE] = 0.0
    with pytest.raises(ValueError, match="row 12 has a NaN/inf, a price <= 0"):
        gap_down(rows, 5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: monte_carlo_trades([5.0], 100.0), "Monte Carlo needs at least 2 closed trades, got 1"),
        (lambda: monte_carlo_trades([5.0, 1.0], 0.0), "starting_balance must be above 0"),
        (lambda: monte_carlo_trades([5.0, 1.0], 100.0, method="permute"), "method must be 'shuffle' or 'bootstrap'"),
        (lambda: monte_carlo_trades([5.0, 1.0], 100.0, drawdown_threshold=20), "(0.2 = 20 %), got 20"),
        (lambda: monte_carlo_trades([5.0, math.inf], 100.0), "pnls contains NaN or inf at position 1"),
        (lambda: monte_carlo_trades([5.0, 1.0], 100.0, n_simulations=0), "n_simulations must be between 1"),
        (lambda: max_drawdown_fraction([0.0, 5.0]), "equity must be a non-empty curve that starts above 0"),
        (lambda: probabilistic_sharpe_ratio(0.1, 100, 0.0, 0.5), "kurtosis must be non-excess"),
        (lambda: expected_max_sharpe(0, 1.0), "n_trials must be between 1"),
        (lambda: expected_max_sharpe(5, -1.0), "sharpe_variance must be at least 0"),
        (lambda: deflated_sharpe_ratio([0.01], 5), "needs at least 2 returns, got 1"),
        (lambda: deflated_sharpe_ratio([0.01, 0.02], 2, trial_sharpes=[0.1, 0.2, 0.3]), "cannot be below the 3"),
        (lambda: detect_regimes(np.ones(10)), "needs at least window + 1 = 15 daily closes, got 10"),
        (lambda: detect_regimes(np.ones(30), trend_threshold=10), "trend_threshold must be between 0 and 1"),
        (lambda: detect_regimes(-np.ones(30)), "daily_close must be above 0 everywhere"),
    ],
)
def test_bad_numeric_input_says_what_to_fix(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value)

"""VaR and CVaR golden values: each estimate against an independent computation (scipy, or by hand)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from jesse_mcp.backtesting.analysis.tail_risk import MIN_RETURNS, all_tail_risks, tail_risk
from jesse_mcp.backtesting.tail_report import daily_returns, tail_risk_of


@pytest.fixture
def returns() -> np.ndarray:
    """Two years of fat-tailed daily returns with a long left tail (student-t 3 plus a few crashes)."""
    rng = np.random.default_rng(7)
    r = 0.0004 + 0.012 * rng.standard_t(3, 730) / np.sqrt(3)
    r[[50, 300, 600]] = [-0.09, -0.12, -0.07]
    return r


def test_historical_on_a_series_small_enough_to_check_by_hand():
    r = np.array([-0.05, -0.04, -0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03, 0.04, 0.05])  # 11 values
    risk = tail_risk(r, 0.9, "historical")
    # the 10 % quantile of 11 sorted values sits at position 0.1 * 10 = 1: exactly -0.04
    assert risk.var == pytest.approx(0.04, abs=1e-15)
    assert risk.cvar == pytest.approx(0.045, abs=1e-15)  # mean of -0.05 and -0.04


def test_historical_between_order_statistics_interpolates_like_hyndman_fan_type_7(returns):
    risk = tail_risk(returns, 0.95, "historical")
    s = np.sort(returns)
    h = (len(s) - 1) * 0.05
    lo = int(np.floor(h))
    q = s[lo] + (h - lo) * (s[lo + 1] - s[lo])
    assert risk.var == pytest.approx(-q, rel=1e-12)
    assert risk.cvar == pytest.approx(-s[s <= q].mean(), rel=1e-12)


@pytest.mark.parametrize("confidence", [0.90, 0.95, 0.99])
def test_parametric_equals_scipy_normal(returns, confidence):
    mu, sd = returns.mean(), returns.std(ddof=1)
    z = stats.norm.ppf(1 - confidence)
    risk = tail_risk(returns, confidence, "parametric")
    assert risk.var == pytest.approx(-(mu + sd * z), rel=1e-9)
    assert risk.cvar == pytest.approx(-(mu - sd * stats.norm.pdf(z) / (1 - confidence)), rel=1e-9)


@pytest.mark.parametrize("confidence", [0.90, 0.95, 0.99])
def test_cornish_fisher_equals_scipy_moments_and_quadrature(returns, confidence):
    mu, sd = returns.mean(), returns.std(ddof=1)
    s, k = stats.skew(returns), stats.kurtosis(returns)  # population moments, excess kurtosis

    def q(p: float) -> float:
        z = stats.norm.ppf(p)
        return z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36

    alpha = 1 - confidence
    expected_es = -(mu + sd * integrate.quad(q, 0, alpha, limit=200)[0] / alpha)
    risk = tail_risk(returns, confidence, "cornish_fisher")
    assert risk.var == pytest.approx(-(mu + sd * q(alpha)), rel=1e-9)
    assert risk.cvar == pytest.approx(max(expected_es, risk.var), rel=2e-3)  # midpoint rule on 2,000 points


def test_fat_left_tail_raises_cornish_fisher_above_the_normal_estimate(returns):
    by = {t.method: t for t in all_tail_risks(returns, 0.99)}
    assert by["cornish_fisher"].var > by["parametric"].var
    assert all(t.cvar >= t.var for t in by.values())


def test_too_few_returns_or_constant_returns_are_undefined_not_zero():
    assert tail_risk(np.full(MIN_RETURNS - 1, -0.01), 0.95, "historical").var is None
    flat = tail_risk(np.full(50, 0.001), 0.95, "parametric")
    assert (flat.var, flat.cvar) == (None, None)
    assert tail_risk(np.full(50, 0.001), 0.95, "historical").var == pytest.approx(-0.001)


@pytest.mark.parametrize(
    ("values", "confidence", "method", "message"),
    [
        ([0.01] * 20, 1.0, "historical", "confidence must be between 0.5 and 1"),
        ([0.01] * 20, 0.3, "parametric", "confidence must be between 0.5 and 1"),
        ([0.01, float("nan")] * 10, 0.95, "historical", "NaN or inf at position 1"),
        ([0.01] * 20, 0.95, "gaussian", "method must be one of historical, parametric, cornish_fisher"),
    ],
)
def test_bad_input_says_what_to_fix(values, confidence, method, message):
    with pytest.raises(ValueError, match=message):
        tail_risk(np.array(values), confidence, method)


def test_a_backtest_reports_the_three_estimates_of_its_daily_equity_returns():
    equity = [[86_400.0 * i, 10_000 * (1 + 0.01 * ((i * 7) % 5 - 2))] for i in range(30)]
    values = np.array([v for _, v in equity])
    returns = values[1:] / values[:-1] - 1
    np.testing.assert_array_equal(daily_returns(equity), returns)
    report = tail_risk_of(returns, 0.95)
    assert report.confidence == 0.95 and report.daily_returns == 29
    assert [e.method for e in report.estimates] == ["historical", "parametric", "cornish_fisher"]
    hist = tail_risk(returns, 0.95, "historical")
    assert report.estimates[0].var_pct == pytest.approx(hist.var * 100, abs=1e-4)
    assert report.estimates[0].cvar_pct == pytest.approx(hist.cvar * 100, abs=1e-4)
    assert daily_returns(equity[:1]).size == 0 and tail_risk_of(np.array([]), 0.99).estimates[0].var_pct is None


def test_the_quantile_is_numpys_linear_one_bit_for_bit():
    from jesse_mcp.backtesting.analysis.tail_risk import quantile

    rng = np.random.default_rng(5)
    for _ in range(2000):
        r = rng.standard_t(3, int(rng.integers(2, 300))) * 0.02
        p = float(rng.choice([0.01, 0.05, 0.1, rng.uniform(0.0, 1.0)]))
        assert quantile(r, p) == float(np.quantile(r, p))

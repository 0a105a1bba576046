"""Value at Risk and Conditional Value at Risk (expected shortfall) of a series of per-period returns.

Three estimates at a confidence level c (0.95 = 95 %), all reported as positive loss fractions of equity (0.031 is a
3.1 % loss; a negative number means even the tail is a gain):

- historical: the empirical quantile. VaR is minus the (1 - c) quantile of the returns (numpy's default linear
  interpolation between order statistics); CVaR is minus the mean of the returns at or below that quantile.
- parametric: a normal distribution with the sample mean and standard deviation (ddof=1).
  VaR = -(mu + sigma z), CVaR = -(mu - sigma phi(z) / (1 - c)), with z the standard normal (1 - c) quantile.
- cornish_fisher: the normal quantile corrected for the sample's skewness S and excess kurtosis K (population
  moments), z_cf = z + (z^2 - 1) S / 6 + (z^3 - 3 z) K / 24 - (2 z^3 - 5 z) S^2 / 36, so fat tails and a long left
  tail raise the estimate. VaR = -(mu + sigma z_cf); CVaR is the mean of the corrected quantile function over the
  tail, -(mu + sigma * (1 / (1 - c)) * integral_0^(1-c) z_cf(p) dp), by the midpoint rule on 2,000 points.

Written with numpy and statistics.NormalDist: scipy is not a dependency of the project (the tests check these
against scipy). Undefined results (too few returns, zero variance for the parametric ones) are None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

from jesse_mcp.backtesting.analysis.checks import _between, _vector

Method = Literal["historical", "parametric", "cornish_fisher"]
METHODS: tuple[Method, ...] = ("historical", "parametric", "cornish_fisher")
MIN_RETURNS = 10  # fewer daily returns than this say nothing about a 1-in-20 day
_TAIL_POINTS = 2000
_NORMAL = NormalDist()


@dataclass(frozen=True)
class TailRisk:
    method: Method
    confidence: float
    var: float | None
    cvar: float | None


def _moments(r: np.ndarray) -> tuple[float, float, float, float]:
    """mean, standard deviation (ddof=1), skewness and excess kurtosis (population moments)."""
    mu = float(np.mean(r))
    centred = r - mu
    m2 = float(np.mean(centred**2))
    sd = float(np.std(r, ddof=1))
    if m2 <= 0:
        return mu, sd, 0.0, 0.0
    skew = float(np.mean(centred**3)) / m2**1.5
    kurt = float(np.mean(centred**4)) / m2**2 - 3.0
    return mu, sd, skew, kurt


def _cf_quantile(z: np.ndarray | float, skew: float, kurt: float) -> np.ndarray | float:
    return z + (z**2 - 1) * skew / 6 + (z**3 - 3 * z) * kurt / 24 - (2 * z**3 - 5 * z) * skew**2 / 36


def quantile(r: np.ndarray, p: float) -> float:
    """np.quantile(r, p) of a 1-d array, bit for bit (numpy's default 'linear': virtual index (n - 1) p, its _lerp),
    from the two order statistics np.partition places: np.quantile's own overhead is ~40 us on 90 returns, and the
    max_cvar check asks this for every paper order and every entry of a portfolio backtest."""
    n = len(r)
    virtual = (n - 1) * p
    below = int(np.floor(virtual))
    above = min(below + 1, n - 1)
    part = np.partition(r, [below, above] if above != below else below)
    a, b, t = part[below], part[above], virtual - below
    d = b - a
    return float(b - d * (1 - t)) if t >= 0.5 else float(a + d * t)


def historical(r: np.ndarray, confidence: float) -> tuple[float, float]:
    q = quantile(r, 1 - confidence)
    tail = r[r <= q]
    return -q, -float(np.mean(tail))


def parametric(r: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    mu, sd, _, _ = _moments(r)
    if sd <= 1e-12 * max(1.0, float(np.max(np.abs(r)))):
        return None, None
    z = _NORMAL.inv_cdf(1 - confidence)
    return -(mu + sd * z), -(mu - sd * _NORMAL.pdf(z) / (1 - confidence))


def cornish_fisher(r: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    mu, sd, skew, kurt = _moments(r)
    if sd <= 1e-12 * max(1.0, float(np.max(np.abs(r)))):
        return None, None
    alpha = 1 - confidence
    var = -(mu + sd * float(_cf_quantile(_NORMAL.inv_cdf(alpha), skew, kurt)))
    p = (np.arange(_TAIL_POINTS) + 0.5) * (alpha / _TAIL_POINTS)
    z = np.array([_NORMAL.inv_cdf(float(x)) for x in p])
    cvar = -(mu + sd * float(np.mean(_cf_quantile(z, skew, kurt))))
    # the expansion is not monotone for extreme skew/kurtosis; the shortfall is never below the VaR
    return var, max(cvar, var)


_ESTIMATORS = {"historical": historical, "parametric": parametric, "cornish_fisher": cornish_fisher}


def tail_risk(returns: np.ndarray, confidence: float, method: Method) -> TailRisk:
    """VaR and CVaR of `returns` (per period, fractions) at `confidence` by `method`. ValueError on bad input."""
    r = _vector("returns", returns)
    c = _between("confidence", confidence, 0.5, 1.0, hint=" (0.95 = 95 %)")
    if method not in _ESTIMATORS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if len(r) < MIN_RETURNS:
        return TailRisk(method, c, None, None)
    var, cvar = _ESTIMATORS[method](r, c)
    clean = [None if v is None or not math.isfinite(v) else float(v) for v in (var, cvar)]
    return TailRisk(method, c, clean[0], clean[1])


def all_tail_risks(returns: np.ndarray, confidence: float) -> list[TailRisk]:
    return [tail_risk(returns, confidence, m) for m in METHODS]

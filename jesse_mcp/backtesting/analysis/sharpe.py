"""Sharpe statistics (probabilistic and deflated Sharpe ratio) and market regimes from daily closes."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from jesse_mcp.backtesting.analysis.checks import (
    CLOSE,
    DAY_MS,
    EULER_GAMMA,
    TS,
    _between,
    _check_rows,
    _number,
    _positive,
    _vector,
    _whole,
)

# ---------------------------------------------------------------------------------------------- Sharpe statistics


def sharpe_of(returns: np.ndarray) -> float | None:
    """Mean / standard deviation (ddof=1) of per-period returns, not annualised. None for fewer than 2 values or
    numerically constant returns."""
    r = _vector("returns", returns)
    if len(r) < 2:
        return None
    sd = float(np.std(r, ddof=1))
    if sd <= 1e-10 * float(np.max(np.abs(r))):
        return None
    return float(np.mean(r)) / sd


def probabilistic_sharpe_ratio(
    sharpe: float, n_obs: int, skew: float, kurtosis: float, benchmark: float = 0.0
) -> float | None:
    """Probability (0..1) that the true Sharpe ratio exceeds `benchmark` (Bailey & Lopez de Prado). `sharpe` and
    `benchmark` are per observation period (not annualised); `kurtosis` is non-excess (3 for a normal
    distribution). None when n_obs < 2 or the variance term 1 - skew*SR + (kurtosis-1)/4*SR^2 is not positive."""
    sr, sr0, sk = _number("sharpe", sharpe), _number("benchmark", benchmark), _number("skew", skew)
    kurt = _number("kurtosis", kurtosis)
    if kurt < 1:
        raise ValueError(f"kurtosis must be non-excess (3 for a normal distribution), at least 1; got {kurt:g}")
    n = _whole("n_obs", n_obs, 0)
    denominator = 1.0 - sk * sr + (kurt - 1.0) / 4.0 * sr * sr
    if n < 2 or denominator <= 0:
        return None
    return NormalDist().cdf((sr - sr0) * math.sqrt(n - 1) / math.sqrt(denominator))


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum Sharpe ratio among `n_trials` independent trials of true Sharpe 0 whose estimates have
    variance `sharpe_variance` (same per-period units): sqrt(V) * ((1-g) Z(1-1/N) + g Z(1-1/(N e))). 0 for N = 1."""
    n = _whole("n_trials", n_trials, 1, 10**9)
    v = _number("sharpe_variance", sharpe_variance)
    if v < 0:
        raise ValueError(f"sharpe_variance must be at least 0, got {v:g}")
    if n == 1:
        return 0.0
    z = NormalDist().inv_cdf
    return math.sqrt(v) * ((1 - EULER_GAMMA) * z(1 - 1 / n) + EULER_GAMMA * z(1 - 1 / (n * math.e)))


def _skew_kurtosis(r: np.ndarray) -> tuple[float, float]:
    d = r - r.mean()
    m2 = float(np.mean(d * d))
    # kurtosis >= 1 in exact arithmetic; rounding can put two-point samples a hair below
    return float(np.mean(d**3)) / m2**1.5, max(float(np.mean(d**4)) / m2**2, 1.0)


def deflated_sharpe_ratio(returns: np.ndarray, n_trials: int, trial_sharpes: np.ndarray | None = None) -> dict:
    """Deflated Sharpe ratio: the probability (0..1) that the best of `n_trials` strategies has a true Sharpe above
    what luck alone gives. `returns` are per-period fractions (e.g. daily 0.01 = 1 %); `trial_sharpes` are the
    per-period Sharpe ratios of all trials (their variance sets the benchmark; with fewer than 2, the variance of the
    Sharpe estimator is used). Skew and non-excess kurtosis are population moments of `returns`. Undefined values
    (e.g. constant returns) are None.
    """
    r = _vector("returns", returns)
    if len(r) < 2:
        raise ValueError(f"deflated_sharpe_ratio needs at least 2 returns, got {len(r)}")
    trials = _whole("n_trials", n_trials, 1, 10**9)
    given = None if trial_sharpes is None else _vector("trial_sharpes", trial_sharpes)
    if given is not None and len(given) > trials:
        raise ValueError(
            f"n_trials ({trials}) counts every configuration tried, so it cannot be below the {len(given)} "
            "trial Sharpe ratios given"
        )
    n, sr = len(r), sharpe_of(r)
    skew = kurt = variance = sr0 = None
    if sr is not None:
        skew, kurt = _skew_kurtosis(r)
        term = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
        variance = term / (n - 1) if term > 0 else None
    if given is not None and len(given) >= 2:
        variance = float(np.var(given, ddof=1))
    if variance is not None:
        sr0 = expected_max_sharpe(trials, variance)
    return {
        "sharpe_per_period": sr,
        "observations": n,
        "trials": trials,
        "skew": skew,
        "kurtosis": kurt,
        "sharpe_variance": variance,
        "expected_max_sharpe": sr0,
        "deflated_sharpe": probabilistic_sharpe_ratio(sr, n, skew, kurt, sr0)
        if sr is not None and sr0 is not None
        else None,
        "probabilistic_sharpe": probabilistic_sharpe_ratio(sr, n, skew, kurt) if sr is not None else None,
    }


# ---------------------------------------------------------------------------------------------- regimes


def daily_closes(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start of each UTC day in ms as int64, close of that day's last minute) from 1-minute rows in time order.
    A partial first or last day is included with the last minute it has."""
    arr = _check_rows(rows, min_rows=1, contiguous=False)
    day = np.floor_divide(arr[:, TS], DAY_MS).astype(np.int64)
    last = np.append(np.flatnonzero(np.diff(day)), len(arr) - 1)
    return day[last] * DAY_MS, arr[last, CLOSE].copy()


def _label_days(close: np.ndarray, window: int, trend: float, vol_threshold: float | None) -> list[str]:
    ret = close[window:] / close[:-window] - 1.0
    vol = sliding_window_view(np.diff(np.log(close)), window).std(axis=1, ddof=1)
    if vol_threshold is None:
        median = float(np.median(vol))
        vol_threshold = 2.0 * median if median > 0 else math.inf
    crash = (ret <= -2.0 * trend) | ((vol > vol_threshold) & (ret < 0))
    labels = np.where(
        crash, "crash", np.where(ret >= trend, "trend_up", np.where(ret <= -trend, "trend_down", "range"))
    )
    return [str(labels[0])] * window + [str(x) for x in labels]


def _merge_runs(labels: list[str], min_days: int) -> list[list]:
    segments: list[list] = []  # [label, start, end]
    start = 0
    for i in range(1, len(labels) + 1):
        if i < len(labels) and labels[i] == labels[start]:
            continue
        if segments and (i - start < min_days or segments[-1][0] == labels[start]):
            segments[-1][2] = i - 1
        else:
            segments.append([labels[start], start, i - 1])
        start = i
    if len(segments) > 1 and segments[0][2] + 1 < min_days:
        segments[1][1] = 0
        segments.pop(0)
    return segments


def detect_regimes(
    daily_close: np.ndarray,
    window: int = 14,
    trend_threshold: float = 0.10,
    vol_threshold: float | None = None,
    min_days: int = 7,
) -> list[dict]:
    """Split days into contiguous regime segments from the trailing `window`-day return and realised volatility.

    A day is "crash" if its trailing return <= -2*trend_threshold, or its volatility (std of the window's daily log
    returns, a per-day fraction) is above `vol_threshold` (default 2x the median rolling volatility) while the
    return is negative; else "trend_up" (return >= trend_threshold, a fraction: 0.1 = 10 %), "trend_down"
    (<= -trend_threshold) or "range". The first `window` days take day `window`'s label; runs shorter than
    `min_days` join the previous segment (a short first run joins the next). Each segment's return_pct (percent)
    runs from the close before its first day (day 0's close for the first segment) to its last day's close.
    """
    close = _vector("daily_close", daily_close, positive=True)
    window = _whole("window", window, 2)
    if len(close) < window + 1:
        raise ValueError(
            f"detect_regimes needs at least window + 1 = {window + 1} daily closes, got {len(close)}; "
            "pass more days or a smaller window"
        )
    trend = _between("trend_threshold", trend_threshold, 0, 1, hint=" as a fraction (0.1 = 10 %)")
    vol = None if vol_threshold is None else _positive("vol_threshold", vol_threshold)
    min_days = _whole("min_days", min_days, 1)
    segments = _merge_runs(_label_days(close, window, trend, vol), min_days)
    return [
        {
            "regime": label,
            "start": start,
            "end": end,
            "days": end - start + 1,
            "return_pct": float((close[end] / close[max(start - 1, 0)] - 1.0) * 100.0),
        }
        for label, start, end in segments
    ]

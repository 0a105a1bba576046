"""Numerics behind stress tests, Monte Carlo and walk-forward validation of Jesse backtests.

Candles are float64 arrays of shape (N, 6): contiguous 1-minute rows in Jesse's column order
[timestamp_ms, open, close, high, low, volume]. Every function validates its input and raises ValueError saying what
to fix. Outputs hold no NaN or inf (undefined numbers are None). Transformed candles keep their timestamps and stay
valid (prices > 0, high >= max(open, close), low <= min(open, close), volume >= 0); inputs are never modified.
Units: a "fraction" is 0.12 for 12 %; keys ending in `_pct` are percent.

Written by hand with numpy and statistics.NormalDist only: Jesse has no stress scenarios, trade Monte Carlo or
deflated Sharpe ratio, and scipy is not a dependency. Importing this module pulls in nothing else.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

TS, OPEN, CLOSE, HIGH, LOW, VOLUME = range(6)
MINUTE_MS = 60_000
DAY_MS = 86_400_000
DAY_MINUTES = 1440
EULER_GAMMA = 0.5772156649015329
_MAX_LOG = 30.0  # bound on shocked or resampled log moves: exp() stays finite and prices stay > 0
_CHUNK_CELLS = 2_000_000  # Monte Carlo paths are built in chunks of about this many cells (16 MB each)
# March 2020 crash shape: (minutes after at_index, price level relative to the pre-crash price).
_CRASH_2020_KNOTS = ((0, 1.0), (720, 0.85), (2160, 0.50), (7 * DAY_MINUTES, 0.55), (21 * DAY_MINUTES, 0.70))
_CRASH_2020_SHAPE = (
    "March 2020 crypto crash: -15 % in 12 h, -50 % from the peak after 36 h, bounce to -45 % by day 7 with "
    "volatility x3 for 7 days, then recovery to -30 % of the pre-crash level by day 21"
)

# ---------------------------------------------------------------------------------------------- input checks


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return float(value)


def _whole(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def _between(name: str, value: object, low: float, high: float, *, inclusive: bool = False, hint: str = "") -> float:
    v = _number(name, value)
    if not (low <= v <= high if inclusive else low < v < high):
        kind = "inclusive" if inclusive else "exclusive"
        raise ValueError(f"{name} must be between {low:g} and {high:g} ({kind}){hint}, got {v:g}")
    return v


def _positive(name: str, value: object) -> float:
    v = _number(name, value)
    if v <= 0:
        raise ValueError(f"{name} must be above 0, got {v:g}")
    return v


def _vector(name: str, values: object, *, positive: bool = False) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf at position {int(np.argmin(np.isfinite(arr)))}; remove it")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be above 0 everywhere; position {int(np.argmax(arr <= 0))} is not")
    return arr


def _check_rows(rows: object, *, min_rows: int = 2, contiguous: bool = True) -> np.ndarray:
    try:
        arr = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("rows must be a numeric array of candles") from None
    if arr.ndim != 2 or arr.shape[1] != 6:
        raise ValueError(
            f"rows must have shape (N, 6) in Jesse's column order [timestamp_ms, open, close, high, low, volume], "
            f"got shape {arr.shape}"
        )
    if len(arr) < min_rows:
        raise ValueError(f"rows must hold at least {min_rows} candles, got {len(arr)}")
    bad = ~np.all(np.isfinite(arr), axis=1) | np.any(arr[:, OPEN:VOLUME] <= 0, axis=1) | (arr[:, VOLUME] < 0)
    if bad.any():
        raise ValueError(
            f"row {int(np.argmax(bad))} has a NaN/inf, a price <= 0 or a negative volume; clean or re-import candles"
        )
    step = np.diff(arr[:, TS])
    wrong = step != MINUTE_MS if contiguous else step <= 0
    if wrong.any():
        i = int(np.argmax(wrong))
        need = "contiguous 1-minute candles (fill the gaps first)" if contiguous else "in increasing time order"
        raise ValueError(f"rows must be {need}; the step after row {i} is {step[i]:g} ms")
    return arr


def _check_at(name: str, rows: np.ndarray, at_index: object, needed: int, *, first: int = 0) -> int:
    n = len(rows)
    at = _whole("at_index", at_index, first)
    if at >= n:
        raise ValueError(f"at_index {at} is outside the data: it must be below the number of candles ({n})")
    if needed > n - at:
        raise ValueError(
            f"{name} needs {needed} minutes from at_index {at} but only {n - at} are available after it "
            f"(the data has {n} candles); choose an earlier at_index, a shorter scenario or a longer candle range"
        )
    return at


# ---------------------------------------------------------------------------------------------- price paths


def _minute_log_returns(rows: np.ndarray) -> np.ndarray:
    """Close-to-close log return of each minute; minute 0 uses its own open as the previous close."""
    prev_close = np.concatenate(([rows[0, OPEN]], rows[:-1, CLOSE]))
    return np.log(rows[:, CLOSE] / prev_close)


def _scaled(rows: np.ndarray, close_factor: np.ndarray, open_factor: np.ndarray) -> np.ndarray:
    out = rows.copy()
    out[:, OPEN] = rows[:, OPEN] * open_factor
    out[:, CLOSE] = rows[:, CLOSE] * close_factor
    out[:, HIGH] = np.maximum(rows[:, HIGH] * close_factor, np.maximum(out[:, OPEN], out[:, CLOSE]))
    out[:, LOW] = np.minimum(rows[:, LOW] * close_factor, np.minimum(out[:, OPEN], out[:, CLOSE]))
    if not (np.all(np.isfinite(out)) and np.all(out[:, OPEN:VOLUME] > 0)):
        raise ValueError("the price factors push prices outside the floating-point range; use milder factors")
    return out


def _path(rows: np.ndarray, factor: np.ndarray) -> np.ndarray:
    return _scaled(rows, factor, np.concatenate((factor[:1], factor[:-1])))


def apply_price_path(rows: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Multiply prices by a per-minute factor series (length N, every value > 0; 0.7 = price at 70 %).

    The close of minute i is scaled by factor[i], its open by factor[i-1] (factor[0] for i = 0), so an open that
    equalled the previous close still does. High and low are scaled by factor[i] and widened to cover the new open
    and close. Timestamps and volume are unchanged; a new array is returned.
    """
    arr = _check_rows(rows, min_rows=1, contiguous=False)
    f = _vector("factor", factor, positive=True)
    if len(f) != len(arr):
        raise ValueError(f"factor must have one value per candle ({len(arr)}), got {len(f)}")
    return _path(arr, f)


def _piecewise(n: int, at: int, knots: tuple[tuple[int, float], ...]) -> np.ndarray:
    """Factor per row: 1 before `at`; the close of row at+t-1 sits at the linear interpolation of the knots at t
    minutes; the last knot's level holds afterwards."""
    xs, ys = zip(*knots, strict=True)
    return np.interp(np.arange(n) - at + 1.0, xs, ys)


def _shock(rows: np.ndarray, at: int, minutes: int, factor: float) -> np.ndarray:
    end = at + minutes
    r = _minute_log_returns(rows)[at:end]
    f = np.ones(len(rows))
    f[at:end] = np.exp(np.clip(np.cumsum((factor - 1.0) * (r - r.mean())), -_MAX_LOG, _MAX_LOG))
    f[end:] = f[end - 1]
    out = _path(rows, f)
    w = slice(at, end)
    close = out[w, CLOSE]
    up = np.clip(factor * np.log(rows[w, HIGH] / rows[w, CLOSE]), -_MAX_LOG, _MAX_LOG)
    down = np.clip(factor * np.log(rows[w, CLOSE] / rows[w, LOW]), -_MAX_LOG, _MAX_LOG)
    out[w, HIGH] = np.maximum(close * np.exp(up), np.maximum(out[w, OPEN], close))
    out[w, LOW] = np.minimum(close * np.exp(-down), np.minimum(out[w, OPEN], close))
    if not (np.all(np.isfinite(out[w])) and np.all(out[w, LOW] > 0)):
        raise ValueError("the volatility shock pushes prices outside the floating-point range; use a smaller factor")
    return out


def _describe(name: str, rows: np.ndarray, out: np.ndarray, first: int, last: int, **parameters: object) -> dict:
    return {
        "name": name,
        "first_index": first,
        "last_index": last,
        "first_ms": int(rows[first, TS]),
        "last_ms": int(rows[last, TS]),
        "parameters": parameters,
        "worst_factor": float(np.min(out[:, CLOSE] / rows[:, CLOSE])),
        "level_after": float(out[last, CLOSE] / rows[last, CLOSE]),
    }


# ---------------------------------------------------------------------------------------------- stress scenarios


def flash_crash(
    rows: np.ndarray,
    at_index: int,
    depth: float = 0.30,
    minutes: int = 60,
    recovery: float = 0.5,
    recovery_minutes: int = 360,
) -> tuple[np.ndarray, dict]:
    """Prices fall linearly by `depth` (fraction, 0.3 = -30 %) over `minutes` from at_index (the close of row
    at_index+minutes-1 is at 1-depth), then win back `recovery` (fraction of the loss) over `recovery_minutes` and
    stay at 1 - depth*(1-recovery) afterwards, the series keeping its own moves on top. Volume x5 during the fall.

    The description's first_index/last_index bound the shaped part; level_after is the factor that holds after it;
    worst_factor is the lowest new close / original close.
    """
    arr = _check_rows(rows)
    depth = _between("depth", depth, 0, 1)
    recovery = _between("recovery", recovery, 0, 1, inclusive=True, hint=" as a fraction of the loss")
    minutes = _whole("minutes", minutes, 1)
    recovery_minutes = _whole("recovery_minutes", recovery_minutes, 0)
    if recovery > 0 and recovery_minutes == 0:
        raise ValueError("recovery_minutes must be at least 1 when recovery is above 0 (or set recovery=0)")
    at = _check_at("flash_crash", arr, at_index, minutes + recovery_minutes)
    knots = ((0, 1.0), (minutes, 1.0 - depth))
    if recovery_minutes:
        knots += ((minutes + recovery_minutes, 1.0 - depth * (1.0 - recovery)),)
    out = _path(arr, _piecewise(len(arr), at, knots))
    out[at : at + minutes, VOLUME] *= 5.0
    last = at + minutes + recovery_minutes - 1
    params = {"depth": depth, "minutes": minutes, "recovery": recovery, "recovery_minutes": recovery_minutes}
    return out, _describe("flash_crash", arr, out, at, last, **params, volume_factor=5.0)


def volatility_shock(
    rows: np.ndarray, at_index: int, factor: float = 3.0, minutes: int = 7 * DAY_MINUTES
) -> tuple[np.ndarray, dict]:
    """Within [at_index, at_index+minutes) each minute's close-to-close log return keeps the window's mean but its
    deviation from it is multiplied by `factor` (3.0 = three times the volatility, below 1 calms it; must be below
    100). Wicks are scaled likewise in log distance from the close. As the deviations sum to zero, the shocked path
    ends the window at its original level; any level shift left by clamping (log moves bounded by e^±30 so prices
    stay > 0) carries on after the window.
    """
    arr = _check_rows(rows)
    factor = _between("factor", factor, 0, 100)
    minutes = _whole("minutes", minutes, 2)
    at = _check_at("volatility_shock", arr, at_index, minutes)
    out = _shock(arr, at, minutes, factor)
    return out, _describe("volatility_shock", arr, out, at, at + minutes - 1, factor=factor, minutes=minutes)


def gap_down(rows: np.ndarray, at_index: int, gap: float = 0.15) -> tuple[np.ndarray, dict]:
    """From at_index on, every price x (1-gap) (`gap` fraction, 0.15 = -15 %), including the open of at_index: a true
    gap, that candle opens `gap` below the previous close. at_index must be at least 1 (there must be a previous
    candle)."""
    arr = _check_rows(rows)
    gap = _between("gap", gap, 0, 1)
    at = _check_at("gap_down", arr, at_index, 1, first=1)
    f = np.where(np.arange(len(arr)) >= at, 1.0 - gap, 1.0)
    out = _scaled(arr, f, f)
    return out, _describe("gap_down", arr, out, at, at, gap=gap)


def crash_2020(rows: np.ndarray, at_index: int) -> tuple[np.ndarray, dict]:
    """Replay the shape of the March 2020 crypto crash from at_index: -15 % over 12 h, -50 % from the peak after
    36 h (0.85 -> 0.50 within one day; volume x3 during those 36 h), a bounce to -45 % by day 7, volatility x3 for those
    7 days (volatility_shock), then a recovery to -30 % of the pre-crash level by day 21.

    The first 7 days must fit in the data; the 14-day recovery is cut where the data ends (the description then says
    recovery_cut=True), so the scenario can sit near the end of a backtest.
    """
    arr = _check_rows(rows)
    week = 7 * DAY_MINUTES
    at = _check_at("crash_2020", arr, at_index, week)
    # shock first: shocking the crashed path would also multiply the crash's own drift by 3
    out = _path(_shock(arr, at, week, 3.0), _piecewise(len(arr), at, _CRASH_2020_KNOTS))
    fall = _CRASH_2020_KNOTS[2][0]
    out[at : at + fall, VOLUME] *= 3.0
    full = _CRASH_2020_KNOTS[-1][0]
    last = min(at + full, len(arr)) - 1
    knots = [[m, level] for m, level in _CRASH_2020_KNOTS]
    info = _describe(
        "crash_2020", arr, out, at, last, knots=knots, volatility_factor=3.0, volatility_minutes=week, volume_factor=3.0
    )
    return out, {**info, "shape": _CRASH_2020_SHAPE, "recovery_cut": at + full > len(arr)}


# ---------------------------------------------------------------------------------------------- Monte Carlo


def _drawdowns(equity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(final equity, max drawdown fraction) per row of equity paths whose first column is > 0. Modifies `equity`:
    from the first point <= 0 on, a path is ruined and stays at 0 (drawdown 1.0)."""
    equity[np.logical_or.accumulate(equity <= 0, axis=1)] = 0.0
    peak = np.maximum.accumulate(equity, axis=1)
    return equity[:, -1], ((peak - equity) / peak).max(axis=1)


def max_drawdown_fraction(equity: np.ndarray) -> float:
    """Largest fall from a running peak as a fraction of that peak (0.12 = 12 %) of an equity curve whose first
    point is above 0. Once equity reaches <= 0 the account is ruined: the drawdown is 1.0."""
    eq = _vector("equity", equity)
    if len(eq) == 0 or eq[0] <= 0:
        raise ValueError("equity must be a non-empty curve that starts above 0 (e.g. the starting balance)")
    return float(_drawdowns(eq.copy()[None, :])[1][0])


def _percentiles(values: np.ndarray) -> dict[str, float]:
    p5, p25, p50, p75, p95 = (float(p) for p in np.percentile(values, [5, 25, 50, 75, 95]))
    return {"p5": p5, "p25": p25, "p50": p50, "p75": p75, "p95": p95, "mean": float(values.mean())}


def _equity(pnls: np.ndarray, start: float) -> np.ndarray:
    return np.concatenate((np.full((len(pnls), 1), start), start + np.cumsum(pnls, axis=1)), axis=1)


def monte_carlo_trades(
    pnls: np.ndarray,
    starting_balance: float,
    n_simulations: int = 1000,
    method: str = "shuffle",
    seed: int = 0,
    drawdown_threshold: float | None = None,
) -> dict:
    """Monte Carlo over closed-trade profits (`pnls`, currency, net of fees, in order).

    "shuffle" permutes the order (the final return is the same on every path unless it is ruined; drawdown varies);
    "bootstrap" draws the same number of trades with replacement. A path is starting_balance + cumsum(pnls); a path
    that reaches <= 0 is ruined (stays at 0, drawdown 100 %). `drawdown_threshold` is a fraction (0.2 = 20 %).
    Returns percentiles (p5..p95 and mean) of return_pct and max_drawdown_pct in percent, probabilities as
    fractions, and the original order's figures.
    """
    trades = _vector("pnls", pnls)
    if len(trades) < 2:
        raise ValueError(f"Monte Carlo needs at least 2 closed trades, got {len(trades)}; backtest a longer period")
    start = _positive("starting_balance", starting_balance)
    sims = _whole("n_simulations", n_simulations, 1, 100_000)
    if method not in ("shuffle", "bootstrap"):
        raise ValueError(f"method must be 'shuffle' or 'bootstrap', got {method!r}")
    rng = np.random.default_rng(_whole("seed", seed, 0))
    threshold = None
    if drawdown_threshold is not None:
        threshold = _between("drawdown_threshold", drawdown_threshold, 0, 1, inclusive=True, hint=" (0.2 = 20 %)")
    n = len(trades)
    original_final, original_dd = _drawdowns(_equity(trades[None, :], start))
    total = start + float(np.cumsum(trades)[-1])  # the original order's final equity before any ruin
    finals, dds = [], []
    chunk = max(1, _CHUNK_CELLS // n)
    for done in range(0, sims, chunk):
        k = min(chunk, sims - done)
        if method == "shuffle":
            sample = rng.permuted(np.tile(trades, (k, 1)), axis=1)
        else:
            sample = trades[rng.integers(0, n, size=(k, n))]
        final, dd = _drawdowns(_equity(sample, start))
        if method == "shuffle":  # the same sum in another order: keep it exact, not off by float rounding
            final = np.where(final > 0, max(total, 0.0), 0.0)
        finals.append(final)
        dds.append(dd)
    final, dd = np.concatenate(finals), np.concatenate(dds)
    return {
        "method": method,
        "simulations": sims,
        "trades": n,
        "return_pct": _percentiles((final / start - 1.0) * 100.0),
        "max_drawdown_pct": _percentiles(dd * 100.0),
        "probability_of_loss": float(np.mean(final < start)),
        "probability_of_ruin": float(np.mean(final <= 0)),
        "probability_drawdown_exceeds": None if threshold is None else float(np.mean(dd > threshold)),
        "original": {
            "return_pct": float((original_final[0] / start - 1.0) * 100.0),
            "max_drawdown_pct": float(original_dd[0] * 100.0),
        },
    }


# ---------------------------------------------------------------------------------------------- resampling


def block_bootstrap_candles(rows: np.ndarray, seed: int, block_minutes: int = DAY_MINUTES) -> np.ndarray:
    """A new price path with the same timestamps and length: close-to-close log returns are drawn in contiguous
    blocks of `block_minutes` (with replacement, from anywhere in the series); each drawn minute keeps its own
    open/high/low relative to its close, and its volume. The path starts from rows[0]'s open. Deterministic for a
    `seed`; needs at least 2 blocks of data.
    """
    arr = _check_rows(rows)
    rng = np.random.default_rng(_whole("seed", seed, 0))
    block = _whole("block_minutes", block_minutes, 1)
    n = len(arr)
    if n < 2 * block:
        raise ValueError(
            f"the block bootstrap needs at least 2 blocks of data: {2 * block} candles for block_minutes={block}, "
            f"got {n}; use a smaller block_minutes or a longer period"
        )
    starts = rng.integers(0, n - block + 1, size=-(-n // block))
    src = (starts[:, None] + np.arange(block)).ravel()[:n]
    close = arr[0, OPEN] * np.exp(np.clip(np.cumsum(_minute_log_returns(arr)[src]), -_MAX_LOG, _MAX_LOG))
    out = np.empty_like(arr)
    out[:, TS] = arr[:, TS]
    out[:, CLOSE] = close
    out[:, OPEN] = close * (arr[src, OPEN] / arr[src, CLOSE])
    out[:, HIGH] = np.maximum(close * (arr[src, HIGH] / arr[src, CLOSE]), np.maximum(out[:, OPEN], close))
    out[:, LOW] = np.minimum(close * (arr[src, LOW] / arr[src, CLOSE]), np.minimum(out[:, OPEN], close))
    out[:, VOLUME] = arr[src, VOLUME]
    return out


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

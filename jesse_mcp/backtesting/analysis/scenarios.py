"""Stress scenarios applied to 1-minute candles: price paths, flash crash, volatility shock, gap down, 2020 crash."""

from __future__ import annotations

import numpy as np

from jesse_mcp.backtesting.analysis.checks import (
    _MAX_LOG,
    CLOSE,
    DAY_MINUTES,
    HIGH,
    LOW,
    OPEN,
    TS,
    VOLUME,
    _between,
    _check_at,
    _check_rows,
    _minute_log_returns,
    _vector,
    _whole,
)

# March 2020 crash shape: (minutes after at_index, price level relative to the pre-crash price).
_CRASH_2020_KNOTS = ((0, 1.0), (720, 0.85), (2160, 0.50), (7 * DAY_MINUTES, 0.55), (21 * DAY_MINUTES, 0.70))
_CRASH_2020_SHAPE = (
    "March 2020 crypto crash: -15 % in 12 h, -50 % from the peak after 36 h, bounce to -45 % by day 7 with "
    "volatility x3 for 7 days, then recovery to -30 % of the pre-crash level by day 21"
)

# ---------------------------------------------------------------------------------------------- price paths


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

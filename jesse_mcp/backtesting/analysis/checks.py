"""Constants and input checks shared by the analysis modules (every check raises ValueError saying what to fix)."""

from __future__ import annotations

import math

import numpy as np

TS, OPEN, CLOSE, HIGH, LOW, VOLUME = range(6)
MINUTE_MS = 60_000
DAY_MS = 86_400_000
DAY_MINUTES = 1440
EULER_GAMMA = 0.5772156649015329
_MAX_LOG = 30.0  # bound on shocked or resampled log moves: exp() stays finite and prices stay > 0
_CHUNK_CELLS = 2_000_000  # Monte Carlo paths are built in chunks of about this many cells (16 MB each)


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


def _minute_log_returns(rows: np.ndarray) -> np.ndarray:
    """Close-to-close log return of each minute; minute 0 uses its own open as the previous close."""
    prev_close = np.concatenate(([rows[0, OPEN]], rows[:-1, CLOSE]))
    return np.log(rows[:, CLOSE] / prev_close)

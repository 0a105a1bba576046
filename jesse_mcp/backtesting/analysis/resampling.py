"""Monte Carlo on trades and block-bootstrap resampling of candles."""

from __future__ import annotations

import numpy as np

from jesse_mcp.backtesting.analysis.checks import (
    _CHUNK_CELLS,
    _MAX_LOG,
    CLOSE,
    DAY_MINUTES,
    HIGH,
    LOW,
    OPEN,
    TS,
    VOLUME,
    _between,
    _check_rows,
    _minute_log_returns,
    _positive,
    _vector,
    _whole,
)

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

"""Numerics behind stress tests, Monte Carlo and walk-forward validation of Jesse backtests.

Candles are float64 arrays of shape (N, 6): contiguous 1-minute rows in Jesse's column order
[timestamp_ms, open, close, high, low, volume]. Every function validates its input and raises ValueError saying what
to fix. Outputs hold no NaN or inf (undefined numbers are None). Transformed candles keep their timestamps and stay
valid (prices > 0, high >= max(open, close), low <= min(open, close), volume >= 0); inputs are never modified.
Units: a "fraction" is 0.12 for 12 %; keys ending in `_pct` are percent.

Written by hand with numpy and statistics.NormalDist only: Jesse has no stress scenarios, trade Monte Carlo or
deflated Sharpe ratio, and scipy is not a dependency. Importing this module pulls in nothing else.
"""

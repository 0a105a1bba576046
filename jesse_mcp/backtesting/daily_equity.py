"""Normal mode's daily equity and its ten daily metrics, rebuilt after a run in Jesse's fast mode.

Jesse 3.5.3's normal mode (`_step_simulator`) saves the portfolio balance at the start, after the 1,441st minute,
then every day, and at the end. Its fast mode (`_skip_simulator`) steps a route timeframe at a time, so it saves each
daily balance at the first step boundary after that time (59 minutes later with 1h candles). Trades are the same; the
ten metrics Jesse computes from the daily balances are not. Here the normal mode's balances are rebuilt from the
executed orders and the 1-minute closes, applying each order the way `jesse.services.position_service.
on_executed_order` does for a futures backtest (same helpers, same float order), and the ten metrics come from
`jesse.services.metrics`' own functions, called as `metrics.trades` calls them. Jesse has no public function that
takes a balance series and returns those ten without its global store (reset when a research backtest returns), hence
the short replay of that block in `daily_metrics`.

Scope: what the engine runs (one route, futures, contiguous 1-minute candles). Whatever else differs is caught by
`normal_mode_daily`, which first rebuilds fast mode's own samples and returns None unless they match exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MINUTE_MS = 60_000
DAY_MS = 86_400_000
FIRST_SAMPLE_MS = 86_460_000  # Jesse's first daily sample: one day and one minute after the start, then daily
DAILY_KEYS = (
    "max_drawdown",
    "max_underwater_period",
    "annual_return",
    "sharpe_ratio",
    "calmar_ratio",
    "sortino_ratio",
    "smart_sharpe",
    "smart_sortino",
    "omega_ratio",
    "serenity_index",
)


def normal_mode_sample_times(start_ms: int, minutes: int) -> list[int]:
    """When Jesse's normal mode saves the daily balance of a run over `minutes` contiguous 1-minute rows (ms)."""
    last = start_ms + minutes * MINUTE_MS
    times = [start_ms, *range(start_ms + FIRST_SAMPLE_MS, last + 1, DAY_MS)]
    return times if times[-1] == last else [*times, last]  # a sample at the end replaces one at the same time


class _Account:
    """The futures wallet balance and the route's one position, changed order by order as Jesse's backtest does."""

    def __init__(self, balance: float, fee_rate: float) -> None:
        import jesse.helpers as jh
        from jesse.utils import subtract_floats, sum_floats

        self.balance, self.fee_rate, self.qty, self.entry = balance, fee_rate, 0.0, 0.0
        self._pnl, self._average, self._add, self._sub = (
            jh.estimate_PNL,
            jh.estimate_average_price,
            sum_floats,
            subtract_floats,
        )

    def _type(self) -> str:
        return "long" if self.qty > 0 else "short"

    def _close(self, price: float) -> None:
        self.balance = self.balance + self._pnl(abs(self.qty), self.entry, price, self._type())
        self.qty, self.entry = 0.0, 0.0

    def _reduce(self, qty: float, price: float) -> None:
        self.balance = self.balance + self._pnl(qty, self.entry, price, self._type())
        self.qty = self._sub(self.qty, qty) if self.qty > 0 else self._add(self.qty, qty)

    def _increase(self, qty: float, price: float) -> None:
        self.entry = self._average(qty, price, self.qty, self.entry)
        self.qty = self._add(self.qty, qty) if self.qty > 0 else self._sub(self.qty, qty)

    def execute(self, order: dict[str, Any]) -> None:
        """position_service.on_executed_order, backtest and futures branch (fee on the filled quantity first)."""
        qty, price = float(order["qty"]), float(order["price"])
        self.balance = self.balance - abs(float(order["filled_qty"]) * price) * self.fee_rate
        if self.qty == 0:
            self.qty, self.entry = qty, price
        elif self._add(self.qty, qty) == 0:
            self._close(price)
        elif self.qty * qty > 0:
            if not order["reduce_only"]:
                self._increase(abs(qty), price)
        elif abs(qty) > abs(self.qty):
            rest = self._add(self.qty, qty)
            self._close(price)
            if not order["reduce_only"]:  # a reduce-only order only closes; any other flips the position
                self.qty, self.entry = rest, price
        else:
            self._reduce(abs(qty), price)

    def equity(self, close: float) -> float:
        """save_daily_portfolio_balance for futures: the wallet balance plus the open position's PNL (Position.pnl)."""
        if self.qty == 0:
            return self.balance
        diff = abs(close * self.qty) - abs(self.entry * self.qty)
        return self.balance + (-diff if self.qty < 0 else diff)


def executed_orders(trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every executed order of Jesse's closed trades (`trades` with their orders), in execution order."""
    orders = [o for t in trades for o in t.get("orders") or [] if o.get("executed_at") is not None]
    return sorted(orders, key=lambda o: o["executed_at"])  # stable: orders of one minute keep Jesse's order


def equity_at(
    times: list[int], trades: list[dict[str, Any]], rows: np.ndarray, balance: float, fee_rate: float
) -> list[float]:
    """The portfolio balance Jesse saves at each time (ms; after the minute that ends then) over these trading rows."""
    account, orders, done = _Account(balance, fee_rate), executed_orders(trades), 0
    start, out = int(rows[0, 0]), []
    for t in times:
        while done < len(orders) and orders[done]["executed_at"] <= t:
            account.execute(orders[done])
            done += 1
        row = (t - start) // MINUTE_MS - 1  # the minute that ends at t
        out.append(account.equity(float(rows[row, 2])) if row >= 0 else account.balance)
    return out


def daily_metrics(balances: list[float], times: list[int], annualization: int) -> dict[str, float]:
    """The ten daily-balance metrics of jesse.services.metrics.trades, with its functions, the way it calls them."""
    import pandas as pd
    from jesse.services import metrics as jm

    if len(balances) < 2:
        return dict.fromkeys(DAILY_KEYS, math.nan)
    returns = pd.DataFrame(balances, index=pd.to_datetime(times, unit="ms", utc=True)).pct_change(1)
    values = {
        "max_drawdown": jm.max_drawdown(returns).iloc[0] * 100,
        "max_underwater_period": jm.calculate_max_underwater_period(balances, times),
        "annual_return": jm.cagr(returns, periods=annualization).iloc[0] * 100,
        "sharpe_ratio": jm.sharpe_ratio(returns, periods=annualization).iloc[0],
        "calmar_ratio": jm.calmar_ratio(returns).iloc[0],
        "sortino_ratio": jm.sortino_ratio(returns, periods=annualization).iloc[0],
        "smart_sharpe": jm.sharpe_ratio(returns, periods=annualization, smart=True).iloc[0],
        "smart_sortino": jm.sortino_ratio(returns, periods=annualization, smart=True).iloc[0],
        "omega_ratio": jm.omega_ratio(returns, periods=annualization).iloc[0],
        "serenity_index": jm.serenity_index(returns).iloc[0],
    }
    return {k: _as_float(v) for k, v in values.items()}


def _as_float(value: Any) -> float:
    """metrics.trades' safe_convert(value, float): a one-element Series is unwrapped; what is not a number is NaN."""
    import pandas as pd

    try:
        if isinstance(value, pd.Series):
            value = value.iloc[0]
        return math.nan if np.isnan(value) else float(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return math.nan


def normal_mode_daily(
    trades: list[dict[str, Any]],
    fast_equity: list[list[float]],
    rows: np.ndarray,
    balance: float,
    fee_rate: float,
    annualization: int,
) -> tuple[list[list[float]], dict[str, float]] | None:
    """Normal mode's daily equity ([[s, value], ...]) and ten daily metrics for a fast-mode run over these rows.

    `fast_equity` is what fast mode saved. The replay must first give exactly those values at fast mode's own times,
    which shows the orders were applied as Jesse applied them; None when it does not (the caller runs normal mode).
    """
    fast_times = [round(t * 1000) for t, _ in fast_equity]
    if equity_at(fast_times, trades, rows, balance, fee_rate) != [v for _, v in fast_equity]:
        return None
    times = normal_mode_sample_times(int(rows[0, 0]), len(rows))
    values = equity_at(times, trades, rows, balance, fee_rate)
    return [[t / 1000, v] for t, v in zip(times, values, strict=True)], daily_metrics(values, times, annualization)

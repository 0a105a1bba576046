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

Scope: what the engine runs (one route or several on one exchange, one wallet, futures, contiguous 1-minute candles).
Whatever else differs is caught by `normal_mode_daily`, which first rebuilds fast mode's own samples and returns None
unless they match exactly.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

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


class _Position:
    """One route's position, changed order by order as `jesse.services.position_service.on_executed_order` does for a
    futures backtest (same helpers, same float order); what it realises goes to the account's one wallet."""

    def __init__(self, account: _Account) -> None:
        self.account, self.qty, self.entry = account, 0.0, 0.0

    def _type(self) -> str:
        return "long" if self.qty > 0 else "short"

    def _close(self, price: float) -> None:
        a = self.account
        a.balance = a.balance + a.pnl(abs(self.qty), self.entry, price, self._type())
        self.qty, self.entry = 0.0, 0.0

    def _reduce(self, qty: float, price: float) -> None:
        a = self.account
        a.balance = a.balance + a.pnl(qty, self.entry, price, self._type())
        self.qty = a.sub(self.qty, qty) if self.qty > 0 else a.add(self.qty, qty)

    def _increase(self, qty: float, price: float) -> None:
        a = self.account
        self.entry = a.average(qty, price, self.qty, self.entry)
        self.qty = a.add(self.qty, qty) if self.qty > 0 else a.sub(self.qty, qty)

    def execute(self, qty: float, price: float, reduce_only: bool) -> None:
        if self.qty == 0:
            self.qty, self.entry = qty, price
        elif self.account.add(self.qty, qty) == 0:
            self._close(price)
        elif self.qty * qty > 0:
            if not reduce_only:
                self._increase(abs(qty), price)
        elif abs(qty) > abs(self.qty):
            rest = self.account.add(self.qty, qty)
            self._close(price)
            if not reduce_only:  # a reduce-only order only closes; any other flips the position
                self.qty, self.entry = rest, price
        else:
            self._reduce(abs(qty), price)

    def pnl(self, close: float) -> float:
        """Position.pnl of a futures position at this close."""
        diff = abs(close * self.qty) - abs(self.entry * self.qty)
        return -diff if self.qty < 0 else diff


class _Account:
    """The futures wallet and one position per route (in route order), as Jesse's backtest keeps them."""

    def __init__(self, balance: float, fee_rate: float, symbols: list[str | None]) -> None:
        import jesse.helpers as jh
        from jesse.utils import subtract_floats, sum_floats

        self.balance, self.fee_rate = balance, fee_rate
        self.pnl, self.average, self.add, self.sub = (
            jh.estimate_PNL,
            jh.estimate_average_price,
            sum_floats,
            subtract_floats,
        )
        self.positions = {s: _Position(self) for s in symbols}
        self._only = symbols[0] if len(symbols) == 1 else None
        # Jesse keeps its positions in the order of config["app"]["trading_symbols"], a tuple made from a set of the
        # route symbols (jesse.routes.initiate): the same set in this process iterates the same way
        self._sum_order = tuple(set(symbols))

    def execute(self, order: dict[str, Any]) -> None:
        """position_service.on_executed_order, backtest and futures branch (fee on the filled quantity first)."""
        qty, price = float(order["qty"]), float(order["price"])
        self.balance = self.balance - abs(float(order["filled_qty"]) * price) * self.fee_rate
        symbol = self._only if len(self.positions) == 1 else order["symbol"]
        self.positions[symbol].execute(qty, price, bool(order["reduce_only"]))

    def equity(self, closes: dict[str | None, float]) -> float:
        """save_daily_portfolio_balance for futures: the wallet balance plus every open position's PNL, in Jesse's
        order of its positions."""
        total = self.balance
        for symbol in self._sum_order:
            p = self.positions[symbol]
            if p.qty != 0:
                total += p.pnl(closes[symbol])
        return total


class Wallet(NamedTuple):
    """The account a replay starts from: the starting balance, the fee rate, and the simulator's step (minutes: the
    smallest route timeframe in fast mode, 1 in normal mode)."""

    balance: float
    fee_rate: float
    step_minutes: int = 1


def executed_orders(
    trades: list[dict[str, Any]], routes: list[str | None] | None = None, step_ms: int = MINUTE_MS, start_ms: int = 0
) -> list[dict[str, Any]]:
    """Every executed order of Jesse's closed trades (`trades` with their orders), in execution order. Jesse's
    simulator, a step (`step_ms` from `start_ms`) at a time, first fills resting orders (stops, targets: created
    before) route by route over the whole step, then runs the strategies route by route and fills their market orders
    (created then); `routes`: the symbols in route order."""
    orders = [o for t in trades for o in t.get("orders") or [] if o.get("executed_at") is not None]
    rank = {s: i for i, s in enumerate(routes or [None])}
    one = len(rank) == 1

    def key(o: dict[str, Any]) -> tuple[int, int, int, int]:
        at = int(o["executed_at"])
        step = (at - start_ms - 1) // step_ms
        return step, int(o["created_at"] >= at), 0 if one else rank[o["symbol"]], at

    return sorted(orders, key=key)  # stable: orders of one minute and route keep Jesse's order


Rows = np.ndarray | dict[str, np.ndarray]  # one market's trading rows, or each route's (same minutes), in route order


def equity_at(times: list[int], trades: list[dict[str, Any]], rows: Rows, wallet: Wallet) -> list[float]:
    """The portfolio balance Jesse saves at each time (ms; after the minute that ends then) over these trading rows."""
    by_symbol: dict[str | None, np.ndarray] = {None: rows} if isinstance(rows, np.ndarray) else dict(rows)
    symbols = list(by_symbol)
    start, out = int(next(iter(by_symbol.values()))[0, 0]), []
    orders = executed_orders(trades, symbols, wallet.step_minutes * MINUTE_MS, start)
    account, done = _Account(wallet.balance, wallet.fee_rate, symbols), 0
    for t in times:
        while done < len(orders) and orders[done]["executed_at"] <= t:
            account.execute(orders[done])
            done += 1
        row = (t - start) // MINUTE_MS - 1  # the minute that ends at t
        closes = {s: float(r[row, 2]) for s, r in by_symbol.items()} if row >= 0 else {}
        out.append(account.equity(closes) if row >= 0 else account.balance)
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
    rows: Rows,
    wallet: Wallet,
    annualization: int,
) -> tuple[list[list[float]], dict[str, float]] | None:
    """Normal mode's daily equity ([[s, value], ...]) and ten daily metrics for a fast-mode run over these rows.

    `fast_equity` is what fast mode saved. The replay must first give exactly those values at fast mode's own times,
    which shows the orders were applied as Jesse applied them; None when it does not (the caller runs normal mode).
    """
    fast_times = [round(t * 1000) for t, _ in fast_equity]
    if equity_at(fast_times, trades, rows, wallet) != [v for _, v in fast_equity]:
        return None
    first = rows if isinstance(rows, np.ndarray) else next(iter(rows.values()))
    times = normal_mode_sample_times(int(first[0, 0]), len(first))
    values = equity_at(times, trades, rows, wallet._replace(step_minutes=1))
    return [[t / 1000, v] for t, v in zip(times, values, strict=True)], daily_metrics(values, times, annualization)

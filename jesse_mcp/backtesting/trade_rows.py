"""A backtest's trades as compact rows: Jesse's closed-trade fields in TRADE_FIELDS order (stored with results)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field

from shared.market.candles import iso

TRADE_FIELDS = ("type", "opened_at", "closed_at", "entry_price", "exit_price", "qty", "size", "fee", "PNL", "symbol")
T_TYPE, T_OPENED, T_CLOSED, T_ENTRY, T_EXIT, T_QTY, T_SIZE, T_FEE, T_PNL, T_SYMBOL = range(len(TRADE_FIELDS))


def market_of(trade: list[Any], default: str) -> str:
    """The trade's market; rows stored before portfolio backtests end at T_PNL (their market: the run's symbol)."""
    return str(trade[T_SYMBOL]) if len(trade) > T_SYMBOL else default


def union_ms(intervals: list[tuple[float, float]]) -> float:
    """Total length of the union of [start, end) intervals (a portfolio's overlapping trades count once)."""
    total, reach = 0.0, -math.inf
    for a, b in sorted(intervals):
        if b > reach:
            total += b - max(a, reach)
            reach = b
    return total


class Trade(BaseModel):
    market: str
    side: str
    opened_at: str
    closed_at: str
    entry_price: float
    exit_price: float | None
    qty: float
    size_quote: float = Field(description="Entry notional, quote currency.")
    fee_quote: float
    pnl_quote: float = Field(description="Profit net of fees, quote currency.")
    equity_before_quote: float
    pnl_pct_of_equity: float | None
    holding_hours: float


def num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def equity_before(trades: list[list[Any]], starting_balance: float) -> list[float]:
    """Realised equity when each trade was opened: the start plus every trade closed by then (in a portfolio, trades
    of other markets may still be open: their P&L is not realised yet)."""
    out, equity = [], starting_balance
    closed = sorted(((t[T_CLOSED], t[T_PNL] or 0.0) for t in trades), key=lambda x: x[0])
    j = 0
    for t in trades:
        while j < len(closed) and closed[j][0] <= t[T_OPENED]:
            equity += closed[j][1]
            j += 1
        out.append(equity)
    return out


def trade_models(trades: list[list[Any]], starting_balance: float, symbol: str) -> list[Trade]:
    """`symbol`: the market of trades stored without one (single-market runs before portfolio backtests)."""
    before = equity_before(trades, starting_balance)
    return [
        Trade(
            market=market_of(t, symbol),
            side=str(t[T_TYPE]),
            opened_at=iso(t[T_OPENED]),
            closed_at=iso(t[T_CLOSED]),
            entry_price=t[T_ENTRY],
            exit_price=num(t[T_EXIT]),
            qty=abs(t[T_QTY]),
            size_quote=t[T_SIZE],
            fee_quote=t[T_FEE],
            pnl_quote=t[T_PNL],
            equity_before_quote=e,
            pnl_pct_of_equity=t[T_PNL] / e * 100 if e > 0 else None,
            holding_hours=(t[T_CLOSED] - t[T_OPENED]) / 3_600_000,
        )
        for t, e in zip(trades, before, strict=True)
    ]

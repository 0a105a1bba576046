"""The one-day CVaR of a book, before and after an order: historical simulation on daily closes. Pure.

Every symbol held (open positions and resting orders, signed: long +, short -) and the order's own symbol is
revalued on each of the last days' returns, which gives the account's P&L on those days as a fraction of equity;
the CVaR is the mean of the worst (1 - var_confidence) of them (jesse_mcp.backtesting.analysis.tail_risk,
historical). The same numbers back the max_cvar pre-trade check and the CVaR shown in the paper portfolio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from jesse_mcp.backtesting.analysis.tail_risk import MIN_RETURNS, historical
from jesse_mcp.backtesting.tail_report import tail_risk_of
from jesse_mcp.trading.models import BookTailRisk, Portfolio
from jesse_mcp.trading.venue import Book

Series = list[tuple[int, float]]


@dataclass(frozen=True)
class DailyReturns:
    """Simple daily returns of several symbols over the same days (the days every series has)."""

    days: int
    by_symbol: dict[str, np.ndarray]


def aligned_returns(series: dict[str, Series | str], days: int) -> DailyReturns | str:
    """Returns of every symbol over the last `days` days they all have, or why they cannot be measured."""
    missing = [f"{s}: {v}" for s, v in sorted(series.items()) if isinstance(v, str)]
    if missing:
        return "; ".join(missing)
    closes = {s: dict(v) for s, v in series.items() if not isinstance(v, str)}
    common = sorted(set.intersection(*(set(c) for c in closes.values()))) if closes else []
    common = common[-(days + 1) :]
    if len(common) < MIN_RETURNS + 1:
        names = " and ".join(sorted(closes))
        return f"fewer than {MIN_RETURNS} common daily returns of {names} ({max(len(common) - 1, 0)})"
    out = {}
    for symbol, c in closes.items():
        prices = np.array([c[d] for d in common], dtype=float)
        if np.any(prices <= 0):
            return f"{symbol}: a daily close at or below 0"
        out[symbol] = prices[1:] / prices[:-1] - 1
    return DailyReturns(len(common) - 1, out)


def exposures(book: Book) -> dict[str, float]:
    """Signed USD exposure per symbol: open positions at their mark, resting orders at their limit price."""
    out: dict[str, float] = {}
    for p in book.positions:
        out[p.symbol] = out.get(p.symbol, 0.0) + (p.notional if p.side == "long" else -p.notional)
    for o in book.orders:
        notional = o.qty * (o.limit_price or 0.0)
        out[o.symbol] = out.get(o.symbol, 0.0) + (notional if o.side == "long" else -notional)
    return out


def book_returns(exposure: dict[str, float], returns: DailyReturns, equity: float) -> np.ndarray:
    """The account's P&L on each of the days, fraction of equity, had it held these exposures."""
    pnl = np.zeros(returns.days)
    for symbol, usd in exposure.items():
        if usd:
            pnl += usd * returns.by_symbol[symbol]
    return pnl / equity


def cvar_of(exposure: dict[str, float], returns: DailyReturns, equity: float, confidence: float) -> float:
    """One-day historical CVaR of these exposures, fraction of equity (0 with nothing held)."""
    if equity <= 0:
        return float("inf")
    pnl = book_returns(exposure, returns, equity)
    if len(pnl) < MIN_RETURNS:
        return 0.0
    return max(0.0, historical(pnl, confidence)[1])  # tail_risk's historical estimate, without its input checks


@dataclass(frozen=True)
class OrderTail:
    before: float
    after: float
    room_usd: float  # the largest notional of this order that keeps the CVaR within the limit (0: none)


def order_tail(
    book: Book, symbol: str, signed_notional: float, returns: DailyReturns, confidence: float, limit: float
) -> OrderTail:
    """The book's CVaR without and with the order, and how large the order could be within `limit`."""
    held = exposures(book)

    def with_order(fraction: float) -> float:
        e = dict(held)
        e[symbol] = e.get(symbol, 0.0) + signed_notional * fraction
        return cvar_of(e, returns, book.equity, confidence)

    before, after = with_order(0.0), with_order(1.0)
    if after <= limit:
        return OrderTail(before, after, abs(signed_notional))
    if before > limit:
        return OrderTail(before, after, 0.0)
    base = book_returns(held, returns, book.equity)
    step = signed_notional * returns.by_symbol[symbol] / book.equity
    return OrderTail(before, after, abs(signed_notional) * _room(base, step, confidence, limit))


GRID = np.linspace(0.0, 1.0, 33)  # 32 steps a round: 5 rounds place the room within 32^-5 = 3e-8 of the order


def _room(base: np.ndarray, step: np.ndarray, confidence: float, limit: float) -> float:
    """The largest fraction t of the order with CVaR(base + t step) <= limit, given CVaR(0) <= limit < CVaR(1).
    CVaR is convex in t, so the fractions within the limit are one interval from 0: each round evaluates a grid
    over the bracket at once (numpy, the same historical definition as cvar_of) and keeps the cell that crosses."""
    lo, hi = 0.0, 1.0
    for _ in range(5):
        t = lo + (hi - lo) * GRID
        pnl = base[None, :] + t[:, None] * step[None, :]
        q = np.quantile(pnl, 1 - confidence, axis=1)
        tail = pnl <= q[:, None]
        cvar = np.maximum(0.0, -np.where(tail, pnl, 0.0).sum(axis=1) / tail.sum(axis=1))
        i = int(np.flatnonzero(cvar <= limit)[-1])  # t[0] = lo is within the limit
        lo, hi = float(t[i]), float(t[min(i + 1, len(t) - 1)])
    return lo


def book_tail_risk(held: Portfolio, returns: DailyReturns, risk: Any) -> BookTailRisk:
    """VaR and CVaR (three estimates) of the portfolio's open book, at the profile's var_confidence."""
    book = Book(
        cash=held.account.cash,
        equity=held.account.equity,
        peak_equity=held.account.peak_equity,
        margin_used=held.account.margin_used,
        positions=held.positions,
        orders=held.open_orders,
    )
    pnl = book_returns(exposures(book), returns, held.account.equity)
    report = tail_risk_of(pnl, risk.var_confidence)
    return BookTailRisk(
        confidence=risk.var_confidence, max_cvar=risk.max_cvar, daily_returns=returns.days, estimates=report.estimates
    )

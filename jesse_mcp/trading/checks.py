"""The pre-trade checks of an order: every limit is evaluated and reported as a `Check`, with its violation (or None)
for the guard to decide on. Pure: the venue hands over its `Book` (trading/venue.py), whatever venue it is."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from jesse_mcp.trading.models import Check, Position
from jesse_mcp.trading.tail import DailyReturns, exposures, order_tail
from jesse_mcp.trading.venue import Book
from shared.config.models import PortfolioLimits
from shared.policy import checks as policy
from shared.policy.protections import Lock, blocking


@dataclass(frozen=True)
class CheckInputs:
    """The order and the book it meets (for paper: read inside the order's transaction)."""

    strategy: str
    symbol: str
    long: bool
    leverage: float
    notional: float  # USD at the expected fill price
    fee_bps: float
    book: Book
    trade_counts: dict[str, int]  # paper trades so far this "day", "week" and "month" (UTC), across processes
    correlations: dict[str, float | str]  # per held symbol: the return correlation, or why it was not measured
    daily_returns: DailyReturns | str  # of the order's and every held symbol, or why they could not be had
    locks: list[Lock]  # what the strategy's recent exits and equity locked (shared.policy.protections)
    now_ms: int


class _Checks:
    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.violations: list[policy.Violation | None] = []

    def add(self, rule: str, value: float | None, limit: float | None, detail: str, v: policy.Violation | None):
        text = detail if v is None else f"{v.reason} Remedy: {v.remedy}"
        self.checks.append(Check(rule=rule, passed=v is None, value=value, limit=limit, detail=text))
        self.violations.append(v)


def pre_trade_checks(
    x: CheckInputs, risk: Any, limits: PortfolioLimits
) -> tuple[list[Check], list[policy.Violation | None]]:
    """Every check in its reported order, and the violations in the same order (None where a check passed)."""
    out = _Checks()
    _order_checks(out, x, risk)
    _count_checks(out, x, limits)
    _account_checks(out, x, risk, limits)
    _correlation_checks(out, x, risk)
    _tail_check(out, x, risk)
    _protection_checks(out, x)
    return out.checks, out.violations


def _order_checks(out: _Checks, x: CheckInputs, risk: Any) -> None:
    """Position size, leverage and the risk of this one trade."""
    out.add(
        "max_position_size",
        x.notional,
        risk.max_position_size * x.book.equity,
        f"notional {x.notional:,.2f} USD of equity {x.book.equity:,.2f} USD",
        policy.check_position_size(x.notional, x.book.equity, risk.max_position_size),
    )
    out.add(
        "max_leverage",
        x.leverage,
        risk.max_leverage,
        f"leverage {x.leverage:g}x",
        policy.check_leverage(x.leverage, risk.max_leverage),
    )
    out.add(
        "max_portfolio_risk",
        x.notional * risk.stop_loss,
        risk.max_portfolio_risk * x.book.equity,
        f"notional x stop {risk.stop_loss * 100:.2f}% = {x.notional * risk.stop_loss:,.2f} USD at risk",
        policy.check_risk_per_trade(x.notional, risk.stop_loss, x.book.equity, risk.max_portfolio_risk),
    )


def _count_checks(out: _Checks, x: CheckInputs, limits: PortfolioLimits) -> None:
    """Open positions (resting orders count) of the strategy and in all, and trades per day, week and month."""
    positions, orders = x.book.positions, x.book.orders
    mine = sum(1 for p in positions if p.strategy == x.strategy) + sum(1 for o in orders if o.strategy == x.strategy)
    total = len(positions) + len(orders)
    out.add(
        "max_open_positions",
        mine,
        limits.max_open_positions,
        f"{mine} open positions and resting orders of '{x.strategy}'",
        policy.check_count_below("max_open_positions", mine, limits.max_open_positions, f"positions of '{x.strategy}'"),
    )
    out.add(
        "max_total_positions",
        total,
        limits.max_total_positions,
        f"{total} open positions and resting orders in all",
        policy.check_count_below(
            "max_total_positions", total, limits.max_total_positions, "positions of all strategies"
        ),
    )
    for period, field, limit in (
        ("day", "max_daily_trades", limits.max_daily_trades),
        ("week", "max_weekly_trades", limits.max_weekly_trades),
        ("month", "max_monthly_trades", limits.max_monthly_trades),
    ):
        n = x.trade_counts[period]
        out.add(
            field,
            n,
            limit,
            f"{n} paper trades this {period} (UTC), counted across processes",
            policy.check_count_below(
                field,
                n,
                limit,
                f"trades this {period}",
                f"wait for the next UTC {period} (closing positions does not lower the count), or raise "
                f"{field} in portfolio_limits (a person confirms loosening).",
            ),
        )


def _account_checks(out: _Checks, x: CheckInputs, risk: Any, limits: PortfolioLimits) -> None:
    """Cash left, margin in use and drawdown, counting what the resting orders will take when they fill."""
    book = x.book
    margin = x.notional / x.leverage
    fee = x.notional * x.fee_bps / 10_000
    resting_margin = sum(o.qty * (o.limit_price or 0) / o.leverage for o in book.orders)
    resting_fees = sum(o.qty * (o.limit_price or 0) for o in book.orders) * x.fee_bps / 10_000
    cash_after = book.cash - resting_margin - resting_fees - margin - fee  # resting orders will take theirs
    out.add(
        "min_account_balance",
        cash_after,
        limits.min_account_balance,
        f"cash after this order and any resting orders fill: {cash_after:,.2f} USD",
        policy.check_min_balance(
            cash_after, limits.min_account_balance, " after this order and any resting orders fill"
        ),
    )
    out.add(
        "max_account_usage",
        book.margin_used + resting_margin + margin,
        limits.max_account_usage * book.equity,
        f"margin in use with this order {book.margin_used + resting_margin + margin:,.2f} USD",
        policy.check_account_usage(
            book.margin_used + resting_margin, margin, book.equity, limits.max_account_usage, "margin in use"
        ),
    )
    out.add(
        "max_drawdown",
        policy.drawdown(book.equity, book.peak_equity),
        risk.max_drawdown,
        f"drawdown {policy.drawdown(book.equity, book.peak_equity) * 100:.2f}% from the peak",
        policy.check_drawdown(book.equity, book.peak_equity, risk.max_drawdown),
    )


def _correlation_checks(out: _Checks, x: CheckInputs, risk: Any) -> None:
    """Direction-adjusted return correlation with everything held; an unmeasured one is a violation."""
    sign = 1.0 if x.long else -1.0
    for p in [*x.book.positions, *x.book.orders]:  # a resting order is a position to be: it counts too
        what = "open" if isinstance(p, Position) else "resting"
        held = f"the {what} {p.side} {'position' if what == 'open' else 'order'} in {p.symbol}"
        measured = 1.0 if p.symbol == x.symbol else x.correlations.get(p.symbol)
        if measured is None:
            measured = f"{p.symbol} was opened while this order was being checked; place the order again"
        if isinstance(measured, str):
            out.add(
                "max_correlation",
                None,
                risk.max_correlation,
                "",
                policy.Violation(
                    "max_correlation",
                    f"the return correlation with {held} could not be measured ({measured}), and an "
                    "unmeasured correlation is not allowed.",
                    "make daily candles available (import_candles, or a price provider that has them) or "
                    f"close {held} first.",
                    None,
                    risk.max_correlation,
                ),
            )
            continue
        effective = measured * sign * (1.0 if p.side == "long" else -1.0)
        out.add(
            "max_correlation",
            effective,
            risk.max_correlation,
            f"return correlation {measured:.2f} with {held} (direction-adjusted {effective:.2f})",
            None
            if effective <= risk.max_correlation
            else policy.check_correlation(effective, held, risk.max_correlation),
        )


def _tail_check(out: _Checks, x: CheckInputs, risk: Any) -> None:
    """The account's one-day CVaR with this order against max_cvar; an unmeasured one is a violation."""
    if isinstance(x.daily_returns, str):
        out.add(
            "max_cvar",
            None,
            risk.max_cvar,
            "",
            policy.Violation(
                "max_cvar",
                f"the one-day CVaR of the account with this order could not be measured ({x.daily_returns}), and "
                "an unmeasured tail risk is not allowed.",
                "make daily candles of the symbols available (import_candles, or a price provider that has them).",
                None,
                risk.max_cvar,
            ),
        )
        return
    unmeasured = sorted(set(exposures(x.book)) - set(x.daily_returns.by_symbol))
    if unmeasured:  # opened by another call while this order's prices were fetched
        reason = f"{', '.join(unmeasured)} was opened while this order was being checked; place the order again"
        _tail_check(out, replace(x, daily_returns=reason), risk)
        return
    signed = x.notional if x.long else -x.notional
    tail = order_tail(x.book, x.symbol, signed, x.daily_returns, risk.var_confidence, risk.max_cvar)
    out.add(
        "max_cvar",
        tail.after,
        risk.max_cvar,
        f"one-day CVaR at {risk.var_confidence:.0%}: {tail.after * 100:.2f} % of equity with this order "
        f"({tail.before * 100:.2f} % without), from {x.daily_returns.days} daily returns",
        policy.check_cvar(tail.after, tail.before, risk.max_cvar, risk.var_confidence, tail.room_usd),
    )


def _protection_checks(out: _Checks, x: CheckInputs) -> None:
    """Cooldown, stop-loss guard, low-profit lock and drawdown pause: one failed check per lock that blocks."""
    locks = blocking(x.locks, x.symbol, x.now_ms)
    if not locks:
        out.add("protections", 0, 0, f"no protection lock on new entries in {x.symbol}", None)
        return
    for lock in locks:
        out.add(
            lock.rule,
            None,
            None,
            "",
            policy.Violation(
                lock.rule,
                f"{lock.describe()}.",
                "wait until the lock ends, or loosen the protection in the risk profile (needs the person's "
                "confirmation).",
            ),
        )

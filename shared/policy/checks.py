"""Capabilities, trading states, and the limit checks as small pure functions.

Each check returns a `Violation` (rule, numbers, remedy) or None. The paper engine and the guard both use them,
so a limit means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Capability = Literal["read", "research", "paper", "live", "admin"]
CAPABILITIES: tuple[Capability, ...] = ("read", "research", "paper", "live", "admin")
TradingStateName = Literal["ACTIVE", "HALTED"]
EPS = 1e-9  # fractions within this of a threshold are at it (10 000 -> 9 000 is a 0.09999999999999998 drawdown)

# Lowest effective stage at which a capability is usable; None means every stage.
CAPABILITY_MIN_STAGE: dict[str, str | None] = {
    "read": None,
    "research": None,
    "admin": None,
    "paper": "paper",
    "live": "live",
}


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    reason: str
    remedy: str
    value: float | None = None
    limit: float | None = None


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def check_position_size(notional_usd: float, equity_usd: float, max_position_size: float) -> Violation | None:
    limit = max_position_size * equity_usd
    if notional_usd <= limit:
        return None
    return Violation(
        "max_position_size",
        f"position {notional_usd:,.2f} USD is {_pct(notional_usd / equity_usd) if equity_usd > 0 else 'inf'} of "
        f"equity {equity_usd:,.2f} USD; the limit is {_pct(max_position_size)} = {limit:,.2f} USD.",
        f"reduce the size to at most {limit:,.2f} USD.",
        notional_usd,
        limit,
    )


def check_leverage(leverage: float, max_leverage: float) -> Violation | None:
    if leverage <= max_leverage:
        return None
    return Violation(
        "max_leverage",
        f"leverage {leverage:g}x exceeds the limit {max_leverage:g}x.",
        f"use leverage of at most {max_leverage:g}x.",
        leverage,
        max_leverage,
    )


def check_risk_per_trade(
    notional_usd: float, stop_distance: float, equity_usd: float, max_portfolio_risk: float
) -> Violation | None:
    """Risk = notional x stop distance (fraction of price) must stay within max_portfolio_risk x equity."""
    risk, limit = notional_usd * stop_distance, max_portfolio_risk * equity_usd
    if risk <= limit:
        return None
    largest = limit / stop_distance if stop_distance > 0 else 0.0
    return Violation(
        "max_portfolio_risk",
        f"risk {risk:,.2f} USD ({notional_usd:,.2f} USD x stop {_pct(stop_distance)}) exceeds "
        f"{_pct(max_portfolio_risk)} of equity = {limit:,.2f} USD.",
        f"reduce the size to at most {largest:,.2f} USD or tighten the stop.",
        risk,
        limit,
    )


def check_count_below(rule: str, current: int, limit: int, what: str, remedy: str | None = None) -> Violation | None:
    """One more item must fit: current + 1 <= limit. `remedy` replaces the default advice (close some first)."""
    if current + 1 <= limit:
        return None
    return Violation(
        rule,
        f"{what}: {current} already, the limit is {limit}.",
        remedy or f"close or cancel existing {what.split()[0]} first; the limit is '{rule}' in portfolio_limits.",
        float(current),
        float(limit),
    )


def check_min_balance(cash_usd: float, min_account_balance: float, when: str = "") -> Violation | None:
    """`when` says which cash is meant, e.g. ' after this order (margin and fee paid)'."""
    if cash_usd >= min_account_balance:
        return None
    return Violation(
        "min_account_balance",
        f"cash{when}: {cash_usd:,.2f} USD, below the minimum balance {min_account_balance:,.2f} USD.",
        "close positions or lower min_account_balance in portfolio_limits (needs confirmation).",
        cash_usd,
        min_account_balance,
    )


def check_account_usage(
    used_usd: float, new_usd: float, equity_usd: float, max_account_usage: float, what: str = "positions"
) -> Violation | None:
    """Capital committed (`what`: positions' notional, or the margin set aside for them) within a share of equity."""
    total, limit = used_usd + new_usd, max_account_usage * equity_usd
    if total <= limit:
        return None
    return Violation(
        "max_account_usage",
        f"{what} would total {total:,.2f} USD, above {_pct(max_account_usage)} of equity = {limit:,.2f} USD.",
        f"reduce the order's {what} to at most {max(0.0, limit - used_usd):,.2f} USD.",
        total,
        limit,
    )


def check_cvar(after: float, before: float, max_cvar: float, confidence: float, room_usd: float) -> Violation | None:
    """The account's one-day CVaR once the order fills (`after`) against max_cvar; an order that lowers it passes."""
    if after <= max_cvar + EPS or after <= before:
        return None
    room = (
        f"at most {room_usd:,.2f} USD of notional keeps it within the limit"
        if room_usd > 0
        else "the account is over the limit already, so no size of this order fits"
    )
    return Violation(
        "max_cvar",
        f"the one-day CVaR at {confidence:.0%} of everything held would be {_pct(after)} of equity with this order "
        f"({_pct(before)} without it), above max_cvar {_pct(max_cvar)}.",
        f"place a smaller order ({room}), or close or reduce a position first.",
        after,
        max_cvar,
    )


def check_correlation(correlation: float, other: str, max_correlation: float) -> Violation | None:
    """`other` names what is held, e.g. 'the open long position in BTC-USDT'."""
    if abs(correlation) <= max_correlation:
        return None
    return Violation(
        "max_correlation",
        f"return correlation with {other} is {correlation:.2f}, above {max_correlation:.2f}.",
        f"choose a less correlated asset or close {other} first.",
        correlation,
        max_correlation,
    )


def drawdown(equity_usd: float, peak_equity_usd: float) -> float:
    return 0.0 if peak_equity_usd <= 0 else max(0.0, 1.0 - equity_usd / peak_equity_usd)


def check_drawdown(equity_usd: float, peak_equity_usd: float, max_drawdown: float) -> Violation | None:
    dd = drawdown(equity_usd, peak_equity_usd)
    if dd < max_drawdown - EPS:  # at the threshold counts as reached, whatever the float rounding
        return None
    return Violation(
        "max_drawdown",
        f"drawdown {_pct(dd)} from the peak {peak_equity_usd:,.2f} USD reached the profile's {_pct(max_drawdown)}.",
        "no new entries until equity recovers; review the strategy or demote it.",
        dd,
        max_drawdown,
    )


def check_emergency_stop(equity_usd: float, peak_equity_usd: float, emergency_stop: float) -> Violation | None:
    dd = drawdown(equity_usd, peak_equity_usd)
    if dd < emergency_stop - EPS:
        return None
    return Violation(
        "emergency_stop",
        f"equity fell {_pct(dd)} from its peak {peak_equity_usd:,.2f} USD, past the emergency stop "
        f"{_pct(emergency_stop)}: trading halts.",
        "review the losses; an admin reset with a person's confirmation resumes trading.",
        dd,
        emergency_stop,
    )

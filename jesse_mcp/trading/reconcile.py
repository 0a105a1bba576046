"""The steps of a reconciliation, on the ledger inside its transaction: resting limit orders the price crossed are
filled; positions are marked and closed at liquidation, stop loss, take profit or timeout; positions past their
timeout without a price are reported."""

from __future__ import annotations

import sqlite3

from jesse_mcp.trading import ledger
from jesse_mcp.trading.models import Event
from jesse_mcp.trading.prices import PaperQuote
from shared.config.models import STAGE_RANK, TradingConfig
from shared.config.resolve import effective_stage
from shared.state.store import utc_now_iso


def cancel_orphans(db: sqlite3.Connection, cfg: TradingConfig, now: int) -> list[Event]:
    """Resting orders of a strategy that can no longer trade (removed, disabled, demoted below paper) are cancelled."""
    events = []
    for o in ledger.open_orders(db):
        s = cfg.strategies.get(o.strategy)
        why = None
        if s is None:
            why = "the strategy is no longer configured"
        elif not s.enabled:
            why = "the strategy is disabled"
        elif STAGE_RANK[effective_stage(cfg, o.strategy)] < STAGE_RANK["paper"]:
            why = f"the strategy is effectively at {effective_stage(cfg, o.strategy)}"
        if why is None:
            continue
        db.execute(
            "UPDATE paper_orders SET status = 'cancelled', reason = ?, updated_ms = ? WHERE id = ?",
            (f"cancelled: {why}", now, o.id),
        )
        events.append(
            Event(
                ts=utc_now_iso(now),
                kind="order_cancelled",
                detail=f"order {o.id} cancelled: {why}",
                order_id=o.id,
            )
        )
    return events


def fill_limits(
    db: sqlite3.Connection, cfg: TradingConfig, quotes: dict[str, PaperQuote], now: int, asked_ms: int
) -> list[Event]:
    events = []
    for o in ledger.open_orders(db):
        q = quotes.get(o.symbol)
        if q is None or o.type != "limit" or o.limit_price is None:
            continue
        if o.created_ms > asked_ms:  # a price from before the order: no
            continue
        crossed = q.price <= o.limit_price if o.side == "long" else q.price >= o.limit_price
        if not crossed:
            continue
        pos, _ = ledger.open_position(db, cfg, o, ledger.Execution(q.price, o.limit_price, q.source, "limit"), now)
        events.append(
            Event(
                ts=utc_now_iso(now),
                kind="limit_fill",
                detail=f"limit {o.side} {o.qty:g} {o.symbol} at {o.limit_price:g} filled (price {q.price:g})",
                position_id=pos.id,
                order_id=o.id,
            )
        )
    return events


def apply_marks(
    db: sqlite3.Connection, cfg: TradingConfig, quotes: dict[str, PaperQuote], now: int, asked_ms: int
) -> list[Event]:
    events = []
    timeout_ms = cfg.portfolio_limits.position_timeout_hours * 3_600_000
    for p in ledger.open_positions(db):
        q = quotes.get(p.symbol)
        if q is None or p.opened_ms > asked_ms or p.mark_ms > asked_ms:  # never mark back in time
            continue
        price, long = q.price, p.side == "long"
        db.execute("UPDATE paper_positions SET mark_price = ?, mark_ms = ? WHERE id = ?", (price, now, p.id))
        loss = -ledger.upnl(p.side, p.entry_price, price, p.qty)
        reason = None
        if loss >= p.margin - ledger.EPS:
            reason = "liquidation"
        elif (price <= p.stop_loss_price) if long else (price >= p.stop_loss_price):
            reason = "stop_loss"
        elif (price >= p.take_profit_price) if long else (price <= p.take_profit_price):
            reason = "take_profit"
        elif now - p.opened_ms >= timeout_ms:
            reason = "timeout"
        if reason is None:
            continue
        fill = ledger.close_position(db, cfg, p, q, reason, now)
        what = {
            "liquidation": "the loss used up the position's margin",
            "stop_loss": f"price {price:g} crossed the stop {p.stop_loss_price:g}",
            "take_profit": f"price {price:g} reached the take profit {p.take_profit_price:g}",
            "timeout": f"open longer than position_timeout_hours ({cfg.portfolio_limits.position_timeout_hours:g} h)",
        }[reason]
        events.append(
            Event(
                ts=utc_now_iso(now),
                kind=reason,
                detail=f"{p.side} {p.qty:g} {p.symbol} ({p.strategy}) closed at {fill.price:g}: "
                f"{what}; net P&L {fill.realised_pnl:,.2f} USD",
                position_id=p.id,
            )
        )
    return events


def unpriced_timeouts(db: sqlite3.Connection, cfg: TradingConfig, missing: dict[str, str], now: int) -> list[Event]:
    timeout_ms = cfg.portfolio_limits.position_timeout_hours * 3_600_000
    return [
        Event(
            ts=utc_now_iso(now),
            kind="no_price",
            detail=f"{p.symbol} position {p.id} is past its timeout but has no fresh price, so it stays "
            f"open until one comes: {missing[p.symbol]}",
            position_id=p.id,
        )
        for p in ledger.open_positions(db)
        if p.symbol in missing and now - p.opened_ms >= timeout_ms
    ]

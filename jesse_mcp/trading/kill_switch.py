"""The kill switch of the paper ledger: after every change of the equity it is recorded, and trading halts when
equity fell `emergency_stop` from its peak or the day's loss reached `paper.daily_loss_limit`. Halting cancels every
open order; only an admin reset with a person's confirmation resumes trading (promotion/kill_switch.py)."""

from __future__ import annotations

import sqlite3

from jesse_mcp.trading import ledger
from jesse_mcp.trading.models import Event
from jesse_mcp.trading.rows import AccountRow
from shared.config.models import TradingConfig
from shared.config.resolve import resolve_risk
from shared.policy import checks as policy
from shared.state import trading_state
from shared.state.store import JournalEntry, Store, utc_now_iso


def snapshot_and_trip(
    db: sqlite3.Connection, store: Store, server: str, cfg: TradingConfig, now: int
) -> tuple[float, Event | None]:
    """Record the equity (ledger.snapshot), then halt if it tripped the switch. Returns the account equity and the
    halt, if this call halted trading."""
    account = ledger.load_account(db, cfg, now)
    equity, account = ledger.snapshot(db, cfg, account, now)
    if not trading_state.read_in(db).active:
        return equity, None
    tripped = _tripped(cfg, account, equity)
    if tripped is None:
        return equity, None
    return equity, _halt(db, store, server, tripped, equity, now)


def _halt(
    db: sqlite3.Connection, store: Store, server: str, tripped: policy.Violation, equity: float, now: int
) -> Event:
    reason = f"kill switch ({tripped.rule}): {tripped.reason}"
    trading_state.set_in(db, "HALTED", reason)
    cancelled = [o.id for o in ledger.open_orders(db)]
    db.execute(
        "UPDATE paper_orders SET status = 'cancelled', reason = 'kill switch', updated_ms = ? WHERE status = 'open'",
        (now,),
    )
    detail = reason + (f" Cancelled open orders: {', '.join(cancelled)}." if cancelled else "")
    store.journal_insert(
        JournalEntry(
            server,
            "kill_switch",
            None,
            None,
            {"equity": round(equity, 2)},
            "system",
            "halted",
            rule=tripped.rule,
            reason=detail,
        ),
        db,
    )
    return Event(ts=utc_now_iso(now), kind="kill_switch", detail=detail)


def _tripped(cfg: TradingConfig, account: AccountRow, equity: float) -> policy.Violation | None:
    """The emergency stop, else the daily loss limit, if `equity` reached either."""
    emergency = resolve_risk(cfg, None, mode="backtest").settings.emergency_stop
    tripped = policy.check_emergency_stop(equity, account.peak_equity, emergency)
    day_loss = 1 - equity / account.day_start_equity if account.day_start_equity > 0 else 0.0
    if tripped is None and day_loss >= cfg.paper.daily_loss_limit - ledger.EPS:
        tripped = policy.Violation(
            "daily_loss_limit",
            f"equity {equity:,.2f} USD is {day_loss * 100:.2f}% below the day's start "
            f"{account.day_start_equity:,.2f} USD ({account.day} UTC), at or past the daily loss limit "
            f"{cfg.paper.daily_loss_limit * 100:.2f}%: trading halts.",
            "review the losses; an admin reset with a person's confirmation resumes trading.",
            day_loss,
            cfg.paper.daily_loss_limit,
        )
    return tripped

"""The paper side of the protections (shared.policy.protections): the strategy's recent exits and equity read from
the ledger inside the order's transaction, replayed into the locks they made; and each lock recorded once, with its
reason, when the monitor first sees it (table paper_locks; the monitor's journal row carries it as an event)."""

from __future__ import annotations

import sqlite3
from typing import Any

from jesse_mcp.trading import ledger
from jesse_mcp.trading.models import Event
from jesse_mcp.trading.rows import LockRow
from shared.config.models import TradingConfig
from shared.config.resolve import resolve_risk
from shared.policy.protections import Exit, Lock, Protections, replay
from shared.state.store import utc_now_iso

LONGEST_LOOKBACK_MS = 2 * 8760 * 3_600_000  # window plus pause, each at most 8760 h (risk_fields)
ALL_MARKETS = "*"  # paper_locks.symbol of a lock on every market (a drawdown pause, the stop-loss guard)


def locks_in(db: sqlite3.Connection, strategy: str, risk: Any, now_ms: int) -> list[Lock]:
    """Every lock the strategy's exits and equity of the lookback made (active now or not)."""
    p = Protections.of(risk.model_dump())
    since = now_ms - p.lookback_ms
    closed = db.execute(  # only what the protections read: a busy day has many exits, read at every order
        "SELECT symbol, closed_ms, realised_pnl, qty * entry_price, exit_reason FROM paper_positions "
        "WHERE strategy = ? AND status = 'closed' AND closed_ms > ? ORDER BY closed_ms, id",
        (strategy, since),
    ).fetchall()
    exits = [
        Exit(symbol, int(closed_ms or 0), (pnl or 0.0) / size if size > 0 else 0.0, reason == "stop_loss")
        for symbol, closed_ms, pnl, size, reason in closed
    ]
    points = ledger.select_equity(db, "WHERE strategy = ? AND ts_ms > ? ORDER BY ts_ms", (strategy, since))
    return replay(exits, [(e.ts_ms, e.equity) for e in points], p)


def record_all(db: sqlite3.Connection, cfg: TradingConfig, now_ms: int) -> list[Event]:
    """Every strategy's locks replayed from the ledger, the new ones recorded (the monitor, each pass)."""
    events = []
    for strategy in strategies_with_history(db, now_ms - LONGEST_LOOKBACK_MS):
        configured = strategy if strategy in cfg.strategies else None
        risk = resolve_risk(cfg, configured, mode="paper").settings
        events += record_new(db, strategy, locks_in(db, strategy, risk, now_ms), now_ms)
    return events


def strategies_with_history(db: sqlite3.Connection, since_ms: int) -> list[str]:
    """Strategies whose exits or equity since then may have made a lock."""
    rows = db.execute(
        "SELECT strategy FROM paper_positions WHERE status = 'closed' AND closed_ms > ? "
        "UNION SELECT strategy FROM paper_equity WHERE ts_ms > ? ORDER BY strategy",
        (since_ms, since_ms),
    ).fetchall()
    return [r[0] for r in rows]


def record_new(db: sqlite3.Connection, strategy: str, locks: list[Lock], now_ms: int) -> list[Event]:
    """Record the locks not seen before; one event each (what the monitor journals), with the lock's reason."""
    events = []
    for k in locks:
        cur = db.execute(
            "INSERT OR IGNORE INTO paper_locks (strategy, rule, symbol, from_ms, until_ms, reason, seen_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (strategy, k.rule, k.symbol or ALL_MARKETS, k.from_ms, k.until_ms, k.reason, now_ms),
        )
        if cur.rowcount == 1:
            detail = f"{strategy}: {k.describe()}"
            events.append(Event(ts=utc_now_iso(now_ms), kind="protection_lock", detail=detail))
    return events


def active_locks(db: sqlite3.Connection, now_ms: int) -> list[LockRow]:
    """The recorded locks in force now, soonest to end first."""
    return ledger.select_locks(
        db, "WHERE from_ms <= ? AND until_ms > ? ORDER BY until_ms, strategy, rule", (now_ms, now_ms)
    )

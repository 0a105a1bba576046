"""The paper side of the protections (shared.policy.protections): the strategy's recent exits and equity read from
the ledger inside the order's transaction, replayed into the locks they made."""

from __future__ import annotations

import sqlite3
from typing import Any

from jesse_mcp.trading import ledger
from shared.policy.protections import Exit, Lock, Protections, replay


def locks_in(db: sqlite3.Connection, strategy: str, risk: Any, now_ms: int) -> list[Lock]:
    """Every lock the strategy's exits and equity of the lookback made (active now or not)."""
    p = Protections.of(risk.model_dump())
    since = now_ms - p.lookback_ms
    closed = ledger.select_positions(
        db, "WHERE strategy = ? AND status = 'closed' AND closed_ms > ? ORDER BY closed_ms, id", (strategy, since)
    )
    exits = [
        Exit(
            symbol=c.symbol,
            closed_ms=int(c.closed_ms or 0),
            trade_return=(c.realised_pnl or 0.0) / (c.qty * c.entry_price) if c.qty * c.entry_price > 0 else 0.0,
            stop_loss=c.exit_reason == "stop_loss",
        )
        for c in closed
    ]
    points = ledger.select_equity(db, "WHERE strategy = ? AND ts_ms > ? ORDER BY ts_ms", (strategy, since))
    return replay(exits, [(e.ts_ms, e.equity) for e in points], p)

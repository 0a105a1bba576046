"""The trading state (ACTIVE or HALTED by the kill switch), one row in `state.db`.

Policy-wide, so it lives in shared: every server's tool wrapper reads it before each call (the guard denies all but
reads, tightening and demotions while HALTED), config updates refuse loosening while halted, and the paper ledger's
kill switch halts inside its order transaction. Migrations create the row (ACTIVE) on first open.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from shared.policy.checks import TradingStateName
from shared.state.clock import utc_now_iso
from shared.state.store import Store


@dataclass(frozen=True, slots=True)
class TradingState:
    state: TradingStateName
    reason: str
    since: str  # UTC ISO-8601

    @property
    def active(self) -> bool:
        return self.state == "ACTIVE"


def read_in(db: sqlite3.Connection) -> TradingState:
    """The trading state read through `db` (inside an open transaction, or under the store's lock)."""
    state, reason, since = db.execute("SELECT state, reason, since FROM trading_state WHERE id = 1").fetchone()
    return TradingState(state, reason, since)


def read(store: Store) -> TradingState:
    with store.locked() as db:
        return read_in(db)


def set_in(db: sqlite3.Connection, state: TradingStateName, reason: str) -> None:
    """Change the state inside the caller's transaction (or autocommitted under the store's lock)."""
    db.execute("UPDATE trading_state SET state = ?, reason = ?, since = ? WHERE id = 1", (state, reason, utc_now_iso()))


def write(store: Store, state: TradingStateName, reason: str) -> None:
    with store.locked() as db:
        set_in(db, state, reason)

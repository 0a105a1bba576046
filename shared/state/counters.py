"""Counters that enforce limits (trades per UTC day, ISO week, month), in `state.db`.

Policy-wide, not the paper ledger's: the portfolio limits they enforce cover every venue, and any server may count.
Checks and increments run inside one BEGIN IMMEDIATE transaction, so several processes never exceed a limit; the
paper ledger reads and adds inside its own order transaction (`read_in`, `add_in`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.state.store import Store


@dataclass(frozen=True, slots=True)
class CounterResult:
    allowed: bool
    values: dict[str, int]
    blocked_by: str | None = None


def window_keys(name: str, now: datetime | None = None) -> dict[str, str]:
    """Counter keys for the UTC day, ISO week and month containing `now`."""
    now = now or datetime.now(UTC)
    year, week, _ = now.isocalendar()
    return {
        "day": f"{name}:day:{now:%Y-%m-%d}",
        "week": f"{name}:week:{year}-W{week:02d}",
        "month": f"{name}:month:{now:%Y-%m}",
    }


def read_in(db: sqlite3.Connection, keys: Sequence[str]) -> dict[str, int]:
    """Counter values inside an open transaction (0 for a key never incremented)."""
    values = {}
    for key in keys:
        row = db.execute("SELECT value FROM counters WHERE key = ?", (key,)).fetchone()
        values[key] = row[0] if row else 0
    return values


def add_in(db: sqlite3.Connection, keys: Sequence[str], amount: int = 1) -> None:
    """Add `amount` to each key inside an open transaction (the caller checked the limits in the same one)."""
    now_ms = time.time_ns() // 1_000_000
    for key in keys:
        db.execute(
            "INSERT INTO counters (key, value, updated_ms) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value, updated_ms = excluded.updated_ms",
            (key, amount, now_ms),
        )


def check_and_increment(store: Store, limits: Sequence[tuple[str, int]], amount: int = 1) -> CounterResult:
    """Increment every key by `amount` only if each stays within its limit; otherwise change nothing."""
    with store.transaction() as db:
        values = read_in(db, [key for key, _ in limits])
        for key, limit in limits:
            if values[key] + amount > limit:
                return CounterResult(False, values, key)
        add_in(db, list(values), amount)
        values = {key: value + amount for key, value in values.items()}
    return CounterResult(True, values)


def value(store: Store, key: str) -> int:
    with store.locked() as db:
        row = db.execute("SELECT value FROM counters WHERE key = ?", (key,)).fetchone()
    return row[0] if row else 0

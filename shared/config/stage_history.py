"""The stage history: every promotion and demotion with its reason, in `state.db`.

Beside the configuration code because stage changes are configuration writes (shared.config.updates writes a
demotion's row in the same unit as the file; jesse_mcp's promotion writes promotions through it).
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from shared.state.clock import utc_now_iso
from shared.state.store import Store


@dataclass(frozen=True, slots=True)
class StageChange:
    ts: str  # UTC ISO-8601
    strategy: str | None  # None: the global stage
    from_stage: str
    to_stage: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_in(db: sqlite3.Connection, strategy: str | None, from_stage: str, to_stage: str, reason: str) -> None:
    """Insert a change inside the caller's open transaction."""
    db.execute(
        "INSERT INTO stage_history (ts, strategy, from_stage, to_stage, reason) VALUES (?,?,?,?,?)",
        (utc_now_iso(), strategy, from_stage, to_stage, reason),
    )


def history(store: Store, strategy: str | None = None, limit: int = 100) -> list[StageChange]:
    """Changes newest first, of one strategy or of all (and the global stage)."""
    sql = "SELECT ts, strategy, from_stage, to_stage, reason FROM stage_history"
    params: tuple[Any, ...] = ()
    if strategy is not None:
        sql, params = sql + " WHERE strategy = ?", (strategy,)
    with store.locked() as db:
        rows = db.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
    return [StageChange(*r) for r in rows]

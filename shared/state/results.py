"""Stored results (backtests, stress tests, Monte Carlo, validations, discovered opportunities) in `state.db`.

Shared, not the backtesting package's: jesse_mcp's research tools and discovery_mcp's opportunities both store
here, and servers never import each other. Each result is stored whole (summary, record, trades) in one transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import StoreError
from shared.state.clock import utc_now_iso
from shared.state.store import Store


class ResultNotFound(StoreError):
    """No stored result has that id."""


@dataclass(frozen=True, slots=True)
class NewResult:
    """A result to store."""

    id: str
    kind: str
    strategy: str | None
    summary: dict[str, Any]
    record: dict[str, Any]
    trades: list[Any] | None = None


@dataclass(frozen=True, slots=True)
class ResultSummary:
    """A stored result as listed: its id, kind, creation time and one-line summary."""

    id: str
    kind: str
    created_at: str  # UTC ISO-8601
    summary: dict[str, Any]

    def listing(self) -> dict[str, Any]:
        """The flat row list_backtests shows: id, kind, created_at and the summary's keys."""
        return {"id": self.id, "kind": self.kind, "created_at": self.created_at, **self.summary}


@dataclass(frozen=True, slots=True)
class StoredResult:
    record: dict[str, Any]
    trades: list[Any] | None = None


def save(store: Store, *results: NewResult) -> None:
    """Store the results in one transaction: all or none."""
    ts_ms = time.time_ns() // 1_000_000
    rows = [
        (
            r.id,
            r.kind,
            utc_now_iso(ts_ms),
            ts_ms,
            r.strategy,
            json.dumps(r.summary, allow_nan=False),
            json.dumps(r.record, allow_nan=False),
            json.dumps(r.trades, allow_nan=False) if r.trades is not None else None,
        )
        for r in results
    ]
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO results (id, kind, ts, ts_ms, strategy, summary, record, trades) VALUES (?,?,?,?,?,?,?,?)",
            rows,
        )


def get(store: Store, result_id: str, with_trades: bool = False) -> StoredResult:
    with store.locked() as db:
        row = db.execute(
            "SELECT record, " + ("trades" if with_trades else "NULL") + " FROM results WHERE id = ?",
            (result_id,),
        ).fetchone()
    if row is None:
        raise ResultNotFound(
            f"No stored result with id {result_id!r}. list_backtests shows the stored ids (newest first)."
        )
    return StoredResult(json.loads(row[0]), json.loads(row[1]) if row[1] is not None else None)


def listed(
    store: Store,
    kind: str | Sequence[str] | None = None,
    strategy: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[ResultSummary], int]:
    """Results newest first, and how many match; `kind` is one kind or several."""
    where, params = [], []
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        where.append(f"kind IN ({','.join('?' * len(kinds))})")
        params.extend(kinds)
    if strategy is not None:
        where.append("strategy = ?")
        params.append(strategy)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    with store.locked() as db:
        total = db.execute("SELECT COUNT(*) FROM results" + clause, params).fetchone()[0]
        rows = db.execute(
            "SELECT id, kind, ts, summary FROM results" + clause + " ORDER BY ts_ms DESC, rowid DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ).fetchall()
    return [ResultSummary(r[0], r[1], r[2], json.loads(r[3])) for r in rows], total

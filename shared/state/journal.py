"""The journal: one row per tool call of every server (and each kill-switch halt), in `state.db`.

Shared by the three servers, so it lives with the database core; `Store.journal_insert`, `journal_finish` and
`journal_query` run these statements under the store's lock, or inside the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.redact import redact, redact_text, secret_env_values
from shared.state.clock import utc_now_iso


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A row to insert."""

    server: str
    tool: str
    capability: str | None
    strategy: str | None
    arguments: dict[str, Any]
    decision: str
    outcome: str
    rule: str | None = None
    reason: str | None = None
    error: str | None = None
    duration_ms: float | None = None
    result_digest: str | None = None


@dataclass(frozen=True, slots=True)
class JournalOutcome:
    """How a journaled call ended: what `journal_finish` writes over its 'started' row."""

    outcome: str
    error: str | None
    duration_ms: float
    result_digest: str | None
    decision: str = "allow"
    rule: str | None = None


class JournalRow(BaseModel):
    # a stored row, as get_journal shows it (no docstring: it would enter the tool's output schema)
    model_config = ConfigDict(frozen=True)

    id: int
    ts: str = Field(description="UTC ISO-8601 time the call was journaled.")
    server: str
    tool: str
    capability: str | None
    strategy: str | None
    arguments: Any = Field(description="Arguments as received, secrets redacted, long strings cut.")
    decision: str = Field(description="allow, deny (guard refused) or invalid (bad arguments or unknown tool).")
    rule: str | None
    reason: str | None
    outcome: str = Field(
        description="ok, error, denied, invalid_arguments, unknown_tool, internal_error, "
        "cancelled, or started (still running or interrupted)."
    )
    error: str | None
    duration_ms: float | None
    result_digest: str | None = Field(description="sha256 prefix of the structured result.")


_INSERT = (
    "INSERT INTO journal (ts, ts_ms, server, tool, capability, strategy, arguments, decision, rule, reason,"
    " outcome, error, duration_ms, result_digest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_FINISH = (
    "UPDATE journal SET outcome = ?, error = ?, duration_ms = ?, result_digest = ?, decision = ?,"
    " rule = ?, reason = CASE WHEN ? IS NULL THEN reason ELSE ? END WHERE id = ?"
)
_COLUMNS = tuple(JournalRow.model_fields)


def insert(db: sqlite3.Connection, entry: JournalEntry) -> int:
    """Every column is redacted here, the one way rows enter the journal (and get_journal shows them)."""
    now_ms = time.time_ns() // 1_000_000
    secrets = secret_env_values()

    def text(value: str | None) -> str | None:
        return None if value is None else redact_text(value, secrets)

    row = (
        utc_now_iso(now_ms),
        now_ms,
        text(entry.server),
        text(entry.tool),
        text(entry.capability),
        text(entry.strategy),
        json.dumps(redact(entry.arguments, secrets), default=str, sort_keys=True),
        text(entry.decision),
        text(entry.rule),
        text(entry.reason),
        text(entry.outcome),
        text(entry.error),
        entry.duration_ms,
        text(entry.result_digest),
    )
    return db.execute(_INSERT, row).lastrowid  # type: ignore[return-value]


def finish(db: sqlite3.Connection, row_id: int, end: JournalOutcome) -> None:
    outcome, error, decision, rule = (
        None if v is None else redact_text(v) for v in (end.outcome, end.error, end.decision, end.rule)
    )
    db.execute(
        _FINISH,
        (
            outcome,
            error,
            end.duration_ms,
            end.result_digest,
            decision,
            rule,
            rule,
            error,
            row_id,
        ),
    )


@dataclass(frozen=True, slots=True)
class JournalFilter:
    limit: int = 50
    tool: str | None = None
    decision: str | None = None
    since_ms: int | None = None
    server: str | None = None


def query(db: sqlite3.Connection, where: JournalFilter) -> list[JournalRow]:
    """Rows newest first."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("tool", where.tool), ("decision", where.decision), ("server", where.server)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if where.since_ms is not None:
        clauses.append("ts_ms >= ?")
        params.append(where.since_ms)
    sql_where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT {', '.join(_COLUMNS)} FROM journal {sql_where} ORDER BY id DESC LIMIT ?"
    rows = db.execute(sql, (*params, where.limit)).fetchall()
    out = []
    for r in rows:
        values = dict(zip(_COLUMNS, r, strict=True))
        values["arguments"] = json.loads(values["arguments"])
        out.append(JournalRow.model_validate(values))
    return out

"""SQLite state shared by the three server processes: journal, counters, trading state, stage history.

WAL mode, schema versioned with `PRAGMA user_version` and migrated on open. Counters are checked and incremented
inside `BEGIN IMMEDIATE`, so several processes together never exceed a limit.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.errors import StoreError
from shared.redact import redact, redact_text, secret_env_values

# Each entry migrates from version i to i + 1. Never edit a shipped entry: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        server TEXT NOT NULL,
        tool TEXT NOT NULL,
        capability TEXT,
        strategy TEXT,
        arguments TEXT NOT NULL,
        decision TEXT NOT NULL,
        rule TEXT,
        reason TEXT,
        outcome TEXT NOT NULL,
        error TEXT,
        duration_ms REAL,
        result_digest TEXT
    );
    CREATE INDEX journal_tool_ts ON journal (tool, ts_ms);
    CREATE INDEX journal_ts ON journal (ts_ms);
    CREATE TABLE counters (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE TABLE trading_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        state TEXT NOT NULL CHECK (state IN ('ACTIVE', 'HALTED')),
        reason TEXT NOT NULL,
        since TEXT NOT NULL
    );
    CREATE TABLE stage_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        strategy TEXT,
        from_stage TEXT NOT NULL,
        to_stage TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE results (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        ts TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        strategy TEXT,
        summary TEXT NOT NULL,
        record TEXT NOT NULL,
        trades TEXT
    );
    CREATE INDEX results_ts ON results (ts_ms);
    CREATE INDEX results_strategy ON results (strategy, ts_ms);
    """,
    """
    CREATE TABLE news_items (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        priority INTEGER NOT NULL,
        url TEXT NOT NULL,
        title_key TEXT NOT NULL,
        published_ms INTEGER NOT NULL,
        fetched_ms INTEGER NOT NULL,
        item TEXT NOT NULL
    );
    CREATE INDEX news_items_published ON news_items (published_ms);
    CREATE TABLE news_sources (
        name TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        state TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE paper_account (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        starting_balance REAL NOT NULL,
        cash REAL NOT NULL,
        peak_equity REAL NOT NULL,
        day TEXT NOT NULL,
        day_start_equity REAL NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE paper_orders (
        id TEXT PRIMARY KEY,
        client_order_id TEXT NOT NULL UNIQUE,
        request_hash TEXT NOT NULL,
        strategy TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('long', 'short')),
        type TEXT NOT NULL CHECK (type IN ('market', 'limit')),
        qty REAL NOT NULL CHECK (qty > 0),
        limit_price REAL,
        leverage REAL NOT NULL,
        stop_loss REAL NOT NULL,
        take_profit REAL NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'filled', 'cancelled')),
        reason TEXT,
        position_id TEXT,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE INDEX paper_orders_status ON paper_orders (status);
    CREATE TABLE paper_positions (
        id TEXT PRIMARY KEY,
        strategy TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('long', 'short')),
        qty REAL NOT NULL CHECK (qty > 0),
        entry_price REAL NOT NULL,
        leverage REAL NOT NULL,
        margin REAL NOT NULL,
        stop_loss_price REAL NOT NULL,
        take_profit_price REAL NOT NULL,
        opened_ms INTEGER NOT NULL,
        mark_price REAL NOT NULL,
        mark_ms INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
        closed_ms INTEGER,
        exit_price REAL,
        exit_reason TEXT,
        fees REAL NOT NULL,
        realised_pnl REAL
    );
    CREATE INDEX paper_positions_status ON paper_positions (status, strategy);
    CREATE TABLE paper_fills (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts_ms INTEGER NOT NULL,
        order_id TEXT,
        position_id TEXT NOT NULL,
        strategy TEXT NOT NULL,
        symbol TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('open', 'close')),
        side TEXT NOT NULL,
        qty REAL NOT NULL,
        price REAL NOT NULL,
        reference_price REAL NOT NULL,
        fee REAL NOT NULL,
        reason TEXT NOT NULL,
        price_source TEXT NOT NULL,
        realised_pnl REAL
    );
    CREATE INDEX paper_fills_position ON paper_fills (position_id);
    CREATE TABLE paper_equity (
        ts_ms INTEGER NOT NULL,
        strategy TEXT NOT NULL,
        equity REAL NOT NULL,
        PRIMARY KEY (strategy, ts_ms)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def utc_now_iso(ms: int | None = None) -> str:
    t = datetime.fromtimestamp((ms if ms is not None else time.time_ns() // 1_000_000) / 1000, UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class CounterResult:
    allowed: bool
    values: dict[str, int]
    blocked_by: str | None = None


@dataclass(frozen=True, slots=True)
class JournalEntry:
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


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._wal()
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            # Checkpoints run from the paper monitor (checkpoint()), outside order transactions; the automatic one
            # is only a backstop, so an order's commit rarely pays for copying the WAL back.
            self._db.execute("PRAGMA wal_autocheckpoint=4000")
            self._migrate()
        except sqlite3.Error as e:
            raise StoreError(f"Cannot open the state database {self.path}: {e}") from e

    def _wal(self) -> None:
        """Switch to WAL; SQLite answers 'locked' at once (no busy wait) while another process creates the file."""
        for attempt in range(100):
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or attempt == 99:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _migrate(self) -> None:
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this program's {SCHEMA_VERSION}. "
                    "Upgrade trading-mcp, or point TRADING_MCP_HOME at another folder."
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute(
                "INSERT OR IGNORE INTO trading_state (id, state, reason, since) VALUES (1, 'ACTIVE', ?, ?)",
                ("initial state", utc_now_iso()),
            )

    def checkpoint(self) -> None:
        """Copy the WAL back into the database without waiting for readers (PASSIVE)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._db.execute("PRAGMA user_version").fetchone()[0]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An exclusive-write transaction (BEGIN IMMEDIATE): all or nothing."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._on_commit: list[Callable[[], None]] = []
            try:
                yield self._db
            except BaseException:
                self._on_commit = []
                self._db.execute("ROLLBACK")
                raise
            try:
                self._db.execute("COMMIT")
            except BaseException:  # disk full, I/O error: leave no open transaction behind
                self._on_commit = []
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            done, self._on_commit = self._on_commit, []
        for fn in done:
            fn()

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A read transaction (BEGIN DEFERRED): a consistent snapshot without taking the write lock."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Run `fn` once the open transaction commits (never if it rolls back)."""
        self._on_commit.append(fn)

    # --- journal -------------------------------------------------------------------------------------------
    def journal_insert(self, entry: JournalEntry, db: sqlite3.Connection | None = None) -> int:
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
        sql = (
            "INSERT INTO journal (ts, ts_ms, server, tool, capability, strategy, arguments, decision, rule, reason,"
            " outcome, error, duration_ms, result_digest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        )
        with self._lock:
            return (db or self._db).execute(sql, row).lastrowid  # type: ignore[return-value]

    def journal_finish(
        self,
        row_id: int,
        outcome: str,
        error: str | None,
        duration_ms: float,
        digest: str | None,
        decision: str = "allow",
        rule: str | None = None,
    ) -> None:
        outcome, decision = redact_text(outcome), redact_text(decision)
        error, rule = (None if v is None else redact_text(v) for v in (error, rule))
        with self._lock:
            self._db.execute(
                "UPDATE journal SET outcome = ?, error = ?, duration_ms = ?, result_digest = ?, decision = ?,"
                " rule = ?, reason = CASE WHEN ? IS NULL THEN reason ELSE ? END WHERE id = ?",
                (outcome, error, duration_ms, digest, decision, rule, rule, error, row_id),
            )

    def journal_query(
        self,
        *,
        limit: int = 50,
        tool: str | None = None,
        decision: str | None = None,
        since_ms: int | None = None,
        server: str | None = None,
    ) -> list[dict[str, Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("tool", tool), ("decision", decision), ("server", server)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since_ms is not None:
            clauses.append("ts_ms >= ?")
            params.append(since_ms)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM journal {where} ORDER BY id DESC LIMIT ?"
        with self._lock:
            cur = self._db.execute(sql, (*params, limit))
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        for r in rows:
            r["arguments"] = json.loads(r["arguments"])
        return rows

    # --- counters ------------------------------------------------------------------------------------------
    def check_and_increment(self, limits: Sequence[tuple[str, int]], amount: int = 1) -> CounterResult:
        """Increment every key by `amount` only if each stays within its limit; otherwise change nothing."""
        with self.transaction() as db:
            values = self.counters_read(db, [key for key, _ in limits])
            for key, limit in limits:
                if values[key] + amount > limit:
                    return CounterResult(False, values, key)
            self.counters_add(db, list(values), amount)
            values = {key: value + amount for key, value in values.items()}
        return CounterResult(True, values)

    @staticmethod
    def counters_read(db: sqlite3.Connection, keys: Sequence[str]) -> dict[str, int]:
        """Counter values inside an open transaction (0 for a key never incremented)."""
        values = {}
        for key in keys:
            row = db.execute("SELECT value FROM counters WHERE key = ?", (key,)).fetchone()
            values[key] = row[0] if row else 0
        return values

    @staticmethod
    def counters_add(db: sqlite3.Connection, keys: Sequence[str], amount: int = 1) -> None:
        """Add `amount` to each key inside an open transaction (the caller checked the limits in the same one)."""
        now_ms = time.time_ns() // 1_000_000
        for key in keys:
            db.execute(
                "INSERT INTO counters (key, value, updated_ms) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value, updated_ms = excluded.updated_ms",
                (key, amount, now_ms),
            )

    def counter_value(self, key: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE key = ?", (key,)).fetchone()
        return row[0] if row else 0

    # --- trading state and stage history --------------------------------------------------------------------
    def trading_state(self) -> dict[str, str]:
        with self._lock:
            state, reason, since = self._db.execute(
                "SELECT state, reason, since FROM trading_state WHERE id = 1"
            ).fetchone()
        return {"state": state, "reason": reason, "since": since}

    def trading_state_in(self, db: sqlite3.Connection) -> dict[str, str]:
        """The trading state read inside an open transaction."""
        state, reason, since = db.execute("SELECT state, reason, since FROM trading_state WHERE id = 1").fetchone()
        return {"state": state, "reason": reason, "since": since}

    def set_trading_state(self, state: str, reason: str, db: sqlite3.Connection | None = None) -> None:
        with self._lock:
            (db or self._db).execute(
                "UPDATE trading_state SET state = ?, reason = ?, since = ? WHERE id = 1",
                (state, reason, utc_now_iso()),
            )

    def record_stage_change(
        self,
        strategy: str | None,
        from_stage: str,
        to_stage: str,
        reason: str,
        db: sqlite3.Connection | None = None,
    ) -> None:
        with self._lock:
            (db or self._db).execute(
                "INSERT INTO stage_history (ts, strategy, from_stage, to_stage, reason) VALUES (?,?,?,?,?)",
                (utc_now_iso(), strategy, from_stage, to_stage, reason),
            )

    def stage_history(self, strategy: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        sql = "SELECT ts, strategy, from_stage, to_stage, reason FROM stage_history"
        params: tuple[Any, ...] = ()
        if strategy is not None:
            sql, params = sql + " WHERE strategy = ?", (strategy,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
        return [dict(zip(("ts", "strategy", "from_stage", "to_stage", "reason"), r, strict=True)) for r in rows]

    # --- results (backtests, stress tests, Monte Carlo, validations) -----------------------------------------
    def result_save(
        self,
        result_id: str,
        kind: str,
        strategy: str | None,
        summary: dict[str, Any],
        record: dict[str, Any],
        trades: list[Any] | None = None,
    ) -> None:
        """Store one result whole, in one transaction (a failure leaves nothing behind)."""
        self.results_save([(result_id, kind, strategy, summary, record, trades)])

    def results_save(self, items: list[tuple[str, str, str | None, dict[str, Any], dict[str, Any], Any]]) -> None:
        """Store several results (id, kind, strategy, summary, record, trades) in one transaction: all or none."""
        ts_ms = time.time_ns() // 1_000_000
        rows = [
            (
                result_id,
                kind,
                utc_now_iso(ts_ms),
                ts_ms,
                strategy,
                json.dumps(summary, allow_nan=False),
                json.dumps(record, allow_nan=False),
                json.dumps(trades, allow_nan=False) if trades is not None else None,
            )
            for result_id, kind, strategy, summary, record, trades in items
        ]
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO results (id, kind, ts, ts_ms, strategy, summary, record, trades) VALUES (?,?,?,?,?,?,?,?)",
                rows,
            )

    def result_get(self, result_id: str, with_trades: bool = False) -> tuple[dict[str, Any], list[Any] | None]:
        with self._lock:
            row = self._db.execute(
                "SELECT record, " + ("trades" if with_trades else "NULL") + " FROM results WHERE id = ?",
                (result_id,),
            ).fetchone()
        if row is None:
            raise ResultNotFound(
                f"No stored result with id {result_id!r}. list_backtests shows the stored ids (newest first)."
            )
        return json.loads(row[0]), (json.loads(row[1]) if row[1] is not None else None)

    def result_list(
        self,
        kind: str | Sequence[str] | None = None,
        strategy: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Results newest first; `kind` is one kind or several."""
        where, params = [], []
        if kind is not None:
            kinds = [kind] if isinstance(kind, str) else list(kind)
            where.append(f"kind IN ({','.join('?' * len(kinds))})")
            params.extend(kinds)
        if strategy is not None:
            where.append("strategy = ?")
            params.append(strategy)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self._lock:
            total = self._db.execute("SELECT COUNT(*) FROM results" + clause, params).fetchone()[0]
            rows = self._db.execute(
                "SELECT id, kind, ts, summary FROM results"
                + clause
                + " ORDER BY ts_ms DESC, rowid DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [{"id": r[0], "kind": r[1], "created_at": r[2], **json.loads(r[3])} for r in rows], total


class ResultNotFound(StoreError):
    """No stored result has that id."""


def window_keys(name: str, now: datetime | None = None) -> dict[str, str]:
    """Counter keys for the UTC day, ISO week and month containing `now`."""
    now = now or datetime.now(UTC)
    year, week, _ = now.isocalendar()
    return {
        "day": f"{name}:day:{now:%Y-%m-%d}",
        "week": f"{name}:week:{year}-W{week:02d}",
        "month": f"{name}:month:{now:%Y-%m}",
    }

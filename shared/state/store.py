"""The SQLite database shared by the three server processes: connection, WAL, transactions, migrations, journal.

WAL mode, schema versioned with `PRAGMA user_version` and migrated on open (shared.state.migrations holds the one
ordered list). Each domain's queries live beside its code and run through `transaction()` (BEGIN IMMEDIATE: the
write lock, so checks and increments in it cannot race another process), `reading()` or `locked()`:
journal (shared.state.journal), counters, trading state, results (shared.state), stage history (shared.config),
news (discovery_mcp.news), paper ledger (jesse_mcp.trading).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from shared.errors import StoreError
from shared.state import journal, migrations
from shared.state.clock import utc_now_iso
from shared.state.journal import JournalEntry, JournalFilter, JournalOutcome, JournalRow

SCHEMA_VERSION = migrations.SCHEMA_VERSION
__all__ = ["SCHEMA_VERSION", "JournalEntry", "JournalOutcome", "JournalRow", "Store", "utc_now_iso"]


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._on_commit: list[Callable[[], None]] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._wal()
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            # Checkpoints run from the paper monitor (checkpoint()), outside order transactions; the automatic one
            # is only a backstop, so an order's commit rarely pays for copying the WAL back.
            self._db.execute("PRAGMA wal_autocheckpoint=4000")
            with self.transaction() as db:
                migrations.upgrade(db, self.path, utc_now_iso())
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
            self._on_commit = []
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

    @contextlib.contextmanager
    def locked(self) -> Iterator[sqlite3.Connection]:
        """The connection for one autocommitted statement (no transaction of its own)."""
        with self._lock:
            yield self._db

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Run `fn` once the open transaction commits (never if it rolls back)."""
        self._on_commit.append(fn)

    # --- journal: every server writes it, the wrapper on every call ----------------------------------------------
    def journal_insert(self, entry: JournalEntry, db: sqlite3.Connection | None = None) -> int:
        """Insert a row, inside `db`'s open transaction when given."""
        with self._lock:
            return journal.insert(db or self._db, entry)

    def journal_finish(self, row_id: int, end: JournalOutcome) -> None:
        with self._lock:
            journal.finish(self._db, row_id, end)

    def journal_query(
        self,
        *,
        limit: int = 50,
        tool: str | None = None,
        decision: str | None = None,
        since_ms: int | None = None,
        server: str | None = None,
    ) -> list[JournalRow]:
        """Rows newest first."""
        with self._lock:
            return journal.query(self._db, JournalFilter(limit, tool, decision, since_ms, server))

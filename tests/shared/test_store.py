from __future__ import annotations

import multiprocessing as mp
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.errors import StoreError
from shared.state import counters, trading_state
from shared.state.store import SCHEMA_VERSION, JournalEntry, Store
from tests.timeouts import hang_guard


def _increment_many(db_path: str, start, n: int, limit: int, results) -> None:
    store = Store(Path(db_path))
    start.wait()
    wins = sum(counters.check_and_increment(store, [("trades:day", limit)]).allowed for _ in range(n))
    results.put(wins)
    store.close()


def test_two_processes_incrementing_one_counter_never_exceed_the_limit(tmp_path: Path):
    db = tmp_path / "state.db"
    Store(db).close()
    ctx = mp.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_increment_many, args=(str(db), start, 50, 20, results)) for _ in range(2)]
    for p in procs:
        p.start()
    start.set()
    wins = [results.get(timeout=hang_guard(300)) for _ in procs]
    for p in procs:
        p.join(timeout=hang_guard(300))
    assert sum(wins) == 20
    assert counters.value(Store(db), "trades:day") == 20


def test_check_and_increment_is_all_or_nothing_across_keys(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    keys = counters.window_keys("trades", datetime(2026, 11, 20, tzinfo=UTC))
    assert keys == {"day": "trades:day:2026-11-20", "week": "trades:week:2026-W47", "month": "trades:month:2026-11"}
    limits = [(keys["day"], 5), (keys["week"], 2), (keys["month"], 10)]
    assert counters.check_and_increment(store, limits).allowed
    assert counters.check_and_increment(store, limits).allowed
    third = counters.check_and_increment(store, limits)
    assert not third.allowed and third.blocked_by == keys["week"]
    assert counters.value(store, keys["day"]) == 2 and counters.value(store, keys["month"]) == 2


def test_the_database_is_in_wal_mode_and_migrated_on_open(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    assert store.schema_version == SCHEMA_VERSION
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert trading_state.read(store).state == "ACTIVE"
    store.close()
    assert Store(tmp_path / "state.db").schema_version == SCHEMA_VERSION  # reopening is a no-op


def test_a_database_from_a_newer_version_is_refused_with_advice(tmp_path: Path):
    path = tmp_path / "state.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer than this program"):
        Store(path)


def test_journal_rows_can_be_filtered_by_tool_decision_and_time(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    store.journal_insert(JournalEntry("a", "get_policy", "read", None, {"x": 1}, "allow", "ok"))
    store.journal_insert(JournalEntry("a", "update_config", "admin", None, {}, "deny", "denied", rule="r"))
    store.journal_insert(JournalEntry("b", "get_policy", "read", "s", {}, "invalid", "invalid_arguments"))
    assert [r.tool for r in store.journal_query(tool="get_policy")] == ["get_policy", "get_policy"]
    assert [r.outcome for r in store.journal_query(decision="deny")] == ["denied"]
    assert [r.server for r in store.journal_query(server="b")] == ["b"]
    assert store.journal_query(since_ms=10**15) == []
    assert store.journal_query(limit=1)[0].decision == "invalid"  # newest first
    assert store.journal_query(tool="get_policy")[1].arguments == {"x": 1}


def test_a_failed_transaction_changes_nothing(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    with pytest.raises(RuntimeError), store.transaction() as db:
        trading_state.set_in(db, "HALTED", "test")
        raise RuntimeError("boom")
    assert trading_state.read(store).state == "ACTIVE"

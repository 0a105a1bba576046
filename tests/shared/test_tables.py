"""Each domain owns its tables in state.db; one ordered migration list upgrades any older database in place."""

from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path

import pytest

from shared.config import stage_history
from shared.errors import StoreError
from shared.state import migrations, results, trading_state
from shared.state.migrations import MIGRATIONS, Migration
from shared.state.store import SCHEMA_VERSION, JournalEntry, Store
from tests.test_architecture import modules

# The tables and columns shipped so far; a database made by any earlier release must keep opening.
SHIPPED = {
    "journal": "id ts ts_ms server tool capability strategy arguments decision rule reason outcome error duration_ms "
    "result_digest",
    "counters": "key value updated_ms",
    "trading_state": "id state reason since",
    "stage_history": "id ts strategy from_stage to_stage reason",
    "results": "id kind ts ts_ms strategy summary record trades",
    "news_items": "id source priority url title_key published_ms fetched_ms item",
    "news_sources": "name etag last_modified state",
    "paper_account": "id starting_balance cash peak_equity day day_start_equity created_ms",
    "paper_orders": "id client_order_id request_hash strategy symbol side type qty limit_price leverage stop_loss "
    "take_profit status reason position_id created_ms updated_ms",
    "paper_positions": "id strategy symbol side qty entry_price leverage margin stop_loss_price take_profit_price "
    "opened_ms mark_price mark_ms status closed_ms exit_price exit_reason fees realised_pnl",
    "paper_fills": "id ts_ms order_id position_id strategy symbol action side qty price reference_price fee reason "
    "price_source realised_pnl",
    "paper_equity": "ts_ms strategy equity",
    "paper_locks": "strategy rule symbol from_ms until_ms reason seen_ms",
}


def _schema(db: sqlite3.Connection) -> dict[str, list[tuple]]:
    names = db.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
    return {
        n: db.execute(f"PRAGMA table_info({n})").fetchall() + db.execute(f"PRAGMA index_info({n})").fetchall()
        for (n,) in names
    }


def _old_database(path: Path, version: int) -> None:
    """A database as the release with schema `version` left it."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    migrations.upgrade(db, path, "2026-01-01T00:00:00.000Z", tuple(m for m in MIGRATIONS if m.version <= version))
    db.execute("COMMIT")
    db.close()


def test_a_fresh_database_has_every_shipped_table_with_its_columns(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    with store.locked() as db:
        found = {t: " ".join(c[1] for c in db.execute(f"PRAGMA table_info({t})")) for t in SHIPPED}
    assert found == SHIPPED
    assert {t for m in MIGRATIONS for t in m.tables} == set(SHIPPED)


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_a_database_of_an_older_version_upgrades_in_place_and_keeps_its_rows(tmp_path: Path, version: int):
    path = tmp_path / "state.db"
    _old_database(path, version)
    db = sqlite3.connect(path, isolation_level=None)  # rows an older release wrote
    db.execute(
        "INSERT INTO stage_history (ts, strategy, from_stage, to_stage, reason) VALUES ('t', 's', 'a', 'b', 'r')"
    )
    db.execute("UPDATE trading_state SET state = 'HALTED', reason = 'old halt'")
    if version >= 2:
        db.execute(
            "INSERT INTO results VALUES ('bt-1', 'backtest', 't', 1, 's', '{\"x\": 1}', '{\"id\": \"bt-1\"}', NULL)"
        )
    db.close()

    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION
    assert [c.reason for c in stage_history.history(store)] == ["r"]
    assert trading_state.read(store).reason == "old halt"  # the seed never overwrites the row
    if version >= 2:
        assert results.get(store, "bt-1").record == {"id": "bt-1"}
    store.journal_insert(JournalEntry("a", "get_policy", "read", None, {}, "allow", "ok"))
    with store.locked() as db:
        upgraded = _schema(db)
    assert upgraded == _schema(Store(tmp_path / "fresh.db")._db)


def test_the_migration_list_refuses_a_gap_in_versions():
    with pytest.raises(StoreError, match="version 3 after version 1"):
        migrations.check_order((Migration(1, "a", ""), Migration(3, "b", "")))


def _tables_queried(path: Path) -> set[str]:
    texts = [n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)]
    sql = " ".join(t for t in texts if isinstance(t, str))
    return set(re.findall(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+(\w+)", sql))


def test_only_the_owner_of_a_table_queries_it():
    owner = {table: m.owner for m in MIGRATIONS for table in m.tables}
    strays = []
    for name, path in modules().items():
        if name == "shared.state.migrations":
            continue
        for table in _tables_queried(path) & set(owner):
            if name != owner[table] and not name.startswith(owner[table] + "."):
                strays.append(f"{name} queries {table} (owned by {owner[table]})")
    assert strays == []


def test_each_paper_table_has_a_typed_row_of_exactly_its_columns():
    from dataclasses import fields

    from jesse_mcp.trading.rows import ROWS

    assert {t: " ".join(f.name for f in fields(cls)) for t, cls in ROWS.items()} == {
        t: cols for t, cols in SHIPPED.items() if t.startswith("paper_")
    }

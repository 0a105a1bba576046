"""The one ordered list of schema migrations of `state.db`, and the runner that applies them.

Every domain owns its tables: its queries and row models live beside its code, and its DDL is listed here, in the
order it shipped, under the module that owns it (`owner`). The list is plain SQL because `shared` never imports the
servers, and a database must reach the same schema whichever server opens it first. Never edit a shipped step:
append a new one with the next version. tests/test_tables.py checks that only the owner's package queries a table.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from shared.errors import StoreError


@dataclass(frozen=True, slots=True)
class Migration:
    version: int  # `PRAGMA user_version` once this step (and the others of its version) ran
    owner: str  # the package or module that owns these tables and runs every query on them
    sql: str

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(re.findall(r"CREATE TABLE (\w+)", self.sql))


JOURNAL_V1 = """
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
"""

COUNTERS_V1 = """
CREATE TABLE counters (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
"""

TRADING_STATE_V1 = """
CREATE TABLE trading_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL CHECK (state IN ('ACTIVE', 'HALTED')),
    reason TEXT NOT NULL,
    since TEXT NOT NULL
);
"""
# The single trading-state row, written on every open (a no-op once it exists).
TRADING_STATE_SEED = (
    "INSERT OR IGNORE INTO trading_state (id, state, reason, since) VALUES (1, 'ACTIVE', 'initial state', ?)"
)

STAGE_HISTORY_V1 = """
CREATE TABLE stage_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    strategy TEXT,
    from_stage TEXT NOT NULL,
    to_stage TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""

RESULTS_V2 = """
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
"""

NEWS_V3 = """
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
"""

PAPER_V4 = """
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
"""

PAPER_LOCKS_V5 = """
CREATE TABLE paper_locks (
    strategy TEXT NOT NULL,
    rule TEXT NOT NULL,
    symbol TEXT NOT NULL,
    from_ms INTEGER NOT NULL,
    until_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (strategy, rule, symbol, from_ms)
);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "shared.state.journal", JOURNAL_V1),
    Migration(1, "shared.state.counters", COUNTERS_V1),
    Migration(1, "shared.state.trading_state", TRADING_STATE_V1),
    Migration(1, "shared.config.stage_history", STAGE_HISTORY_V1),
    Migration(2, "shared.state.results", RESULTS_V2),
    Migration(3, "discovery_mcp.news", NEWS_V3),
    Migration(4, "jesse_mcp.trading", PAPER_V4),
    Migration(5, "jesse_mcp.trading", PAPER_LOCKS_V5),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def check_order(migrations: tuple[Migration, ...] = MIGRATIONS) -> None:
    """Versions start at 1 and rise by at most one per step, never falling back."""
    previous = 0
    for m in migrations:
        if m.version not in (previous, previous + 1) or m.version < 1:
            raise StoreError(f"Migration of {m.owner} has version {m.version} after version {previous}.")
        previous = m.version


check_order()


def upgrade(db: sqlite3.Connection, path: Path, now_iso: str, migrations: tuple[Migration, ...] = MIGRATIONS) -> None:
    """Apply every step newer than the database's version, inside the caller's open transaction."""
    target = migrations[-1].version
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > target:
        raise StoreError(
            f"{path} has schema version {version}, newer than this program's {target}. "
            "Upgrade trading-mcp, or point TRADING_MCP_HOME at another folder."
        )
    for m in migrations:
        if m.version > version:
            for statement in m.sql.split(";"):
                if statement.strip():
                    db.execute(statement)
    db.execute(f"PRAGMA user_version = {target}")
    db.execute(TRADING_STATE_SEED, (now_iso,))

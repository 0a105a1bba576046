"""One OS process placing paper orders through a real MCP session of jesse-mcp, for the tests of several processes
(and of a crash) on one state database: tests/jesse_mcp/trading/test_paper_processes.py.

    python -m tests.jesse_mcp.trading.paper_worker '<spec JSON>'

(from the repository root; TRADING_MCP_HOME names the state)

The spec: "prices" {symbol: price} and "clock" (unix seconds) for the fills; "orders", a list of place_paper_order
arguments; "barrier": print "ready" and wait for one line on stdin before the first order, so that several workers
start together; "kill_at": a point inside the order's transaction (KILL_POINTS) where the process SIGKILLs itself,
after printing what that transaction holds at that moment. At the end it prints one JSON line: per order, the order
id and whether it was a duplicate, or the rule and text of the refusal.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import sys
from typing import Any

import anyio
from mcp.shared.memory import create_connected_server_and_client_session as connect

from jesse_mcp.server import build_server
from jesse_mcp.trading import ledger as paper_ledger
from shared.server.common import make_deps
from shared.state import counters
from shared.state.store import Store
from tests.mcp_helpers import text_of
from tests.paper_helpers import Clock, NoPool, TablePrices

KILL_POINTS = ("order_row", "fill", "journal_row", "commit")


def ledger_counts(db: sqlite3.Connection) -> dict[str, int]:
    """What the ledger holds of paper orders, as seen through `db`."""

    def one(sql: str) -> int:
        return db.execute(sql).fetchone()[0]

    return {
        "orders": one("SELECT COUNT(*) FROM paper_orders"),
        "fills": one("SELECT COUNT(*) FROM paper_fills"),
        "positions": one("SELECT COUNT(*) FROM paper_positions"),
        "journal": one("SELECT COUNT(*) FROM journal WHERE tool = 'place_paper_order'"),
        "trades_counted": one("SELECT COALESCE(SUM(value), 0) FROM counters WHERE key LIKE 'paper_trades:day:%'"),
        "accounts": one("SELECT COUNT(*) FROM paper_account"),
    }


def _die(point: str, db: sqlite3.Connection) -> None:
    print(json.dumps({"killed_at": point, "seen": ledger_counts(db)}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill(point: str) -> None:
    """Make this process kill itself at `point` of the first paper order's transaction:
    order_row: the order row is inserted, nothing after it (the trade counters are next);
    fill: order, counters, position and fill are written, not the journal row;
    journal_row: everything is written, the journal row too, and COMMIT has not run;
    commit: COMMIT has run, and the tool has not answered yet."""
    if point == "order_row":

        def add_in(db: sqlite3.Connection, keys: list[str], amount: int = 1) -> None:
            _die(point, db)

        counters.add_in = add_in
    elif point == "fill":
        insert_fill = paper_ledger.insert_fill

        def insert_fill_then_die(db: sqlite3.Connection, *args: Any) -> paper_ledger.FillRow:
            fill = insert_fill(db, *args)
            _die(point, db)
            return fill

        paper_ledger.insert_fill = insert_fill_then_die
    elif point == "journal_row":
        journal_insert = Store.journal_insert

        def journal_insert_then_die(self: Store, entry: Any, db: sqlite3.Connection | None = None) -> int:
            row = journal_insert(self, entry, db)
            if entry.tool == "place_paper_order" and db is not None:
                _die(point, db)
            return row

        Store.journal_insert = journal_insert_then_die  # type: ignore[method-assign]
    elif point == "commit":
        on_commit = Store.on_commit

        def on_commit_then_die(self: Store, fn: Any) -> None:
            on_commit(self, fn)
            other = sqlite3.connect(self.path)  # what another process sees: the committed state
            on_commit(self, lambda: _die(point, other))

        Store.on_commit = on_commit_then_die  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown kill point {point!r}; choose one of {', '.join(KILL_POINTS)}")


async def place(client: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool("place_paper_order", arguments)
    out: dict[str, Any] = {"client_order_id": arguments.get("client_order_id")}
    if result.isError:
        text = text_of(result)
        rule = re.search(r"Denied \(([^)]*)\)", text)
        return {**out, "ok": False, "rule": rule.group(1) if rule else None, "error": text}
    data = result.structuredContent
    return {**out, "ok": True, "order_id": data["order"]["id"], "duplicate": data["duplicate"]}


async def run(spec: dict[str, Any]) -> list[dict[str, Any]]:
    deps = make_deps("jesse-mcp")
    clock = Clock(spec["clock"])
    deps.extras.paper_prices, deps.extras.clock = TablePrices(spec["prices"], clock=clock), clock
    server = build_server(deps, warmup=(), pool=NoPool())
    try:
        async with connect(server) as client:
            if spec.get("barrier"):
                print("ready", flush=True)
                await anyio.to_thread.run_sync(sys.stdin.readline)
            return [await place(client, arguments) for arguments in spec["orders"]]
    finally:
        deps.store.close()


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("kill_at"):
        install_kill(spec["kill_at"])
    print(json.dumps(anyio.run(run, spec)), flush=True)


if __name__ == "__main__":
    main()

"""The tool call being served, for domain code that must journal it inside its own transaction.

The tool wrapper journals a side-effecting call before it runs. A call whose state change must commit together
with its journal row (a paper order: order, fill and journal row, or nothing) is registered with
`journal_in_transaction=True`: the wrapper then opens a `CallScope`, and the domain writes the row with
`scope.journal(db, ...)` inside its transaction. Without a scope (library use) the domain journals as 'library'.
"""

from __future__ import annotations

import contextvars
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from shared.state.store import JournalEntry, Store


@dataclass
class CallScope:
    server: str
    tool: str
    capability: str | None
    strategy: str | None
    arguments: dict[str, Any]
    started: float = field(default_factory=time.perf_counter)
    row_id: int | None = None

    def journal(
        self,
        store: Store,
        db: sqlite3.Connection,
        outcome: str = "ok",
        decision: str = "allow",
        rule: str | None = None,
        reason: str | None = None,
    ) -> int:
        """Insert this call's journal row through `db` (inside the caller's open transaction); `row_id` is set
        only when that transaction commits."""
        row_id = store.journal_insert(
            JournalEntry(
                server=self.server,
                tool=self.tool,
                capability=self.capability,
                strategy=self.strategy,
                arguments=self.arguments,
                decision=decision,
                outcome=outcome,
                rule=rule,
                reason=reason,
                duration_ms=(time.perf_counter() - self.started) * 1000,
            ),
            db,
        )
        store.on_commit(lambda: setattr(self, "row_id", row_id))
        return row_id


_CURRENT: contextvars.ContextVar[CallScope | None] = contextvars.ContextVar("trading_mcp_call", default=None)


def current_call(default_tool: str, server: str = "library", arguments: dict[str, Any] | None = None) -> CallScope:
    """The scope the wrapper opened, or a fresh one naming `default_tool` for calls made without MCP."""
    scope = _CURRENT.get()
    if scope is not None:
        return scope
    return CallScope(server, default_tool, None, None, arguments or {})


def enter(scope: CallScope) -> contextvars.Token[CallScope | None]:
    return _CURRENT.set(scope)


def leave(token: contextvars.Token[CallScope | None]) -> None:
    _CURRENT.reset(token)

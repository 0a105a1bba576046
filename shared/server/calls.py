"""The steps every call shares, tools, resources and prompts alike: the journal row, the guard's inputs and its
denial text, and the table that maps an exception to an outcome.

One call: the wrapper builds a `Call` (the guard's `CallRecord` plus the redacted arguments and the start time),
asks `policy_decision`, journals a refusal with `refuse`/`deny`, runs the function, and completes the row with
`finish`; an exception is mapped by `failure_of` to the outcome, the decision and the text the journal keeps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.fastmcp.exceptions import ToolError

from shared.errors import ConfigError, PolicyDenied, TradingMcpError
from shared.policy.guard import CallRecord, Decision, decide
from shared.redact import redact_text
from shared.server.deps import ServerDeps
from shared.state import trading_state
from shared.state.callscope import CallScope
from shared.state.store import JournalEntry, JournalOutcome

log = logging.getLogger("trading_mcp.tooling")


@dataclass(frozen=True, slots=True)
class Ending:
    """How a journaled call came out: the decision, the outcome, and the rule, reason, error text and result
    digest when there are any."""

    decision: str
    outcome: str
    rule: str | None = None
    reason: str | None = None
    error: str | None = None
    result_digest: str | None = None


def journal_row(
    record: CallRecord, arguments: dict[str, Any], ending: Ending, started: float | None = None
) -> JournalEntry:
    """The journal row of one call; `started` (perf_counter) gives the duration. An empty capability (a call of
    something that does not exist) is journaled as none."""
    return JournalEntry(
        server=record.server,
        tool=record.tool,
        capability=record.capability or None,
        strategy=record.strategy,
        arguments=arguments,
        decision=ending.decision,
        outcome=ending.outcome,
        rule=ending.rule,
        reason=ending.reason,
        error=ending.error,
        duration_ms=None if started is None else (time.perf_counter() - started) * 1000,
        result_digest=ending.result_digest,
    )


@dataclass
class Call:
    """One call in flight: what its journal row says, and the row once written (before the run, or by the domain
    inside its own transaction through `scope`)."""

    record: CallRecord
    arguments: dict[str, Any]  # redacted
    started: float
    row_id: int | None = None
    scope: CallScope | None = None


def policy_decision(deps: ServerDeps, record: CallRecord) -> Decision:
    """The guard's answer; unreadable policy inputs deny (fail closed)."""
    try:
        cfg = deps.config.load()
        state = trading_state.read(deps.store).state
    except ConfigError as e:
        return Decision(False, "config_invalid", str(e), f"fix the file {deps.config.path} as listed.")
    except Exception as e:  # fail closed: no policy, no call
        log.exception("policy inputs unavailable")
        return Decision(
            False,
            "policy_unavailable",
            f"policy inputs could not be read ({type(e).__name__}).",
            "check TRADING_MCP_HOME and its state.db; see the server log.",
        )
    return decide(record, cfg, state)


def deny(deps: ServerDeps, call: Call, decision: Decision) -> str:
    """Journal a denial by the guard; the message for the model (rule, reason, remedy)."""
    reason = decision.reason
    if decision.rule == "trading_halted":  # say why it halted, and how it ends
        state = trading_state.read(deps.store)
        reason += f" Halted since {state.since}: {state.reason}"
    message = f"Denied ({decision.rule}): {reason} Remedy: {decision.remedy}"
    ending = Ending("deny", "denied", rule=decision.rule, reason=decision.reason, error=message)
    row = journal_row(call.record, call.arguments, ending, call.started)
    deps.store.journal_insert(row)
    return message


def refuse(deps: ServerDeps, call: Call, outcome: str, message: str) -> str:
    """Journal a call refused before the guard (too large, invalid); returns `message`."""
    row = journal_row(
        call.record, call.arguments, Ending("invalid", outcome, reason=message, error=message), call.started
    )
    deps.store.journal_insert(row)
    return message


def finish(
    deps: ServerDeps,
    call: Call,
    outcome: str,
    *,
    error: str | None = None,
    result_digest: str | None = None,
    denied_by: str | None = None,
) -> int:
    """Complete the call's journal row (or write it); a denial raised by the domain (e.g. a missing
    confirmation) is a 'deny'. Returns the row's id."""
    decision = "deny" if denied_by else "allow"
    if call.row_id is not None:
        duration = (time.perf_counter() - call.started) * 1000
        end = JournalOutcome(outcome, error, duration, result_digest, decision, denied_by)
        deps.store.journal_finish(call.row_id, end)
        return call.row_id
    ending = Ending(
        decision, outcome, rule=denied_by, reason=error if denied_by else None, error=error, result_digest=result_digest
    )
    row = journal_row(call.record, call.arguments, ending, call.started)
    return deps.store.journal_insert(row)


def _redacted(e: BaseException) -> str:
    return redact_text(str(e))


def _see_log(e: BaseException) -> str:
    return "see server log"


@dataclass(frozen=True)
class ErrorRule:
    """How one kind of exception ends a call: the journal's outcome, whether it is a denial (decision 'deny',
    rule from the exception), and the text the journal keeps and the model is shown. `internal`: logged with
    traceback; the model gets a generic message naming the journal row instead of the text."""

    catches: type[BaseException]
    outcome: str
    text: Callable[[BaseException], str] = _redacted
    denies: bool = False
    internal: bool = False

    def rule_of(self, e: BaseException) -> str | None:
        return getattr(e, "rule", None) if self.denies else None


# First match wins. Expected failures carry a message written for the model; anything else is a server bug.
TOOL_ERRORS: tuple[ErrorRule, ...] = (
    ErrorRule(ToolError, "error"),
    ErrorRule(PolicyDenied, "denied", denies=True),
    ErrorRule(TradingMcpError, "error"),
    ErrorRule(Exception, "internal_error", _see_log, internal=True),
)
# Resources and prompts: FastMCP reports a bad URI or missing prompt arguments as ValueError.
READ_ERRORS: tuple[ErrorRule, ...] = (*TOOL_ERRORS[:-1], ErrorRule(ValueError, "error"), TOOL_ERRORS[-1])


def failure_of(e: BaseException, table: tuple[ErrorRule, ...] = TOOL_ERRORS) -> ErrorRule:
    return next(rule for rule in table if isinstance(e, rule.catches))


def internal_error_message(what: str, ref: int) -> str:
    return (
        f"Internal error in {what} (journal #{ref}). The details are in the server's log on stderr; "
        "your input was accepted, so retrying later or reporting the error is the way forward."
    )

"""The exception tree of the suite, in one place.

Everything a caller may be expected to handle derives from `TradingMcpError`. The tool wrapper turns these into
`ToolError` messages written for the model; anything else is an internal error (logged, generic message).
"""

from __future__ import annotations

import json


class TradingMcpError(Exception):
    """An expected failure, with a message that says what failed, why, and what to do."""


class ConfigError(TradingMcpError):
    """The configuration file or a proposed change is invalid. Nothing was written."""

    def __init__(self, message: str, problems: list[ConfigProblem] | None = None):
        super().__init__(message)
        self.problems = problems or []


class ConfigProblem:
    """One invalid field: where, what was given, and what is allowed."""

    __slots__ = ("allowed", "path", "value")

    def __init__(self, path: str, value: object, allowed: str):
        self.path = path
        self.value = value
        self.allowed = allowed

    def __str__(self) -> str:
        return f"{self.path}: got {json.dumps(self.value, default=str)[:200]}; {self.allowed}"

    def __repr__(self) -> str:
        return f"ConfigProblem({self.path!r}, {self.value!r}, {self.allowed!r})"


class InvalidArgumentsError(TradingMcpError):
    """A tool was called with unknown, missing or wrongly typed arguments."""


class PolicyDenied(TradingMcpError):
    """The guard or a domain rule refused the call. Carries the rule, the reason and the remedy."""

    def __init__(self, rule: str, reason: str, remedy: str):
        super().__init__(f"Denied ({rule}): {reason} Remedy: {remedy}")  # the wrapper's guard says it the same way
        self.rule = rule
        self.reason = reason
        self.remedy = remedy


class ConfirmationRequired(PolicyDenied):
    """A change needs a person's confirmation through MCP elicitation and did not get it."""


class StoreError(TradingMcpError):
    """The state database could not be opened or migrated."""


class LimitExceeded(TradingMcpError):
    """A counter-backed limit (e.g. trades per day) is already reached."""

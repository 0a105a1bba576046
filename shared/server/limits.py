"""Size bounds every request meets before anything else reads it (redaction, validation, the journal, regexes).

One place for the numbers, so the error text, the wrapper and the tests agree. The walk is iterative (no recursion:
a 500-deep argument is refused, it cannot raise RecursionError) and stops as soon as a bound is crossed, so a
refusal costs time in proportion to the limit, not to the input.
"""

from __future__ import annotations

from typing import Any

MAX_STRING_CHARS = 10_000  # one string argument (the longest a tool schema accepts is 2,000)
MAX_ARGUMENTS_CHARS = 256_000  # all arguments of one call together (score_sentiment: 100 texts of 2,000 chars)
MAX_NESTING = 16  # levels of lists/objects inside the arguments
MAX_URI_CHARS = 2_048  # a resource URI
SCALAR_CHARS = 8  # what a number, boolean or null counts towards MAX_ARGUMENTS_CHARS
MAX_PATH_CHARS = 120  # longest argument path quoted in an error

LIMITS_TEXT = (
    f"limits: {MAX_STRING_CHARS:,} characters per string, {MAX_ARGUMENTS_CHARS:,} for all arguments together, "
    f"{MAX_NESTING} levels of nesting"
)


def _child(path: str, key: Any) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))


def arguments_problem(arguments: Any, tool: str) -> str | None:
    """Why `arguments` are too large to look at, or None when they are within every bound."""
    total = 0
    stack: list[tuple[Any, str, int]] = [(arguments, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        where = f"'{path[:MAX_PATH_CHARS]}'" if path else "the arguments"
        if isinstance(value, dict | list | tuple):
            if depth >= MAX_NESTING:
                return _refusal(tool, f"{where} are nested more than {MAX_NESTING} levels deep")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                total += len(key) if isinstance(key, str) else SCALAR_CHARS
                if total > MAX_ARGUMENTS_CHARS:
                    return _refusal(tool, f"all arguments together exceed {MAX_ARGUMENTS_CHARS:,} characters")
                stack.append((item, _child(path, key) if len(path) <= MAX_PATH_CHARS else path, depth + 1))
        elif isinstance(value, str):
            if len(value) > MAX_STRING_CHARS:
                return _refusal(tool, f"argument {where} is a string of {len(value):,} characters")
            total += len(value)
        else:
            total += SCALAR_CHARS
        if total > MAX_ARGUMENTS_CHARS:
            return _refusal(tool, f"all arguments together exceed {MAX_ARGUMENTS_CHARS:,} characters")
    return None


def _refusal(tool: str, what: str) -> str:
    return (
        f"Arguments of {tool} refused before validation: {what} ({LIMITS_TEXT}). Nothing was run. Send shorter "
        "values (no tool takes a string longer than 2,000 characters) and flat JSON as the tool's schema describes."
    )


def uri_problem(uri: str) -> str | None:
    if len(uri) > MAX_URI_CHARS:
        return f"Resource URI refused: {len(uri):,} characters, the limit is {MAX_URI_CHARS:,}. Use resources/list."
    return None

"""The argument and result schemas of guarded tools: strict argument models, compact JSON schemas, error text."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from mcp.server.fastmcp.utilities.func_metadata import ArgModelBase
from pydantic import ConfigDict, ValidationError

from shared.config.file import format_loc


class StrictArgs(ArgModelBase):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, arbitrary_types_allowed=True)


def strict_model_for(base: type[ArgModelBase], tool_name: str) -> type[ArgModelBase]:
    """Same fields as FastMCP's argument model, but unknown keys and loose types are errors."""
    return type(f"{tool_name}Arguments", (base, StrictArgs), {"__module__": __name__})


def describe_errors(tool: str, error: ValidationError, valid: Sequence[str]) -> str:
    parts = []
    for err in error.errors(include_url=False):
        where = format_loc(tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown argument '{where}'")
        elif err["type"] == "missing":
            parts.append(f"'{where}' is required")
        else:
            given = err.get("input")
            parts.append(f"'{where}': {err['msg']} (got {json.dumps(given, default=str)[:80]})")
    return (
        f"Invalid arguments for {tool}: " + "; ".join(parts) + ". "
        f"Valid arguments: {', '.join(valid) if valid else '(none)'}. Types are strict: send numbers as JSON "
        "numbers, booleans as true/false."
    )


def digest(content: Any) -> str:
    text = json.dumps(content, default=str, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# The schemas pydantic writes use only draft-07 features ($ref into $defs, anyOf, items, enum, const). Saying so lets
# jsonschema (which validators in MCP clients and the SDK use) check them against the small draft-07 meta-schema:
# about 1 ms instead of 8 ms per call for a large result schema.
SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


def compact_schema(node: Any) -> Any:
    """Pydantic's JSON schema without the generated per-field titles, and with `anyOf` of plain types (the usual
    `X | None`) as a type list: the same constraints, fewer nodes for every validator to walk."""
    if isinstance(node, list):
        return [compact_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: compact_schema(v) for k, v in node.items() if k != "title" or not isinstance(v, str)}
    any_of = out.get("anyOf")
    if (
        isinstance(any_of, list)
        and any_of
        and all(isinstance(a, dict) and set(a) == {"type"} and isinstance(a["type"], str) for a in any_of)
    ):
        del out["anyOf"]
        out["type"] = [a["type"] for a in any_of]
    return out

"""Writes the generated reference pages: docs/tools.md from the servers' own `tools/list` (also resources and
prompts), and the field tables of docs/configuration.md from the configuration models.

    uv run python docs/generate.py           # rewrite both
    uv run python docs/generate.py --check   # exit 1 when either is out of date (what tests/test_docs.py checks)

The servers are built on a temporary TRADING_MCP_HOME (the jesse server with no Jesse warm-up) and listed through an
in-memory MCP client session, exactly as a client sees them. The output is deterministic: tools sorted by name, no
paths, no times. This script is documentation tooling; no server imports it.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

DOCS = ROOT / "docs"
TOOLS_MD = DOCS / "tools.md"
CONFIG_MD = DOCS / "configuration.md"
BEGIN = "<!-- BEGIN GENERATED: uv run python docs/generate.py -->"
END = "<!-- END GENERATED -->"
SERVERS = ("jesse-mcp", "asset-price-mcp", "discovery-mcp")


# --- JSON schema to text -----------------------------------------------------------------------------------------
def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return repr(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int) and abs(value) >= 1_000_000:
        digits = str(abs(value))
        zeros = len(digits) - len(digits.rstrip("0"))
        if zeros >= 6:
            return f"{'-' if value < 0 else ''}{digits[: len(digits) - zeros]}e{zeros}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _escape(text: str) -> str:
    """`<` and `>` outside code spans as entities: Markdown would take `<name>` for an HTML tag and drop it."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _branches(schema: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The non-null alternatives of a schema, and whether null is allowed."""
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if not alternatives:
        return [schema], False
    return [a for a in alternatives if a.get("type") != "null"], any(a.get("type") == "null" for a in alternatives)


def type_of(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    branches, nullable = _branches(schema)
    names = [_one_type(b, defs) for b in branches]
    names = list(dict.fromkeys(names))
    return " \\| ".join([*names, "null"] if nullable else names)


def _one_type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = defs.get(name, {})
        if not target:
            return "any JSON value"
        return "object" if target.get("type") == "object" else _one_type(target, defs)
    if "enum" in schema:
        return " \\| ".join(f"`{v!r}`" if not isinstance(v, str) else f'`"{v}"`' for v in schema["enum"])
    if "const" in schema:
        return f'`"{schema["const"]}"`' if isinstance(schema["const"], str) else f"`{schema['const']!r}`"
    if "anyOf" in schema or "oneOf" in schema:
        return type_of(schema, defs)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " \\| ".join(kind)
    if kind == "array":
        return f"array of {_grouped(_one_type(schema.get('items', {}), defs))}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return f"object of {_grouped(_one_type(extra, defs))}"
        return "object"
    if kind == "string" and schema.get("format"):
        return f"string ({schema['format']})"
    return kind or "any JSON value"


def _grouped(text: str) -> str:
    return f"({text})" if "\\|" in text else text


def _span(branch: dict[str, Any], low: str, high: str, unit: str = "") -> str | None:
    """`1–64` when both ends are inclusive, else `> 0, ≤ 1`; None when the schema sets neither end."""
    ends = [
        ("≥", branch.get(low)),
        (">", branch.get("exclusiveMinimum") if low == "minimum" else None),
        ("≤", branch.get(high)),
        ("<", branch.get("exclusiveMaximum") if high == "maximum" else None),
    ]
    ends = [(op, value) for op, value in ends if value is not None]
    if not ends:
        return None
    if [op for op, _ in ends] == ["≥", "≤"]:
        return f"{unit}{_num(ends[0][1])}–{_num(ends[1][1])}"
    return unit + ", ".join(f"{op} {_num(value)}" for op, value in ends)


def bounds_of(schema: dict[str, Any]) -> str:
    parts: list[str] = []
    for branch in _branches(schema)[0]:
        for low, high, unit in (
            ("minimum", "maximum", ""),
            ("minLength", "maxLength", "length "),
            ("minItems", "maxItems", "items "),
            ("minProperties", "maxProperties", "entries "),
        ):
            text = _span(branch, low, high, unit)
            if text:
                parts.append(text)
        if "pattern" in branch:
            parts.append(f"pattern `{branch['pattern']}`")
        items = branch.get("items")
        if isinstance(items, dict) and bounds_of(items):
            parts.append(f"each {bounds_of(items)}")
    return ", ".join(dict.fromkeys(parts))


def default_of(schema: dict[str, Any]) -> str:
    if "default" not in schema:
        return ""
    value = schema["default"]
    if value is None:
        return "null"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"`{_num(value)}`"
    return f"`{_compact_json(value)}`"


def _compact_json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(", ", ": "))


def description_of(text: str | None) -> str:
    """A docstring as one paragraph per blank-line block (docstrings keep their indentation in tools/list)."""
    blocks = re.split(r"\n\s*\n", (text or "").strip())
    return _escape("\n\n".join(" ".join(block.split()) for block in blocks if block.strip()))


# --- tools.md ----------------------------------------------------------------------------------------------------
@contextmanager
def _temporary_home() -> Iterator[Path]:
    keys = ("TRADING_MCP_HOME", "TRADING_MCP_CONFIG")
    saved = {k: os.environ.get(k) for k in keys}
    with tempfile.TemporaryDirectory(prefix="trading-mcp-docs-") as folder:
        os.environ["TRADING_MCP_HOME"] = folder
        os.environ["TRADING_MCP_CONFIG"] = str(Path(folder) / "config.json")
        try:
            yield Path(folder)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


async def list_servers() -> dict[str, dict[str, list[Any]]]:
    """Tools, resources, resource templates and prompts of each server, as an MCP client lists them."""
    from mcp.shared.memory import create_connected_server_and_client_session as connect

    from asset_price_mcp.server import build_server as build_prices
    from discovery_mcp.server import build_server as build_discovery
    from jesse_mcp.server import build_server as build_jesse
    from shared.server.common import make_deps

    builders = {
        "jesse-mcp": lambda deps: build_jesse(deps, warmup=()),
        "asset-price-mcp": build_prices,
        "discovery-mcp": build_discovery,
    }
    listed: dict[str, dict[str, list[Any]]] = {}
    logging.getLogger("mcp").setLevel(logging.WARNING)  # "Processing request of type ..." on every request
    with _temporary_home() as home:
        for name in SERVERS:
            deps = make_deps(name, home)
            try:
                async with connect(builders[name](deps)) as client:
                    listed[name] = {
                        "tools": (await client.list_tools()).tools,
                        "resources": (await client.list_resources()).resources,
                        "templates": (await client.list_resource_templates()).resourceTemplates,
                        "prompts": (await client.list_prompts()).prompts,
                    }
            finally:
                deps.store.close()
    return listed


def _annotations(tool: Any) -> str:
    a = tool.annotations
    flags = [
        "read-only" if a.readOnlyHint else "not read-only",
        "destructive" if a.destructiveHint else "not destructive",
        "idempotent" if a.idempotentHint else "not idempotent",
        "open world" if a.openWorldHint else "closed world",
    ]
    return ", ".join(flags)


def _capability(tool: Any) -> str:
    return ((tool.meta or {}).get("trading_mcp") or {}).get("capability", "?")


def _arguments(schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties") or {}
    if not properties:
        return ["No arguments."]
    defs = schema.get("$defs") or {}
    required = set(schema.get("required") or ())
    lines = [
        "| Argument | Type | Required | Default | Bounds | Description |",
        "|---|---|---|---|---|---|",
    ]
    for name, prop in properties.items():
        lines.append(
            f"| `{name}` | {type_of(prop, defs)} | {'yes' if name in required else 'no'} | {default_of(prop)} "
            f"| {_cell(bounds_of(prop))} | {_cell(description_of(prop.get('description')))} |"
        )
    return lines


def _tool_section(tool: Any) -> list[str]:
    extra = " Unknown arguments are refused." if tool.inputSchema.get("additionalProperties") is False else ""
    return [
        f"### `{tool.name}`",
        "",
        f"**{tool.title or tool.name}.** Capability `{_capability(tool)}`; {_annotations(tool)}.{extra}",
        "",
        description_of(tool.description),
        "",
        *_arguments(tool.inputSchema),
        "",
    ]


def _extras(listing: dict[str, list[Any]]) -> list[str]:
    lines: list[str] = []
    resources = [(r.uri, r) for r in listing["resources"]] + [(r.uriTemplate, r) for r in listing["templates"]]
    if resources:
        lines += ["**Resources**", ""]
        for uri, r in sorted(resources, key=lambda pair: str(pair[0])):
            lines.append(f"- `{uri}` ({r.mimeType}): {description_of(r.description)}")
        lines.append("")
    if listing["prompts"]:
        lines += [
            "**Prompts** (arguments complete through `completion/complete` where the server knows the values)",
            "",
        ]
        for p in sorted(listing["prompts"], key=lambda p: p.name):
            args = ", ".join(f"`{a.name}`{'' if a.required else ' (optional)'}" for a in p.arguments or ())
            lines.append(f"- `{p.name}`: {description_of(p.description)} Arguments: {args or 'none'}.")
        lines.append("")
    return lines


def render_tools(listed: dict[str, dict[str, list[Any]]]) -> str:
    lines = [
        "# Tools reference",
        "",
        "Generated from each server's own `tools/list`, `resources/list` and `prompts/list` by `docs/generate.py`;",
        "do not edit by hand (`uv run python docs/generate.py` rewrites it, and `tests/test_docs.py` fails when it",
        "is out of date). What capabilities and stages mean: [risk-and-stages.md](risk-and-stages.md).",
        "",
        "Every tool is registered through the one guarded wrapper: the guard checks its capability against the stage",
        "and trading state before it runs, and every call is journaled. `_meta.trading_mcp.capability` carries the",
        "capability. Annotations: *read-only* (`readOnlyHint`), *destructive* (`destructiveHint`), *idempotent*",
        "(`idempotentHint`), *open world* (`openWorldHint`: it reaches the network).",
        "",
    ]
    slugs: dict[str, int] = {}  # GitHub numbers repeated heading anchors: get_policy, get_policy-1, ...
    for name in SERVERS:
        tools = sorted(listed[name]["tools"], key=lambda t: t.name)
        anchors = {}
        for tool in tools:
            n = slugs.get(tool.name, 0)
            anchors[tool.name] = tool.name if n == 0 else f"{tool.name}-{n}"
            slugs[tool.name] = n + 1
        lines += ["", f"## {name}", "", "| Tool | Capability | Title |", "|---|---|---|"]
        lines += [f"| [`{t.name}`](#{anchors[t.name]}) | {_capability(t)} | {_cell(t.title or '')} |" for t in tools]
        lines.append("")
        lines += _extras(listed[name])
        for tool in tools:
            lines += _tool_section(tool)
    return "\n".join(lines).rstrip() + "\n"


def tools_markdown() -> str:
    import anyio

    return render_tools(anyio.run(list_servers))


# --- configuration.md --------------------------------------------------------------------------------------------
_RISKIER = {
    "higher": "higher",
    "lower": "lower",
    "on": "switching on",
    "off": "switching off",
    "change": "any change",
    "added": "adding an item",
}
_ENTRY_KEYS = {"strategies": "<strategy>", "news_priorities": "<source>", "providers": "<provider>"}


def _riskier(schema: dict[str, Any]) -> str:
    riskier = schema.get("x-riskier")
    if riskier is None:
        return ""
    if riskier == "neutral":
        return f"neutral ({schema.get('x-riskier-why', '')})"
    text = _RISKIER.get(riskier, riskier)
    order = schema.get("x-riskier-order")
    if order:
        text += " (" + " < ".join(order) + ")"
    return text


def _ref(schema: dict[str, Any]) -> str | None:
    for branch in [schema, *(schema.get("anyOf") or ())]:
        if "$ref" in branch:
            return branch["$ref"].rsplit("/", 1)[-1]
    return None


def _entry(prop: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of one entry of a mapping (`strategies`, `news_priorities`, `providers`), or None."""
    entries = [prop.get("additionalProperties"), *(prop.get("patternProperties") or {}).values()]
    return next((e for e in entries if isinstance(e, dict) and _ref(e)), None)


def _config_rows(schema: dict[str, Any], defs: dict[str, Any], prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted path, leaf schema) for every leaf field; a mapping of models shows its entry as `<name>`."""
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        ref = _ref(prop)
        entry = _entry(prop)
        if ref and defs[ref].get("properties"):
            yield from _config_rows(defs[ref], defs, path + ".")
        elif entry is not None and defs[_ref(entry)].get("properties"):
            yield from _config_rows(defs[_ref(entry)], defs, f"{path}.{_ENTRY_KEYS.get(name, '<key>')}.")
        else:
            yield path, prop


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None and v != {}}
    return value


def _default_at(defaults: dict[str, Any], path: str) -> Any:
    value: Any = defaults
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _mappings(schema: dict[str, Any], defs: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths of every mapping of models (whose default entries are listed under their section)."""
    for name, prop in schema.get("properties", {}).items():
        ref = _ref(prop)
        if ref and defs[ref].get("properties"):
            yield from _mappings(defs[ref], defs, f"{prefix}{name}.")
        elif _entry(prop) is not None:
            yield f"{prefix}{name}"


def config_tables() -> str:
    from shared.config.models import TradingConfig

    schema = TradingConfig.model_json_schema()
    defs = schema.get("$defs", {})
    defaults = TradingConfig().model_dump(mode="python")  # news_priorities keyed by name, as the paths are
    top: list[str] = []
    sections: dict[str, list[str]] = {}
    for path, prop in _config_rows(schema, defs, ""):
        if "default" not in prop and "<" not in path and (value := _default_at(defaults, path)) is not None:
            prop = {**prop, "default": value}
        section, _, field = path.partition(".")
        row = (
            f"| `{field or section}` | {type_of(prop, defs)} | {default_of(prop)} | {_cell(bounds_of(prop))} "
            f"| {_cell(_riskier(prop))} | {_cell(description_of(prop.get('description')))} |"
        )
        (sections.setdefault(section, []) if field else top).append(row)
    entries: dict[str, list[str]] = {}
    for path in _mappings(schema, defs):
        listed = [f"Default entries of `{path}`:", ""]
        for key, value in _default_at(defaults, path).items():
            listed.append(f"- `{key}`: `{_compact_json(_without_none(value))}`")
        entries.setdefault(path.split(".")[0], []).append("\n".join(listed))
    lines = [BEGIN, "", "### Top-level fields", "", *_table_head(), *top, ""]
    for section, rows in sections.items():
        prop = schema["properties"][section]
        model = _ref(prop) or _ref(_entry(prop) or {})
        about = description_of(prop.get("description")) or description_of(defs.get(model, {}).get("description"))
        lines += [f"### `{section}`", ""]
        lines += [text + "\n" for text in (about, *entries.get(section, ())) if text]
        lines += [*_table_head(), *rows, ""]
    lines.append(END)
    return "\n".join(lines)


def _table_head() -> list[str]:
    return ["| Field | Type | Default | Bounds | Riskier | Description |", "|---|---|---|---|---|---|"]


def configuration_markdown(current: str) -> str:
    """`current` with the text between the markers replaced by the generated tables."""
    if BEGIN not in current or END not in current:
        raise SystemExit(f"{CONFIG_MD} lacks the markers {BEGIN!r} ... {END!r}")
    head, rest = current.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    return head + config_tables() + tail


# --- command line ------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated page is out of date")
    args = parser.parse_args(argv)
    wanted = {
        TOOLS_MD: tools_markdown(),
        CONFIG_MD: configuration_markdown(CONFIG_MD.read_text(encoding="utf-8")),
    }
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run `uv run python docs/generate.py`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The layout rules, read from the source itself (AST), so they cannot silently rot:

- arrows go one way: shared <- the price library (asset_price_mcp.library) <- jesse_mcp, discovery_mcp <- trading_cli;
  a server never imports another server's modules, and the others reach the price server only through its library;
- no import cycles inside the project, type-only imports included;
- domain modules never import the MCP SDK: only the tool layers, prompts, servers and the shared MCP wrapper do;
- modules stay small (about 400 lines);
- functions stay small: at most 65 lines and 6 parameters (MCP tool functions: any number of parameters, which are
  the tool's schema).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("shared", "asset_price_mcp", "jesse_mcp", "discovery_mcp", "trading_cli")
# What each package may import from the project, besides itself.
MAY_IMPORT = {
    "shared": set(),
    "asset_price_mcp": {"shared"},
    "jesse_mcp": {"shared", "asset_price_mcp.library"},
    "discovery_mcp": {"shared", "asset_price_mcp.library"},
    "trading_cli": {"shared"},
}
PRICE_LIBRARY = "asset_price_mcp.library"
# Where the MCP SDK may be imported: the layers that speak the protocol.
MCP_ALLOWED = ("shared/server/", "/tools/", "/server.py", "/prompts.py", "trading_cli/")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(name: str, node: ast.ImportFrom, path: Path) -> list[str]:
    if node.level:
        base = module_name(path).split(".")
        base = base[: len(base) - node.level + (1 if path.name == "__init__.py" else 0)]
        name = ".".join([*base, node.module] if node.module else base)
    names = [name]
    for alias in node.names:  # `from pkg import module` imports the module
        if f"{name}.{alias.name}" in modules():
            names.append(f"{name}.{alias.name}")
    return names


@cache
def imports_of(name: str) -> frozenset[str]:
    path = modules()[name]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.update(_resolve(node.module or "", node, path))
    return frozenset(found)


def _project(target: str) -> str | None:
    """The project module an import names (the longest known prefix), or None for outside code."""
    parts = target.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules():
            return candidate
    return None


def test_arrows_go_one_way_between_packages():
    broken = []
    for name in modules():
        package = name.split(".")[0]
        for target in imports_of(name):
            module = _project(target)
            if module is None or module.split(".")[0] == package:
                continue
            allowed = MAY_IMPORT[package]
            if module.split(".")[0] not in allowed and not any(module.startswith(a) for a in allowed):
                broken.append(f"{name} imports {module}")
    assert broken == []


def test_domain_modules_never_import_the_mcp_sdk():
    speaking = []
    for name, path in modules().items():
        rel = path.relative_to(ROOT).as_posix()
        if any(part in f"/{rel}" if part.startswith("/") else rel.startswith(part) for part in MCP_ALLOWED):
            continue
        if any(t == "mcp" or t.startswith("mcp.") for t in imports_of(name)):
            speaking.append(rel)
    assert speaking == []


def test_there_are_no_import_cycles_inside_the_project_type_only_imports_included():
    graph = {name: {m for t in imports_of(name) if (m := _project(t)) and m != name} for name in modules()}
    # A package's __init__ is imported with any of its modules: an edge to a module implies none to its parents.
    cycles, index, low, stack, on_stack = [], {}, {}, [], set()

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_modules_stay_small():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in modules().values()}
    big = {path: n for path, n in sizes.items() if n > 420}
    assert big == {}


MAX_FUNCTION_LINES = 65
MAX_PARAMETERS = 6


def _is_tool_function(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Decorated by `@tools.<kind>(...)` / `@tools.tool(...)`: its parameters are the MCP schema."""
    return any(
        isinstance(d, ast.Call)
        and isinstance(d.func, ast.Attribute)
        and isinstance(d.func.value, ast.Name)
        and d.func.value.id == "tools"
        for d in fn.decorator_list
    )


def _parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Named parameters, self/cls excluded; `*args`/`**kwargs` catch-alls are not counted."""
    names = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)]
    return len(names) - (1 if names and names[0] in ("self", "cls") else 0)


def test_functions_stay_small():
    offenders = []
    for path in modules().values():
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            params = _parameters(node)
            too_many = params > MAX_PARAMETERS and not _is_tool_function(node)
            if lines > MAX_FUNCTION_LINES or too_many:
                offenders.append(f"{rel}:{node.name} ({lines} lines / {params} params)")
    assert offenders == []

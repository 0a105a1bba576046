"""The documentation stays true to the code: the generated references match what the servers and the configuration
models say now, every relative link points to a file that exists, every project path a page names exists, and the
README names every tool and keeps the two commands."""

from __future__ import annotations

import importlib.util
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
REFRESH = "run `uv run python docs/generate.py` to refresh"


@cache
def generator() -> ModuleType:
    """docs/generate.py as a module, without writing __pycache__ into docs/."""
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write
    return module


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_tools_reference_is_what_the_servers_list_now():
    expected = generator().tools_markdown()
    assert (DOCS / "tools.md").read_text(encoding="utf-8") == expected, f"docs/tools.md is out of date: {REFRESH}"


def test_tools_reference_names_no_temporary_path_and_every_tool_once_per_server():
    text = generator().tools_markdown()
    assert "/tmp" not in text and "trading-mcp-docs-" not in text
    for server in ("jesse-mcp", "asset-price-mcp", "discovery-mcp"):
        section = text.split(f"\n## {server}\n", 1)[1].split("\n## ", 1)[0]
        headings = re.findall(r"^### `(\w+)`$", section, re.M)
        assert headings == sorted(set(headings)) and headings, server


def test_configuration_reference_is_what_the_models_say_now():
    current = (DOCS / "configuration.md").read_text(encoding="utf-8")
    expected = generator().configuration_markdown(current)
    assert current == expected, f"docs/configuration.md is out of date: {REFRESH}"


def test_configuration_reference_has_every_section_of_the_configuration():
    from shared.config.models import TradingConfig

    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for name, field in TradingConfig.model_fields.items():
        leaf = isinstance(field.json_schema_extra, dict)  # a field that declares its risk direction
        assert (f"| `{name}` |" if leaf else f"### `{name}`") in text, name


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a page: lower case, punctuation dropped, spaces as '-', repeats numbered."""
    seen: dict[str, int] = {}
    found = set()
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        found.add(slug if n == 0 else f"{slug}-{n}")
        seen[slug] = n + 1
    return found


def test_every_relative_link_in_the_readme_and_docs_points_to_an_existing_file_and_heading():
    broken = []
    for page in pages():
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)  # code blocks hold no links
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path) if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{page.relative_to(ROOT)} -> {target} (no such heading)")
    assert broken == []


def test_every_project_path_the_pages_name_exists():
    packages = ("shared", "jesse_mcp", "asset_price_mcp", "discovery_mcp", "trading_cli", "tests", "bench", "examples")
    pattern = re.compile(r"`((?:%s)/[\w./-]*)`" % "|".join(packages))  # noqa: UP031
    missing = []
    for page in pages():
        for path in pattern.findall(page.read_text(encoding="utf-8")):
            if "<" not in path and not (ROOT / path).exists():
                missing.append(f"{page.relative_to(ROOT)}: {path}")
    assert missing == []


def test_readme_is_short_keeps_the_two_commands_and_names_every_tool():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 220
    assert "uv run trading-mcp demo" in text and "uv run pytest" in text
    tools = set(re.findall(r"^### `(\w+)`$", (DOCS / "tools.md").read_text(encoding="utf-8"), re.M))
    named = set(re.findall(r"`(\w+)`", text))
    assert sorted(tools - named) == []

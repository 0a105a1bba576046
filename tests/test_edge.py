"""The edge of every server: size bounds before anything reads a request, linear regexes, numeric bounds in every
schema, a redacted journal, and the JSON-RPC error codes MCP names for unknown tools, prompts and resources."""

from __future__ import annotations

import json
import logging
import tomllib
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types
from mcp.server.fastmcp.exceptions import ToolError
from mcp.shared.exceptions import McpError
from mcp.shared.memory import create_connected_server_and_client_session as connect

from discovery_mcp.sentiment.offline import tokenize
from shared.redact import redact_text
from shared.server import limits
from shared.server import registry as tooling
from shared.server.protocol import RESOURCE_NOT_FOUND, project_version
from shared.state.store import JournalEntry
from tests.mcp_helpers import all_servers, text_of

pytestmark = pytest.mark.anyio

ONE_MB = 1_048_576
SECRET = "sekret-Value-4242-xyz"


def _journal_rows(deps) -> list[dict[str, Any]]:
    return [row.model_dump() for row in deps.store.journal_query(limit=500)]


async def test_a_1mb_string_argument_to_any_tool_is_refused_saying_which_argument_its_size_and_the_limit(deps):
    big = "x" * ONE_MB
    for name, server in all_servers(deps).items():
        async with connect(server) as client:
            for tool in (await client.list_tools()).tools:
                key = next(iter(tool.inputSchema.get("properties", {})), "anything")
                result = await client.call_tool(tool.name, {key: big})
                message = text_of(result)
                assert result.isError, (name, tool.name)
                assert f"argument '{key}' is a string of 1,048,576 characters" in message, message
                assert "10,000 characters per string" in message and "Nothing was run" in message
                row = _journal_rows(deps)[0]
                assert (row["tool"], row["decision"], row["outcome"]) == (tool.name, "invalid", "arguments_too_large")
                assert len(json.dumps(row)) < 2_000, (tool.name, len(json.dumps(row)))


async def test_an_oversized_argument_is_refused_before_redaction_or_validation_reads_it(deps, monkeypatch):
    seen: list[int] = []
    real = tooling.redact

    def spy(value: Any, secrets: list[str] | None = None) -> Any:
        seen.append(len(json.dumps(value, default=str)))
        return real(value, secrets)

    monkeypatch.setattr(tooling, "redact", spy)
    crafted = "?key" * 12_500  # 50 KB that made the old URL-parameter pattern backtrack for hours
    async with connect(all_servers(deps)["jesse-mcp"]) as client:
        with anyio.fail_after(10):
            result = await client.call_tool("get_policy", {"strategy": crafted})
    assert result.isError and "argument 'strategy' is a string of 50,000 characters" in text_of(result)
    assert all(n < limits.MAX_STRING_CHARS for n in seen), seen


@pytest.mark.parametrize("unit", ["?key", "1", "a://", "?", "&key=", "a://b:", "?a?apikey", "http://u"])
async def test_redaction_runs_in_linear_time_on_text_crafted_to_backtrack(unit: str):
    text = unit * (400_000 // len(unit))  # the old patterns: minutes at 8 KB; these: milliseconds at 400 KB
    with anyio.fail_after(20):
        out = await anyio.to_thread.run_sync(redact_text, text, [], abandon_on_cancel=True)
    assert len(out) >= len(text) // 2


@pytest.mark.parametrize("unit", ["1", "1.", "1,"])
async def test_sentiment_tokenizing_runs_in_linear_time_on_long_digit_runs(unit: str):
    text = unit * (200_000 // len(unit)) + "a"  # quadratic before: ~1 s per 4 KB
    with anyio.fail_after(20):
        tokens = await anyio.to_thread.run_sync(tokenize, text, abandon_on_cancel=True)
    assert tokens


def test_the_number_patterns_still_find_the_same_tokens():
    assert tokenize("BTC +5% to $60k, up 1,234.5 or 12.5 % on the 3rd") == [
        "btc", "<pct_up>", "to", "<money>", "up", "<num>", "or", "<pct>", "on", "the", "<num>"
    ]  # fmt: skip


def _nested(depth: int) -> Any:
    deep: Any = "leaf"
    for _ in range(depth):
        deep = [deep]
    return deep


async def test_a_500_deep_argument_is_refused_clearly_not_with_an_internal_error(deps):
    server = all_servers(deps)["discovery-mcp"]  # the SDK's client will not even serialize 500 levels: call direct
    with pytest.raises(ToolError, match="nested more than 16 levels deep") as err:
        await server.call_tool("score_sentiment", {"texts": _nested(500)})
    assert "Internal error" not in str(err.value) and _journal_rows(deps)[0]["outcome"] == "arguments_too_large"
    async with connect(server) as client:
        result = await client.call_tool("score_sentiment", {"texts": _nested(100)})
    assert result.isError and "nested more than 16 levels deep" in text_of(result)


def test_arguments_within_every_bound_pass_and_their_total_is_bounded_too():
    assert limits.arguments_problem({"texts": ["a" * 2_000] * 100, "n": 5}, "t") is None
    problem = limits.arguments_problem({"texts": ["a" * 9_000] * 40}, "t")
    assert problem and "all arguments together exceed 256,000 characters" in problem


# --- numbers ------------------------------------------------------------------------------------------------


def _unbounded_numbers(node: Any, path: str) -> list[str]:
    found = []
    if isinstance(node, dict):
        kind = node.get("type")
        kinds = [k for k in (kind if isinstance(kind, list) else [kind]) if isinstance(k, str)]
        if {"number", "integer"} & set(kinds) and not {"maximum", "exclusiveMaximum"} & set(node):
            found.append(path)
        for key, value in node.items():
            found += _unbounded_numbers(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _unbounded_numbers(value, f"{path}/{i}")
    return found


async def test_every_numeric_argument_of_every_tool_has_an_upper_bound(deps):
    unbounded = []
    for name, server in all_servers(deps).items():
        async with connect(server) as client:
            for tool in (await client.list_tools()).tools:
                unbounded += _unbounded_numbers(tool.inputSchema, f"{name}:{tool.name}")
    assert not unbounded, unbounded


HUGE = [
    ("asset-price-mcp", "get_ohlcv", {"symbol": "BTC", "hours": 1e308}, "hours"),
    ("jesse-mcp", "list_backtests", {"offset": 10**26}, "offset"),
    ("jesse-mcp", "get_backtest", {"id": "bt_nope", "trades_offset": 10**26}, "trades_offset"),
    ("jesse-mcp", "generate_synthetic_candles", {"seed": 10**30}, "seed"),
    ("jesse-mcp", "backtest", {"strategy": "trend_following", "hyperparameters": {"fast_period": 1e300}}, "fast"),
]


@pytest.mark.parametrize(("server", "tool", "arguments", "field"), HUGE)
async def test_a_huge_number_is_refused_by_its_bound_not_an_internal_error(deps, server, tool, arguments, field):
    async with connect(all_servers(deps)[server]) as client:
        result = await client.call_tool(tool, arguments)
    message = text_of(result)
    assert result.isError and "Internal error" not in message
    assert field in message and "less than or equal to" in message, message


# --- journal ------------------------------------------------------------------------------------------------


async def test_a_secret_env_value_reaches_no_journal_column_nor_get_journal(deps, monkeypatch):
    monkeypatch.setenv("FOO_API_KEY", SECRET)
    async with connect(all_servers(deps)["jesse-mcp"]) as client:
        await client.call_tool("get_policy", {"strategy": SECRET})
        await client.call_tool("get_journal", {"tool": SECRET})
        await client.call_tool("list_backtests", {"strategy": SECRET})
        deps.store.journal_insert(JournalEntry(*(SECRET,) * 4, {"k": SECRET}, *(SECRET,) * 2, *(SECRET,) * 3))
        shown = text_of(await client.call_tool("get_journal", {"limit": 50}))
    with deps.store.reading() as db:
        raw = json.dumps(db.execute("SELECT * FROM journal").fetchall())
    assert SECRET not in raw and SECRET not in shown
    assert "[redacted]" in raw and json.loads(raw)


# --- protocol -----------------------------------------------------------------------------------------------


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
    assert "Traceback" not in caplog.text


async def test_an_unknown_tool_is_invalid_params_and_still_journaled(deps, caplog):
    caplog.set_level(logging.DEBUG)
    async with connect(all_servers(deps)["asset-price-mcp"]) as client:
        with pytest.raises(McpError) as err:
            await client.call_tool("place_live_order", {"size": 1})
    assert err.value.error.code == types.INVALID_PARAMS
    assert "Unknown tool 'place_live_order'" in err.value.error.message and "get_price" in err.value.error.message
    row = _journal_rows(deps)[0]
    assert (row["tool"], row["decision"], row["outcome"]) == ("place_live_order", "invalid", "unknown_tool")
    _no_traceback(caplog)


async def test_an_unknown_prompt_is_invalid_params_without_a_traceback(deps, caplog):
    caplog.set_level(logging.DEBUG)
    async with connect(all_servers(deps)["jesse-mcp"]) as client:
        with pytest.raises(McpError) as err:
            await client.get_prompt("no_such_prompt", {})
    assert err.value.error.code == types.INVALID_PARAMS
    assert (
        "Unknown prompt 'no_such_prompt'" in err.value.error.message and "backtest_workflow" in err.value.error.message
    )
    _no_traceback(caplog)


@pytest.mark.parametrize("uri", ["nothing://here", "backtests://bt_missing"])
async def test_an_unknown_resource_is_resource_not_found_without_a_traceback(deps, caplog, uri):
    caplog.set_level(logging.DEBUG)
    async with connect(all_servers(deps)["jesse-mcp"]) as client:
        with pytest.raises(McpError) as err:
            await client.read_resource(uri)
    assert err.value.error.code == RESOURCE_NOT_FOUND == -32002
    _no_traceback(caplog)


async def test_server_info_carries_the_project_version_not_the_sdk_one(deps):
    expected = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]["version"]
    for server in all_servers(deps).values():
        async with connect(server) as client:
            info = await client.initialize()
        assert info.serverInfo.version == project_version() == expected

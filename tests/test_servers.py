from __future__ import annotations

import json
import logging

import pytest
from mcp.shared.exceptions import McpError
from mcp.shared.memory import create_connected_server_and_client_session as connect

from shared.server.registry import GuardedTool, ToolRegistry
from shared.state import trading_state
from tests.mcp_helpers import accept, all_servers, payload, text_of

pytestmark = pytest.mark.anyio


async def test_every_tool_of_every_server_goes_through_the_wrapper_and_has_annotations(deps):
    for name, server in all_servers(deps).items():
        async with connect(server) as client:
            tools = (await client.list_tools()).tools
        assert tools, name
        for tool in tools:
            assert isinstance(server._tool_manager.get_tool(tool.name), GuardedTool), (name, tool.name)
            meta = tool.meta["trading_mcp"]
            assert meta["guarded"] is True and meta["capability"] in {"read", "research", "paper", "live", "admin"}
            a = tool.annotations
            assert None not in (a.readOnlyHint, a.destructiveHint, a.idempotentHint, a.openWorldHint), tool.name
            assert tool.inputSchema.get("additionalProperties") is False, tool.name
            assert tool.description


def test_a_server_refuses_tools_registered_around_the_wrapper(deps):
    server = all_servers(deps)["asset-price-mcp"]
    with pytest.raises(TypeError, match="ToolRegistry"):
        server.add_tool(lambda: 1, name="sneaky")
    with pytest.raises(TypeError, match="ToolRegistry"):
        server.tool()


async def test_an_unknown_argument_key_is_refused_with_the_valid_keys_and_journaled(deps):
    for name, server in all_servers(deps).items():
        async with connect(server) as client:
            for tool in (await client.list_tools()).tools:
                result = await client.call_tool(tool.name, {"bogus_key": 1})
                assert result.isError, (name, tool.name)
                message = text_of(result)
                assert "unknown argument 'bogus_key'" in message and "Valid arguments:" in message
                row = deps.store.journal_query(limit=1)[0]
                assert (row.tool, row.decision, row.outcome) == (tool.name, "invalid", "invalid_arguments")
                assert row.arguments == {"bogus_key": 1}


@pytest.mark.parametrize("bad", ["7", True, 7.5])
async def test_a_wrongly_typed_argument_is_refused_not_coerced(deps, bad):
    async with connect(all_servers(deps)["discovery-mcp"]) as client:
        result = await client.call_tool("get_journal", {"limit": bad})
    assert result.isError
    assert "'limit': Input should be a valid integer" in text_of(result)
    assert deps.store.journal_query(limit=1)[0].outcome == "invalid_arguments"


async def test_an_unknown_tool_is_refused_with_the_list_and_journaled(deps):
    async with connect(all_servers(deps)["asset-price-mcp"]) as client:
        with pytest.raises(McpError) as err:  # a protocol error (-32602), as MCP 2025-11-25 says for unknown tools
            await client.call_tool("place_live_order", {"size": 1})
    assert "Unknown tool 'place_live_order'" in err.value.error.message and "get_policy" in err.value.error.message
    row = deps.store.journal_query(limit=1)[0]
    assert (row.tool, row.outcome) == ("place_live_order", "unknown_tool")


async def test_a_guard_denial_says_rule_and_remedy_and_is_journaled(deps):
    tools = ToolRegistry(deps)

    @tools.tool(capability="research", read_only=True, destructive=False, idempotent=True, open_world=False)
    def research_something(strategy: str) -> str:
        """Research."""
        return strategy

    trading_state.write(deps.store, "HALTED", "emergency stop in test")
    async with connect(tools.build(instructions="t")) as client:
        result = await client.call_tool("research_something", {"strategy": "trend_following"})
    assert result.isError and "Denied (trading_halted)" in text_of(result) and "Remedy:" in text_of(result)
    row = deps.store.journal_query(tool="research_something")[0]
    assert (row.decision, row.rule, row.outcome) == ("deny", "trading_halted", "denied")
    assert row.arguments == {"strategy": "trend_following"}


async def test_while_halted_reads_tightening_and_demotion_work_but_loosening_does_not(deps):
    trading_state.write(deps.store, "HALTED", "emergency stop in test")
    async with connect(all_servers(deps)["jesse-mcp"], elicitation_callback=accept(True)) as client:
        assert not (await client.call_tool("get_policy", {})).isError
        tighten = await client.call_tool(
            "update_config",
            {"changes": {"portfolio_limits.max_daily_trades": 1, "strategies.mean_reversion.stage": "exploration"}},
        )
        assert not tighten.isError, text_of(tighten)
        loosen = await client.call_tool("update_config", {"changes": {"portfolio_limits.max_daily_trades": 99}})
    assert loosen.isError and "trading_halted" in text_of(loosen)
    assert deps.config.load().portfolio_limits.max_daily_trades == 1


async def test_an_unexpected_error_is_logged_with_traceback_and_the_client_gets_a_short_message(deps, caplog):
    tools = ToolRegistry(deps)

    @tools.tool(capability="read", read_only=True, destructive=False, idempotent=True, open_world=False)
    def explode() -> int:
        """Always fails."""
        raise RuntimeError("password=hunter2 at /internal/path")

    caplog.set_level(logging.ERROR)
    async with connect(tools.build(instructions="t")) as client:
        result = await client.call_tool("explode", {})
    assert result.isError and "Internal error in explode (journal #" in text_of(result)
    assert "hunter2" not in text_of(result) and "internal/path" not in text_of(result)
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)
    assert deps.store.journal_query(limit=1)[0].outcome == "internal_error"


async def test_get_policy_reports_effective_stage_profile_and_allowed_capabilities(deps):
    async with connect(all_servers(deps)["discovery-mcp"]) as client:
        view = payload(await client.call_tool("get_policy", {"strategy": "mean_reversion"}))
    assert view["effective_stage"] == "exploration" and view["strategy_stage"] == "paper"
    assert view["risk_profile"] == "conservative" and view["risk_settings"]["max_position_size"] == 0.05
    assert view["allowed_capabilities"] == ["read", "research", "admin"]
    assert view["trading_state"] == "ACTIVE"


async def test_the_policy_resource_shows_the_global_policy(deps):
    async with connect(all_servers(deps)["asset-price-mcp"]) as client:
        resource = await client.read_resource("policy://current")
    body = json.loads(resource.contents[0].text)
    assert body["global_stage"] == "exploration" and body["risk_profile"] == "moderate"


async def test_get_journal_filters_by_tool_and_decision(deps):
    async with connect(all_servers(deps)["jesse-mcp"]) as client:
        await client.call_tool("get_stage", {})
        await client.call_tool("get_stage", {"strategy": 5})
        page = payload(await client.call_tool("get_journal", {"tool": "get_stage", "decision": "invalid"}))
        recent = payload(await client.call_tool("get_journal", {"since": "2000-01-01T00:00:00Z", "limit": 2}))
    assert page["count"] == 1 and page["entries"][0]["outcome"] == "invalid_arguments"
    assert recent["count"] == 2


async def test_secrets_never_reach_the_journal_or_get_config(deps, monkeypatch):
    monkeypatch.setenv("ZHIPUAI_API_KEY", "sk-test-very-secret-123")
    async with connect(all_servers(deps)["jesse-mcp"]) as client:
        await client.call_tool("get_journal", {"tool": "sk-test-very-secret-123"})
        config_text = text_of(await client.call_tool("get_config", {}))
    assert deps.store.journal_query(tool="get_journal")[0].arguments == {"tool": "[redacted]"}
    assert "sk-test-very-secret-123" not in config_text
    assert json.loads(config_text)["environment"]["ZHIPUAI_API_KEY"] == "set"


async def test_an_expected_error_reaches_the_model_as_a_clear_message(deps):
    async with connect(all_servers(deps)["jesse-mcp"]) as client:
        result = await client.call_tool("get_stage", {"strategy": "nope"})
    assert result.isError and "Unknown strategy 'nope'. Configured: mean_reversion, trend_following." in text_of(result)
    assert deps.store.journal_query(limit=1)[0].outcome == "error"


async def test_a_broken_configuration_file_denies_every_call_with_the_problem(deps):
    server = all_servers(deps)["asset-price-mcp"]
    deps.config.path.write_text("{ not json")
    async with connect(server) as client:
        result = await client.call_tool("get_policy", {})
    assert result.isError and "config_invalid" in text_of(result) and "not valid JSON" in text_of(result)


def _wrong_value(schema: dict):
    """A JSON value of the wrong type for a property schema (JSON-in-a-string for objects and arrays)."""

    def as_set(t):  # "type" may be one name or a list of names
        return set(t) if isinstance(t, list) else {t}

    types = as_set(schema.get("type")).union(*(as_set(alt.get("type")) for alt in schema.get("anyOf", [])))
    if "object" in types:
        return '{"a": 1}'
    if "array" in types:
        return "[1]"
    if "integer" in types or "number" in types:
        return "7"
    return 7


async def test_every_argument_of_every_tool_refuses_a_wrongly_typed_value(deps):
    checked = 0
    for server in all_servers(deps).values():
        async with connect(server) as client:
            for tool in (await client.list_tools()).tools:
                for name, schema in tool.inputSchema.get("properties", {}).items():
                    result = await client.call_tool(tool.name, {name: _wrong_value(schema)})
                    assert result.isError, (tool.name, name)
                    assert f"'{name}" in text_of(result) and "Valid arguments:" in text_of(result)
                    checked += 1
    assert checked >= 20
    assert deps.store.journal_query(decision="invalid", limit=500)[0].outcome == "invalid_arguments"


async def test_a_secret_inside_a_bad_argument_is_redacted_from_the_error_and_journal(deps, monkeypatch):
    monkeypatch.setenv("ZHIPUAI_API_KEY", "sk-test-very-secret-456")
    async with connect(all_servers(deps)["discovery-mcp"]) as client:
        result = await client.call_tool("get_journal", {"limit": "sk-test-very-secret-456"})
    assert result.isError and "sk-test-very-secret-456" not in text_of(result)
    row = deps.store.journal_query(limit=1)[0]
    assert "sk-test-very-secret-456" not in row.model_dump_json()

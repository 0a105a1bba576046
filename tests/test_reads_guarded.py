"""Resources and prompts pass the same guard (capability read) and leave the same journal row as tool calls."""

from __future__ import annotations

import contextlib

import pytest
from mcp import types
from mcp.shared.exceptions import McpError
from mcp.shared.memory import create_connected_server_and_client_session as connect

from tests.mcp_helpers import all_servers

pytestmark = pytest.mark.anyio

PARAM = "no_such_thing"  # fills every template parameter and prompt argument: no network, nothing looked up for real


def _row_of(deps, what: str) -> dict:
    row = deps.store.journal_query(limit=1)[0].model_dump()
    assert row["tool"] == what, row
    return row


async def _read_or_error(client, uri: str) -> None:
    with contextlib.suppress(McpError):  # an object that does not exist: the row is written all the same
        await client.read_resource(uri)


async def test_every_resource_and_prompt_of_every_server_leaves_a_journal_row(deps):
    for server_name, server in all_servers(deps).items():
        async with connect(server) as client:
            resources = (await client.list_resources()).resources
            templates = (await client.list_resource_templates()).resourceTemplates
            prompts = (await client.list_prompts()).prompts
            assert resources or templates or prompts, server_name
            for resource in resources:
                await _read_or_error(client, str(resource.uri))
                row = _row_of(deps, f"resource:{resource.name}")
                assert row["arguments"] == {"uri": str(resource.uri)}
                assert (row["server"], row["capability"], row["decision"]) == (deps.server_name, "read", "allow")
                assert row["duration_ms"] is not None
            for template in templates:
                uri = template.uriTemplate.split("{")[0] + PARAM
                await _read_or_error(client, uri)
                row = _row_of(deps, f"resource:{template.name}")
                assert row["arguments"]["uri"] == uri and PARAM in row["arguments"].values()
                assert row["outcome"] in {"ok", "error"} and row["duration_ms"] is not None
            for prompt in prompts:
                arguments = {a.name: PARAM for a in prompt.arguments or [] if a.required}
                with contextlib.suppress(McpError):
                    await client.get_prompt(prompt.name, arguments)
                row = _row_of(deps, f"prompt:{prompt.name}")
                assert (row["capability"], row["decision"], row["arguments"]) == ("read", "allow", arguments)


async def test_a_resource_read_is_journaled_ok_with_a_digest(deps):
    async with connect(all_servers(deps)["discovery-mcp"]) as client:
        await client.read_resource("policy://current")
    row = _row_of(deps, "resource:policy")
    assert (row["decision"], row["outcome"]) == ("allow", "ok") and row["result_digest"]


async def test_a_broken_configuration_denies_resources_and_prompts_with_the_spec_error(deps):
    server = all_servers(deps)["asset-price-mcp"]
    deps.config.path.write_text("{ not json")
    async with connect(server) as client:
        with pytest.raises(McpError) as err:
            await client.read_resource("policy://current")
        assert err.value.error.code == types.INTERNAL_ERROR
        assert "config_invalid" in err.value.error.message and "not valid JSON" in err.value.error.message
        row = _row_of(deps, "resource:policy")
        assert (row["decision"], row["outcome"], row["rule"]) == ("deny", "denied", "config_invalid")
        with pytest.raises(McpError) as err:
            await client.get_prompt("price_check", {"symbols": "BTC"})
        assert err.value.error.code == types.INTERNAL_ERROR and "config_invalid" in err.value.error.message
        assert _row_of(deps, "prompt:price_check")["decision"] == "deny"


async def test_a_secret_in_a_resource_uri_is_redacted_in_the_journal(deps, monkeypatch):
    secret = "sk-live-0123456789abcdef0123"
    monkeypatch.setenv("ZHIPUAI_API_KEY", secret)
    async with connect(all_servers(deps)["jesse-mcp"]) as client:
        await _read_or_error(client, f"backtests://{secret}")
    row = _row_of(deps, "resource:backtest")
    assert secret not in str(row)

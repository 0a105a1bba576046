from __future__ import annotations

import pytest
from mcp.shared.memory import create_connected_server_and_client_session as connect

from jesse_mcp.server import build_server
from tests.mcp_helpers import accept, payload, respond, text_of

pytestmark = pytest.mark.anyio

LOOSEN = {"changes": {"strategies.trend_following.risk_profile": "aggressive"}, "reason": "more upside"}


async def test_loosening_is_applied_when_the_person_accepts(deps):
    callback = accept(True)
    async with connect(build_server(deps, warmup=()), elicitation_callback=callback) as client:
        result = payload(await client.call_tool("update_config", LOOSEN))
    assert deps.config.load().strategies["trend_following"].risk_profile == "aggressive"
    assert result["confirmation"] == "confirmed by the person through elicitation"
    assert "strategy 'trend_following': max_leverage 2 -> 5" in result["loosened"]
    assert "max_leverage 2 -> 5" in callback.calls[0] and "more upside" in callback.calls[0]


@pytest.mark.parametrize(
    "callback", [respond("decline"), respond("cancel"), accept(False)], ids=["decline", "cancel", "confirm-false"]
)
async def test_loosening_is_refused_when_the_person_does_not_confirm(deps, callback):
    before = deps.config.path.read_bytes()
    async with connect(build_server(deps, warmup=()), elicitation_callback=callback) as client:
        result = await client.call_tool("update_config", LOOSEN)
    assert result.isError and "loosening_needs_confirmation" in text_of(result)
    assert deps.config.path.read_bytes() == before
    row = deps.store.journal_query(tool="update_config")[0]
    assert (row.decision, row.rule) == ("deny", "loosening_needs_confirmation")


async def test_loosening_is_refused_for_a_client_without_elicitation(deps):
    before = deps.config.path.read_bytes()
    async with connect(build_server(deps, warmup=())) as client:
        result = await client.call_tool("update_config", LOOSEN)
    assert result.isError and "does not support elicitation" in text_of(result)
    assert deps.config.path.read_bytes() == before


async def test_tightening_needs_no_confirmation(deps):
    async with connect(build_server(deps, warmup=())) as client:
        result = payload(
            await client.call_tool(
                "update_config", {"changes": {"strategies.trend_following.risk_overrides.max_leverage": 1.0}}
            )
        )
    assert result["confirmation"] == "not needed" and result["loosened"] == []
    assert result["applied"] == [
        {"path": "strategies.trend_following.risk_overrides.max_leverage", "old": None, "new": 1.0}
    ]
    assert deps.config.load().strategies["trend_following"].risk_overrides.max_leverage == 1.0


async def test_a_stage_raise_is_refused_even_when_the_person_would_accept(deps):
    callback = accept(True)
    async with connect(build_server(deps, warmup=()), elicitation_callback=callback) as client:
        result = await client.call_tool("update_config", {"changes": {"strategies.trend_following.stage": "paper"}})
    assert (
        result.isError
        and "promotion_needs_evidence" in text_of(result)
        and "request_stage_promotion" in text_of(result)
    )
    assert callback.calls == [] and deps.config.load().strategies["trend_following"].stage == "exploration"


async def test_a_demotion_is_a_plain_change_recorded_in_the_stage_history(deps):
    async with connect(build_server(deps, warmup=())) as client:
        payload(
            await client.call_tool(
                "update_config",
                {"changes": {"strategies.mean_reversion.stage": "exploration"}, "reason": "too many losses"},
            )
        )
        stages = payload(await client.call_tool("get_stage", {"strategy": "mean_reversion"}))
    assert stages["strategies"][0]["stage"] == "exploration"
    assert stages["history"][0]["to_stage"] == "exploration" and "too many losses" in stages["history"][0]["reason"]


async def test_an_invalid_value_names_the_field_and_nothing_is_written(deps):
    before = deps.config.path.read_bytes()
    async with connect(build_server(deps, warmup=())) as client:
        result = await client.call_tool("update_config", {"changes": {"portfolio_limits.max_open_positions": -3}})
    assert result.isError
    assert "portfolio_limits.max_open_positions: got -3; Input should be greater than or equal to 0" in text_of(result)
    assert deps.config.path.read_bytes() == before


async def test_a_concurrent_change_during_confirmation_is_not_overwritten(deps):
    async def change_meanwhile(context, params):
        deps.config.update(lambda d: {**d, "portfolio_limits": {**d["portfolio_limits"], "max_daily_trades": 3}})
        from mcp import types

        return types.ElicitResult(action="accept", content={"confirm": True})

    async with connect(build_server(deps, warmup=()), elicitation_callback=change_meanwhile) as client:
        result = await client.call_tool("update_config", LOOSEN)
    assert result.isError and "changed while this update waited" in text_of(result)
    cfg = deps.config.load()
    assert cfg.portfolio_limits.max_daily_trades == 3 and cfg.strategies["trend_following"].risk_profile == "moderate"


async def test_a_global_setting_every_profile_overrides_is_written_with_a_note_that_it_changes_nothing(deps):
    async with connect(build_server(deps, warmup=())) as client:
        result = payload(
            await client.call_tool("update_config", {"changes": {"global_risk_settings.max_leverage": 1.5}})
        )
        effective = payload(await client.call_tool("get_policy", {"strategy": "trend_following"}))
    assert deps.config.load().global_risk_settings.max_leverage == 1.5
    assert result["notes"] and "changes no effective setting" in result["notes"][0]
    assert effective["risk_settings"]["max_leverage"] == 2.0


async def test_a_global_setting_no_profile_sets_takes_effect_everywhere(deps):
    async with connect(build_server(deps, warmup=())) as client:
        result = payload(
            await client.call_tool("update_config", {"changes": {"global_risk_settings.emergency_stop": 0.2}})
        )
        effective = payload(await client.call_tool("get_policy", {"strategy": "mean_reversion"}))
    assert result["notes"] == []
    assert (
        effective["risk_settings"]["emergency_stop"] == 0.2 and effective["risk_sources"]["emergency_stop"] == "global"
    )

"""The design document's configuration file loads as written in every server and means what it says; files of the
previous format migrate on load without losing a value; any bytes in the file give config_invalid, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp.shared.memory import create_connected_server_and_client_session as connect

from shared.config.resolve import resolve_risk
from shared.config.store import ConfigStore
from shared.errors import ConfigError
from tests.mcp_helpers import accept, all_servers, payload, text_of

SEED = """{"global_risk_profile": "moderate",
 "global_risk_settings": {"max_portfolio_risk": 0.02, "max_position_size": 0.10, "max_leverage": 2.0,
   "max_drawdown": 0.15, "stop_loss": 0.02, "take_profit": 0.04, "max_correlation": 0.7, "var_confidence": 0.95,
   "emergency_stop": 0.25},
 "news_priorities": [
   {"source": "reuters", "priority": 1, "weight": 0.25, "enabled": true},
   {"source": "bloomberg", "priority": 2, "weight": 0.20, "enabled": true},
   {"source": "coindesk", "priority": 3, "weight": 0.15, "enabled": true},
   {"source": "cryptopanic", "priority": 4, "weight": 0.15, "enabled": true},
   {"source": "twitter", "priority": 5, "weight": 0.10, "enabled": true},
   {"source": "reddit", "priority": 6, "weight": 0.10, "enabled": true},
   {"source": "telegram", "priority": 7, "weight": 0.05, "enabled": true}],
 "portfolio_limits": {"max_total_positions": 10, "max_open_positions": 5, "max_daily_trades": 20,
   "max_weekly_trades": 50, "max_monthly_trades": 200, "position_timeout_hours": 72, "min_account_balance": 1000,
   "max_account_usage": 0.95},
 "strategies": {
   "trend_following": {"risk_profile": "moderate", "enabled": true, "stage": "exploration", "custom_params": {}},
   "mean_reversion": {"risk_profile": "conservative", "risk_overrides": {"max_position_size": 0.05,
     "max_leverage": 1.0}, "enabled": true, "stage": "paper", "custom_params": {}}},
 "stage": "exploration",
 "zai_glm_config": {"api_endpoint": "https://api.z.ai/v1", "model": "glm-4x", "max_tokens": 2000,
   "temperature": 0.7},
 "mcp_config": {"jesse_host": "localhost", "jesse_port": 8000, "asset_price_host": "localhost",
   "asset_price_port": 8001, "discovery_host": "localhost", "discovery_port": 8002}}
"""

# What the previous version wrote (its key names), with values that differ from the defaults.
OLD_FORMAT = {
    "portfolio_limits": {"max_trades_per_day": 7, "max_trades_per_week": 30, "max_trades_per_month": 90},
    "strategies": {"trend_following": {"risk_profile": "moderate", "hyperparameters": {"fast_period": 12}}},
    "news_priorities": {"coindesk": {"priority": 1, "weight": 0.5, "url": "https://c.example/rss", "type": "rss"}},
    "mcp_config": {"host": "127.0.0.2", "jesse_mcp_port": 9000, "asset_price_mcp_port": 9001,
                   "discovery_mcp_port": 9002},
}  # fmt: skip


def _write_seed(home: Path) -> Path:
    path = home / "config.json"
    path.write_text(SEED)
    return path


def test_the_seed_file_means_what_it_says(home):
    cfg = ConfigStore(_write_seed(home)).load()
    mr = resolve_risk(cfg, "mean_reversion", mode="paper")
    assert (mr.risk_profile, mr.settings.max_position_size, mr.settings.max_leverage) == ("conservative", 0.05, 1.0)
    assert cfg.strategies["mean_reversion"].stage == "paper" and cfg.stage == "exploration"
    sources = {n: (s.priority, s.weight, s.enabled) for n, s in cfg.news_priorities.items()}
    assert sources == {
        "reuters": (1, 0.25, True),
        "bloomberg": (2, 0.20, True),
        "coindesk": (3, 0.15, True),
        "cryptopanic": (4, 0.15, True),
        "twitter": (5, 0.10, True),
        "reddit": (6, 0.10, True),
        "telegram": (7, 0.05, True),
    }
    assert cfg.news_priorities["coindesk"].type == "rss" and cfg.news_priorities["coindesk"].url  # known connector
    assert cfg.news_priorities["twitter"].type == "none"  # no connector ships for it
    glm = cfg.zai_glm_config
    assert (glm.api_endpoint, glm.model, glm.max_tokens, glm.temperature) == (
        "https://api.z.ai/v1",
        "glm-4x",
        2000,
        0.7,
    )
    assert (cfg.mcp_config.jesse_host, cfg.mcp_config.discovery_port) == ("localhost", 8002)
    assert cfg.portfolio_limits.max_daily_trades == 20 and cfg.strategies["trend_following"].custom_params == {}


@pytest.mark.anyio
async def test_the_seed_file_loads_unchanged_in_all_three_servers(home, deps):
    path = _write_seed(home)
    servers = all_servers(deps)
    calls = {"jesse-mcp": "get_config", "asset-price-mcp": "list_providers", "discovery-mcp": "list_sources"}
    answers = {}
    for name, server in servers.items():
        async with connect(server) as client:
            answers[name] = payload(await client.call_tool(calls[name], {}))
            policy = payload(await client.call_tool("get_policy", {"strategy": "mean_reversion"}))
        assert policy["risk_profile"] == "conservative", name
    assert answers["jesse-mcp"]["notes"] == []
    assert answers["jesse-mcp"]["config"]["news_priorities"][0]["source"] == "reuters"
    listed = [(s["name"], s["priority"], s["weight"]) for s in answers["discovery-mcp"]["sources"]]
    assert listed[:3] == [("reuters", 1, 0.25), ("bloomberg", 2, 0.2), ("coindesk", 3, 0.15)]
    assert path.read_text() == SEED  # never rewritten without need


@pytest.mark.anyio
async def test_a_file_of_the_previous_format_migrates_on_load_with_notes_and_keeps_every_value(home, deps):
    path = home / "config.json"
    path.write_text(json.dumps(OLD_FORMAT))
    before = path.read_bytes()
    server = all_servers(deps)["jesse-mcp"]
    async with connect(server, elicitation_callback=accept()) as client:
        view = payload(await client.call_tool("get_config", {}))
        assert path.read_bytes() == before  # reading changes nothing
        notes = " ".join(view["notes"])
        for old in ("max_trades_per_day", "hyperparameters", "mcp_config.host", "jesse_mcp_port", "news_priorities"):
            assert old in notes
        cfg = deps.config.load()
        limits = cfg.portfolio_limits
        assert (limits.max_daily_trades, limits.max_weekly_trades, limits.max_monthly_trades) == (7, 30, 90)
        assert cfg.strategies["trend_following"].custom_params == {"fast_period": 12}
        assert (cfg.mcp_config.asset_price_host, cfg.mcp_config.asset_price_port) == ("127.0.0.2", 9001)
        assert cfg.news_priorities["coindesk"].url == "https://c.example/rss"
        changed = await client.call_tool("update_config", {"changes": {"portfolio_limits.max_daily_trades": 6}})
        assert not changed.isError, text_of(changed)
    written = json.loads(path.read_text())
    assert written["portfolio_limits"]["max_weekly_trades"] == 30 and "max_trades_per_day" not in written
    assert written["strategies"]["trend_following"]["custom_params"] == {"fast_period": 12}
    assert written["mcp_config"]["discovery_port"] == 9002 and "host" not in written["mcp_config"]
    assert [s["source"] for s in written["news_priorities"]] == ["coindesk"]
    assert deps.config.notes == []


def test_two_spellings_of_one_field_with_different_values_are_refused(home):
    path = home / "config.json"
    path.write_text(json.dumps({"portfolio_limits": {"max_trades_per_day": 7, "max_daily_trades": 9}}))
    with pytest.raises(ConfigError, match=r"both portfolio_limits.max_trades_per_day .* Keep only max_daily_trades"):
        ConfigStore(path).load()


def test_an_older_key_name_in_a_change_is_refused_with_its_current_name(home):
    from shared.config.changes import apply_changes
    from shared.config.file import validate_config_data
    from shared.config.models import TradingConfig

    data = apply_changes(TradingConfig().model_dump(mode="json"), {"portfolio_limits.max_trades_per_day": 3})
    with pytest.raises(ConfigError, match="'max_trades_per_day' is now called max_daily_trades"):
        validate_config_data(data)


def test_a_source_listed_twice_is_refused_naming_both_entries(home):
    path = home / "config.json"
    twice = [{"source": "coindesk", "priority": 1, "weight": 0.1}, {"source": "coindesk", "priority": 2, "weight": 0.1}]
    path.write_text(json.dumps({"news_priorities": twice}))
    with pytest.raises(ConfigError, match=r"'coindesk' is listed twice \(entries \[0\] and \[1\]\)"):
        ConfigStore(path).load()


BAD_FILES = {
    "latin-1": '{"stage": "exploration", "note": "caf\xe9"}'.encode("latin-1"),
    "binary": bytes(range(256)) * 4,
    "empty": b"",
    "blank": b" \n\t\n",
    "nul": b'{"stage": "exploration"}\x00',
    "deep": b"[" * 100_000,
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_any_bytes_in_the_file_give_a_config_error_naming_the_file(home, kind):
    path = home / "config.json"
    path.write_bytes(BAD_FILES[kind])
    with pytest.raises(ConfigError) as caught:
        ConfigStore(path).load()
    assert str(path) in str(caught.value)
    assert path.read_bytes() == BAD_FILES[kind]  # never replaced


def test_a_config_path_that_is_a_folder_is_a_config_error(home):
    path = home / "config.json"
    path.mkdir()
    with pytest.raises(ConfigError, match="cannot be read"):
        ConfigStore(path).load()

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.config.file import config_to_json
from shared.config.models import TradingConfig
from shared.config.store import ConfigStore
from shared.errors import ConfigError


def test_defaults_equal_the_seed_values_field_by_field():
    cfg = TradingConfig()
    assert cfg.global_risk_profile == "moderate"
    assert cfg.stage == "exploration"
    assert cfg.global_risk_settings.model_dump() == {
        "max_portfolio_risk": 0.02,
        "max_position_size": 0.10,
        "max_leverage": 2.0,
        "max_drawdown": 0.15,
        "stop_loss": 0.02,
        "take_profit": 0.04,
        "var_confidence": 0.95,
        "max_correlation": 0.7,
        "emergency_stop": 0.25,
        # not in the seed: the CVaR budget and the protections (the moderate profile's values)
        "cooldown_minutes": 60.0,
        "stoploss_guard_stops": 3.0,
        "low_profit_max_loss": 0.06,
        "window_drawdown": 0.08,
        "protection_window_hours": 24.0,
        "protection_pause_hours": 12.0,
        "max_cvar": 0.04,
    }
    news = {name: (s.priority, s.weight, s.enabled) for name, s in cfg.news_priorities.items()}
    assert list(news)[7:] == ["theblock", "cointelegraph", "decrypt", "yahoo_finance", "bitcoinmagazine"]
    assert {name: news[name] for name in list(news)[:7]} == {
        "reuters": (1, 0.25, True),
        "bloomberg": (2, 0.20, True),
        "coindesk": (3, 0.15, True),
        "cryptopanic": (4, 0.15, True),
        "twitter": (5, 0.10, True),
        "reddit": (6, 0.10, True),
        "telegram": (7, 0.05, True),
    }
    assert cfg.portfolio_limits.model_dump() == {
        "max_total_positions": 10,
        "max_open_positions": 5,
        "max_daily_trades": 20,
        "max_weekly_trades": 50,
        "max_monthly_trades": 200,
        "position_timeout_hours": 72,
        "min_account_balance": 1000,
        "max_account_usage": 0.95,
    }
    tf, mr = cfg.strategies["trend_following"], cfg.strategies["mean_reversion"]
    assert (tf.risk_profile, tf.stage, tf.risk_overrides.model_dump(exclude_none=True)) == (
        "moderate",
        "exploration",
        {},
    )
    assert (mr.risk_profile, mr.stage) == ("conservative", "paper")
    assert mr.risk_overrides.model_dump(exclude_none=True) == {"max_position_size": 0.05, "max_leverage": 1.0}
    assert set(cfg.strategies) == {"trend_following", "mean_reversion"}
    assert cfg.mcp_config.model_dump() == {
        "jesse_host": "127.0.0.1",
        "jesse_port": 8000,
        "asset_price_host": "127.0.0.1",
        "asset_price_port": 8001,
        "discovery_host": "127.0.0.1",
        "discovery_port": 8002,
    }
    assert cfg.zai_glm_config.model.startswith("glm-4")


def test_first_load_writes_the_defaults_to_the_file(home: Path):
    store = ConfigStore(home / "config.json")
    cfg = store.load()
    assert (home / "config.json").exists()
    assert json.loads((home / "config.json").read_text()) == json.loads(config_to_json(TradingConfig()))
    assert cfg == TradingConfig()


def _write(path: Path, data) -> str:
    text = data if isinstance(data, str) else json.dumps(data)
    path.write_text(text)
    return text


@pytest.mark.parametrize(
    ("mutate", "field", "hint"),
    [
        (
            lambda d: d["strategies"]["trend_following"].update(risk_profile="reckless"),
            "strategies.trend_following.risk_profile",
            "'conservative', 'moderate' or 'aggressive'",
        ),
        (
            lambda d: d["portfolio_limits"].update(max_open_positions=-1),
            "portfolio_limits.max_open_positions",
            "greater than or equal to 0",
        ),
        (
            lambda d: d["global_risk_settings"].update(max_position_size=1.5),
            "global_risk_settings.max_position_size",
            "less than or equal to 1",
        ),
        (
            lambda d: d["portfolio_limits"].update(max_trades_per_dya=3),
            "portfolio_limits.max_trades_per_dya",
            "allowed keys here: max_total_positions",
        ),
        (lambda d: d.update(stage="production"), "stage", "'exploration', 'paper' or 'live'"),
        (
            lambda d: d["portfolio_limits"].update(max_open_positions="5"),
            "portfolio_limits.max_open_positions",
            "valid integer",
        ),
    ],
    ids=["unknown-profile", "negative-limit", "position-size-over-1", "unknown-key", "unknown-stage", "string-number"],
)
def test_an_invalid_file_names_the_field_and_value_and_nothing_is_written(home: Path, mutate, field, hint):
    path = home / "config.json"
    data = TradingConfig().model_dump(mode="json")
    mutate(data)
    original = _write(path, data)
    with pytest.raises(ConfigError) as err:
        ConfigStore(path).load()
    message = str(err.value)
    assert field in message and hint in message
    assert [p.path for p in err.value.problems] == [field]
    assert path.read_text() == original


def test_broken_json_is_reported_with_line_and_column_and_the_file_is_left_alone(home: Path):
    path = home / "config.json"
    original = _write(path, '{"stage": "paper",\n  "strategies": {,}}')
    with pytest.raises(ConfigError, match=r"not valid JSON: .* line 2 column"):
        ConfigStore(path).load()
    assert path.read_text() == original


def test_a_rejected_update_leaves_the_old_file_untouched(home: Path):
    store = ConfigStore(home / "config.json")
    store.load()
    before = (home / "config.json").read_bytes()

    def bad(data):
        data["global_risk_settings"]["max_leverage"] = 0.5
        return data

    with pytest.raises(ConfigError, match=r"global_risk_settings\.max_leverage: got 0\.5; Input should be greater"):
        store.update(bad)
    assert (home / "config.json").read_bytes() == before
    assert not [p for p in home.iterdir() if p.name.endswith(".tmp")]


def test_a_valid_update_is_written_and_seen_by_another_reader(home: Path):
    writer, reader = ConfigStore(home / "config.json"), ConfigStore(home / "config.json")
    assert reader.load().stage == "exploration"

    def tighten(data):
        data["portfolio_limits"]["max_daily_trades"] = 5
        return data

    old, new = writer.update(tighten)
    assert (old.portfolio_limits.max_daily_trades, new.portfolio_limits.max_daily_trades) == (20, 5)
    assert reader.load().portfolio_limits.max_daily_trades == 5


def test_nan_and_booleans_are_not_numbers(home: Path):
    path = home / "config.json"
    data = TradingConfig().model_dump(mode="json")
    data["global_risk_settings"]["max_leverage"] = True
    _write(path, data)
    with pytest.raises(ConfigError, match=re.escape("global_risk_settings.max_leverage")):
        ConfigStore(path).load()
    _write(
        path, json.dumps(TradingConfig().model_dump(mode="json")).replace('"max_leverage": 2.0', '"max_leverage": NaN')
    )
    with pytest.raises(ConfigError, match=re.escape("global_risk_settings.max_leverage")):
        ConfigStore(path).load()


def test_config_path_comes_from_the_environment(home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("cfg") / "mine.json"
    monkeypatch.setenv("TRADING_MCP_CONFIG", str(elsewhere))
    ConfigStore().load()
    assert elsewhere.exists()
    monkeypatch.delenv("TRADING_MCP_CONFIG")
    assert ConfigStore().path == home / "config.json"


def test_the_three_profile_templates_hold_the_exact_seed_values():
    from shared.config.profiles import PROFILE_TEMPLATES

    fields = (
        "max_portfolio_risk",
        "max_position_size",
        "max_leverage",
        "max_drawdown",
        "stop_loss",
        "take_profit",
        "var_confidence",
    )
    expected = {
        "conservative": (0.01, 0.05, 1.0, 0.10, 0.015, 0.025, 0.99),
        "moderate": (0.02, 0.10, 2.0, 0.15, 0.02, 0.04, 0.95),
        "aggressive": (0.04, 0.20, 5.0, 0.25, 0.03, 0.06, 0.90),
    }
    assert {name: tuple(t[f] for f in fields) for name, t in PROFILE_TEMPLATES.items()} == expected
    # the one field the seed does not have: each profile's daily CVaR budget, tighter for the safer profiles
    assert {name: t["max_cvar"] for name, t in PROFILE_TEMPLATES.items()} == {
        "conservative": 0.02,
        "moderate": 0.04,
        "aggressive": 0.08,
    }
    protections = ("cooldown_minutes", "stoploss_guard_stops", "low_profit_max_loss", "window_drawdown")
    assert {name: tuple(t[f] for f in protections) for name, t in PROFILE_TEMPLATES.items()} == {
        "conservative": (240.0, 2.0, 0.03, 0.05),
        "moderate": (60.0, 3.0, 0.06, 0.08),
        "aggressive": (0.0, 4.0, 0.12, 0.12),
    }
    later = {"max_cvar", *protections, "protection_window_hours", "protection_pause_hours"}
    assert all(set(t) == {*fields, *later} for t in PROFILE_TEMPLATES.values())


def test_the_remaining_sections_have_their_documented_defaults():
    cfg = TradingConfig()
    assert cfg.zai_glm_config.model_dump() == {
        "api_endpoint": "https://open.bigmodel.cn/api/paas/v4/",
        "model": "glm-4-flash",
        "max_tokens": 1024,
        "temperature": 0.1,
        "timeout_s": 30,
        "batch_size": 20,
    }
    assert cfg.backtest_config.model_dump() == {
        "workers": 3,
        "timeout_s": 600,
        "max_batch_runs": 48,
        "max_portfolio_markets": 8,
        "ray_address": None,
        "ray_actors": 4,
    }
    prices = cfg.price_config
    assert list(prices.providers) == ["binance", "coinbase", "kraken", "coingecko", "yahoo", "replay"]
    assert [p.enabled for p in prices.providers.values()] == [True] * 5 + [False]  # replay only when asked
    assert (prices.quote_ttl_s, prices.max_age_s, prices.outlier_bps) == (5.0, 120.0, 100.0)


def test_names_with_dots_or_capitals_are_refused_in_words(home: Path):
    path = home / "config.json"
    data = TradingConfig().model_dump(mode="json")
    data["news_priorities"].append({"source": "x.com", "priority": 9, "weight": 0.1})
    _write(path, data)
    with pytest.raises(ConfigError, match="no dots"):
        ConfigStore(path).load()

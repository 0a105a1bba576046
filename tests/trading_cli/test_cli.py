from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.timeouts import hang_guard
from trading_cli.__main__ import _parse_args
from trading_cli.client import CliError, canonical_server

CLI = str(Path(sys.executable).parent / "trading-mcp")


def _run(home: Path, *args: str, timeout: float = hang_guard(300)) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "TRADING_MCP_HOME": str(home),
        "TRADING_MCP_CONFIG": str(home / "config.json"),
        "TRADING_MCP_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL
    )


@pytest.mark.slow
def test_call_prints_the_structured_result_as_json(tmp_path: Path):
    done = _run(tmp_path, "call", "prices", "get_policy", "--json", '{"strategy": "mean_reversion"}', "--output-json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["risk_profile"] == "conservative" and body["effective_stage"] == "exploration"


@pytest.mark.slow
def test_call_exits_non_zero_when_the_tool_refuses(tmp_path: Path):
    done = _run(tmp_path, "call", "jesse", "update_config", "--arg", 'changes={"stage": "live"}')
    assert done.returncode == 1
    assert "promotion_needs_evidence" in done.stderr


@pytest.mark.slow
def test_tools_lists_every_server_with_capabilities(tmp_path: Path):
    done = _run(tmp_path, "tools", "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert set(listing) == {"jesse-mcp", "asset-price-mcp", "discovery-mcp"}
    assert {t["name"] for t in listing["jesse-mcp"]} >= {"get_config", "update_config", "get_stage", "get_policy"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """One run of `trading-mcp demo` (offline, synthetic candles) shared by the demo tests; the timeout only stops a
    hang on a busy machine."""
    root = tmp_path_factory.mktemp("demo")
    done = _run(root, "demo", "--home", str(root / "home"), timeout=hang_guard(900))
    return done, root / "home"


def _section(out: str, first: str, after: str) -> str:
    """The demo output from the line starting `first` up to the next line starting `after`."""
    start = out.index(first)
    return out[start : out.index(after, start + len(first))]


@pytest.mark.xdist_group("demo")
@pytest.mark.slow
def test_demo_runs_the_scripted_session_against_all_three_servers(demo):
    done, _ = demo
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for server in ("jesse-mcp", "asset-price-mcp", "discovery-mcp"):
        assert f"== {server} ==" in out
    called = re.findall(r"^-> ([\w-]+)\.(\w+) \{", out, re.MULTILINE)
    steps = {
        "jesse-mcp": {
            "generate_synthetic_candles",
            "backtest",
            "compare_risk_profiles",
            "stress_test",
            "monte_carlo",
            "validate_strategy",
            "update_config",
            "place_paper_order",
            "get_promotion_gates",
            "request_stage_promotion",
            "get_paper_portfolio",
            "get_journal",
        },
        "asset-price-mcp": {"get_price", "get_prices", "get_ohlcv", "list_providers"},
        "discovery-mcp": {"fetch_news", "score_sentiment", "discover_opportunities", "update_source_priority"},
    }
    for server, tools in steps.items():
        assert tools <= {tool for s, tool in called if s == server}, server
    assert "demo finished" in out and "UNEXPECTED" not in out


@pytest.mark.xdist_group("demo")
@pytest.mark.slow
def test_demo_backtests_conservative_vs_aggressive_side_by_side_on_labelled_synthetic_data(demo):
    out = demo[0].stdout
    assert "-> jesse-mcp.generate_synthetic_candles" in out and "SYNTHETIC data: generated" in out
    for profile in ("conservative", "aggressive"):
        assert f'"risk_profile": "{profile}", "equity_image": true}}' in out
        assert re.search(rf"^   bt_\w+  {profile}  .* trades \d+  SYNTHETIC DATA$", out, re.MULTILINE)
    side = _section(out, "   conservative vs aggressive, side by side (SYNTHETIC DATA", "\n\n")
    assert "| Metric | conservative | aggressive |" in side
    assert "| Largest position (% equity) | 5.00 | 20.00 |" in side
    assert (
        "| Equity curve (PNG) | equity_trend_following_conservative.png | equity_trend_following_aggressive.png |"
        in side
    )
    compared = _section(out, "-> jesse-mcp.compare_risk_profiles", "\n\n")
    assert "| Largest position (% equity) | 5.00 | 10.00 | 20.00 |" in compared and "SYNTHETIC DATA" in compared


@pytest.mark.xdist_group("demo")
@pytest.mark.slow
def test_demo_saves_each_equity_curve_as_a_valid_png_in_the_demo_home(demo):
    out, home = demo[0].stdout, demo[1]
    for profile in ("conservative", "aggressive"):
        png = home / f"equity_trend_following_{profile}.png"
        assert "PNG drawn by the server" in out and str(png) in out
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and data[-8:-4] == b"IEND"


@pytest.mark.xdist_group("demo")
@pytest.mark.slow
def test_demo_stress_tests_resamples_and_validates_the_conservative_run(demo):
    out = demo[0].stdout
    robustness = _section(out, "# How fragile is the conservative run", "# Loosening")
    assert "(on SYNTHETIC DATA" in robustness
    assert "-> jesse-mcp.stress_test" in robustness and "| crash_2020 |" in robustness
    assert "-> jesse-mcp.monte_carlo" in robustness and "candles      return %" in robustness
    assert "-> jesse-mcp.validate_strategy" in robustness and "fold 3: in-sample Sharpe" in robustness


@pytest.mark.xdist_group("demo")
@pytest.mark.slow
def test_demo_optimizes_and_leads_with_the_out_of_sample_verdict(demo):
    out = demo[0].stdout
    opt = _section(out, "# 'optimize trend_following'", "# Loosening")
    assert "-> jesse-mcp.optimize_strategy" in opt and '"trials": 8' in opt and "SYNTHETIC DATA" in opt
    lines = [line.strip() for line in opt.splitlines() if line.strip()]
    first = next(i for i, line in enumerate(lines) if line.startswith("out of sample:"))
    assert lines[first + 1].startswith("in sample:") and lines[first + 2].startswith("deflated Sharpe")
    counts = re.search(r"\((\d+) feasible, (\d+) infeasible, (\d+) failed\)", opt)
    assert counts is not None and sum(int(n) for n in counts.groups()) == 8
    assert "(proposed only: the configuration is unchanged)" in opt and "verdict: " in opt


@pytest.mark.xdist_group("demo")
@pytest.mark.slow
def test_demo_shows_the_guard_refusing_loosening_stage_changes_and_bad_arguments(demo):
    out = demo[0].stdout
    assert "Denied (loosening_needs_confirmation)" in out
    assert "strategies.trend_following.risk_overrides.max_leverage" in out
    assert "Denied (promotion_needs_evidence)" in out
    assert "unknown argument 'profile'" in out


@pytest.mark.xdist_group("demo")
@pytest.mark.slow
def test_demo_shows_a_paper_order_refused_in_exploration(demo):
    refusal = _section(demo[0].stdout, '-> jesse-mcp.place_paper_order {"strategy": "trend_following"', "\n\n")
    assert "refused, rule: stage_too_low" in refusal


@pytest.mark.xdist_group("demo")
@pytest.mark.slow
def test_demo_requests_a_promotion_and_shows_its_refusal_with_every_gate(demo):
    out = demo[0].stdout
    measured = _section(out, "-> jesse-mcp.get_promotion_gates", "\n\n")
    assert "the honest outcome is a refusal" in measured
    assert "| Gate | Result | Value | Needs |" in measured and "| backtest_real_data | FAIL | False |" in measured
    asked = _section(out, "-> jesse-mcp.request_stage_promotion", "\n\n")
    counted = re.search(r"refused, rule: promotion_gates: (\d+) of (\d+) gates failed; nothing was changed", asked)
    assert counted and 1 <= int(counted[1]) <= int(counted[2])
    rows = re.findall(r"^   \| (\w+) \| (pass|FAIL) \| (.+) \| (.+) \|$", asked, re.MULTILINE)
    assert len(rows) == int(counted[2]) and sum(r[1] == "FAIL" for r in rows) == int(counted[1])
    assert any(name == "backtest_real_data" and result == "FAIL" for name, result, _, _ in rows)
    assert "remedy: produce the missing evidence" in asked
    assert re.search(r"request_stage_promotion\s+deny\s+denied\s+promotion_gates", out)


@pytest.mark.xdist_group("demo")
@pytest.mark.slow
def test_demo_fills_a_paper_order_at_a_replay_price_once_the_stage_allows(demo):
    out = demo[0].stdout
    assert "global stage paper, mean_reversion effectively at paper" in out
    filled = _section(out, '-> jesse-mcp.place_paper_order {"strategy": "mean_reversion"', "\n\n")
    assert "filled: long" in filled and "replay price from the stored SYNTHETIC candles" in filled
    assert re.search(r"pre-trade checks: (\d+) of \1 passed", filled)
    assert "mean_reversion long" in _section(out, "-> jesse-mcp.get_paper_portfolio", "\n\n")


@pytest.mark.xdist_group("demo")
@pytest.mark.slow
def test_demo_prices_are_replayed_from_the_stored_candles_and_labelled_synthetic(demo):
    prices = _section(demo[0].stdout, "== asset-price-mcp ==", "== discovery-mcp ==")
    assert "the stored candles: SYNTHETIC DATA" in prices
    price = _section(prices, "-> asset-price-mcp.get_price ", "\n\n")
    assert "replay: true" in price and "replayed from the SYNTHETIC candles" in price
    assert 'provider: "replay"' in _section(prices, "-> asset-price-mcp.get_ohlcv", "\n\n")


@pytest.mark.xdist_group("demo")
@pytest.mark.slow
def test_demo_discovers_opportunities_in_the_sample_news(demo):
    news = demo[0].stdout[demo[0].stdout.index("== discovery-mcp ==") :]
    assert "not real news" in news and "-> discovery-mcp.fetch_news" in news
    found = _section(news, "-> discovery-mcp.discover_opportunities", "\n\n")
    assert "from SAMPLE news" in found and re.search(r"^   #1 \w+ (long|short): score", found, re.MULTILINE)
    assert "Denied (loosening_needs_confirmation)" in _section(
        news, "-> discovery-mcp.update_source_priority", "\ndemo finished"
    )


def test_arguments_are_parsed_as_json_values_with_strings_as_fallback():
    assert _parse_args(["limit=5", "tool=get_policy", "flag=true"], '{"a": [1]}') == {
        "a": [1],
        "limit": 5,
        "tool": "get_policy",
        "flag": True,
    }
    with pytest.raises(CliError, match="key=value"):
        _parse_args(["novalue"], None)
    with pytest.raises(CliError, match="--json is not valid JSON"):
        _parse_args([], "{oops")


def test_server_names_accept_aliases_and_refuse_unknown_ones():
    assert canonical_server("Prices") == "asset-price-mcp" and canonical_server("jesse") == "jesse-mcp"
    with pytest.raises(CliError, match="unknown server 'bank'"):
        canonical_server("bank")


@pytest.mark.slow
def test_a_broken_configuration_still_lets_the_server_answer_with_the_problem(tmp_path: Path):
    (tmp_path / "config.json").write_text("{ broken")
    done = _run(tmp_path, "call", "prices", "get_policy")
    assert done.returncode == 1
    assert "config_invalid" in done.stderr and "not valid JSON" in done.stderr


def test_a_one_call_session_starts_jesses_zygote_early_only_for_tools_that_run_jesse():
    from trading_cli.client import EARLY_ZYGOTE_ENV, env_for

    assert env_for("jesse-mcp", "backtest")[EARLY_ZYGOTE_ENV] == "1"
    assert env_for("jesse", "get_stage")[EARLY_ZYGOTE_ENV] == "0"
    assert EARLY_ZYGOTE_ENV not in env_for("asset-price-mcp", "get_price")
    assert env_for("jesse-mcp", "get_stage", {EARLY_ZYGOTE_ENV: "1"})[EARLY_ZYGOTE_ENV] == "1"  # the caller's wins

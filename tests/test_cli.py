from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trading_cli.__main__ import _parse_args
from trading_cli.client import CliError, canonical_server

CLI = str(Path(sys.executable).parent / "trading-mcp")


def _run(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "TRADING_MCP_HOME": str(home),
        "TRADING_MCP_CONFIG": str(home / "config.json"),
        "TRADING_MCP_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL
    )


def test_call_prints_the_structured_result_as_json(tmp_path: Path):
    done = _run(tmp_path, "call", "prices", "get_policy", "--json", '{"strategy": "mean_reversion"}', "--output-json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["risk_profile"] == "conservative" and body["effective_stage"] == "exploration"


def test_call_exits_non_zero_when_the_tool_refuses(tmp_path: Path):
    done = _run(tmp_path, "call", "jesse", "update_config", "--arg", 'changes={"stage": "live"}')
    assert done.returncode == 1
    assert "promotion_needs_evidence" in done.stderr


def test_tools_lists_every_server_with_capabilities(tmp_path: Path):
    done = _run(tmp_path, "tools", "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert set(listing) == {"jesse-mcp", "asset-price-mcp", "discovery-mcp"}
    assert {t["name"] for t in listing["jesse-mcp"]} >= {"get_config", "update_config", "get_stage", "get_policy"}


def test_demo_runs_the_scripted_session_against_all_three_servers(tmp_path: Path):
    done = _run(tmp_path, "demo", "--home", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for expected in (
        "== asset-price-mcp ==",
        "== discovery-mcp ==",
        "== jesse-mcp ==",
        "Denied (loosening_needs_confirmation)",
        "strategies.trend_following.risk_overrides.max_leverage",
        "promotion_needs_evidence",
        "unknown argument 'profile'",
        "SYNTHETIC DATA",
        "| Largest position (% equity) | 5.00 | 10.00 | 20.00 |",
        "| crash_2020 |",
        "candles      return %",
        "fold 3: in-sample Sharpe",
        "-> jesse-mcp.place_paper_order",
        "refused, rule: stage_too_low",
        "-> jesse-mcp.get_promotion_gates",
        "| backtest_real_data | FAIL |",
        "replay price from stored candles",
        "global stage paper, mean_reversion effectively at paper",
        "-> jesse-mcp.get_paper_portfolio",
        "mean_reversion long",
        "replay: true",
        'provider: "replay"',
        "demo finished",
    ):
        assert expected in out
    assert re.search(r"pre-trade checks: (\d+) of \1 passed", out)
    assert "UNEXPECTED" not in out


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


def test_a_broken_configuration_still_lets_the_server_answer_with_the_problem(tmp_path: Path):
    (tmp_path / "config.json").write_text("{ broken")
    done = _run(tmp_path, "call", "prices", "get_policy")
    assert done.returncode == 1
    assert "config_invalid" in done.stderr and "not valid JSON" in done.stderr

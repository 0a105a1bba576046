from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.trading_cli.test_cli import _run
from trading_cli.ask.parse import AskError, parse

ISSUE_EXAMPLES = [
    (
        "backtest trend_following conservatively",
        "jesse-mcp",
        "backtest",
        {"strategy": "trend_following", "risk_profile": "conservative"},
    ),
    (
        "backtest mean_reversion on ETH-USDT over the last 90 days aggressively",
        "jesse-mcp",
        "backtest",
        {"strategy": "mean_reversion", "symbol": "ETH-USDT", "days": 90, "risk_profile": "aggressive"},
    ),
    (
        "backtest breakout 4h from 2025-06-01 to 2025-08-01 with the moderate profile",
        "jesse-mcp",
        "backtest",
        {
            "strategy": "breakout",
            "timeframe": "4h",
            "start": "2025-06-01",
            "end": "2025-08-01",
            "risk_profile": "moderate",
        },
    ),
    ("compare risk profiles for momentum", "jesse-mcp", "compare_risk_profiles", {"strategy": "momentum"}),
    (
        "backtest all strategies on BTC and ETH",
        "jesse-mcp",
        "backtest_batch",
        {
            "strategies": ["trend_following", "mean_reversion", "breakout", "momentum"],
            "symbols": ["BTC-USDT", "ETH-USDT"],
        },
    ),
    ("price of BTC, ETH and AAPL", "asset-price-mcp", "get_prices", {"symbols": ["BTC", "ETH", "AAPL"]}),
    ("news on SOL", "discovery-mcp", "fetch_news", {"symbols": ["SOL"]}),
    ("opportunities today", "discovery-mcp", "discover_opportunities", {}),
    (
        "promote trend_following to paper",
        "jesse-mcp",
        "request_stage_promotion",
        {"strategy": "trend_following", "to_stage": "paper"},
    ),
    ("demote mean_reversion", "jesse-mcp", "demote_stage", {"strategy": "mean_reversion"}),
    ("portfolio", "jesse-mcp", "get_paper_portfolio", {}),
    ("what is my VaR", "jesse-mcp", "get_paper_portfolio", {}),
    (
        "optimize trend_following on ETH",
        "jesse-mcp",
        "optimize_strategy",
        {"strategy": "trend_following", "symbols": ["ETH-USDT"]},
    ),
    (
        "optimise momentum on BTC and SOL with 50 trials for sortino 4h over the last 90 days conservatively",
        "jesse-mcp",
        "optimize_strategy",
        {
            "strategy": "momentum",
            "symbols": ["BTC-USDT", "SOL-USDT"],
            "timeframe": "4h",
            "trials": 50,
            "objective": "sortino",
            "days": 90,
            "risk_profile": "conservative",
        },
    ),
    (
        "tune breakout on ETH-USDT for return vs drawdown walk-forward",
        "jesse-mcp",
        "optimize_strategy",
        {
            "strategy": "breakout",
            "symbols": ["ETH-USDT"],
            "objective": ["net_profit", "max_drawdown"],
            "sampler": "nsga2",
            "validation": "walk_forward",
        },
    ),
    ("show my CVaR", "jesse-mcp", "get_paper_portfolio", {}),
    ("what's the tail risk of my account", "jesse-mcp", "get_paper_portfolio", {}),
]


@pytest.mark.parametrize(("text", "server", "tool", "arguments"), ISSUE_EXAMPLES, ids=[e[0] for e in ISSUE_EXAMPLES])
def test_each_documented_command_parses_to_its_tool_and_arguments(text, server, tool, arguments):
    plan = parse(text)
    assert (plan.call.server, plan.call.tool, plan.call.arguments) == (server, tool, arguments)


def test_stress_test_first_looks_up_the_strategys_latest_backtest():
    plan = parse("stress test trend_following")
    assert (plan.call.tool, plan.latest_backtest_of) == ("stress_test", "trend_following")


@pytest.mark.parametrize(
    ("text", "profile"),
    [
        ("backtest trend_following safely", "conservative"),
        ("backtest trend_following cautiously", "conservative"),
        ("backtest trend_following with low risk", "conservative"),
        ("backtest trend_following balanced", "moderate"),
        ("backtest trend_following boldly", "aggressive"),
        ("Back-test Trend Following high-risk", "aggressive"),
    ],
)
def test_adverbs_and_synonyms_map_to_profiles(text, profile):
    assert parse(text).call.arguments["risk_profile"] == profile


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("backtest momentum over the past 2 weeks", {"days": 14}),
        ("backtest momentum last month", {"days": 30}),
        ("backtest momentum since 2025-01-01", {"start": "2025-01-01"}),
        ("backtest momentum 1d", {"timeframe": "1D"}),
        ("how much is AAPL", {"symbol": "AAPL"}),
        ("top 3 opportunities in BTC and ETH", {"top_k": 3, "symbols": ["BTC", "ETH"]}),
        ("gates for trend_following to live", {"strategy": "trend_following", "to_stage": "live"}),
    ],
)
def test_ranges_timeframes_and_lists_are_read_from_the_sentence(text, expected):
    args = parse(text).call.arguments
    assert {k: args.get(k) for k in expected} == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "backtest every strategy on BTC-USDT, ETH/USDT 4h",
            {"symbols": ["BTC-USDT", "ETH-USDT"], "timeframes": ["4h"]},
        ),
        ("backtest all strategies on SOL over the last 90 days", {"symbols": ["SOL-USDT"], "days": 90}),
        ("backtest all the strategies for the past 2 weeks on both btc and eth", {"symbols": ["BTC-USDT", "ETH-USDT"]}),
        ("backtest all strategies conservatively", {"risk_profiles": ["conservative"], "symbols": None}),
        (
            "compare all strategies on BTC under all profiles",
            {"symbols": ["BTC-USDT"], "risk_profiles": ["conservative", "moderate", "aggressive"]},
        ),
    ],
)
def test_all_strategies_on_several_markets_is_one_backtest_batch(text, expected):
    plan = parse(text)
    assert (plan.call.tool, plan.call.arguments["strategies"]) == (
        "backtest_batch",
        ["trend_following", "mean_reversion", "breakout", "momentum"],
    )
    assert {k: plan.call.arguments.get(k) for k in expected} == expected


def test_a_bare_ticker_in_a_batch_is_read_as_its_usdt_market_and_the_plan_says_so():
    assert parse("backtest all strategies on BTC and ETH").notes == ["BTC, ETH read as BTC-USDT, ETH-USDT."]
    assert parse("backtest all strategies on ETH-USDT").notes == []


@pytest.mark.parametrize(
    ("text", "tool", "expected"),
    [
        (
            "backtest trend_following on BTC, ETH and SOL as a portfolio",
            "backtest",
            {"strategy": "trend_following", "markets": ["BTC-USDT", "ETH-USDT", "SOL-USDT"]},
        ),
        (
            "compare momentum on BTC-USDT and ETH-USDT together over the last 60 days",
            "compare_risk_profiles",
            {"strategy": "momentum", "markets": ["BTC-USDT", "ETH-USDT"], "days": 60},
        ),
        ("backtest momentum on ETH for the last 30 days", "backtest", {"strategy": "momentum", "symbol": "ETH-USDT"}),
        (
            "backtest momentum on BTC and ETH as a portfolio with cvar sizing",
            "backtest",
            {"strategy": "momentum", "markets": ["BTC-USDT", "ETH-USDT"], "sizing": "cvar"},
        ),
        (
            "backtest breakout on BTC and ETH 4h aggressively",
            "backtest_batch",
            {
                "strategies": ["breakout"],
                "symbols": ["BTC-USDT", "ETH-USDT"],
                "timeframes": ["4h"],
                "risk_profiles": ["aggressive"],
            },
        ),
    ],
)
def test_several_markets_are_a_portfolio_when_said_so_and_separate_runs_otherwise(text, tool, expected):
    plan = parse(text)
    assert plan.call.tool == tool and {k: plan.call.arguments.get(k) for k in expected} == expected
    assert set(plan.call.arguments) <= {*expected, "days", "timeframe"}


def test_several_markets_say_how_to_ask_for_one_account_and_a_portfolio_needs_two():
    assert "for one account say 'backtest breakout on BTC-USDT and ETH-USDT as a portfolio'" in " ".join(
        parse("backtest breakout on BTC and ETH").notes
    )
    with pytest.raises(AskError, match="a portfolio trades at least two markets"):
        parse("backtest breakout on BTC as a portfolio")
    with pytest.raises(AskError, match="compare runs one market or one portfolio"):
        parse("compare breakout on BTC and ETH")


MALFORMED = [
    ("", "empty command"),
    ("   ", "empty command"),
    ("hello", "Commands look like"),
    ("backtst trend_following", "Did you mean: 'backtest"),
    ("prise of btc", "Did you mean: 'price of"),
    ("promot trend_following to paper", "Did you mean: 'promote"),
    ("backtest", "which strategy?"),
    ("backtest conservatively", "which strategy?"),
    ("compare risk profiles", "which strategy?"),
    ("stress test", "which strategy?"),
    ("promote trend_following", "which stage, paper or live?"),
    ("promote trend_following to exploration", "which stage, paper or live?"),
    ("promote to paper", "promote which strategy?"),
    ("demote", "demote which strategy?"),
    ("price of", "price of what?"),
    ("price of $%^", "does not look like a symbol"),
    ("backtest x conservatively aggressively", "more than one risk profile"),
    ("backtest x 1h 4h", "more than one timeframe"),
    ("backtest x from 2025-01-01 to 2025-02-01 last 30 days", "either a date range"),
    ("backtest x last 99999 days", "outside 1..3650"),
    ("x" * 600, "longer than 500 characters"),
    ("gates", "which strategy?"),
    ("backtest all strategies on BTC safely boldly", "more than one risk profile"),
]


@pytest.mark.parametrize(("text", "fragment"), MALFORMED, ids=[m[0][:30] or "blank" for m in MALFORMED])
def test_malformed_or_ambiguous_commands_get_a_helpful_answer(text, fragment):
    with pytest.raises(AskError) as caught:
        parse(text)
    assert fragment in str(caught.value)


@pytest.mark.slow
def test_ask_runs_the_call_over_stdio_and_prints_it_first(tmp_path: Path):
    done = _run(tmp_path, "ask", "policy for mean_reversion")
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    assert first == '-> jesse-mcp.get_policy {"strategy": "mean_reversion"}'
    assert any("conservative" in line for line in rest)


@pytest.mark.slow
def test_ask_exits_1_when_the_tool_denies_and_prints_why(tmp_path: Path):
    done = _run(tmp_path, "ask", "promote trend_following to paper", "--json")
    assert done.returncode == 1
    assert "promotion_gates" in done.stderr and "backtest_sharpe" in done.stderr


@pytest.mark.slow
def test_ask_exits_2_without_a_traceback_when_it_cannot_parse(tmp_path: Path):
    done = _run(tmp_path, "ask", "make", "me", "rich")
    assert done.returncode == 2
    assert "Commands look like" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_ask_stress_test_without_a_stored_backtest_says_what_to_run_first(tmp_path: Path):
    done = _run(tmp_path, "ask", "stress test trend_following")
    assert done.returncode == 2
    assert 'trading-mcp ask "backtest trend_following"' in done.stderr


@pytest.mark.slow
def test_ask_json_prints_the_raw_structured_result(tmp_path: Path):
    done = _run(tmp_path, "ask", "stage history", "--json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout.split("\n", 1)[1])
    assert body["changes"] == []


@pytest.mark.slow
def test_ask_backtest_all_strategies_without_candles_answers_a_table_of_failed_rows(tmp_path: Path):
    done = _run(tmp_path, "ask", "backtest all strategies on BTC and ETH")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith('-> jesse-mcp.backtest_batch {"strategies": ["trend_following"')
    assert "note: BTC, ETH read as BTC-USDT, ETH-USDT." in done.stderr
    assert done.stdout.count("failed: No candles are stored yet.") == 8
    assert "note: 8 run(s) failed" in done.stdout


def test_a_portfolio_backtest_reads_with_its_markets_contributions_and_refusals():
    from trading_cli.ask.run import table

    request = {"strategy": "momentum", "symbol": "BTC-USDT", "markets": ["BTC-USDT", "ETH-USDT"], "timeframe": "1h"}
    payload = {
        "id": "bt_1",
        "synthetic": False,
        "request": {**request, "risk_profile": "moderate", "start": "2024-01-01", "end": "2024-02-01"},
        "performance": {
            "net_profit_pct": 3.0,
            "max_drawdown_pct": 2.0,
            "sharpe": 1.5,
            "trades": 12,
            "win_rate_pct": 50,
        },
        "portfolio": {
            "contributions": [
                {"market": "BTC-USDT", "contribution_pct": 2.5},
                {"market": "ETH-USDT", "contribution_pct": 0.5},
            ],
            "refused_entries": {"max_open_positions": 4},
        },
    }
    text = table(payload)
    assert text.startswith("momentum BTC-USDT+ETH-USDT 1h moderate")
    assert "    BTC-USDT %     2.50" in text and "  refused entries  4 max_open_positions" in text

"""Prompts of the three servers and the completion of their arguments, through real in-memory MCP sessions."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from mcp import types
from mcp.shared.exceptions import McpError
from mcp.shared.memory import create_connected_server_and_client_session as connect

from asset_price_mcp.server import build_server as build_prices
from discovery_mcp.server import build_server as build_discovery
from jesse_mcp.candles.ops import generate_synthetic
from jesse_mcp.server import build_server as build_jesse
from shared.config.models import StrategyConfig
from shared.market.candles import CandleStore
from shared.server.completion import match, match_last_item
from tests.mcp_helpers import all_servers
from tests.timeouts import hang_guard

pytestmark = pytest.mark.anyio

PROMPTS = {
    "jesse-mcp": {
        "backtest_workflow",
        "risk_profile_comparison",
        "promotion_review",
        "stress_review",
        "optimization_workflow",
    },
    "asset-price-mcp": {"price_check", "market_snapshot"},
    "discovery-mcp": {"morning_briefing", "news_check"},
}
SAMPLES = {
    "strategy": "trend_following",
    "risk_profile": "aggressive",
    "symbol": "BTC-USDT",
    "to_stage": "live",
    "backtest_id": "bt_0123456789ab",
    "symbols": "BTC, ETH",
    "interval": "4h",
    "days": "3",
    "horizon_hours": "12",
    "since_hours": "6",
}
VARIANTS = {  # renderings whose text differs from the required-only and the all-arguments ones
    "promotion_review": [{"strategy": "trend_following", "to_stage": "paper"}],
    "price_check": [{"symbols": "BTC"}],
}
CALL = re.compile(r"\b([a-z][a-z0-9_]*)\(")
KEYWORD = re.compile(r"(?:^|,)\s*([a-z_][a-z0-9_]*)=")
SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def prompt_ref(name: str) -> types.PromptReference:
    return types.PromptReference(type="ref/prompt", name=name)


def template_ref(uri: str) -> types.ResourceTemplateReference:
    return types.ResourceTemplateReference(type="ref/resource", uri=uri)


async def complete(client, ref, name: str, value: str) -> types.Completion:
    return (await client.complete(ref, {"name": name, "value": value})).completion


def calls_in(text: str) -> list[tuple[str, set[str]]]:
    """Each `tool(...)` written in a prompt, with the keyword arguments at its top level."""
    found = []
    for m in CALL.finditer(text):
        depth, quote, i, top = 1, None, m.end(), []
        while depth:
            ch = text[i]
            if quote:
                quote = None if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            if depth == 1 and not quote:
                top.append(ch)
            i += 1
        found.append((m[1], set(KEYWORD.findall("".join(top)))))
    return found


@pytest.fixture
async def jesse(deps) -> AsyncIterator:
    async with connect(build_jesse(deps, warmup=())) as client:
        yield client


@pytest.fixture
async def prices(deps) -> AsyncIterator:
    async with connect(build_prices(deps)) as client:
        yield client


@pytest.fixture
async def discovery(deps) -> AsyncIterator:
    async with connect(build_discovery(deps)) as client:
        yield client


# --- prompts ------------------------------------------------------------------------------------------------------


async def test_each_server_lists_its_prompts_with_a_description_for_every_argument(deps):
    for name, server in all_servers(deps).items():
        async with connect(server) as client:
            listed = (await client.list_prompts()).prompts
            assert client.get_server_capabilities().completions is not None, name
        assert {p.name for p in listed} == PROMPTS[name]
        for prompt in listed:
            assert prompt.title and prompt.description, prompt.name
            assert prompt.arguments and all(a.description for a in prompt.arguments), prompt.name


async def test_every_tool_a_prompt_calls_exists_on_that_server_with_those_argument_names(deps):
    servers = all_servers(deps)
    tools: dict[str, dict[str, set[str]]] = {}
    listed: dict[str, list[types.Prompt]] = {}
    for name, server in servers.items():
        async with connect(server) as client:
            tools[name] = {t.name: set(t.inputSchema.get("properties", {})) for t in (await client.list_tools()).tools}
            listed[name] = (await client.list_prompts()).prompts
    every_tool = set().union(*tools.values())
    for name, server in servers.items():
        async with connect(server) as client:
            for prompt in listed[name]:
                required = {a.name: SAMPLES[a.name] for a in prompt.arguments if a.required}
                full = {a.name: SAMPLES[a.name] for a in prompt.arguments}
                for arguments in (required, full, *VARIANTS.get(prompt.name, [])):
                    text = (await client.get_prompt(prompt.name, arguments)).messages[0].content.text
                    calls = calls_in(text)
                    assert calls, (prompt.name, text)
                    for tool, keywords in calls:
                        assert tool in tools[name], f"{prompt.name} calls {tool}, not a tool of {name}"
                        assert keywords <= tools[name][tool], (prompt.name, tool, keywords - tools[name][tool])
                    named = set(SNAKE.findall(text)) & every_tool
                    assert named <= set(tools[name]), (prompt.name, named - set(tools[name]))


async def test_the_backtest_prompt_puts_strategy_profile_and_market_into_its_calls(jesse):
    prompt = await jesse.get_prompt(
        "backtest_workflow", {"strategy": "momentum", "risk_profile": "aggressive", "symbol": "ETH-USDT"}
    )
    text = prompt.messages[0].content.text
    assert "backtest(strategy='momentum', risk_profile='aggressive', symbol='ETH-USDT', ...)" in text
    assert "compare_risk_profiles(strategy='momentum', symbol='ETH-USDT')" in text


async def test_the_live_promotion_prompt_reads_gates_paper_record_and_history_and_promotes_only_on_a_yes(jesse):
    text = (
        (await jesse.get_prompt("promotion_review", {"strategy": "mean_reversion", "to_stage": "live"}))
        .messages[0]
        .content.text
    )
    order = [
        "get_promotion_gates(strategy='mean_reversion', to_stage='live')",
        "get_paper_performance(strategy='mean_reversion')",
        "get_stage_history(strategy='mean_reversion')",
        "request_stage_promotion(strategy='mean_reversion', to_stage='live', reason=...)",
    ]
    assert [text.index(step) for step in order] == sorted(text.index(step) for step in order)
    assert "Never describe a failed or unmeasured gate as passed" in text
    assert "Only if every gate passes and the person says yes" in text and "do not call it" in text


async def test_the_paper_promotion_prompt_reads_the_backtest_evidence_instead_of_a_paper_record(jesse):
    text = (await jesse.get_prompt("promotion_review", {"strategy": "breakout"})).messages[0].content.text
    assert "to_stage='paper'" in text and "list_backtests(strategy='breakout')" in text
    assert "get_paper_performance" not in text


async def test_a_promotion_prompt_for_a_stage_that_is_no_promotion_is_refused_with_the_valid_stages(jesse):
    with pytest.raises(McpError, match=r"to_stage[\s\S]*'paper' or 'live'"):
        await jesse.get_prompt("promotion_review", {"strategy": "breakout", "to_stage": "exploration"})


async def test_the_stress_prompt_uses_the_given_backtest_id(jesse):
    prompt = await jesse.get_prompt("stress_review", {"strategy": "breakout", "backtest_id": "bt_00ff"})
    text = prompt.messages[0].content.text
    assert "stress_test(backtest_id='bt_00ff')" in text and "monte_carlo(backtest_id='bt_00ff')" in text


async def test_the_optimization_prompt_leads_with_out_of_sample_and_never_adopts_on_its_own(jesse):
    prompt = await jesse.get_prompt("optimization_workflow", {"strategy": "breakout", "symbol": "ETH-USDT"})
    text = prompt.messages[0].content.text
    assert "optimize_strategy(strategy='breakout', symbols=['ETH-USDT'], trials=..., seed=...)" in text
    steps = ["the out-of-sample figures", "then in-sample", "deflated Sharpe ratio over every trial"]
    assert [text.index(s) for s in steps] == sorted(text.index(s) for s in steps)
    assert "Adopt the values only if the person asks" in text and "never count towards promotion" in text
    bare = (await jesse.get_prompt("optimization_workflow", {"strategy": "breakout"})).messages[0].content.text
    assert "optimize_strategy(strategy='breakout', trials=" in bare


async def test_the_price_check_prompt_asks_one_symbol_with_get_price_and_several_with_get_prices(prices):
    one = (await prices.get_prompt("price_check", {"symbols": " btc "})).messages[0].content.text
    many = (await prices.get_prompt("price_check", {"symbols": "BTC,AAPL, ,EUR/USD"})).messages[0].content.text
    assert "get_price(symbol='btc')" in one
    assert "get_prices(symbols=['BTC', 'AAPL', 'EUR/USD'])" in many


async def test_a_price_check_without_symbols_is_refused_and_says_what_to_give(prices):
    with pytest.raises(McpError, match="Give at least one symbol"):
        await prices.get_prompt("price_check", {"symbols": " , "})


async def test_the_market_snapshot_prompt_reads_price_and_candles_of_the_period(prices):
    args = {"symbol": "gold", "interval": "1d", "days": "30"}
    text = (await prices.get_prompt("market_snapshot", args)).messages[0].content.text
    assert "get_price(symbol='gold')" in text and "get_ohlcv(symbol='gold', interval='1d', days=30)" in text


async def test_the_morning_briefing_focuses_news_and_opportunities_on_the_symbols(discovery):
    args = {"symbols": "BTC, ETH", "horizon_hours": "12"}
    text = (await discovery.get_prompt("morning_briefing", args)).messages[0].content.text
    assert "fetch_news(symbols=['BTC', 'ETH'], since_hours=16)" in text
    assert "discover_opportunities(symbols=['BTC', 'ETH'], horizon_hours=12)" in text and "untrusted_" in text


async def test_the_news_check_prompt_reads_the_news_of_one_asset(discovery):
    text = (await discovery.get_prompt("news_check", {"symbol": "solana"})).messages[0].content.text
    assert "fetch_news(symbols=['solana'], since_hours=24)" in text and "untrusted_" in text


# --- completion ---------------------------------------------------------------------------------------------------


async def test_a_strategy_prefix_completes_to_the_catalogued_strategy(jesse):
    for ref in (prompt_ref("promotion_review"), template_ref("strategies://{name}")):
        argument = "strategy" if ref.type == "ref/prompt" else "name"
        got = await complete(jesse, ref, argument, "tr")
        assert (got.values, got.total, got.hasMore) == (["trend_following"], 1, False)


async def test_strategy_completion_offers_user_files_and_configured_strategies(deps, jesse):
    (deps.extras.home / "strategies").mkdir()
    (deps.extras.home / "strategies" / "my_edge.py").write_text("x = 1\n")
    cfg = deps.config.load()
    deps.config.save(cfg.model_copy(update={"strategies": {**cfg.strategies, "mean_carry": StrategyConfig()}}))
    assert (await complete(jesse, prompt_ref("stress_review"), "strategy", "M")).values == [
        "mean_carry",
        "mean_reversion",
        "momentum",
        "my_edge",
    ]


async def test_a_broken_configuration_still_completes_the_built_in_strategies(deps, jesse):
    deps.config.path.write_text("{not json")
    got = await complete(jesse, prompt_ref("backtest_workflow"), "strategy", "b")
    assert got.values == ["breakout"]


async def test_a_profile_prefix_completes_case_insensitively(jesse):
    got = await complete(jesse, prompt_ref("backtest_workflow"), "risk_profile", "C")
    assert (got.values, got.total, got.hasMore) == (["conservative"], 1, False)


async def test_the_target_stage_completes_to_the_promotion_stages(jesse):
    assert (await complete(jesse, prompt_ref("promotion_review"), "to_stage", "")).values == ["live", "paper"]
    assert (await complete(jesse, prompt_ref("promotion_review"), "to_stage", "p")).values == ["paper"]


async def test_a_market_symbol_completes_once_its_candles_are_stored(deps, jesse):
    ref = prompt_ref("risk_profile_comparison")
    assert (await complete(jesse, ref, "symbol", "btc")).values == []
    generate_synthetic(CandleStore(deps.extras.home / "candles"), "BTC-USDT", 0, 3_600_000, seed=1)
    assert (await complete(jesse, ref, "symbol", "btc")).values == ["BTC-USDT"]


async def test_a_symbol_prefix_completes_to_canonical_symbols_on_the_price_server(prices):
    for ref, argument in ((prompt_ref("market_snapshot"), "symbol"), (template_ref("prices://{symbol}"), "symbol")):
        assert (await complete(prices, ref, argument, "btcu")).values == ["BTC-USD", "BTC-USDT"]
    assert "XAU-USD" in (await complete(prices, prompt_ref("market_snapshot"), "symbol", "xa")).values
    assert (await complete(prices, prompt_ref("market_snapshot"), "interval", "1")).values == ["15m", "1d", "1h", "1m"]


async def test_an_empty_prefix_sends_the_first_100_symbols_and_says_there_are_more(prices):
    got = await complete(prices, prompt_ref("market_snapshot"), "symbol", "")
    assert len(got.values) == 100 and got.total > 100 and got.hasMore is True
    assert got.values == sorted(got.values, key=str.lower)


async def test_a_symbol_prefix_completes_to_discovery_assets(discovery):
    got = await complete(discovery, prompt_ref("news_check"), "symbol", "sol")
    assert {"SOL", "Solana"} <= set(got.values) and got.total == len(got.values) and got.hasMore is False


async def test_a_comma_separated_list_completes_its_last_item_and_keeps_the_rest(prices, discovery):
    got = await complete(prices, prompt_ref("price_check"), "symbols", "BTC-USD, eth-usd")
    assert got.values == ["BTC-USD, ETH-USD", "BTC-USD, ETH-USDT"] and got.total == 2
    got = await complete(discovery, prompt_ref("morning_briefing"), "symbols", "BTC,et")
    assert "BTC,ETH" in got.values and all(v.startswith("BTC,") for v in got.values)
    got = await complete(discovery, prompt_ref("morning_briefing"), "symbols", "BTC,ETH,E")
    assert "BTC,ETH,ETC" in got.values and "BTC,ETH,ETH" not in got.values


async def test_an_unknown_argument_prompt_or_template_completes_to_nothing(jesse, prices, discovery):
    asks = [
        (jesse, prompt_ref("backtest_workflow"), "colour"),
        (jesse, prompt_ref("no_such_prompt"), "strategy"),
        (jesse, template_ref("backtests://{id}"), "id"),
        (prices, prompt_ref("market_snapshot"), "days"),
        (prices, template_ref("prices://{nope}"), "nope"),
        (discovery, prompt_ref("morning_briefing"), "horizon_hours"),
    ]
    for client, ref, argument in asks:
        got = await complete(client, ref, argument, "a")
        assert (got.values, got.total, got.hasMore) == ([], 0, False), (ref, argument)


def test_strategy_completion_and_the_jesse_server_never_import_jesse_or_what_only_some_tools_need(tmp_path):
    code = (
        "import sys; from pathlib import Path; from shared.server.common import make_deps; "
        "from jesse_mcp.server import build_server; from jesse_mcp.tools.prompts import strategy_names; "
        f"deps = make_deps('jesse-mcp', Path({str(tmp_path)!r})); build_server(deps, warmup=()); "
        "names = strategy_names(deps.extras.home, deps.config.load); "
        "print('trend_following' in names, *(m in sys.modules for m in ('jesse', 'sklearn', 'matplotlib')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=hang_guard(300)
    )
    assert out.stdout.split() == ["True", "False", "False", "False"]  # seconds of every server start otherwise


# --- matching, directly -------------------------------------------------------------------------------------------


def test_matching_ignores_case_and_separators_and_sorts_the_matches():
    got = match(["trend_following", "BTC-USDT", "btc-usd", "Breakout"], "B")
    assert got.values == ["Breakout", "btc-usd", "BTC-USDT"] and got.total == 3
    assert match(["trend_following"], "Trend F").values == ["trend_following"]


def test_matching_caps_the_values_at_100_and_counts_them_all():
    got = match([f"s{i:03}" for i in range(250)], "s")
    assert (len(got.values), got.total, got.hasMore, got.values[-1]) == (100, 250, True, "s099")


def test_a_list_keeps_what_was_typed_before_its_last_item_and_skips_items_already_listed():
    got = match_last_item(["BTC", "ETH", "ETC"], "btc,  E")
    assert got.values == ["btc,  ETC", "btc,  ETH"] and got.total == 2
    assert match_last_item(["BTC", "ETH"], "ETH,").values == ["ETH,BTC"]

"""Backtests through real MCP sessions, on real Jesse workers (the suite's one warm pool, `jesse_pool`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from mcp.shared.memory import create_connected_server_and_client_session as connect

from jesse_mcp.backtesting.workers import WorkerPool
from jesse_mcp.candles.ops import generate_synthetic
from jesse_mcp.server import build_server
from shared.config.profiles import PROFILE_TEMPLATES
from shared.market.candles import MINUTE_MS, CandleStore
from shared.server.common import make_deps
from shared.state import results as result_store
from tests.mcp_helpers import payload, text_of

START = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DAY = 86_400_000
pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.xdist_group("jesse-pool")]


@pytest.fixture
def pool(jesse_pool):
    return jesse_pool  # real workers, importing jesse.research, shared with the other modules that run Jesse


@pytest.fixture
def cold_pool(tmp_path):
    """Workers without Jesse's warm-up: a backtest spends far longer than 0.05 s importing Jesse, so it times out,
    and each replacement is ready in a moment instead of importing Jesse again."""
    p = WorkerPool(3, warmup=(), workdir=tmp_path / "jesse-work")
    p.attach()
    yield p
    p.detach()


@pytest.fixture(scope="module")
def bt_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("bt_home")
    generate_synthetic(CandleStore(home / "candles"), "BTC-USDT", START, START + 60 * DAY, seed=7)
    return home


@pytest.fixture
def server(bt_home, pool):
    deps = make_deps("jesse-mcp", bt_home)
    yield build_server(deps, pool=pool)
    deps.store.close()


async def call(server, tool: str, args: dict, **session):
    async with connect(server, **session) as client:
        return await client.call_tool(tool, args)


async def test_backtest_metrics_equal_a_direct_jesse_research_backtest_call(server, bt_home):
    result = payload(
        await call(server, "backtest", {"strategy": "trend_following", "risk_profile": "moderate", "days": 30})
    )
    req = result["request"]

    # the same run, built by hand and given to Jesse directly in this process
    from jesse.research import backtest as jesse_backtest

    from jesse_mcp.backtesting.strategies.trend_following import TrendFollowing

    warm_ms = req["warmup_candles"] * 60 * MINUTE_MS
    rows = np.array(
        CandleStore(bt_home / "candles").load("synthetic", "BTC-USDT", req["start_ms"] - warm_ms, req["end_ms"])
    )
    warm_rows = req["warmup_candles"] * 60
    ex, sym = "Binance Perpetual Futures", "BTC-USDT"
    direct = jesse_backtest(
        {
            "starting_balance": 10_000,
            "fee": 0.001,
            "type": "futures",
            "futures_leverage": 2,
            "futures_leverage_mode": "cross",
            "exchange": ex,
            "warm_up_candles": req["warmup_candles"],
        },
        [{"exchange": ex, "strategy": TrendFollowing, "symbol": sym, "timeframe": "1h"}],
        [],
        {f"{ex}-{sym}": {"exchange": ex, "symbol": sym, "candles": rows[warm_rows:]}},
        {f"{ex}-{sym}": {"exchange": ex, "symbol": sym, "candles": rows[:warm_rows]}},
        hyperparameters={
            "fast_period": 20,
            "slow_period": 50,
            "adx_period": 14,
            "adx_min": 20.0,
            "allow_short": 1,
            "_risk": {**PROFILE_TEMPLATES["moderate"], "max_correlation": 0.7, "emergency_stop": 0.25},
        },
    )["metrics"]
    assert direct["total"] > 10
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in direct.items()}
    assert result["jesse_metrics"] == clean
    perf = result["performance"]
    assert perf["net_profit_pct"] == direct["net_profit_percentage"]
    assert perf["sharpe"] == direct["sharpe_ratio"] and perf["sortino"] == direct["sortino_ratio"]
    assert perf["max_drawdown_pct"] == -direct["max_drawdown"]
    assert perf["win_rate_pct"] == direct["win_rate"] * 100
    assert perf["trades"] == direct["total"] and perf["annual_return_pct"] == direct["annual_return"]
    assert perf["profit_factor"] == direct["gross_profit"] / -direct["gross_loss"]


async def test_conservative_sizing_stays_inside_its_limits_and_aggressive_sizes_larger(server):
    sizes = {}
    for profile in ("conservative", "aggressive"):
        made = payload(await call(server, "backtest", {"strategy": "breakout", "risk_profile": profile, "days": 40}))
        stored = payload(
            await call(server, "get_backtest", {"id": made["id"], "include_trades": True, "trades_limit": 1000})
        )
        trades = stored["trades"]
        assert len(trades) == made["performance"]["trades"] > 5
        share = [t["size_quote"] / t["equity_before_quote"] for t in trades]
        sizes[profile] = max(share)
        limits = PROFILE_TEMPLATES[profile]
        assert max(share) <= limits["max_position_size"] * (1 + 1e-9)
        assert made["request"]["leverage"] == limits["max_leverage"]
        # risk per trade: no realised loss above max_portfolio_risk of the equity at entry
        worst_loss = max(-t["pnl_quote"] / t["equity_before_quote"] for t in trades)
        assert 0 < worst_loss <= limits["max_portfolio_risk"]
        assert made["risk_adherence"]["largest_loss_pct_of_equity"] == pytest.approx(worst_loss * 100)
        assert made["risk_adherence"]["violations"] == []
    assert sizes["conservative"] == pytest.approx(0.05, rel=1e-6)
    assert sizes["aggressive"] == pytest.approx(0.20, rel=1e-6)
    assert sizes["aggressive"] > 3 * sizes["conservative"]


async def test_results_on_synthetic_data_say_so_and_are_stored_with_provenance(server):
    made = payload(await call(server, "backtest", {"strategy": "momentum", "days": 20, "equity_image": True}))
    assert made["synthetic"] is True and made["data"]["synthetic"] is True
    assert made["notes"][0].startswith("SYNTHETIC DATA")
    assert made["data"]["sources"] == ["synthetic(seed=7)"] and made["data"]["gaps_in_range"] == 0
    assert made["image"] == "attached"
    tail = made["tail_risk"]  # the moderate profile's 95 %, on about 20 daily returns
    assert tail["confidence"] == 0.95 and 18 <= tail["daily_returns"] <= 21 and len(tail["estimates"]) == 3
    listed = payload(await call(server, "list_backtests", {"strategy": "momentum"}))
    assert listed["results"][0]["id"] == made["id"] and listed["results"][0]["synthetic"] is True


async def test_equity_image_comes_back_as_png_content(server):
    result = await call(server, "backtest", {"strategy": "mean_reversion", "days": 10, "equity_image": True})
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == 1 and images[0].mimeType == "image/png"
    import base64

    assert base64.b64decode(images[0].data)[:8] == b"\x89PNG\r\n\x1a\n"


async def test_unknown_strategy_symbol_and_timeframe_list_the_valid_options(server):
    strategy = await call(server, "backtest", {"strategy": "nope"})
    symbol = await call(server, "backtest", {"strategy": "momentum", "symbol": "ETH-USDT"})
    timeframe = await call(server, "backtest", {"strategy": "momentum", "timeframe": "2h30"})
    assert strategy.isError and "trend_following, mean_reversion, breakout, momentum" in text_of(strategy)
    assert symbol.isError and "Stored markets: synthetic:BTC-USDT" in text_of(symbol)
    assert "import_candles" in text_of(symbol)
    assert timeframe.isError and "'1m', '3m'" in text_of(timeframe) and "'1D'" in text_of(timeframe)


async def test_a_range_without_data_names_the_stored_range_and_the_import_tool(server):
    result = await call(server, "backtest", {"strategy": "momentum", "start": "2023-01-01", "end": "2023-03-01"})
    text = text_of(result)
    assert result.isError
    assert "stored: 2024-01-01T00:00:00Z to 2024-03-01T00:00:00Z" in text
    assert "import_candles(symbol='BTC-USDT', start='2023-01-01', end='2023-03-01')" in text


async def test_bad_hyperparameters_and_leverage_say_what_is_allowed(server):
    unknown = await call(server, "backtest", {"strategy": "trend_following", "hyperparameters": {"speed": 3}})
    low = await call(server, "backtest", {"strategy": "trend_following", "hyperparameters": {"fast_period": 1}})
    order = await call(
        server, "backtest", {"strategy": "trend_following", "hyperparameters": {"fast_period": 60, "slow_period": 50}}
    )
    lev = await call(server, "backtest", {"strategy": "breakout", "risk_profile": "conservative", "leverage": 3})
    assert "its hyperparameters: fast_period, slow_period, adx_period, adx_min, allow_short" in text_of(unknown)
    assert "fast_period must be between 3 and 200, got 1" in text_of(low)
    assert "fast_period (60) must be smaller than slow_period (50)" in text_of(order)
    assert "leverage 3 is above the conservative profile's max_leverage 1" in text_of(lev)


async def test_a_timeout_stops_the_worker_says_so_and_stores_nothing(bt_home, cold_pool):
    deps = make_deps("jesse-mcp", bt_home)
    server = build_server(deps, pool=cold_pool)
    before = result_store.listed(deps.store)[1]

    def timeout(seconds: float):
        return lambda data: {**data, "backtest_config": {**data["backtest_config"], "timeout_s": seconds}}

    deps.config.update(timeout(0.05))
    try:
        result = await call(server, "backtest", {"strategy": "trend_following", "days": 59})
        several = await call(server, "compare_risk_profiles", {"strategy": "trend_following", "days": 59})
    finally:
        deps.config.update(timeout(600))
    for r in (result, several):  # parallel runs report the timeout itself, not an exception group
        assert r.isError
        assert "took longer than its limit of 0.05 s (backtest_config.timeout_s per backtest)" in text_of(r)
        assert "worker was stopped and replaced; nothing was stored" in text_of(r)
    assert result_store.listed(deps.store)[1] == before
    journal = deps.store.journal_query(limit=1, tool="backtest")[0]
    assert journal.outcome == "error"
    deps.store.close()


async def test_progress_is_reported_while_a_backtest_runs(server):
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async with connect(server) as client:
        result = await client.call_tool(
            "backtest", {"strategy": "trend_following", "days": 30}, progress_callback=on_progress
        )
    assert not result.isError
    assert seen and seen[-1][0] == seen[-1][1] == 30 * DAY and seen[-1][2].endswith("done")


async def test_compare_risk_profiles_runs_all_three_and_tabulates_them(server):
    report = payload(await call(server, "compare_risk_profiles", {"strategy": "breakout", "days": 30}))
    profiles = [r["request"]["risk_profile"] for r in report["results"]]
    assert profiles == ["conservative", "moderate", "aggressive"]
    largest = [r["risk_adherence"]["largest_position_pct_of_equity"] for r in report["results"]]
    assert largest == sorted(largest) and largest[0] == pytest.approx(5.0)
    assert report["table"].splitlines()[0] == "| Metric | conservative | moderate | aggressive |"
    assert report["synthetic"] is True


def _spec(bt_home, strategy: str, profile: str = "aggressive", **risk) -> dict:
    """A run spec for the engine, run in this process (no pool): days 20-50 of the synthetic data, 1h."""
    from jesse_mcp.backtesting.catalog import BUILTIN

    s = BUILTIN[strategy]
    hp = s.resolve_hyperparameters(None)
    warm = s.warmup_candles(hp)
    return {
        "store_root": str(bt_home / "candles"),
        "exchange": "synthetic",
        "symbol": "BTC-USDT",
        "timeframe": "1h",
        "start_ms": START + 20 * DAY,
        "end_ms": START + 50 * DAY,
        "warmup_candles": warm,
        "warmup_minutes": warm * 60,
        "strategy": {"name": strategy, "builtin": True, "module": s.module, "class_name": s.class_name},
        "hyperparameters": hp,
        "risk": {**PROFILE_TEMPLATES[profile], "max_correlation": 0.7, "emergency_stop": 0.25, **risk},
        "starting_balance": 10_000,
        "fee": 0.001,
        "leverage": int(PROFILE_TEMPLATES[profile]["max_leverage"]),
    }


def test_no_new_entries_once_drawdown_reaches_the_profile_limit(bt_home):
    from jesse_mcp.backtesting import engine

    free = engine.run_backtest(_spec(bt_home, "trend_following"))
    halted = engine.run_backtest(_spec(bt_home, "trend_following", max_drawdown=0.01))
    stop = halted["entries_halted_at"]
    assert free["entries_halted_at"] is None and stop is not None
    assert len(halted["trades"]) < len(free["trades"])
    assert all(t[1] <= stop for t in halted["trades"])  # nothing opened after the halt
    equity = 10_000 + sum(t[8] for t in halted["trades"] if t[2] <= stop)
    peak = 10_000 + max(np.cumsum([0] + [t[8] for t in halted["trades"] if t[2] <= stop]))
    assert equity <= peak * 0.99 + 1e-6  # the halt came when realised equity was 1 % below its peak


def test_progress_is_sampled_from_the_simulation_clock_while_jesse_runs(bt_home, monkeypatch):
    from jesse_mcp.backtesting import engine

    seen = []
    monkeypatch.setattr(engine, "PROGRESS_EVERY_S", 0.01)
    monkeypatch.setattr(engine, "report_progress", lambda done, total, message: seen.append((done, total)))
    engine.run_backtest(_spec(bt_home, "momentum"))
    assert len(seen) >= 3
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == seen[-1][1] == 30 * DAY and 0 < done[0] < done[-1]


@pytest.mark.parametrize("strategy", ["trend_following", "mean_reversion", "breakout", "momentum"])
def test_fast_mode_gives_the_same_trades_and_trade_metrics_as_the_normal_mode(bt_home, strategy):
    from jesse_mcp.backtesting import engine

    spec = _spec(bt_home, strategy)
    normal = engine.run_backtest({**spec, "fast_mode": False})
    fast = engine.run_backtest({**spec, "fast_mode": True})
    assert len(normal["trades"]) > 3
    assert fast["trades"] == normal["trades"]  # where Monte Carlo uses fast mode, this is all it reads
    for key in ("total", "net_profit_percentage", "win_rate", "expectancy", "gross_profit", "gross_loss", "fee"):
        assert fast["metrics"][key] == normal["metrics"][key], key


# --- stress tests, Monte Carlo, walk-forward --------------------------------------------------------------------
async def _backtest_id(server, **args) -> str:
    return payload(await call(server, "backtest", {"strategy": "trend_following", "days": 40, **args}))["id"]


async def test_stress_test_applies_each_scenario_and_reports_limit_breaches(server):
    bid = await _backtest_id(server, risk_profile="aggressive", hyperparameters={"adx_min": 0})
    report = payload(await call(server, "stress_test", {"backtest_id": bid}))
    by_name = {s["scenario"]: s for s in report["scenarios"]}
    assert list(by_name) == ["flash_crash", "volatility_x3", "gap_down", "crash_2020"]
    assert report["baseline"]["net_profit_pct"] is not None and report["synthetic"] is True
    crash = by_name["flash_crash"]
    assert crash["applied"]["worst_factor"] == pytest.approx(0.70) and crash["at"] is not None
    assert by_name["gap_down"]["applied"]["parameters"] == {"gap": 0.15}
    for s in by_name.values():
        assert s["skipped"] is None and isinstance(s["max_drawdown_breached"], bool)
        assert s["daily_cvar_pct"] >= s["daily_var_pct"]  # historical, at the aggressive profile's 90 %
        worst = max(s["max_drawdown_pct"], s["max_drawdown_intraday_pct"])
        assert s["emergency_stop_breached"] == (worst >= 25.0) and s["max_drawdown_breached"] == (worst > 25.0)
    # shocks change the outcome: at least one scenario differs from the baseline
    assert any(s["net_profit_pct"] != report["baseline"]["net_profit_pct"] for s in by_name.values())
    assert "| baseline |" in report["table"] and report["verdict"]
    stored = payload(await call(server, "get_backtest", {"id": report["id"]}))
    assert stored["record"]["kind"] == "stress_test"


async def test_a_stress_scenario_that_does_not_fit_the_range_is_skipped_with_the_reason(server):
    bid = await _backtest_id(server, days=5)
    report = payload(await call(server, "stress_test", {"backtest_id": bid, "scenarios": ["crash_2020", "gap_down"]}))
    crash, gap = report["scenarios"]
    assert crash["skipped"] == "needs 7.0 days of the range, which has 5.0" and gap["skipped"] is None


async def test_stress_start_outside_the_range_is_refused_per_scenario(server):
    bid = await _backtest_id(server, days=10)
    report = payload(
        await call(server, "stress_test", {"backtest_id": bid, "scenarios": ["flash_crash"], "at": "2020-01-01"})
    )
    assert "the start point 2020-01-01T00:00:00Z must lie between" in report["scenarios"][0]["skipped"]


async def test_monte_carlo_gives_distributions_and_is_reproducible(server):
    bid = await _backtest_id(server)
    args = {"backtest_id": bid, "candle_simulations": 4, "trade_simulations": 500, "seed": 3}
    first = payload(await call(server, "monte_carlo", args))
    again = payload(await call(server, "monte_carlo", args))
    order, candles = first["parts"]
    assert order["method"] == "trade_order" and candles["method"] == "candles"
    # shuffling keeps the total: every path ends at the backtest's own return
    assert order["return_pct"]["p5"] == pytest.approx(order["original_return_pct"])
    assert order["return_pct"]["p95"] == pytest.approx(order["original_return_pct"])
    assert order["max_drawdown_pct"]["p5"] <= order["max_drawdown_pct"]["p95"]
    assert candles["simulations"] == 4 and candles["failed_runs"] == 0
    assert candles["return_pct"]["p5"] < candles["return_pct"]["p95"]  # different candles, different outcomes
    assert [p["return_pct"] for p in again["parts"]] == [p["return_pct"] for p in first["parts"]]
    assert first["drawdown_limit_pct"] == 15.0  # the moderate profile's max_drawdown
    tail = candles["tail_risk"]  # every path's daily returns: about 4 x 40
    assert tail["confidence"] == 0.95 and 4 * 38 <= tail["daily_returns"] <= 4 * 41
    assert all(e["cvar_pct"] >= e["var_pct"] for e in tail["estimates"]) and order["tail_risk"] is None


async def test_monte_carlo_on_trades_needs_trades(server):
    bid = payload(
        await call(
            server,
            "backtest",
            {"strategy": "mean_reversion", "days": 3, "hyperparameters": {"rsi_low": 1, "rsi_high": 99}},
        )
    )["id"]
    result = await call(server, "monte_carlo", {"backtest_id": bid, "methods": ["trade_bootstrap"]})
    assert result.isError and "needs at least 2 closed trades" in text_of(result)


async def test_walk_forward_validation_reports_folds_regimes_and_deflated_sharpe(server):
    bid = await _backtest_id(server, days=50)
    report = payload(await call(server, "validate_strategy", {"backtest_id": bid, "folds": 3}))
    assert len(report["folds"]) == 3 and report["trials_per_fold"] == 6 and report["trials_total"] == 18
    for fold in report["folds"]:
        assert fold["in_sample"].split(" .. ")[1] == fold["out_of_sample"].split(" .. ")[0]
        assert fold["out_of_sample_regimes"]
        assert fold["chosen_hyperparameters"]["fast_period"] in (10, 20, 30)
    dsr = report["deflated_sharpe"]
    assert dsr["trials_per_selection"] == 6 and len(dsr["per_fold_in_sample"]) == 3
    assert [f["in_sample_deflated_sharpe"] for f in report["folds"]] == dsr["per_fold_in_sample"]
    assert all(d is None or 0 <= d <= 1 for d in dsr["per_fold_in_sample"])
    assert dsr["out_of_sample_days"] >= 3 * 11  # three 12.5-day windows: every day counts, with or without trades
    assert 0 <= dsr["out_of_sample_probabilistic_sharpe"] <= 1
    assert report["regimes"] and report["verdict"].startswith("Mean deflated Sharpe of the in-sample selections")


async def test_walk_forward_refuses_windows_that_are_too_short(server):
    bid = await _backtest_id(server, days=10)
    result = await call(server, "validate_strategy", {"backtest_id": bid, "folds": 4})
    assert result.isError and "each needs at least 3 days. Use fewer folds" in text_of(result)


async def test_analysis_tools_need_the_id_of_a_stored_backtest(server):
    missing = await call(server, "stress_test", {"backtest_id": "bt_000000000000"})
    assert missing.isError and "No stored result with id 'bt_000000000000'" in text_of(missing)


# --- user strategies, resources, prompt ----------------------------------------------------------------------
USER_STRATEGY = '''
"""Buys every fourth candle and holds for two; sized by the risk profile."""
from jesse_mcp.backtesting.strategies.base import RiskManagedStrategy


class EveryFourth(RiskManagedStrategy):
    def hyperparameters(self):
        return [{"name": "every", "type": int, "min": 2, "max": 50, "default": 4}]

    def long_signal(self):
        return self.index % int(self.hp["every"]) == 0

    def exit_long(self):
        return self.index % int(self.hp["every"]) == 2
'''


async def test_user_strategies_load_by_name_and_broken_files_are_explained(server, bt_home):
    folder = bt_home / "strategies"
    folder.mkdir(exist_ok=True)
    (folder / "every_fourth.py").write_text(USER_STRATEGY)
    (folder / "not_a_strategy.py").write_text("x = 1\n")
    listed = payload(await call(server, "list_strategies", {}))
    by_name = {s["name"]: s for s in listed["strategies"]}
    assert by_name["every_fourth"]["risk_managed"] is True and not by_name["every_fourth"]["builtin"]
    assert by_name["every_fourth"]["hyperparameters"][0]["name"] == "every"
    assert "does not define a Jesse Strategy" in by_name["not_a_strategy"]["error"]
    made = payload(
        await call(
            server,
            "backtest",
            {"strategy": "every_fourth", "days": 10, "risk_profile": "conservative", "hyperparameters": {"every": 6}},
        )
    )
    assert made["performance"]["trades"] > 5 and made["request"]["hyperparameters"] == {"every": 6}
    assert made["risk_adherence"]["largest_position_pct_of_equity"] == pytest.approx(5.0)
    (folder / "every_fourth.py").write_text(USER_STRATEGY + "\n# edited\n")
    changed = await call(server, "stress_test", {"backtest_id": made["id"]})
    assert changed.isError and "The code of strategy every_fourth changed since backtest" in text_of(changed)
    broken = await call(server, "backtest", {"strategy": "not_a_strategy"})
    assert broken.isError and "add a class that subclasses jesse.strategies.Strategy" in text_of(broken)


async def test_strategy_and_backtest_resources_and_the_workflow_prompt(server):
    bid = await _backtest_id(server, days=5)
    async with connect(server) as client:
        templates = {t.uriTemplate for t in (await client.list_resource_templates()).resourceTemplates}
        strategy = await client.read_resource("strategies://breakout")
        stored = await client.read_resource(f"backtests://{bid}")
        prompt = await client.get_prompt("backtest_workflow", {"strategy": "momentum", "risk_profile": "aggressive"})
    assert {"strategies://{name}", "backtests://{id}"} <= templates
    import json

    body = json.loads(strategy.contents[0].text)
    assert "class Breakout(RiskManagedStrategy)" in body["source"]
    assert [p["name"] for p in body["strategy"]["hyperparameters"]][:2] == ["channel_period", "exit_period"]
    assert json.loads(stored.contents[0].text)["id"] == bid
    assert "backtest(strategy='momentum', risk_profile='aggressive'" in prompt.messages[0].content.text


# --- portfolio backtests through the tools --------------------------------------------------------------------
@pytest.fixture(scope="module")
def pf_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("pf_home")
    for i, symbol in enumerate(["BTC-USDT", "ETH-USDT", "SOL-USDT"]):
        generate_synthetic(CandleStore(home / "candles"), symbol, START, START + 40 * DAY, seed=21 + i)
    return home


@pytest.fixture
def pf_server(pf_home, pool):
    deps = make_deps("jesse-mcp", pf_home)
    yield build_server(deps, pool=pool)
    deps.store.close()


async def test_a_portfolio_backtest_and_its_stress_test_monte_carlo_and_trades_through_the_tools(pf_server):
    args = {"strategy": "momentum", "days": 20, "markets": ["BTC-USDT", "ETH-USDT"], "data_markets": ["SOL-USDT"]}
    result = payload(await call(pf_server, "backtest", {**args, "risk_profile": "aggressive"}))
    p = result["portfolio"]
    assert result["request"]["markets"] == ["BTC-USDT", "ETH-USDT"] and p["data_markets"] == ["SOL-USDT"]
    assert [c["market"] for c in p["contributions"]] == ["BTC-USDT", "ETH-USDT"]
    assert result["data"]["markets"] == ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
    page = payload(await call(pf_server, "get_backtest", {"id": result["id"], "include_trades": True}))
    assert {t["market"] for t in page["trades"]} <= {"BTC-USDT", "ETH-USDT"} and page["trades"]
    stress = payload(await call(pf_server, "stress_test", {"backtest_id": result["id"], "scenarios": ["gap_down"]}))
    assert stress["baseline"]["net_profit_pct"] == pytest.approx(result["performance"]["net_profit_pct"])
    assert stress["scenarios"][0]["skipped"] is None
    mc = {"backtest_id": result["id"], "methods": ["candles"], "candle_simulations": 2, "seed": 1}
    assert payload(await call(pf_server, "monte_carlo", mc))["parts"][0]["failed_runs"] == 0
    bad = await call(pf_server, "backtest", {**args, "symbol": "BTC-USDT"})
    assert bad.isError and "either symbol (one market) or markets" in text_of(bad)
    grid = {"strategies": ["momentum"], "symbols": ["BTC-USDT", "ETH-USDT"], "portfolio": True, "days": 10}
    report = payload(await call(pf_server, "backtest_batch", {**grid, "risk_profiles": ["moderate", "aggressive"]}))
    assert report["runs"] == 2 and {r["symbol"] for r in report["rows"]} == {"BTC-USDT+ETH-USDT"}
    stored = payload(await call(pf_server, "get_backtest", {"id": report["rows"][0]["id"]}))
    assert stored["record"]["request"]["markets"] == ["BTC-USDT", "ETH-USDT"]

"""backtest_batch: a grid of runs on the worker pool, ranked in one table, each run stored, failures as rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp.shared.memory import create_connected_server_and_client_session as connect

from jesse_mcp.backtesting.batch import BatchRow, batch_table, sort_rows
from jesse_mcp.candles.ops import generate_synthetic
from jesse_mcp.server import build_server
from shared.market.candles import CandleStore
from shared.server.common import make_deps
from shared.state import results as result_store
from tests.mcp_helpers import payload, text_of

START = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DAY = 86_400_000
pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def batch_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("batch_home")
    generate_synthetic(CandleStore(home / "candles"), "BTC-USDT", START, START + 20 * DAY, seed=11)
    return home


@pytest.fixture
def jesse_server(batch_home, jesse_pool):
    deps = make_deps("jesse-mcp", batch_home)
    yield build_server(deps, pool=jesse_pool)
    deps.store.close()


@pytest.fixture
def cold_server(batch_home):
    """Workers that never import Jesse: for calls refused before any run."""
    deps = make_deps("jesse-mcp", batch_home)
    yield build_server(deps, warmup=()), deps
    deps.store.close()


def _row(n: int, sharpe: float | None, drawdown: float | None, error: str | None = None) -> BatchRow:
    return BatchRow(
        rank=None,
        id=None if error else f"bt_{n}",
        strategy=f"s{n}",
        exchange="synthetic",
        symbol="BTC-USDT",
        timeframe="1h",
        risk_profile="moderate",
        sharpe=sharpe,
        max_drawdown_pct=drawdown,
        error=error,
    )


def test_rows_sort_best_first_with_missing_numbers_then_failures_last():
    rows = [_row(1, 0.5, 9.0), _row(2, None, 1.0), _row(3, None, None, "no candles"), _row(4, 2.0, 4.0)]
    by_sharpe = sort_rows(rows, "sharpe")
    assert [r.strategy for r in by_sharpe] == ["s4", "s1", "s2", "s3"]
    assert [r.rank for r in by_sharpe] == [1, 2, 3, None]
    by_drawdown = sort_rows(rows, "max_drawdown_pct")  # smaller drawdown is better
    assert [r.strategy for r in by_drawdown] == ["s2", "s4", "s1", "s3"]


def test_ties_keep_the_grid_order_and_the_table_shows_ids_and_errors():
    rows = sort_rows([_row(1, 1.0, 2.0), _row(2, 1.0, 2.0), _row(3, None, None, "no | candles")], "sharpe")
    assert [r.strategy for r in rows] == ["s1", "s2", "s3"]
    lines = batch_table(rows).splitlines()
    assert lines[0].startswith("| # | Strategy | Market | TF | Profile | Net profit (%) |")
    assert lines[2].startswith("| 1 | s1 | synthetic:BTC-USDT | 1h | moderate |") and lines[2].endswith("| bt_1 |")
    assert lines[4].endswith("| failed: no / candles |")  # a pipe in an error cannot break the table
    assert all(line.count("|") == lines[0].count("|") for line in lines)


async def test_a_grid_above_the_limit_is_refused_naming_the_count_and_the_limit(cold_server):
    server, deps = cold_server
    before = result_store.listed(deps.store)[1]
    args = {"symbols": [f"C{i}-USDT" for i in range(7)], "timeframes": ["1h", "4h"], "risk_profiles": ["moderate"]}
    async with connect(server) as client:
        result = await client.call_tool("backtest_batch", args)
    assert result.isError
    assert (
        "This batch is 56 runs (4 strategies x 7 markets x 2 timeframes x 1 risk profiles), above the limit of 48 "
        "runs per call (backtest_config.max_batch_runs)" in text_of(result)
    )
    assert result_store.listed(deps.store)[1] == before


async def test_hyperparameters_are_refused_for_a_batch_of_several_strategies(cold_server):
    server, _ = cold_server
    args = {"strategies": ["trend_following", "breakout"], "hyperparameters": {"fast_period": 10}}
    async with connect(server) as client:
        result = await client.call_tool("backtest_batch", args)
    assert result.isError
    assert "hyperparameters apply to one strategy, and this batch has 2" in text_of(result)


@pytest.mark.slow
@pytest.mark.xdist_group("jesse-pool")
async def test_batch_runs_equal_single_backtests_of_the_same_settings(jesse_server):
    grid = {"strategies": ["trend_following", "breakout"], "risk_profiles": ["conservative", "aggressive"]}
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async with connect(jesse_server) as client:
        report = payload(
            await client.call_tool(
                "backtest_batch", {**grid, "symbols": ["BTC-USDT"], "days": 8}, progress_callback=on_progress
            )
        )
        assert (report["runs"], report["succeeded"], report["failed"]) == (4, 4, 0)
        for row in report["rows"]:
            single = payload(
                await client.call_tool(
                    "backtest",
                    {"strategy": row["strategy"], "risk_profile": row["risk_profile"], "symbol": "BTC-USDT", "days": 8},
                )
            )
            stored = payload(await client.call_tool("get_backtest", {"id": row["id"]}))["record"]
            for part in ("request", "performance", "risk_adherence", "jesse_metrics"):
                assert stored[part] == single[part], (row["strategy"], row["risk_profile"], part)
            assert (row["sharpe"], row["trades"]) == (single["performance"]["sharpe"], single["performance"]["trades"])
    sharpes = [r["sharpe"] if r["sharpe"] is not None else float("-inf") for r in report["rows"]]
    assert sharpes == sorted(sharpes, reverse=True) and [r["rank"] for r in report["rows"]] == [1, 2, 3, 4]
    assert {(r["strategy"], r["risk_profile"]) for r in report["rows"]} == {
        (s, p) for s in grid["strategies"] for p in grid["risk_profiles"]
    }
    assert [(p, t) for p, t, _ in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]  # one notification per finished run
    assert seen[-1][2].startswith("4/4 runs done: ")
    assert report["synthetic"] is True and sum(r["trades"] for r in report["rows"]) > 0


async def test_a_portfolio_batch_needs_two_symbols_and_an_unstored_one_fails_its_row(cold_server):
    server, _ = cold_server
    args = {"strategies": ["momentum"], "symbols": ["BTC-USDT"], "portfolio": True}
    async with connect(server) as client:
        one = await client.call_tool("backtest_batch", args)
        report = payload(await client.call_tool("backtest_batch", {**args, "symbols": ["BTC-USDT", "DOGE-USDT"]}))
    assert one.isError and "name at least 2 symbols" in one.content[0].text
    (row,) = report["rows"]
    assert row["symbol"] == "BTC-USDT+DOGE-USDT" and row["error"].startswith("No candles stored for DOGE-USDT")


@pytest.mark.slow
@pytest.mark.xdist_group("jesse-pool")
async def test_a_market_without_candles_is_a_failed_row_not_a_failed_call(jesse_server, batch_home):
    args = {"strategies": ["momentum"], "symbols": ["DOGE-USDT", "BTC-USDT"], "days": 5, "sort_by": "trades"}
    async with connect(jesse_server) as client:
        report = payload(await client.call_tool("backtest_batch", args))
    assert (report["runs"], report["succeeded"], report["failed"]) == (2, 1, 1)
    good, bad = report["rows"]
    assert good["symbol"] == "BTC-USDT" and good["id"].startswith("bt_") and good["error"] is None
    assert bad["symbol"] == "DOGE-USDT" and bad["id"] is None and bad["rank"] is None
    assert bad["error"].startswith("No candles stored for DOGE-USDT. Stored markets: synthetic:BTC-USDT.")
    assert (
        report["table"].splitlines()[-1].endswith("|") and "failed: No candles stored for DOGE-USDT" in report["table"]
    )
    deps = make_deps("jesse-mcp", batch_home)
    try:
        assert result_store.get(deps.store, good["id"]).record["request"]["symbol"] == "BTC-USDT"
    finally:
        deps.store.close()

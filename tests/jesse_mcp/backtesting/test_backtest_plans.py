"""Planning a backtest (no Jesse needed): ranges, warm-up, gaps, strategies, and risk adherence from trades."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from jesse_mcp.backtesting.catalog import BUILTIN, find_user_strategy_files
from jesse_mcp.backtesting.plans import BacktestError, pick_market, plan_range
from jesse_mcp.backtesting.results import RunDrawdown, risk_adherence
from jesse_mcp.backtesting.trade_rows import equity_before
from shared.config.profiles import PROFILE_TEMPLATES
from shared.errors import InvalidArgumentsError
from shared.market.candles import MINUTE_MS, CandleStore, Gap, MarketInfo, iso

START = 1_704_067_200_000  # 2024-01-01T00:00:00Z
HOUR = 60 * MINUTE_MS


def market(days: int = 30, gaps: list[Gap] | None = None, first: str = "2024-01-01T00:00:00Z") -> MarketInfo:
    last_ms = START + days * 24 * HOUR - MINUTE_MS
    return MarketInfo(
        exchange="binance",
        symbol="BTC-USDT",
        rows=days * 1440,
        first=first,
        last=iso(last_ms),
        synthetic=False,
        sources=["csv:x.csv"],
        gaps=gaps or [],
    )


def test_no_range_means_all_stored_data_after_the_warm_up():
    lo, hi, notes = plan_range(market(), "1h", 100, None, None, None)
    assert lo == START + 100 * HOUR and hi == START + 30 * 24 * HOUR and notes == []


def test_a_start_inside_the_warm_up_is_moved_and_the_move_is_explained():
    lo, _, notes = plan_range(market(), "4h", 60, date(2024, 1, 2), None, None)
    assert lo == START + 60 * 4 * HOUR
    assert notes and "Start moved from 2024-01-02T00:00:00Z to 2024-01-11T00:00:00Z" in notes[0]
    assert "60 warm-up candles of 4h" in notes[0]


def test_ranges_are_whole_candles_of_the_timeframe():
    lo, hi, _ = plan_range(market(), "4h", 10, datetime(2024, 1, 5, 1, 30), datetime(2024, 1, 9, 23, 0), None)
    assert lo == START + (4 * 24 + 4) * HOUR and hi == START + (8 * 24 + 20) * HOUR  # 04:00 and 20:00
    assert (hi - lo) % (4 * HOUR) == 0


def test_days_count_back_from_the_end_of_the_stored_data():
    lo, hi, _ = plan_range(market(), "1h", 50, None, None, 7)
    assert hi == START + 30 * 24 * HOUR and lo == hi - 7 * 24 * HOUR


def test_a_range_outside_the_data_names_the_stored_range_and_the_import_tool():
    with pytest.raises(BacktestError) as e:
        plan_range(market(), "1h", 50, date(2023, 5, 1), date(2023, 6, 1), None)
    assert "stored: 2024-01-01T00:00:00Z to 2024-01-31T00:00:00Z" in str(e.value)
    assert "import_candles(symbol='BTC-USDT', start='2023-05-01', end='2023-06-01')" in str(e.value)


def test_too_little_data_for_the_warm_up_says_how_much_is_needed():
    with pytest.raises(BacktestError, match=r"needs about 34\.0 days"):
        plan_range(market(days=20), "1D", 32, None, None, None)


def test_gaps_inside_the_run_are_refused_with_their_ranges_and_the_fill_tool():
    gap = Gap(first_missing="2024-01-20T10:00:00Z", last_missing="2024-01-20T10:04:00Z", missing_minutes=5)
    with pytest.raises(BacktestError) as e:
        plan_range(market(gaps=[gap]), "1h", 50, None, None, None)
    assert "2024-01-20T10:00:00Z .. 2024-01-20T10:04:00Z (5 min)" in str(e.value)
    assert "fill_candle_gaps" in str(e.value)
    lo, _, _ = plan_range(market(gaps=[gap]), "1h", 50, date(2024, 1, 24), None, None)  # after the gap: fine
    assert lo - 50 * HOUR > START + (19 * 24 + 10) * HOUR


def test_market_choice_lists_what_is_stored(tmp_path):
    store = CandleStore(tmp_path)
    with pytest.raises(BacktestError, match="No candles are stored yet"):
        pick_market(store, None, None)


def test_hyperparameters_are_checked_against_type_range_and_each_other():
    tf = BUILTIN["trend_following"]
    assert tf.resolve_hyperparameters({"fast_period": 10})["fast_period"] == 10
    with pytest.raises(InvalidArgumentsError, match=r"must be a whole number, got 10\.5"):
        tf.resolve_hyperparameters({"fast_period": 10.5})
    with pytest.raises(InvalidArgumentsError, match="fast_period must be between 3 and 200, got 500"):
        tf.resolve_hyperparameters({"fast_period": 500})
    with pytest.raises(InvalidArgumentsError, match=r"rsi_low \(50\) must be smaller than rsi_high \(50\)"):
        BUILTIN["mean_reversion"].resolve_hyperparameters({"rsi_low": 50, "rsi_high": 50})
    with pytest.raises(InvalidArgumentsError, match=r"exit_period \(30\) must be at most channel_period \(20\)"):
        BUILTIN["breakout"].resolve_hyperparameters({"exit_period": 30})


def test_warm_up_follows_the_longest_period_and_is_never_zero():
    tf = BUILTIN["trend_following"]
    assert tf.warmup_candles(tf.resolve_hyperparameters(None)) == 200
    assert tf.warmup_candles(tf.resolve_hyperparameters({"fast_period": 3, "slow_period": 5})) == 60
    assert BUILTIN["momentum"].warmup_candles(BUILTIN["momentum"].resolve_hyperparameters(None)) == 400


def test_user_strategy_files_are_found_by_name(tmp_path):
    folder = tmp_path / "strategies"
    (folder / "pkg_style").mkdir(parents=True)
    (folder / "pkg_style" / "__init__.py").write_text("")
    (folder / "simple.py").write_text("")
    (folder / "_private.py").write_text("")
    (folder / "notes.txt").write_text("")
    assert sorted(find_user_strategy_files(tmp_path)) == ["pkg_style", "simple"]


# trades: [type, opened_at, closed_at, entry, exit, qty, size, fee, pnl]
def trade(opened, closed, size, pnl):
    return ["long", opened, closed, 100.0, 101.0, size / 100, size, 0.1, pnl]


def test_equity_at_entry_adds_every_trade_closed_before():
    trades = [trade(0, 10, 500, 100.0), trade(20, 30, 500, -50.0), trade(40, 50, 500, 10.0)]
    assert equity_before(trades, 10_000) == [10_000, 10_100, 10_050]


def test_risk_adherence_finds_oversized_trades_large_losses_and_drawdown_breaches():
    settings = {**PROFILE_TEMPLATES["conservative"], "max_correlation": 0.7, "emergency_stop": 0.25}
    ok = risk_adherence([trade(0, 10, 500, -20.0)], 10_000, settings, True, RunDrawdown(3.0))
    assert ok.violations == [] and ok.largest_position_pct_of_equity == pytest.approx(5.0)
    assert ok.largest_planned_risk_pct_of_equity == pytest.approx(0.075) and ok.drawdown_within_profile
    bad = risk_adherence(
        [trade(0, 10, 800, -150.0)], 10_000, settings, False, RunDrawdown(26.0, entries_halted_at=START)
    )
    text = " ".join(bad.violations)
    assert "above max_position_size: largest 8.00 % of equity (limit 5 %)" in text
    assert "lost 1.50 % of equity" in text and "went past the profile's max_drawdown 10 %" in text
    assert bad.emergency_stop_breached and bad.entries_halted_at == "2024-01-01T00:00:00Z"
    assert bad.largest_planned_risk_pct_of_equity is None  # not risk-managed: no planned stop to report


def test_configured_hyperparameters_are_the_default_and_call_arguments_override_them(tmp_path):
    from jesse_mcp.backtesting.plans import PlanRequest, build_plan
    from jesse_mcp.candles.ops import generate_synthetic
    from shared.config.models import StrategyConfig, TradingConfig

    store = CandleStore(tmp_path)
    generate_synthetic(store, "BTC-USDT", START, START + 20 * 24 * HOUR, seed=1)
    cfg = TradingConfig(strategies={"trend_following": StrategyConfig(custom_params={"fast_period": 12})})

    def plan(hyperparameters):
        req = PlanRequest(timeframe="1h", hyperparameters=hyperparameters)
        return build_plan(cfg=cfg, candles=store, strategy=BUILTIN["trend_following"], req=req).request.hyperparameters

    assert plan(None)["fast_period"] == 12 and plan(None)["slow_period"] == 50
    assert plan({"fast_period": 15})["fast_period"] == 15

"""Stage promotion on stored evidence, demotion, the kill switch, and the reserved `live` capability.

Evidence is written into the store in the shapes the backtest tools write; the paper track record is built through
the ledger with a price table and a clock the tests move. Everything else goes through real MCP sessions.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from pathlib import Path

import pytest
from mcp import types
from mcp.shared.memory import create_connected_server_and_client_session as connect

from jesse_mcp.backtesting.catalog import BUILTIN, fingerprint
from jesse_mcp.promotion import gates as promotion
from jesse_mcp.promotion.evidence import CurrentCode
from jesse_mcp.server import build_server
from jesse_mcp.trading.paper import PaperService
from shared.config import stage_history
from shared.config.models import StrategyConfig, TradingConfig
from shared.config.resolve import resolve_risk
from shared.policy.guard import CallRecord, decide
from shared.state import trading_state
from tests.mcp_helpers import accept, all_servers, payload, respond, text_of
from tests.paper_helpers import Clock, NoPool, TablePrices, configure, store_backtest, store_stress

pytestmark = pytest.mark.anyio

DAY_S = 86_400.0
TF = "trend_following"
PAPER_STAGES = {"stage": "paper", f"strategies.{TF}.stage": "paper"}
BACKTEST_GATES = (
    "backtest_recent",
    "backtest_profile",
    "backtest_code",
    "backtest_hyperparameters",
    "backtest_costs",
    "backtest_range",
    "backtest_real_data",
    "backtest_max_drawdown",
    "backtest_sharpe",
    "backtest_trades",
    "stress_test_passed",
)
ORDER = {"strategy": TF, "symbol": "BTC-USDT", "side": "long", "notional_usd": 500.0}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def prices(clock: Clock) -> TablePrices:
    table = TablePrices({"BTC-USDT": 100.0, "ETH-USDT": 100.0}, clock=clock)
    # weakly related daily returns, so the correlation check measures and passes
    table.set_series("BTC-USDT", [0.01, -0.02, 0.015, 0.0, -0.01, 0.02, -0.005, 0.01, -0.015, 0.005, 0.012, -0.008])
    table.set_series("ETH-USDT", [0.0, 0.01, -0.01, 0.02, 0.01, -0.02, 0.015, -0.01, 0.0, 0.02, -0.012, 0.004])
    return table


def jesse(deps, prices: TablePrices, clock: Clock):
    """The jesse server on fake prices and clock; write the configuration before calling this."""
    deps.extras.paper_prices, deps.extras.clock = prices, clock
    return build_server(deps, warmup=(), pool=NoPool())


def store_evidence(
    deps,
    clock: Clock,
    *,
    days_old: float = 2.0,
    profile: str = "moderate",
    settings_change: dict[str, float] | None = None,
    stress: bool = True,
    emergency: bool = False,
    stress_scenarios: dict[str, dict] | None = None,
    stress_at: str | None = None,
    **backtest,
) -> str:
    """A backtest of TF under its effective settings (or another profile's) and, by default, a passed stress test."""
    cfg = deps.config.load()
    risk = resolve_risk(cfg, TF, risk_profile=profile if profile != "moderate" else None, mode="backtest")
    settings = {**risk.settings.model_dump(), **(settings_change or {})}
    created_ms = int((clock() - days_old * DAY_S) * 1000)
    bt = store_backtest(deps.store, TF, profile=profile, settings=settings, created_ms=created_ms, **backtest)
    if stress:
        stress_id = "st_good" if bt == "bt_good" else f"st_of_{bt}"
        store_stress(
            deps.store,
            TF,
            bt,
            emergency=emergency,
            scenarios=stress_scenarios,
            requested_at=stress_at,
            result_id=stress_id,
        )
    return bt


def code_now(strategy: str = TF) -> CurrentCode:
    spec = BUILTIN[strategy]
    return CurrentCode(fingerprint(spec), spec.resolve_hyperparameters(None))


def edit_config_file(path: Path, **top_level) -> None:
    """The person edits config.json by hand."""
    data = json.loads(path.read_text())
    data.update(top_level)
    path.write_text(json.dumps(data, indent=2))


def gates_by_name(report: dict) -> dict[str, dict]:
    return {g["name"]: g for g in report["gates"]}


# --- exploration -> paper ---------------------------------------------------------------------------------------


async def test_a_paper_order_is_accepted_only_after_an_evidence_backed_promotion_to_paper(deps, home, prices, clock):
    server = jesse(deps, prices, clock)
    async with connect(server) as client:
        refused = await client.call_tool("place_paper_order", ORDER)
        assert refused.isError and "stage_too_low" in text_of(refused)

        edit_config_file(deps.config.path, stage="paper")  # the person raises the global ceiling by hand
        still = await client.call_tool("place_paper_order", ORDER)
        assert still.isError and "its own stage exploration, global stage paper" in text_of(still)

        bt = store_evidence(deps, clock)
        report = payload(
            await client.call_tool("request_stage_promotion", {"strategy": TF, "to_stage": "paper", "reason": "ok"})
        )
        placed = payload(await client.call_tool("place_paper_order", ORDER))
        history = payload(await client.call_tool("get_stage_history", {"strategy": TF}))

    assert report["promoted"] is True and report["effective_stage"] == "paper"
    assert report["evidence"] == {"backtest": bt, "stress_test": "st_good"}
    assert all(g["passed"] for g in report["gates"]) and report["confirmation"] == "not needed"
    assert placed["order"]["status"] == "filled" and placed["position"]["symbol"] == "BTC-USDT"
    assert deps.config.load().strategies[TF].stage == "paper"
    newest = history["changes"][0]
    assert (newest["strategy"], newest["from_stage"], newest["to_stage"]) == (TF, "exploration", "paper")
    assert bt in newest["reason"] and "st_good" in newest["reason"] and "reason: ok" in newest["reason"]


@pytest.mark.parametrize(
    ("stages", "to_stage", "gates", "thresholds"),
    [
        (
            {},
            "paper",
            ("backtest_profile", "backtest_max_drawdown", "backtest_sharpe", "backtest_trades", "stress_test_passed"),
            (">= 1", ">= 30", "<= 15 % (the profile's max_drawdown)"),
        ),
        (
            PAPER_STAGES,
            "live",
            ("paper_days", "paper_trades", "paper_sharpe", "paper_max_drawdown", "person_confirmation"),
            (">= 7 days since the first paper fill", ">= 5 closed paper trades", "> 0.8", "< 8 %"),
        ),
    ],
    ids=["exploration-to-paper", "paper-to-live"],
)
async def test_a_promotion_without_evidence_is_refused_listing_every_gate_and_writes_nothing(
    deps, home, prices, clock, stages, to_stage, gates, thresholds
):
    if stages:
        configure(home, **stages)
    before = deps.config.path.read_bytes()
    async with connect(jesse(deps, prices, clock)) as client:
        result = await client.call_tool("request_stage_promotion", {"strategy": TF, "to_stage": to_stage})
    text = text_of(result)
    assert result.isError and "promotion_gates" in text and "tool arguments cannot stand in" in text
    for name in gates:
        assert f"[FAIL] {name}:" in text, name
    for threshold in thresholds:
        assert f"(needs {threshold})" in text, threshold
    assert deps.config.path.read_bytes() == before
    assert stage_history.history(deps.store) == []
    row = deps.store.journal_query(tool="request_stage_promotion")[0]
    assert (row.decision, row.outcome, row.rule) == ("deny", "denied", "promotion_gates")


HP = BUILTIN[TF].resolve_hyperparameters(None)
ONE_GATE_MISSED = {
    "too_old": ({"days_old": 31.0}, "backtest_recent"),
    "other_profile": ({"profile": "aggressive"}, "backtest_profile"),
    "other_settings": ({"settings_change": {"stop_loss": 0.03}}, "backtest_profile"),
    "intraday_drawdown_above_max": ({"max_drawdown_pct": 6.0, "intraday_pct": 15.5}, "backtest_max_drawdown"),
    "daily_drawdown_above_max": ({"max_drawdown_pct": 15.5, "intraday_pct": 15.5}, "backtest_max_drawdown"),
    "sharpe_below_1": ({"sharpe": 0.99}, "backtest_sharpe"),
    "sharpe_undefined": ({"sharpe": None}, "backtest_sharpe"),
    "trades_below_30": ({"trades": 29}, "backtest_trades"),
    "synthetic_data": ({"synthetic": True}, "backtest_real_data"),
    "no_stress_test": ({"stress": False}, "stress_test_passed"),
    "stress_reached_emergency_stop": ({"emergency": True}, "stress_test_passed"),
    "code_changed": ({"request": {"strategy_sha256": "0" * 64}}, "backtest_code"),
    "code_not_recorded": ({"request": {"strategy_sha256": None}}, "backtest_code"),
    "other_hyperparameters": ({"request": {"hyperparameters": {**HP, "fast_period": 12}}}, "backtest_hyperparameters"),
    "extra_hyperparameter": ({"request": {"hyperparameters": {**HP, "unused": 1}}}, "backtest_hyperparameters"),
    "zero_fee": ({"request": {"fee_rate": 0.0}}, "backtest_costs"),
    "fee_below_default": ({"request": {"fee_rate": 0.0009}}, "backtest_costs"),
    "lower_leverage": ({"request": {"leverage": 0.5}}, "backtest_profile"),
    "range_too_short": ({"days": 29.0}, "backtest_range"),
    "data_window_from_the_past": ({"behind_days": 20.0}, "backtest_range"),
    "csv_candles": ({"data": {"sources": ["binance:/api/v3/klines", "csv:mine.csv"]}}, "backtest_real_data"),
    "filled_gaps_above_1_pct": ({"data": {"filled_gaps_in_range": 1_400}}, "backtest_real_data"),
    "stress_scenario_missing": ({"stress_scenarios": {"gap_down": {"scenario": None}}}, "stress_test_passed"),
    "stress_scenario_skipped": ({"stress_scenarios": {"crash_2020": {"skipped": "too short"}}}, "stress_test_passed"),
    "stress_not_measured": (
        {"stress_scenarios": {"gap_down": {"emergency_stop_breached": None}}},
        "stress_test_passed",
    ),
    "stress_start_chosen": ({"stress_at": "2026-08-30T00:00:00Z"}, "stress_test_passed"),
}


@pytest.mark.parametrize(("evidence", "failing"), list(ONE_GATE_MISSED.values()), ids=list(ONE_GATE_MISSED))
async def test_evidence_missing_one_gate_is_refused_on_exactly_that_gate(deps, prices, clock, evidence, failing):
    store_evidence(deps, clock, **evidence)
    async with connect(jesse(deps, prices, clock)) as client:
        gates = payload(await client.call_tool("get_promotion_gates", {"strategy": TF, "to_stage": "paper"}))
        result = await client.call_tool("request_stage_promotion", {"strategy": TF, "to_stage": "paper"})
    by_name = gates_by_name(gates)
    assert [n for n, g in by_name.items() if not g["passed"]] == [failing]
    assert set(by_name) == set(BACKTEST_GATES), "every gate is measured on the stored backtest"
    assert result.isError and "promotion_gates" in text_of(result) and "1 of 11 gates failed" in text_of(result)
    assert f"[FAIL] {failing}:" in text_of(result)
    assert deps.config.load().strategies[TF].stage == "exploration" and stage_history.history(deps.store) == []


def test_evidence_exactly_at_every_threshold_passes_every_gate(deps, prices, clock):
    store_evidence(deps, clock, days_old=30.0, sharpe=1.0, trades=30, max_drawdown_pct=15.0, intraday_pct=15.0)
    paper = PaperService(deps.store, deps.config.load, prices, clock)
    report = promotion.evaluate(
        deps.config.load(), deps.store, paper, promotion.PromotionAsk(TF, "paper"), clock(), code_now()
    )
    assert [(g.name, g.passed) for g in report.gates] == [(name, True) for name in BACKTEST_GATES]
    by_name = {g.name: g for g in report.gates}
    assert (by_name["backtest_recent"].value, by_name["backtest_sharpe"].value) == (30.0, 1.0)
    assert by_name["backtest_trades"].value == 30 and by_name["backtest_max_drawdown"].value == 15.0


def test_a_portfolio_backtest_that_contains_the_strategy_is_evidence(deps, prices, clock):
    markets = {"markets": ["BTC-USDT", "ETH-USDT"], "portfolio_rules": {"correlation_days": 30, "cvar_days": 90}}
    store_evidence(deps, clock, request=markets)
    paper = PaperService(deps.store, deps.config.load, prices, clock)
    report = promotion.evaluate(
        deps.config.load(), deps.store, paper, promotion.PromotionAsk(TF, "paper"), clock(), code_now()
    )
    assert [(g.name, g.passed) for g in report.gates] == [(name, True) for name in BACKTEST_GATES]
    assert report.evidence["backtest"] == "bt_good"


def test_the_newest_backtest_of_the_current_settings_is_judged_not_the_best_of_several(deps, prices, clock):
    store_evidence(deps, clock, days_old=5.0)
    store_evidence(deps, clock, days_old=1.0, sharpe=0.4, result_id="bt_newer_worse")
    paper = PaperService(deps.store, deps.config.load, prices, clock)
    report = promotion.evaluate(
        deps.config.load(), deps.store, paper, promotion.PromotionAsk(TF, "paper"), clock(), code_now()
    )
    failed = [g.name for g in report.gates if not g.passed]
    assert failed == ["backtest_sharpe"] and report.evidence["backtest"] == "bt_newer_worse"
    assert "0 of 1 other recent backtest(s) with the same code and settings missed a performance gate." in report.notes


def test_a_newer_backtest_with_other_settings_does_not_hide_the_newest_qualifying_one(deps, prices, clock):
    good = store_evidence(deps, clock, days_old=5.0)
    store_evidence(deps, clock, days_old=1.0, request={"fee_rate": 0.0}, result_id="bt_free_fees")
    paper = PaperService(deps.store, deps.config.load, prices, clock)
    report = promotion.evaluate(
        deps.config.load(), deps.store, paper, promotion.PromotionAsk(TF, "paper"), clock(), code_now()
    )
    assert all(g.passed for g in report.gates) and report.evidence == {"backtest": good, "stress_test": "st_good"}
    assert report.candidates_considered == 2 and any("1 newer one(s) ran other settings" in n for n in report.notes)


def test_older_runs_that_missed_a_gate_are_reported_next_to_the_judged_one(deps, prices, clock):
    store_evidence(deps, clock, days_old=6.0, sharpe=0.2, stress=False, result_id="bt_bad_1")
    store_evidence(deps, clock, days_old=5.0, trades=3, stress=False, result_id="bt_bad_2")
    store_evidence(deps, clock, days_old=1.0)
    paper = PaperService(deps.store, deps.config.load, prices, clock)
    report = promotion.evaluate(
        deps.config.load(), deps.store, paper, promotion.PromotionAsk(TF, "paper"), clock(), code_now()
    )
    assert all(g.passed for g in report.gates)
    assert any("2 of 2 other recent backtest(s)" in n and "lucky draw" in n for n in report.notes)


def test_no_backtest_counts_when_the_strategy_code_cannot_be_read(deps, prices, clock):
    store_evidence(deps, clock)
    paper = PaperService(deps.store, deps.config.load, prices, clock)
    unreadable = CurrentCode(None, None, "strategy file missing")
    report = promotion.evaluate(
        deps.config.load(), deps.store, paper, promotion.PromotionAsk(TF, "paper"), clock(), unreadable
    )
    failed = {g.name: g.detail for g in report.gates if not g.passed}
    assert set(failed) == {"backtest_code", "backtest_hyperparameters"}
    assert "strategy file missing" in failed["backtest_code"]


def test_configured_hyperparameters_are_what_a_backtest_must_have_run(deps, prices, clock):
    store_evidence(deps, clock)
    deps.config.update(
        lambda d: {
            **d,
            "strategies": {**d["strategies"], TF: {**d["strategies"][TF], "custom_params": {"fast_period": 12}}},
        }
    )
    spec = BUILTIN[TF]
    code = CurrentCode(fingerprint(spec), spec.resolve_hyperparameters({"fast_period": 12}))
    paper = PaperService(deps.store, deps.config.load, prices, clock)
    report = promotion.evaluate(
        deps.config.load(), deps.store, paper, promotion.PromotionAsk(TF, "paper"), clock(), code
    )
    failed = {g.name: g.detail for g in report.gates if not g.passed}
    assert list(failed) == ["backtest_hyperparameters"] and "fast_period 20 vs 12" in failed["backtest_hyperparameters"]


# --- tool arguments are no evidence -------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["request_stage_promotion", "get_promotion_gates"])
async def test_promotion_tools_take_no_evidence_arguments(deps, prices, clock, tool):
    before = deps.config.path.read_bytes()
    async with connect(jesse(deps, prices, clock)) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool(
            tool, {"strategy": TF, "to_stage": "paper", "backtest_id": "bt_good", "sharpe": 3.0}
        )
    assert set(listed[tool].inputSchema["properties"]) <= {"strategy", "to_stage", "reason"}
    assert result.isError
    assert "unknown argument 'backtest_id'" in text_of(result) and "unknown argument 'sharpe'" in text_of(result)
    assert deps.config.path.read_bytes() == before and stage_history.history(deps.store) == []


@pytest.mark.parametrize(
    "change", [{"stage": "paper"}, {"strategies.mean_reversion.stage": "live"}], ids=["global", "strategy"]
)
async def test_update_config_cannot_raise_a_stage_even_with_evidence_and_a_willing_person(deps, prices, clock, change):
    store_evidence(deps, clock)
    callback = accept(True)
    before = deps.config.path.read_bytes()
    async with connect(jesse(deps, prices, clock), elicitation_callback=callback) as client:
        result = await client.call_tool("update_config", {"changes": change, "reason": "trust me"})
    assert result.isError and "promotion_needs_evidence" in text_of(result)
    assert "request_stage_promotion" in text_of(result)
    assert callback.calls == [] and deps.config.path.read_bytes() == before


# --- paper -> live ------------------------------------------------------------------------------------------------

TRACK_RETURNS = (0.03, 0.03, -0.01, 0.03, 0.02, -0.01, 0.03)  # one trade a day, within the 2 % stop and 4 % target


async def build_track_record(client, prices: TablePrices, clock: Clock, notional: float = 900.0) -> None:
    """One round trip a day for len(TRACK_RETURNS) days, through the paper tools."""
    for r in TRACK_RETURNS:
        prices.set("BTC-USDT", 100.0)
        opened = payload(await client.call_tool("place_paper_order", {**ORDER, "notional_usd": notional}))
        prices.set("BTC-USDT", 100.0 * (1 + r))
        payload(await client.call_tool("close_paper_position", {"position_id": opened["position"]["id"]}))
        clock.advance(DAY_S)


def expected_track_sharpe(notional: float = 900.0, fee: float = 0.001, slippage: float = 0.0005) -> float:
    """Annualised Sharpe of the daily closes, computed from the fill rules (slippage, fee per fill)."""
    equity, closes = 10_000.0, [10_000.0]
    for r in TRACK_RETURNS:
        entry = 100.0 * (1 + slippage)
        qty = notional / entry
        exit_price = 100.0 * (1 + r) * (1 - slippage)
        equity += (exit_price - entry) * qty - notional * fee - qty * exit_price * fee
        closes.append(equity)
    closes.append(equity)  # the gates reconcile first: today (after the last close) is a flat day on the curve
    returns = [b / a - 1 for a, b in itertools.pairwise(closes)]
    return statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(365)


async def test_a_paper_track_record_built_through_the_ledger_passes_the_live_evidence_gates(deps, home, prices, clock):
    configure(home, **PAPER_STAGES)
    async with connect(jesse(deps, prices, clock)) as client:
        await build_track_record(client, prices, clock)
        report = payload(await client.call_tool("get_promotion_gates", {"strategy": TF, "to_stage": "live"}))
    gates = gates_by_name(report)
    assert [n for n, g in gates.items() if not g["passed"]] == ["person_confirmation"]
    assert gates["paper_days"]["value"] == 7.0 and gates["paper_trades"]["value"] == len(TRACK_RETURNS)
    assert gates["paper_sharpe"]["value"] == pytest.approx(expected_track_sharpe(), abs=1e-3)
    assert 0 < gates["paper_max_drawdown"]["value"] < 0.08


async def test_a_track_record_of_tiny_positions_does_not_pass_the_position_size_gate(deps, home, prices, clock):
    configure(home, **PAPER_STAGES)
    async with connect(jesse(deps, prices, clock)) as client:
        await build_track_record(client, prices, clock, notional=100.0)
        report = payload(await client.call_tool("get_promotion_gates", {"strategy": TF, "to_stage": "live"}))
    gates = gates_by_name(report)
    assert [n for n, g in gates.items() if not g["passed"]] == ["paper_position_size", "person_confirmation"]
    size = gates["paper_position_size"]
    assert size["value"] == pytest.approx(1.0, rel=1e-3) and size["threshold"].startswith(">= 5 % of the starting")


async def test_fills_priced_by_replay_of_stored_candles_do_not_make_a_track_record(deps, home, prices, clock):
    configure(home, **PAPER_STAGES)
    prices.source = "replay (stored candles)"
    async with connect(jesse(deps, prices, clock)) as client:
        await build_track_record(client, prices, clock)
        report = payload(await client.call_tool("get_promotion_gates", {"strategy": TF, "to_stage": "live"}))
    gates = gates_by_name(report)
    assert [n for n, g in gates.items() if not g["passed"]] == ["paper_market_prices", "person_confirmation"]
    assert gates["paper_market_prices"]["value"] == 2 * len(TRACK_RETURNS)


def test_days_without_an_equity_record_count_as_flat_days_in_the_paper_sharpe():
    from jesse_mcp.trading.stats import TrackRecord, performance_of

    day = 86_400_000
    first = 20_000 * day
    curve = [(first + 1, 10_100.0), (first + 3 * day + 1, 10_000.0), (first + 4 * day + 1, 10_300.0)]
    perf = performance_of(TF, TrackRecord(10_000.0, curve, [], 0, first, 0.0), first + 4 * day + 2)
    closes = [10_000.0, 10_100.0, 10_100.0, 10_100.0, 10_000.0, 10_300.0]  # days 1 and 2 keep day 0's equity
    returns = [b / a - 1 for a, b in itertools.pairwise(closes)]
    assert perf.sharpe == pytest.approx(statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(365), abs=1e-4)


@pytest.mark.parametrize(
    ("callback", "says"),
    [(respond("decline"), "declined"), (respond("cancel"), "cancelled"), (None, "does not support elicitation")],
    ids=["declined", "cancelled", "no-elicitation"],
)
async def test_live_promotion_with_passing_evidence_is_refused_without_the_persons_confirmation(
    deps, home, prices, clock, callback, says
):
    configure(home, **PAPER_STAGES)
    server = jesse(deps, prices, clock)
    async with connect(server) as client:
        await build_track_record(client, prices, clock)
    async with connect(server, elicitation_callback=callback) as client:
        result = await client.call_tool("request_stage_promotion", {"strategy": TF, "to_stage": "live"})
    assert result.isError and "promotion_needs_confirmation" in text_of(result) and says in text_of(result)
    assert deps.config.load().strategies[TF].stage == "paper" and stage_history.history(deps.store) == []
    row = deps.store.journal_query(tool="request_stage_promotion")[0]
    assert (row.decision, row.rule) == ("deny", "promotion_needs_confirmation")


async def test_live_promotion_with_passing_evidence_and_the_persons_confirmation_is_applied(deps, home, prices, clock):
    configure(home, **PAPER_STAGES)
    server = jesse(deps, prices, clock)
    async with connect(server) as client:
        await build_track_record(client, prices, clock)
    callback = accept(True)
    async with connect(server, elicitation_callback=callback) as client:
        report = payload(
            await client.call_tool("request_stage_promotion", {"strategy": TF, "to_stage": "live", "reason": "good"})
        )
    assert report["promoted"] is True and report["confirmation"] == "confirmed by the person through elicitation"
    assert gates_by_name(report)["person_confirmation"]["passed"] is True
    assert report["effective_stage"] == "paper" and "global stage is paper" in report["notes"][0]
    assert deps.config.load().strategies[TF].stage == "live"
    assert "Promote 'trend_following' from paper to live" in callback.calls[0] and "paper_sharpe" in callback.calls[0]
    change = stage_history.history(deps.store, TF)[0]
    assert (change.from_stage, change.to_stage) == ("paper", "live") and "paper_track_record" in change.reason


async def test_a_promotion_that_skips_a_stage_is_refused(deps, prices, clock):
    store_evidence(deps, clock)
    async with connect(jesse(deps, prices, clock), elicitation_callback=accept(True)) as client:
        result = await client.call_tool("request_stage_promotion", {"strategy": TF, "to_stage": "live"})
    assert result.isError and "promotion_one_step" in text_of(result) and "ask for paper" in text_of(result)
    assert deps.config.load().strategies[TF].stage == "exploration" and stage_history.history(deps.store) == []


# --- the global stage ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("callback", "says"),
    [(None, "does not support elicitation"), (respond("decline"), "declined"), (accept(False), "confirm=false")],
    ids=["no-elicitation", "declined", "confirm-false"],
)
async def test_raising_the_global_stage_is_refused_without_the_persons_confirmation(
    deps, prices, clock, callback, says
):
    async with connect(jesse(deps, prices, clock), elicitation_callback=callback) as client:
        result = await client.call_tool("request_stage_promotion", {"strategy": None, "to_stage": "paper"})
    assert result.isError and "promotion_needs_confirmation" in text_of(result) and says in text_of(result)
    assert deps.config.load().stage == "exploration" and stage_history.history(deps.store) == []


async def test_raising_the_global_stage_with_the_persons_confirmation_is_applied(deps, prices, clock):
    callback = accept(True)
    async with connect(jesse(deps, prices, clock), elicitation_callback=callback) as client:
        report = payload(await client.call_tool("request_stage_promotion", {"strategy": None, "to_stage": "paper"}))
    assert report["promoted"] is True and report["effective_stage"] == "paper"
    assert "Promote the global stage from exploration to paper?" in callback.calls[0]
    assert deps.config.load().stage == "paper"
    change = stage_history.history(deps.store)[0]
    assert (change.strategy, change.from_stage, change.to_stage) == (None, "exploration", "paper")


# --- demotion and history -----------------------------------------------------------------------------------------


async def test_demotion_needs_no_evidence_and_works_while_trading_is_halted(deps, home, prices, clock):
    configure(home, **PAPER_STAGES)
    trading_state.write(deps.store, "HALTED", "kill switch (emergency_stop): test")
    async with connect(jesse(deps, prices, clock)) as client:
        own = payload(await client.call_tool("demote_stage", {"strategy": TF, "reason": "losing"}))
        glob = payload(await client.call_tool("demote_stage", {"strategy": None, "reason": "pause"}))
        again = await client.call_tool("demote_stage", {"strategy": TF})
    assert (own["from_stage"], own["to_stage"], own["effective_stage"]) == ("paper", "exploration", "exploration")
    assert (glob["strategy"], glob["to_stage"]) == (None, "exploration")
    cfg = deps.config.load()
    assert cfg.stage == "exploration" and cfg.strategies[TF].stage == "exploration"
    assert again.isError and "already_lowest_stage" in text_of(again)
    assert trading_state.read(deps.store).state == "HALTED"


def test_a_stage_change_whose_file_write_fails_leaves_no_history_row(deps, home, prices, clock, monkeypatch):
    import shared.config.store

    configure(home, **PAPER_STAGES)

    def disk_full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shared.config.store, "atomic_write_text", disk_full)
    with pytest.raises(OSError, match="No space left"):
        promotion.demote(deps.config, deps.store, TF, None, "tidy up")
    assert stage_history.history(deps.store) == [] and deps.config.load().strategies[TF].stage == "paper"


async def test_stage_history_lists_every_change_with_its_reason_newest_first(deps, home, prices, clock):
    configure(home, stage="paper")
    store_evidence(deps, clock)
    async with connect(jesse(deps, prices, clock)) as client:
        payload(await client.call_tool("request_stage_promotion", {"strategy": TF, "to_stage": "paper"}))
        payload(await client.call_tool("demote_stage", {"strategy": TF, "reason": "too many losses"}))
        payload(await client.call_tool("demote_stage", {"strategy": "mean_reversion", "reason": "drift"}))
        everything = payload(await client.call_tool("get_stage_history", {}))["changes"]
        own = payload(await client.call_tool("get_stage_history", {"strategy": TF}))["changes"]
    assert [(c["strategy"], c["from_stage"], c["to_stage"]) for c in everything] == [
        ("mean_reversion", "paper", "exploration"),
        (TF, "paper", "exploration"),
        (TF, "exploration", "paper"),
    ]
    assert "drift" in everything[0]["reason"] and "too many losses" in everything[1]["reason"]
    assert "bt_good" in everything[2]["reason"]
    assert own == everything[1:]


# --- the kill switch ------------------------------------------------------------------------------------------------

# A position large enough to move equity: no costs (exact arithmetic), a stop far away, sizes up to the equity.
KILL_CONFIG = {
    **PAPER_STAGES,
    f"strategies.{TF}.risk_overrides.max_position_size": 1.0,
    f"strategies.{TF}.risk_overrides.max_portfolio_risk": 0.5,
    f"strategies.{TF}.risk_overrides.stop_loss": 0.9,
    "global_risk_settings.emergency_stop": 0.1,
    "paper.daily_loss_limit": 0.5,
    "paper.fee_bps": 0.0,
    "paper.slippage_bps": 0.0,
}
LIMIT_ORDER = {**ORDER, "symbol": "ETH-USDT", "type": "limit", "limit_price": 50.0, "notional_usd": None}


async def open_book(client) -> tuple[str, str]:
    """A resting limit order and a 5,000 USD BTC long (50 BTC at 100): equity 10,000, peak 10,000."""
    order = payload(await client.call_tool("place_paper_order", {**LIMIT_ORDER, "quantity": 10.0}))["order"]["id"]
    placed = payload(await client.call_tool("place_paper_order", {**ORDER, "notional_usd": 5_000.0}))
    assert placed["position"]["qty"] == 50.0 and placed["equity"] == 10_000.0
    return order, placed["position"]["id"]


async def halted_server(deps, home, prices, clock):
    configure(home, **KILL_CONFIG)
    server = jesse(deps, prices, clock)
    async with connect(server) as client:
        order, position = await open_book(client)
        prices.set("BTC-USDT", 79.0)  # equity 8,950: 10.5 % below the peak
        assert payload(await client.call_tool("get_paper_portfolio", {}))["trading_state"] == "HALTED"
    return server, order, position


async def test_equity_falling_past_the_emergency_stop_halts_trading_and_cancels_open_orders(deps, home, prices, clock):
    configure(home, **KILL_CONFIG)
    async with connect(jesse(deps, prices, clock)) as client:
        order, _ = await open_book(client)
        prices.set("BTC-USDT", 79.0)
        portfolio = payload(await client.call_tool("get_paper_portfolio", {}))
    assert portfolio["trading_state"] == "HALTED" and "emergency_stop" in portfolio["trading_state_reason"]
    assert portfolio["account"]["equity"] == 8_950.0 and portfolio["open_orders"] == []
    halt = [e for e in portfolio["events"] if e["kind"] == "kill_switch"]
    assert len(halt) == 1 and order in halt[0]["detail"]
    row = deps.store.journal_query(tool="kill_switch")[0]
    assert (row.decision, row.outcome, row.rule) == ("system", "halted", "emergency_stop")
    assert order in row.reason


@pytest.mark.parametrize("emergency_stop", [0.1, 0.25])
async def test_equity_falling_exactly_to_the_emergency_stop_halts_trading(deps, home, prices, clock, emergency_stop):
    configure(home, **{**KILL_CONFIG, "global_risk_settings.emergency_stop": emergency_stop})
    async with connect(jesse(deps, prices, clock)) as client:
        await open_book(client)
        prices.set("BTC-USDT", 100.0 - 200.0 * emergency_stop)  # a loss of exactly emergency_stop x 10,000 USD
        portfolio = payload(await client.call_tool("get_paper_portfolio", {}))
    assert portfolio["account"]["equity"] == 10_000.0 * (1 - emergency_stop)
    assert portfolio["trading_state"] == "HALTED", portfolio["account"]


async def test_equity_just_above_the_emergency_stop_does_not_halt_trading(deps, home, prices, clock):
    configure(home, **KILL_CONFIG)
    async with connect(jesse(deps, prices, clock)) as client:
        await open_book(client)
        prices.set("BTC-USDT", 80.02)  # equity 9,001: 1 USD above the threshold
        portfolio = payload(await client.call_tool("get_paper_portfolio", {}))
    assert portfolio["account"]["equity"] == 9_001.0
    assert portfolio["trading_state"] == "ACTIVE" and len(portfolio["open_orders"]) == 1
    assert deps.store.journal_query(tool="kill_switch") == []


async def test_the_daily_loss_limit_halts_trading(deps, home, prices, clock):
    configure(home, **{**KILL_CONFIG, "global_risk_settings.emergency_stop": 0.25, "paper.daily_loss_limit": 0.05})
    async with connect(jesse(deps, prices, clock)) as client:
        await open_book(client)
        prices.set("BTC-USDT", 90.0)  # equity 9,500: exactly 5 % below the day's start
        portfolio = payload(await client.call_tool("get_paper_portfolio", {}))
    assert portfolio["trading_state"] == "HALTED" and "daily_loss_limit" in portfolio["trading_state_reason"]
    assert portfolio["open_orders"] == []
    assert deps.store.journal_query(tool="kill_switch")[0].rule == "daily_loss_limit"


async def test_while_halted_orders_closes_cancels_and_promotions_are_refused(deps, home, prices, clock):
    server, order, position = await halted_server(deps, home, prices, clock)
    calls = [
        ("place_paper_order", ORDER),
        ("close_paper_position", {"position_id": position}),
        ("cancel_paper_order", {"order_id": order}),
        ("request_stage_promotion", {"strategy": TF, "to_stage": "live"}),
    ]
    async with connect(server, elicitation_callback=accept(True)) as client:
        for tool, args in calls:
            result = await client.call_tool(tool, args)
            assert result.isError and "trading_halted" in text_of(result), tool
            row = deps.store.journal_query(tool=tool)[0]
            assert (row.decision, row.rule) == ("deny", "trading_halted"), tool
        portfolio = payload(await client.call_tool("get_paper_portfolio", {}))
    assert [p["id"] for p in portfolio["positions"]] == [position]
    assert deps.config.load().strategies[TF].stage == "paper"


async def test_while_halted_reads_and_demotion_still_work(deps, home, prices, clock):
    server, _, _ = await halted_server(deps, home, prices, clock)
    async with connect(server) as client:
        portfolio = payload(await client.call_tool("get_paper_portfolio", {}))
        policy = payload(await client.call_tool("get_policy", {"strategy": TF}))
        payload(await client.call_tool("get_stage_history", {}))
        demoted = payload(await client.call_tool("demote_stage", {"strategy": TF, "reason": "halted"}))
    assert portfolio["trading_state"] == "HALTED" and policy["trading_state"] == "HALTED"
    assert "paper" not in policy["allowed_capabilities"] and "read" in policy["allowed_capabilities"]
    assert demoted["to_stage"] == "exploration" and deps.config.load().strategies[TF].stage == "exploration"


@pytest.mark.parametrize(
    ("callback", "says"),
    [(None, "does not support elicitation"), (respond("decline"), "declined")],
    ids=["no-elicitation", "declined"],
)
async def test_resetting_the_kill_switch_is_refused_without_the_persons_confirmation(
    deps, home, prices, clock, callback, says
):
    server, _, _ = await halted_server(deps, home, prices, clock)
    async with connect(server, elicitation_callback=callback) as client:
        result = await client.call_tool("reset_kill_switch", {"reason": "looked at it"})
    assert result.isError and "kill_switch_reset_needs_confirmation" in text_of(result) and says in text_of(result)
    assert trading_state.read(deps.store).state == "HALTED"


async def test_resetting_the_kill_switch_with_confirmation_resumes_trading_from_the_current_equity(
    deps, home, prices, clock
):
    server, _, _ = await halted_server(deps, home, prices, clock)
    callback = accept(True)
    async with connect(server, elicitation_callback=callback) as client:
        reset = payload(await client.call_tool("reset_kill_switch", {"reason": "reviewed"}))
        portfolio = payload(await client.call_tool("get_paper_portfolio", {}))
    assert (reset["trading_state"], reset["equity"], reset["new_peak_equity"]) == ("ACTIVE", 8_950.0, 8_950.0)
    assert "emergency_stop" in reset["was"] and "Trading is halted" in callback.calls[0]
    assert portfolio["trading_state"] == "ACTIVE" and portfolio["account"]["peak_equity"] == 8_950.0
    assert portfolio["account"]["drawdown"] == 0.0 and deps.store.journal_query(tool="kill_switch")[0].id
    assert len(deps.store.journal_query(tool="kill_switch")) == 1  # no second halt after the reset


async def test_a_reset_confirmed_for_one_halt_does_not_clear_a_new_halt_that_began_meanwhile(deps, home, prices, clock):
    server, _, _ = await halted_server(deps, home, prices, clock)

    async def halt_again_while_asking(context, params):
        with deps.store.transaction() as db:
            db.execute(
                "UPDATE trading_state SET reason = 'daily_loss_limit: a new halt', since = '2099-01-01T00:00:00Z'"
            )
        return types.ElicitResult(action="accept", content={"confirm": True})

    async with connect(server, elicitation_callback=halt_again_while_asking) as client:
        result = await client.call_tool("reset_kill_switch", {"reason": "reviewed the first halt"})
    assert result.isError and "The halt changed while the person was asked" in text_of(result)
    assert trading_state.read(deps.store).state == "HALTED" and "a new halt" in trading_state.read(deps.store).reason


async def test_resetting_the_kill_switch_when_not_halted_is_a_clear_error(deps, prices, clock):
    async with connect(jesse(deps, prices, clock), elicitation_callback=accept(True)) as client:
        result = await client.call_tool("reset_kill_switch", {})
    assert result.isError and "not halted" in text_of(result) and "nothing to reset" in text_of(result)
    assert trading_state.read(deps.store).state == "ACTIVE"


# --- the reserved live capability ---------------------------------------------------------------------------------


def test_no_tool_of_any_server_declares_the_live_capability(deps):
    declared = {
        (name, tool.name): tool.capability
        for name, server in all_servers(deps).items()
        for tool in server._tool_manager.list_tools()
    }
    assert declared and all(cap in {"read", "research", "paper", "admin"} for cap in declared.values())
    assert not [key for key, cap in declared.items() if cap == "live"]


def _live_cfg(global_stage: str, own_stage: str) -> TradingConfig:
    cfg = TradingConfig(stage=global_stage)
    cfg.strategies["s"] = StrategyConfig(stage=own_stage)
    return cfg


@pytest.mark.parametrize(
    ("strategy", "cfg", "state", "rule"),
    [
        ("s", _live_cfg("live", "paper"), "ACTIVE", "stage_too_low"),
        ("s", _live_cfg("paper", "live"), "ACTIVE", "stage_too_low"),
        ("s", _live_cfg("live", "live"), "HALTED", "trading_halted"),
        (None, _live_cfg("live", "live"), "ACTIVE", "strategy_required"),
    ],
    ids=["strategy-below-live", "global-below-live", "halted", "no-strategy"],
)
def test_the_guard_refuses_a_live_capability_call_unless_the_strategy_is_effectively_live(strategy, cfg, state, rule):
    decision = decide(CallRecord("jesse-mcp", "place_live_order", "live", strategy), cfg, state)
    assert (decision.allowed, decision.rule) == (False, rule)
    assert decision.reason and decision.remedy
    allowed = decide(CallRecord("jesse-mcp", "place_live_order", "live", "s"), _live_cfg("live", "live"), "ACTIVE")
    assert allowed.allowed

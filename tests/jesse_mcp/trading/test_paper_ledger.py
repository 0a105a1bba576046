"""The paper ledger through real MCP sessions: every pre-trade limit at its boundary, tighten-only stops, idempotent
client order ids, ledger arithmetic, limit orders, exits by reconciliation and by the background monitor, and the
performance record. Expected numbers are computed here from the costs (fee 10 bps, slippage 5 bps), not read back."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from mcp import ClientSession, types
from mcp.shared.memory import create_connected_server_and_client_session as connect

from jesse_mcp.server import build_server
from shared.server.registry import GuardedServer, ServerDeps
from shared.state import counters
from tests.mcp_helpers import payload, text_of
from tests.paper_helpers import Clock, NoPool, TablePrices, configure
from tests.timeouts import hang_guard

pytestmark = pytest.mark.anyio

START = 10_000.0  # PaperConfig.starting_balance
FEE = 10 / 10_000  # fee_bps
SLIP = 5 / 10_000  # slippage_bps
BTC = 60_000.0
LONG_ENTRY = BTC * (1 + SLIP)  # a long market fill buys 5 bps above the consensus: 60,030
SHORT_ENTRY = BTC * (1 - SLIP)  # a short market fill sells 5 bps below it: 59,970
STRATEGY = "trend_following"  # moderate profile: size 10 %, leverage 2x, risk 2 %, stop 2 %, take profit 4 %, dd 15 %
BASE_CONFIG: dict[str, Any] = {
    "stage": "paper",
    f"strategies.{STRATEGY}.stage": "paper",
    "paper.monitor_interval_s": 3600.0,  # the monitor stays out of the way unless a test asks for it
}
ALL_CHECKS = [
    "max_position_size",
    "max_leverage",
    "max_portfolio_risk",
    "max_open_positions",
    "max_total_positions",
    "max_daily_trades",
    "max_weekly_trades",
    "max_monthly_trades",
    "min_account_balance",
    "max_account_usage",
    "max_drawdown",
    "max_cvar",
    "protections",
]


@dataclass
class Ledger:
    deps: ServerDeps
    server: GuardedServer
    prices: TablePrices
    clock: Clock

    def session(self):
        return connect(self.server._mcp_server)

    def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """What an order may write: orders, fills, positions, trade counters and cash."""
        with self.deps.store.transaction() as db:
            return {
                "orders": db.execute("SELECT id, status FROM paper_orders ORDER BY id").fetchall(),
                "fills": db.execute("SELECT id FROM paper_fills ORDER BY id").fetchall(),
                "positions": db.execute("SELECT id, status, qty FROM paper_positions ORDER BY id").fetchall(),
                "counters": db.execute("SELECT key, value FROM counters ORDER BY key").fetchall(),
                "cash": db.execute("SELECT cash FROM paper_account").fetchall(),
            }

    def position(self, position_id: str) -> dict[str, Any]:
        with self.deps.store.transaction() as db:
            cur = db.execute("SELECT * FROM paper_positions WHERE id = ?", (position_id,))
            names = [d[0] for d in cur.description]
            return dict(zip(names, cur.fetchone(), strict=True))

    def order(self, order_id: str) -> dict[str, Any]:
        with self.deps.store.transaction() as db:
            cur = db.execute("SELECT * FROM paper_orders WHERE id = ?", (order_id,))
            names = [d[0] for d in cur.description]
            return dict(zip(names, cur.fetchone(), strict=True))

    def trade_count(self, period: str) -> int:
        keys = counters.window_keys("paper_trades", datetime.fromtimestamp(self.clock(), UTC))
        return counters.value(self.deps.store, keys[period])


@pytest.fixture
def open_ledger(home: Path, deps: ServerDeps):
    """Build the jesse server on a fresh paper account; `changes` are dotted config paths, as a person writes them."""

    def make(**changes: Any) -> Ledger:
        configure(home, **{**BASE_CONFIG, **changes})
        clock = Clock()
        prices = TablePrices({"BTC-USDT": BTC, "ETH-USDT": 3_000.0, "SOL-USDT": 150.0, "XRP-USDT": 0.5}, clock=clock)
        deps.extras.paper_prices, deps.extras.clock = prices, clock
        return Ledger(deps, build_server(deps, warmup=(), pool=NoPool()), prices, clock)

    return make


async def place(session: ClientSession, **args: Any) -> types.CallToolResult:
    return await session.call_tool(
        "place_paper_order", {"strategy": STRATEGY, "symbol": "BTC-USDT", "side": "long", **args}
    )


async def placed(session: ClientSession, **args: Any) -> dict[str, Any]:
    return payload(await place(session, **args))


def ledger_events(portfolio: dict[str, Any]) -> list[dict[str, Any]]:
    """What reconciliation did to orders and positions (an exit also starts protection locks: their own tests)."""
    return [e for e in portfolio["events"] if e["kind"] != "protection_lock"]


def checks_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["rule"]: c for c in result["checks"] if c["rule"] != "max_correlation"}


def correlation_checks(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in result["checks"] if c["rule"] == "max_correlation"]


def assert_refused(
    ledger: Ledger, before: dict[str, Any], result: types.CallToolResult, rule: str, *fragments: str
) -> str:
    """Refused naming the rule, the numbers and a remedy; nothing written; a 'deny' journal row with the rule."""
    text = text_of(result)
    assert result.isError, text
    assert rule in text and "Remedy:" in text, text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    assert ledger.rows() == before
    row = ledger.deps.store.journal_query(tool="place_paper_order", limit=1)[0]
    assert (row.decision, row.rule) == ("deny", rule)
    return text


async def portfolio(session: ClientSession) -> dict[str, Any]:
    return payload(await session.call_tool("get_paper_portfolio", {}))


# --- each pre-trade limit at its boundary ----------------------------------------------------------------------------


async def test_an_order_just_above_ten_percent_of_equity_is_refused_and_one_just_below_passes(open_ledger):
    ledger = open_ledger()
    limit = 0.10 * START
    async with ledger.session() as s:
        before = ledger.rows()
        refused = await place(s, notional_usd=limit + 0.01)
        assert_refused(
            ledger,
            before,
            refused,
            "max_position_size",
            "position 1,000.01 USD is 10.00% of equity 10,000.00 USD; the limit is 10.00% = 1,000.00 USD.",
            "reduce the size to at most 1,000.00 USD.",
        )
        ok = await placed(s, notional_usd=limit - 0.01)
    check = checks_of(ok)["max_position_size"]
    assert check["passed"] and check["value"] == pytest.approx(limit - 0.01) and check["limit"] == pytest.approx(limit)
    assert ok["fill"]["qty"] * ok["fill"]["price"] == pytest.approx(limit - 0.01)


async def test_leverage_above_the_profiles_two_x_is_refused_and_two_x_passes(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        before = ledger.rows()
        refused = await place(s, notional_usd=800.0, leverage=2.01)
        assert_refused(
            ledger, before, refused, "max_leverage", "leverage 2.01x exceeds the limit 2x.", "leverage of at most 2x"
        )
        ok = await placed(s, notional_usd=800.0, leverage=2.0)
    check = checks_of(ok)["max_leverage"]
    assert (check["passed"], check["value"], check["limit"]) == (True, 2.0, 2.0)
    assert ok["position"]["margin"] == pytest.approx(400.0)


async def test_risk_per_trade_uses_the_strategys_stop_and_refuses_just_above_two_percent_of_equity(open_ledger):
    # A 50 % stop override: risk = notional x 0.5 <= 2 % of 10,000 = 200 USD, so at most 400 USD of notional, far
    # inside the 1,000 USD position size limit.
    ledger = open_ledger(**{f"strategies.{STRATEGY}.risk_overrides.stop_loss": 0.5})
    async with ledger.session() as s:
        before = ledger.rows()
        refused = await place(s, notional_usd=400.02)
        assert_refused(
            ledger,
            before,
            refused,
            "max_portfolio_risk",
            "risk 200.01 USD (400.02 USD x stop 50.00%) exceeds 2.00% of equity = 200.00 USD.",
            "reduce the size to at most 400.00 USD or tighten the stop.",
        )
        ok = await placed(s, notional_usd=399.98)
    check = checks_of(ok)["max_portfolio_risk"]
    assert check["passed"] and check["value"] == pytest.approx(199.99) and check["limit"] == pytest.approx(200.0)
    assert all(c["passed"] for c in ok["checks"])


async def test_open_positions_per_strategy_count_resting_limit_orders_too(open_ledger):
    ledger = open_ledger(
        **{"portfolio_limits.max_open_positions": 2, f"strategies.{STRATEGY}.risk_overrides.max_correlation": 1.0}
    )
    async with ledger.session() as s:
        await placed(s, notional_usd=500.0)  # a position
        resting = await placed(s, type="limit", limit_price=50_000.0, notional_usd=500.0)  # and a resting order
        assert resting["order"]["status"] == "open"
        check = checks_of(resting)["max_open_positions"]
        assert (check["passed"], check["value"], check["limit"]) == (True, 1, 2)
        before = ledger.rows()
        refused = await place(s, type="limit", limit_price=49_000.0, notional_usd=500.0)
    assert_refused(
        ledger,
        before,
        refused,
        "max_open_positions",
        "positions of 'trend_following': 2 already, the limit is 2.",
        "'max_open_positions' in portfolio_limits",
    )


async def test_total_positions_count_every_strategy(open_ledger):
    ledger = open_ledger(
        **{
            "portfolio_limits.max_total_positions": 2,
            f"strategies.{STRATEGY}.risk_overrides.max_correlation": 1.0,
            "strategies.mean_reversion.risk_overrides.max_correlation": 1.0,
        }
    )
    async with ledger.session() as s:
        await placed(s, type="limit", limit_price=50_000.0, notional_usd=400.0)
        other = await placed(s, strategy="mean_reversion", type="limit", limit_price=50_000.0, notional_usd=400.0)
        assert (checks_of(other)["max_total_positions"]["value"], checks_of(other)["max_open_positions"]["value"]) == (
            1,
            0,
        )
        before = ledger.rows()
        refused = await place(s, type="limit", limit_price=49_000.0, notional_usd=400.0)
    text = assert_refused(
        ledger, before, refused, "max_total_positions", "positions of all strategies: 2 already, the limit is 2."
    )
    assert "max_open_positions" not in text  # trend_following has one of its five


@pytest.mark.parametrize(
    ("period", "rule"), [("day", "max_daily_trades"), ("week", "max_weekly_trades"), ("month", "max_monthly_trades")]
)
async def test_the_trade_limit_of_each_period_refuses_the_order_past_it(open_ledger, period, rule):
    ledger = open_ledger(
        **{f"portfolio_limits.{rule}": 1, f"strategies.{STRATEGY}.risk_overrides.max_correlation": 1.0}
    )
    async with ledger.session() as s:
        first = await placed(s, type="limit", limit_price=50_000.0, notional_usd=400.0)
        check = checks_of(first)[rule]
        assert (check["passed"], check["value"], check["limit"]) == (True, 0, 1)
        assert ledger.trade_count(period) == 1  # a resting order counts as a trade when placed
        before = ledger.rows()
        refused = await place(s, type="limit", limit_price=49_000.0, notional_usd=400.0)
    assert_refused(ledger, before, refused, rule, f"trades this {period}: 1 already, the limit is 1.")
    assert ledger.trade_count(period) == 1


async def test_a_trade_count_refusal_does_not_suggest_closing_positions_which_never_lowers_the_count(open_ledger):
    ledger = open_ledger(**{"portfolio_limits.max_daily_trades": 1})
    async with ledger.session() as s:
        pid = (await placed(s, notional_usd=400.0))["position"]["id"]
        payload(await s.call_tool("close_paper_position", {"position_id": pid}))
        refused = await place(s, notional_usd=400.0)  # closing did not give the trade back
    text = text_of(refused)
    assert "max_daily_trades" in text and "close existing" not in text


async def test_cash_after_margin_and_fee_below_the_minimum_balance_is_refused(open_ledger):
    ledger = open_ledger(
        **{
            "portfolio_limits.min_account_balance": 9_500.0,
            f"strategies.{STRATEGY}.risk_overrides.max_correlation": 1.0,
        }
    )
    largest = (START - 9_500.0) / (1 + FEE)  # cash after = start - notional - fee = 9,500 at 499.5005 USD
    assert 499.50 < largest < 499.51
    async with ledger.session() as s:
        before = ledger.rows()
        refused = await place(s, notional_usd=499.51)
        assert_refused(
            ledger,
            before,
            refused,
            "min_account_balance",
            "cash after this order and any resting orders fill: 9,499.99 USD, below the minimum balance 9,500.00 USD.",
            "close positions or lower min_account_balance",
        )
        ok = await placed(s, notional_usd=499.50)
    check = checks_of(ok)["min_account_balance"]
    assert check["passed"] and check["value"] == pytest.approx(START - 499.50 * (1 + FEE))
    assert ok["cash"] == pytest.approx(START - 499.50 * (1 + FEE), abs=0.005)


async def test_the_minimum_balance_counts_the_margin_and_fee_that_resting_orders_will_take(open_ledger):
    # A resting order "holds its margin" (its note says so, and max_account_usage counts it): two resting orders of
    # 400 USD would leave 10,000 - 2 x 400.40 = 9,199.20 USD of cash once both fill, below the 9,500 USD minimum.
    ledger = open_ledger(
        **{
            "portfolio_limits.min_account_balance": 9_500.0,
            f"strategies.{STRATEGY}.risk_overrides.max_correlation": 1.0,
        }
    )
    async with ledger.session() as s:
        first = await placed(s, type="limit", limit_price=50_000.0, notional_usd=400.0)
        assert "holds a position slot and its margin" in first["notes"][0]
        before = ledger.rows()
        refused = await place(s, type="limit", limit_price=49_000.0, notional_usd=400.0)
    assert_refused(ledger, before, refused, "min_account_balance", "9,199.20 USD, below the minimum balance")


async def test_margin_in_use_above_the_account_usage_limit_is_refused_and_leverage_reduces_it(open_ledger):
    ledger = open_ledger(**{"portfolio_limits.max_account_usage": 0.05})  # 5 % of 10,000 = 500 USD of margin
    async with ledger.session() as s:
        before = ledger.rows()
        refused = await place(s, notional_usd=500.01)
        assert_refused(
            ledger,
            before,
            refused,
            "max_account_usage",
            "margin in use would total 500.01 USD, above 5.00% of equity = 500.00 USD.",
            "reduce the order's margin in use to at most 500.00 USD.",
        )
        ok = await placed(s, notional_usd=999.98, leverage=2.0)  # margin 499.99
    check = checks_of(ok)["max_account_usage"]
    assert check["passed"] and check["value"] == pytest.approx(499.99) and check["limit"] == pytest.approx(500.0)


async def test_no_new_entry_once_drawdown_from_the_peak_reached_the_profiles_max_drawdown(open_ledger):
    # A big leveraged position whose unrealised loss makes the drawdown; its stop (50 %) and the daily loss limit
    # (50 %) are moved away so that only max_drawdown (moderate: 15 %) can speak.
    ledger = open_ledger(
        **{
            f"strategies.{STRATEGY}.risk_overrides.max_position_size": 1.0,
            f"strategies.{STRATEGY}.risk_overrides.max_portfolio_risk": 0.5,
            f"strategies.{STRATEGY}.risk_overrides.stop_loss": 0.5,
            f"strategies.{STRATEGY}.risk_overrides.max_correlation": 1.0,
            "paper.daily_loss_limit": 0.5,
        }
    )
    qty = 8_000.0 / LONG_ENTRY
    cash_plus_margin = START - 8_000.0 / 2 - 8_000.0 * FEE + 8_000.0 / 2  # 9,992

    def price_for(drawdown: float) -> float:  # the peak is the starting balance
        return LONG_ENTRY - (cash_plus_margin - START * (1 - drawdown)) / qty

    async with ledger.session() as s:
        await placed(s, notional_usd=8_000.0, leverage=2.0)
        ledger.prices.set("BTC-USDT", price_for(0.151))
        before = ledger.rows()
        refused = await place(s, notional_usd=100.0)
        assert_refused(
            ledger,
            before,
            refused,
            "max_drawdown",
            "drawdown 15.10% from the peak 10,000.00 USD reached the profile's 15.00%.",
            "no new entries until equity recovers",
        )
        ledger.prices.set("BTC-USDT", price_for(0.149))
        ok = await placed(s, notional_usd=100.0)
    check = checks_of(ok)["max_drawdown"]
    assert check["passed"] and check["value"] == pytest.approx(0.149) and check["limit"] == 0.15


def walsh_series(rho: float) -> tuple[list[float], list[float]]:
    """Two daily log-return series whose correlation is exactly `rho` (orthogonal zero-mean patterns)."""
    x = np.array([1.0, -1.0] * 8)
    z = np.array([1.0, 1.0, -1.0, -1.0] * 4)
    y = rho * x + math.sqrt(1 - rho**2) * z
    assert np.corrcoef(x, y)[0, 1] == pytest.approx(rho)
    return list(0.01 * x), list(0.01 * y)


def correlated_ledger(open_ledger) -> Ledger:
    """BTC, ETH 0.69 correlated with it, SOL 0.71; XRP has a price but no daily candles."""
    ledger = open_ledger()
    btc, eth = walsh_series(0.69)
    _, sol = walsh_series(0.71)
    ledger.prices.set_series("BTC-USDT", btc)
    ledger.prices.set_series("ETH-USDT", eth)
    ledger.prices.set_series("SOL-USDT", sol)
    ledger.prices.no_daily.add("XRP-USDT")
    return ledger


async def test_a_same_direction_order_correlated_above_the_limit_with_an_open_position_is_refused(open_ledger):
    ledger = correlated_ledger(open_ledger)
    async with ledger.session() as s:
        await placed(s, notional_usd=500.0)
        before = ledger.rows()
        refused = await place(s, symbol="SOL-USDT", notional_usd=500.0)
    assert_refused(
        ledger,
        before,
        refused,
        "max_correlation",
        "return correlation with the open long position in BTC-USDT is 0.71, above 0.70.",
        "choose a less correlated asset or close the open long position in BTC-USDT first.",
    )


async def test_an_order_correlated_just_below_the_limit_passes_with_the_measured_value(open_ledger):
    ledger = correlated_ledger(open_ledger)
    async with ledger.session() as s:
        await placed(s, notional_usd=500.0)
        ok = await placed(s, symbol="ETH-USDT", notional_usd=500.0)
    [check] = correlation_checks(ok)
    assert check["passed"] and check["value"] == pytest.approx(0.69) and check["limit"] == 0.7
    assert "BTC-USDT" in check["detail"]


async def test_an_opposite_direction_order_is_a_hedge_and_passes_the_correlation_check(open_ledger):
    ledger = correlated_ledger(open_ledger)
    async with ledger.session() as s:
        await placed(s, notional_usd=500.0)
        ok = await placed(s, symbol="SOL-USDT", side="short", notional_usd=500.0)
    [check] = correlation_checks(ok)
    assert check["passed"] and check["value"] == pytest.approx(-0.71)
    assert ok["position"]["side"] == "short"


async def test_an_order_without_daily_candles_is_refused_because_its_correlation_is_unmeasured(open_ledger):
    ledger = correlated_ledger(open_ledger)
    async with ledger.session() as s:
        await placed(s, notional_usd=500.0)
        before = ledger.rows()
        refused = await place(s, symbol="XRP-USDT", notional_usd=500.0)
    text = assert_refused(
        ledger,
        before,
        refused,
        "max_correlation,max_cvar",  # neither its correlation nor the account's tail risk with it can be measured
        "could not be measured (no daily candles for XRP-USDT)",
        "make daily candles available",
    )
    assert "one-day CVaR of the account with this order could not be measured (XRP-USDT: no daily candles" in text


# --- all checks at once ----------------------------------------------------------------------------------------------


async def test_every_failed_limit_is_reported_in_one_refusal(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        before = ledger.rows()
        refused = await place(s, notional_usd=15_000.0, leverage=9.0)  # size, leverage and risk (15,000 x 2 %)
    text = assert_refused(ledger, before, refused, "max_position_size,max_leverage,max_portfolio_risk")
    assert "3 of 13 checks failed" in text
    assert "(1) [max_position_size] position 15,000.00 USD" in text
    assert "(2) [max_leverage] leverage 9x exceeds the limit 2x." in text
    assert "(3) [max_portfolio_risk] risk 300.00 USD" in text


async def test_a_filled_order_reports_every_check_with_its_value_and_limit(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        ok = await placed(s, notional_usd=900.0)
    assert [c["rule"] for c in ok["checks"]] == ALL_CHECKS
    got = {c["rule"]: (c["passed"], round(c["value"], 6), c["limit"]) for c in ok["checks"]}
    assert got == {
        "max_position_size": (True, 900.0, 1_000.0),
        "max_leverage": (True, 1.0, 2.0),
        "max_portfolio_risk": (True, 18.0, 200.0),
        "max_open_positions": (True, 0, 5),
        "max_total_positions": (True, 0, 10),
        "max_daily_trades": (True, 0, 20),
        "max_weekly_trades": (True, 0, 50),
        "max_monthly_trades": (True, 0, 200),
        "min_account_balance": (True, START - 900.0 * (1 + FEE), 1_000.0),
        "max_account_usage": (True, 900.0, 0.95 * START),
        "max_drawdown": (True, 0.0, 0.15),
        "max_cvar": (True, 0.000694, 0.04),  # 900 USD on the quiet test series
        "protections": (True, 0, 0),  # no lock
    }
    assert all(c["detail"] for c in ok["checks"])


# --- tighten-only stops ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "looser", "configured"), [("stop_loss", 0.03, 0.02), ("take_profit", 0.05, 0.04)])
async def test_a_per_order_stop_looser_than_the_profile_is_refused(open_ledger, field, looser, configured):
    ledger = open_ledger()
    async with ledger.session() as s:
        before = ledger.rows()
        refused = await place(s, notional_usd=500.0, **{field: looser})
    assert_refused(
        ledger,
        before,
        refused,
        "tighten_only_outside_backtests",
        f"{field} {looser:g} (configured {configured:g})",
        "Use values at or inside the configured limits",
    )


async def test_tighter_per_order_stops_set_the_positions_stop_and_take_profit_prices(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        ok = await placed(s, notional_usd=500.0, stop_loss=0.01, take_profit=0.02)
    assert (ok["order"]["stop_loss"], ok["order"]["take_profit"]) == (0.01, 0.02)
    assert ok["position"]["stop_loss_price"] == pytest.approx(LONG_ENTRY * 0.99)
    assert ok["position"]["take_profit_price"] == pytest.approx(LONG_ENTRY * 1.02)


# --- client order ids -------------------------------------------------------------------------------------------------


async def test_a_retry_with_the_same_client_order_id_fills_once_and_says_duplicate(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        first = await placed(s, notional_usd=500.0, client_order_id="a1")
        again = await placed(s, notional_usd=500.0, client_order_id="a1")
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert again["order"]["id"] == first["order"]["id"] and again["fill"] == first["fill"]
    rows = ledger.rows()
    assert (len(rows["orders"]), len(rows["fills"]), len(rows["positions"])) == (1, 1, 1)
    assert ledger.trade_count("day") == 1


async def test_reusing_a_client_order_id_for_a_different_order_is_an_error_naming_the_earlier_order(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        first = await placed(s, notional_usd=500.0, client_order_id="a1")
        before = ledger.rows()
        result = await place(s, notional_usd=600.0, client_order_id="a1")
    assert result.isError
    text = text_of(result)
    assert f"client_order_id 'a1' was already used for a different order ({first['order']['id']}" in text
    assert "use a new id for a new order" in text
    assert ledger.rows() == before


# --- ledger arithmetic (golden values) --------------------------------------------------------------------------------


async def test_a_market_long_fills_above_the_consensus_and_takes_margin_and_fee_from_cash(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        ok = await placed(s, notional_usd=900.0, leverage=2.0)
    fill, position = ok["fill"], ok["position"]
    assert fill["price"] == pytest.approx(LONG_ENTRY) and fill["reference_price"] == BTC
    assert fill["qty"] == pytest.approx(900.0 / LONG_ENTRY)
    assert fill["fee"] == pytest.approx(0.9)
    assert position["margin"] == pytest.approx(450.0)
    assert ok["cash"] == pytest.approx(START - 450.0 - 0.9)


async def test_closing_a_long_reports_net_pnl_after_both_fees_and_returns_margin_to_cash(open_ledger):
    ledger = open_ledger()
    qty = 900.0 / LONG_ENTRY
    exit_price = 61_000.0 * (1 - SLIP)
    gross = (exit_price - LONG_ENTRY) * qty
    net = gross - 0.9 - qty * exit_price * FEE
    async with ledger.session() as s:
        pid = (await placed(s, notional_usd=900.0, leverage=2.0))["position"]["id"]
        ledger.prices.set("BTC-USDT", 61_000.0)
        closed = payload(await s.call_tool("close_paper_position", {"position_id": pid}))
    assert closed["fill"]["price"] == pytest.approx(exit_price)
    assert closed["position"]["realised_pnl"] == pytest.approx(net, abs=0.005)
    assert closed["fill"]["realised_pnl"] == pytest.approx(net, abs=0.005)
    assert closed["cash"] == pytest.approx(START + net, abs=0.005)
    assert closed["equity"] == pytest.approx(START + net, abs=0.005)


async def test_a_short_position_profits_when_the_price_falls(open_ledger):
    ledger = open_ledger()
    qty = 900.0 / SHORT_ENTRY
    exit_price = 59_000.0 * (1 + SLIP)  # buying back 5 bps above the consensus
    net = (SHORT_ENTRY - exit_price) * qty - 0.9 - qty * exit_price * FEE
    assert net > 0
    async with ledger.session() as s:
        opened = await placed(s, side="short", notional_usd=900.0)
        assert opened["fill"]["price"] == pytest.approx(SHORT_ENTRY)
        ledger.prices.set("BTC-USDT", 59_000.0)
        closed = payload(await s.call_tool("close_paper_position", {"position_id": opened["position"]["id"]}))
    assert closed["position"]["realised_pnl"] == pytest.approx(net, abs=0.005)
    assert closed["cash"] == pytest.approx(START + net, abs=0.005)


async def test_equity_is_cash_plus_margin_plus_unrealised_pnl_at_the_consensus_mark(open_ledger):
    ledger = open_ledger()
    qty = 900.0 / LONG_ENTRY
    unrealised = (60_600.0 - LONG_ENTRY) * qty
    async with ledger.session() as s:
        await placed(s, notional_usd=900.0, leverage=2.0)
        ledger.prices.set("BTC-USDT", 60_600.0)
        account = (await portfolio(s))["account"]
    assert account["cash"] == pytest.approx(START - 450.0 - 0.9)
    assert account["margin_used"] == pytest.approx(450.0)
    assert account["unrealised_pnl"] == pytest.approx(unrealised, abs=0.005)
    assert account["equity"] == pytest.approx(START - 0.9 + unrealised, abs=0.005)


# --- limit orders -----------------------------------------------------------------------------------------------------


async def test_a_limit_order_rests_until_a_price_check_crosses_it_then_fills_at_its_limit(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        resting = await placed(s, type="limit", limit_price=59_000.0, notional_usd=590.0)
        assert (resting["order"]["status"], resting["position"], resting["fill"]) == ("open", None, None)
        assert resting["cash"] == START and "resting limit order" in resting["notes"][0]
        ledger.prices.set("BTC-USDT", 59_500.0)
        still = await portfolio(s)
        assert still["events"] == [] and [o["id"] for o in still["open_orders"]] == [resting["order"]["id"]]
        ledger.prices.set("BTC-USDT", 58_900.0)
        after = await portfolio(s)
    [event] = ledger_events(after)
    assert (event["kind"], event["order_id"]) == ("limit_fill", resting["order"]["id"])
    [position] = after["positions"]
    assert (position["entry_price"], position["qty"], position["id"]) == (59_000.0, 0.01, event["position_id"])
    assert after["open_orders"] == []
    assert after["account"]["cash"] == pytest.approx(START - 590.0 - 0.59)


async def test_a_marketable_limit_order_fills_at_once_never_worse_than_its_limit(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        ok = await placed(s, type="limit", limit_price=60_010.0, notional_usd=600.1)  # market with slippage: 60,030
    assert ok["order"]["status"] == "filled" and ok["fill"]["price"] == 60_010.0


async def test_a_resting_order_is_cancelled_by_its_client_order_id_and_then_never_fills(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        resting = await placed(s, type="limit", limit_price=59_000.0, notional_usd=590.0, client_order_id="dip-1")
        cancelled = payload(await s.call_tool("cancel_paper_order", {"order_id": "dip-1"}))
        ledger.prices.set("BTC-USDT", 58_000.0)
        after = await portfolio(s)
    assert cancelled["order"]["id"] == resting["order"]["id"]
    assert (cancelled["order"]["status"], cancelled["order"]["reason"]) == ("cancelled", "cancelled by request")
    assert after["positions"] == [] and after["open_orders"] == [] and after["events"] == []


async def test_cancelling_an_order_twice_is_an_error_saying_it_is_already_cancelled(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        oid = (await placed(s, type="limit", limit_price=59_000.0, notional_usd=590.0))["order"]["id"]
        payload(await s.call_tool("cancel_paper_order", {"order_id": oid}))
        again = await s.call_tool("cancel_paper_order", {"order_id": oid})
    assert again.isError
    assert f"Order {oid} is already cancelled (cancelled by request); nothing to cancel." in text_of(again)


# --- exits applied by reconciliation ---------------------------------------------------------------------------------


async def test_a_stop_loss_closes_the_position_on_the_next_price_check_past_it(open_ledger):
    ledger = open_ledger()
    qty = 900.0 / LONG_ENTRY
    stop = LONG_ENTRY * 0.98  # moderate stop 2 %: 58,829.40
    exit_price = 58_800.0 * (1 - SLIP)
    async with ledger.session() as s:
        pid = (await placed(s, notional_usd=900.0))["position"]["id"]
        assert ledger.position(pid)["stop_loss_price"] == pytest.approx(stop)
        ledger.prices.set("BTC-USDT", 58_830.0)  # just above the stop
        assert (await portfolio(s))["events"] == []
        ledger.prices.set("BTC-USDT", 58_800.0)
        after = await portfolio(s)
    [event] = ledger_events(after)
    assert (event["kind"], event["position_id"]) == ("stop_loss", pid)
    assert after["positions"] == []
    row = ledger.position(pid)
    assert (row["status"], row["exit_reason"]) == ("closed", "stop_loss")
    assert row["exit_price"] == pytest.approx(exit_price)
    assert row["realised_pnl"] == pytest.approx((exit_price - LONG_ENTRY) * qty - 0.9 - qty * exit_price * FEE)


async def test_a_take_profit_closes_the_position_on_the_next_price_check_past_it(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        pid = (await placed(s, notional_usd=900.0))["position"]["id"]
        assert ledger.position(pid)["take_profit_price"] == pytest.approx(LONG_ENTRY * 1.04)  # 62,431.20
        ledger.prices.set("BTC-USDT", 62_420.0)
        assert (await portfolio(s))["events"] == []
        ledger.prices.set("BTC-USDT", 62_440.0)
        after = await portfolio(s)
    assert [(e["kind"], e["position_id"]) for e in ledger_events(after)] == [("take_profit", pid)]
    assert ledger.position(pid)["exit_price"] == pytest.approx(62_440.0 * (1 - SLIP))


async def test_a_position_older_than_the_timeout_is_closed_on_the_next_price_check(open_ledger):
    ledger = open_ledger()  # position_timeout_hours 72
    async with ledger.session() as s:
        pid = (await placed(s, notional_usd=900.0))["position"]["id"]
        ledger.clock.advance(72 * 3600 - 1)
        assert (await portfolio(s))["events"] == []
        ledger.clock.advance(1)
        after = await portfolio(s)
    [event] = ledger_events(after)
    assert (event["kind"], event["position_id"]) == ("timeout", pid)
    assert "position_timeout_hours (72 h)" in event["detail"]
    assert ledger.position(pid)["exit_reason"] == "timeout"


async def test_a_position_without_a_price_past_its_timeout_stays_open_and_is_reported_as_no_price(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        pid = (await placed(s, notional_usd=900.0))["position"]["id"]
        del ledger.prices.prices["BTC-USDT"]
        ledger.clock.advance(73 * 3600)
        after = await portfolio(s)
    [event] = ledger_events(after)
    assert (event["kind"], event["position_id"]) == ("no_price", pid)
    assert "no price for BTC-USDT" in event["detail"]
    assert [p["id"] for p in after["positions"]] == [pid] and after["unpriced"] == ["BTC-USDT"]
    assert ledger.position(pid)["status"] == "open"


# --- stages -----------------------------------------------------------------------------------------------------------


async def test_a_paper_order_for_a_strategy_in_exploration_is_refused_as_stage_too_low(open_ledger):
    ledger = open_ledger(**{f"strategies.{STRATEGY}.stage": "exploration"})
    async with ledger.session() as s:
        before = ledger.rows()
        refused = await place(s, notional_usd=500.0)
    assert_refused(
        ledger,
        before,
        refused,
        "stage_too_low",
        "strategy 'trend_following' is effectively at exploration",
        "request_stage_promotion",
    )


async def test_a_demoted_strategy_can_still_close_its_position_and_cancel_its_orders(open_ledger):
    ledger = open_ledger(**{f"strategies.{STRATEGY}.risk_overrides.max_correlation": 1.0})
    async with ledger.session() as s:
        oid = (await placed(s, type="limit", limit_price=59_000.0, notional_usd=590.0))["order"]["id"]
        pid = (await placed(s, notional_usd=500.0))["position"]["id"]
        payload(await s.call_tool("demote_stage", {"strategy": STRATEGY, "reason": "test"}))
        assert "stage_too_low" in text_of(await place(s, notional_usd=500.0))
        closed = payload(await s.call_tool("close_paper_position", {"position_id": pid}))
        again = await s.call_tool("cancel_paper_order", {"order_id": oid})
    assert (closed["position"]["status"], closed["position"]["exit_reason"]) == ("closed", "manual")
    # the resting order of a strategy below paper is cancelled by the first reconciliation, never filled
    assert ledger.order(oid)["status"] == "cancelled"
    assert "cancelled: the strategy is effectively at exploration" in text_of(again)
    assert any(e["kind"] == "order_cancelled" for e in closed["events"])


# --- the background monitor -------------------------------------------------------------------------------------------


async def test_the_monitor_executes_a_stop_while_a_session_is_open_without_any_tool_call(open_ledger):
    ledger = open_ledger(**{"paper.monitor_interval_s": 0.05})
    async with ledger.session() as s:
        pid = (await placed(s, notional_usd=900.0))["position"]["id"]
        seen = len(ledger.deps.store.journal_query(limit=1000))
        ledger.prices.set("BTC-USDT", 58_000.0)
        with anyio.fail_after(hang_guard(60)):
            while ledger.position(pid)["status"] == "open":
                await anyio.sleep(0.01)
    assert ledger.position(pid)["exit_reason"] == "stop_loss"
    rows = ledger.deps.store.journal_query(limit=1000)  # newest first
    new = rows[: len(rows) - seen]
    assert {r.tool for r in new} == {"paper_monitor"}  # nobody called a tool
    assert any(e["kind"] == "stop_loss" for r in new for e in r.arguments["events"])


# --- performance ------------------------------------------------------------------------------------------------------


async def test_paper_performance_reports_the_equity_curve_win_rate_and_profit_factor(open_ledger):
    ledger = open_ledger(**{f"strategies.{STRATEGY}.risk_overrides.cooldown_minutes": 0.0})  # a trade a minute
    trades = [("long", 60_000.0, 61_000.0), ("long", 61_000.0, 60_000.0), ("short", 60_000.0, 59_000.0)]
    curve, fees, nets, equity = [], 0.0, [], START
    for side, entry, exit_ in trades:  # the expected ledger, one equity point per minute
        sign = 1 if side == "long" else -1
        fill_in, fill_out = entry * (1 + sign * SLIP), exit_ * (1 - sign * SLIP)
        qty = 900.0 / fill_in
        curve.append(equity - 900.0 * FEE + sign * (entry - fill_in) * qty)  # open, marked at the consensus
        net = sign * (fill_out - fill_in) * qty - 900.0 * FEE - qty * fill_out * FEE
        equity += net
        curve.append(equity)
        nets.append(net)
        fees += 900.0 * FEE + qty * fill_out * FEE
    peaks = np.maximum.accumulate([START, *curve])
    async with ledger.session() as s:
        for side, entry, exit_ in trades:
            ledger.prices.set("BTC-USDT", entry)
            pid = (await placed(s, side=side, notional_usd=900.0))["position"]["id"]
            ledger.clock.advance(60)
            ledger.prices.set("BTC-USDT", exit_)
            payload(await s.call_tool("close_paper_position", {"position_id": pid}))
            ledger.clock.advance(60)
        perf = payload(await s.call_tool("get_paper_performance", {}))
    assert [t for t, _ in perf["equity_curve"]] == [f"2026-09-21T14:{13 + i}:00.000Z" for i in range(6)]
    assert [e for _, e in perf["equity_curve"]] == pytest.approx(curve, abs=0.005)
    assert nets[0] > 0 > nets[1] and nets[2] > 0
    assert perf["trades"] == 3 and perf["open_positions"] == 0
    assert perf["win_rate"] == round(2 / 3, 4)
    assert perf["profit_factor"] == pytest.approx((nets[0] + nets[2]) / -nets[1], abs=1e-4)
    assert perf["net_pnl"] == pytest.approx(sum(nets), abs=0.005)
    assert perf["fees_paid"] == pytest.approx(fees, abs=0.005)
    assert perf["max_drawdown"] == pytest.approx(max(1 - np.array([START, *curve]) / peaks), abs=1e-6)
    assert perf["sharpe"] is None  # under two days of history
    assert [t["side"] for t in perf["recent_trades"]] == ["short", "long", "long"]  # newest first


async def test_paper_performance_attaches_a_png_of_the_equity_curve_when_asked(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        pid = (await placed(s, notional_usd=900.0))["position"]["id"]
        ledger.clock.advance(60)
        payload(await s.call_tool("close_paper_position", {"position_id": pid}))
        result = await s.call_tool("get_paper_performance", {"equity_image": True})
    assert payload(result)["image"] == "attached" and len(payload(result)["equity_curve"]) == 2
    [image] = [c for c in result.content if isinstance(c, types.ImageContent)]
    assert image.mimeType == "image/png"
    assert base64.b64decode(image.data).startswith(b"\x89PNG\r\n\x1a\n")


def test_a_correlation_that_cannot_be_measured_says_which_series_and_why():
    from jesse_mcp.trading.stats import correlations_with

    days = [(d * 86_400_000, 100.0 + (d % 3)) for d in range(15)]
    flat = [(d * 86_400_000, 50.0) for d in range(15)]
    short = days[:5]
    out = correlations_with(
        "BTC-USDT", ["ETH-USDT", "SOL-USDT"], {"BTC-USDT": days, "ETH-USDT": flat, "SOL-USDT": short}
    )
    assert out["ETH-USDT"] == "the price of ETH-USDT did not move over the 15 common days"
    assert out["SOL-USDT"] == "fewer than 10 common daily returns of BTC-USDT and SOL-USDT (4)"

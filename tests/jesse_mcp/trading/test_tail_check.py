"""The max_cvar pre-trade check: the account's one-day CVaR with the order, from daily closes (historical
simulation), refused above the profile's limit with the numbers and the size that would fit; unit tests of the
book revaluation and one paper account through a real MCP session."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jesse_mcp.trading.models import Order, Position
from jesse_mcp.trading.tail import DailyReturns, aligned_returns, cvar_of, exposures, order_tail
from jesse_mcp.trading.venue import Book
from shared.policy import checks as policy
from tests.jesse_mcp.trading.test_paper_ledger import (  # noqa: F401 (open_ledger is a fixture)
    assert_refused,
    open_ledger,
    place,
    placed,
)
from tests.mcp_helpers import payload

DAY = 86_400_000


def series(closes: list[float]) -> list[tuple[int, float]]:
    return [(i * DAY, c) for i, c in enumerate(closes)]


def position(symbol: str, side: str, notional: float) -> Position:
    return Position(
        id=f"p-{symbol}", strategy="s", symbol=symbol, side=side, qty=1.0, entry_price=notional, leverage=1.0,
        notional=notional, margin=notional, stop_loss_price=0.0, take_profit_price=0.0, opened_at="", mark_price=1.0,
        marked_at="", unrealised_pnl=0.0, status="open", fees=0.0, expires_at="",
    )  # fmt: skip


def resting(symbol: str, side: str, qty: float, limit: float) -> Order:
    return Order(
        id=f"o-{symbol}", client_order_id="c", strategy="s", symbol=symbol, side=side, type="limit", qty=qty,
        limit_price=limit, leverage=1.0, stop_loss=0.02, take_profit=0.04, status="open", reason=None,
        position_id=None, created_at="", updated_at="",
    )  # fmt: skip


def book(equity: float, positions=(), orders=()) -> Book:
    return Book(
        cash=equity, equity=equity, peak_equity=equity, margin_used=0, positions=list(positions), orders=list(orders)
    )


def test_returns_are_aligned_on_the_days_every_series_has_and_cut_to_the_window():
    a = series([100 + i for i in range(30)])
    b = [(d, c) for d, c in series([50 + i for i in range(30)]) if d != 5 * DAY]  # b misses day 5
    got = aligned_returns({"A": a, "B": b}, days=20)
    assert isinstance(got, DailyReturns) and got.days == 20
    assert got.by_symbol["A"][-1] == pytest.approx(129 / 128 - 1)
    missing = aligned_returns({"A": a, "C": "no daily candles for C"}, days=20)
    assert missing == "C: no daily candles for C"
    assert aligned_returns({"A": a[:8]}, days=20) == "fewer than 10 common daily returns of A (7)"


def test_exposure_is_signed_and_counts_resting_orders_at_their_limit():
    b = book(10_000, [position("BTC", "long", 2_000), position("ETH", "short", 500)], [resting("BTC", "short", 2, 100)])
    assert exposures(b) == {"BTC": 1_800.0, "ETH": -500.0}


def test_cvar_revalues_every_holding_on_the_same_days():
    rng = np.random.default_rng(3)
    ra, rb = rng.normal(0, 0.03, 60), rng.normal(0, 0.05, 60)
    returns = DailyReturns(60, {"A": ra, "B": rb})
    pnl = (3_000 * ra - 1_000 * rb) / 10_000
    q = np.quantile(pnl, 0.05)
    assert cvar_of({"A": 3_000, "B": -1_000}, returns, 10_000, 0.95) == pytest.approx(-pnl[pnl <= q].mean())
    assert cvar_of({}, returns, 10_000, 0.95) == 0.0


def test_the_room_left_is_the_largest_order_that_keeps_the_cvar_within_the_limit():
    returns = DailyReturns(40, {"A": np.array([(-1) ** i * 0.02 * (1 + i % 7) for i in range(40)])})
    b = book(10_000)
    tail = order_tail(b, "A", 20_000, returns, 0.95, 0.02)
    assert tail.before == 0 and tail.after > 0.02 and 0 < tail.room_usd < 20_000
    at_room = order_tail(b, "A", tail.room_usd, returns, 0.95, 0.02)
    assert at_room.after == pytest.approx(0.02, rel=1e-6)
    assert order_tail(b, "A", tail.room_usd * 1.01, returns, 0.95, 0.02).after > 0.02


def test_the_room_with_positions_held_is_what_a_plain_bisection_on_cvar_of_finds():
    rng = np.random.default_rng(11)
    for trial in range(20):
        returns = DailyReturns(90, {s: rng.standard_t(3, 90) * 0.02 for s in ("A", "B", "C")})
        b = book(10_000, [position("B", "long", 2_000.0), position("C", "short", 1_500.0)])
        signed = 30_000.0 if trial % 2 else -30_000.0
        tail = order_tail(b, "A", signed, returns, 0.95, 0.03)
        if not tail.before <= 0.03 < tail.after:
            continue
        lo, hi = 0.0, 1.0  # the reference: 60 halvings, each a full cvar_of
        for _ in range(60):
            mid = (lo + hi) / 2
            held = {"B": 2_000.0, "C": -1_500.0, "A": signed * mid}
            lo, hi = (mid, hi) if cvar_of(held, returns, 10_000, 0.95) <= 0.03 else (lo, mid)
        assert tail.room_usd == pytest.approx(abs(signed) * lo, rel=1e-6, abs=0.01)


def test_an_order_that_lowers_the_cvar_passes_even_above_the_limit():
    returns = DailyReturns(40, {"A": np.array([(-1) ** i * 0.05 for i in range(40)])})
    held = book(10_000, [position("A", "long", 10_000)])
    hedge = order_tail(held, "A", -4_000, returns, 0.95, 0.02)
    assert hedge.before > 0.02 and hedge.after < hedge.before and hedge.room_usd == 0
    assert policy.check_cvar(hedge.after, hedge.before, 0.02, 0.95, hedge.room_usd) is None
    more = order_tail(held, "A", 1_000, returns, 0.95, 0.02)
    refused = policy.check_cvar(more.after, more.before, 0.02, 0.95, more.room_usd)
    assert refused is not None and "the account is over the limit already" in refused.remedy


pytestmark = pytest.mark.anyio


@pytest.mark.anyio
async def test_an_order_whose_tail_risk_is_too_large_is_refused_with_the_numbers_and_the_size_that_fits(
    open_ledger,  # noqa: F811
):
    ledger = open_ledger()  # trend_following, moderate: max_cvar 4 % at 95 %, position up to 10 % x 2
    moves = [0.0 if i % 10 else -0.6 for i in range(1, 91)]  # a 45 % fall every tenth day: 9 of 90 days
    ledger.prices.set_series("BTC-USDT", moves)
    async with ledger.session() as s:
        before = ledger.rows()
        refused = await place(s, notional_usd=1_000.0)  # within max_position_size 10 %, but 4.5 % of CVaR
        text = assert_refused(ledger, before, refused, "max_cvar", "above max_cvar 4.00%", "USD of notional keeps it")
        ok = await placed(s, notional_usd=800.0)
    [check] = [c for c in ok["checks"] if c["rule"] == "max_cvar"]
    fall = 1 - math.exp(-0.6)  # the worst 5 % of 90 days (4.5) all lie among the nine falls
    assert check["passed"] and check["value"] == pytest.approx(800 * fall / 10_000, rel=1e-9)
    assert "one-day CVaR at 95%" in check["detail"] and "from 90 daily returns" in check["detail"]
    room = float(text.split("(at most ")[1].split(" USD")[0].replace(",", ""))
    assert room == pytest.approx(0.04 * 10_000 / fall, abs=0.01)  # 889 USD of a 45 % fall is 4 % of equity
    assert "of equity with this order (" in text


@pytest.mark.anyio
async def test_the_portfolio_reports_the_tail_risk_of_its_open_book(open_ledger):  # noqa: F811
    ledger = open_ledger()
    ledger.prices.set_series("BTC-USDT", [0.0 if i % 10 else -0.6 for i in range(1, 91)])
    async with ledger.session() as s:
        empty = payload(await s.call_tool("get_paper_portfolio", {}))
        await placed(s, notional_usd=800.0)
        held = payload(await s.call_tool("get_paper_portfolio", {}))
    assert empty["tail_risk"] is None and empty["tail_risk_unmeasured"] is None
    tail = held["tail_risk"]
    assert (tail["confidence"], tail["max_cvar"], tail["daily_returns"]) == (0.95, 0.04, 90)
    hist = tail["estimates"][0]
    exposure = held["positions"][0]["notional"] / held["account"]["equity"]
    assert hist["method"] == "historical"
    assert hist["cvar_pct"] == pytest.approx(exposure * (1 - math.exp(-0.6)) * 100, abs=1e-4)


@pytest.mark.anyio
async def test_a_tighter_max_cvar_in_the_strategy_overrides_binds_sooner(open_ledger):  # noqa: F811
    ledger = open_ledger(**{"strategies.trend_following.risk_overrides.max_cvar": 0.001})
    ledger.prices.set_series("BTC-USDT", [0.03 * (-1) ** i for i in range(60)])
    async with ledger.session() as s:
        before = ledger.rows()
        refused = await place(s, notional_usd=900.0)
    assert_refused(ledger, before, refused, "max_cvar", "above max_cvar 0.10%")

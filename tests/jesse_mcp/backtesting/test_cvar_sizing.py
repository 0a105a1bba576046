"""Sizing 'cvar' in the strategy base: every entry is no larger than keeps the account's one-day historical CVaR
within max_cvar, computed here again with numpy from the very returns and book the sizing saw; a tight budget makes
entries smaller than risk sizing alone, and the result says how many. Jesse runs in this process."""

from __future__ import annotations

import numpy as np
import pytest

from jesse_mcp.backtesting.catalog import BUILTIN
from jesse_mcp.backtesting.plans import BacktestError, PlanRequest, build_plan, result_from
from jesse_mcp.backtesting.strategies import portfolio
from jesse_mcp.backtesting.trade_rows import T_SIZE
from jesse_mcp.candles.ops import generate_synthetic
from shared.market.candles import CandleStore
from tests.paper_helpers import configure

START = 1_704_067_200_000  # 2024-01-01
DAY = 86_400_000
STRATEGY = "trend_following"
TIGHT = {f"strategies.{STRATEGY}.risk_overrides.max_cvar": 0.004}  # 0.4 % of equity on the worst days

pytestmark = pytest.mark.slow  # Jesse in this process


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from jesse_mcp.backtesting import engine

    candles = CandleStore(tmp_path_factory.mktemp("cvar_sizing") / "candles")
    for i, symbol in enumerate(("BTC-USDT", "ETH-USDT")):
        generate_synthetic(candles, symbol, START, START + 70 * DAY, seed=41 + i)
    cfg = configure(tmp_path_factory.mktemp("cfg"), **TIGHT)
    out = {}
    for sizing, markets in (("risk", None), ("cvar", None), ("cvar", ("BTC-USDT", "ETH-USDT"))):
        req = PlanRequest(days=30, symbol=None if markets else "BTC-USDT", markets=markets, sizing=sizing)
        plan = build_plan(cfg=cfg, candles=candles, strategy=BUILTIN[STRATEGY], req=req)
        calls, real = [], portfolio.order_tail

        def spy(book, symbol, signed, returns, confidence, limit, calls=calls, real=real):
            tail = real(book, symbol, signed, returns, confidence, limit)
            calls.append((book, symbol, signed, returns, confidence, limit, tail))
            return tail

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(portfolio, "order_tail", spy)
            result = engine.run_backtest(plan.spec)
        out[(sizing, bool(markets))] = (plan, result, calls)
    return out


def _cvar(book, symbol, signed, returns, confidence) -> float:
    """The book's one-day historical CVaR with the order, fraction of equity: numpy, from the definition."""
    pnl = np.zeros(returns.days)
    for p in book.positions:
        pnl += (p.notional if p.side == "long" else -p.notional) * returns.by_symbol[p.symbol]
    pnl = (pnl + signed * returns.by_symbol[symbol]) / book.equity
    q = np.quantile(pnl, 1 - confidence)
    return max(0.0, -float(pnl[pnl <= q].mean()))


@pytest.mark.parametrize("several", [False, True], ids=["one market", "portfolio"])
def test_every_cvar_sized_entry_keeps_the_accounts_cvar_within_max_cvar(runs, several):
    _, _, calls = runs[("cvar", several)]
    capped = [c for c in calls if c[6].room_usd < abs(c[2])]
    assert capped, "the tight budget should bind"
    for book, symbol, signed, returns, confidence, limit, tail in calls:
        before = _cvar(book, symbol, 0.0, returns, confidence)
        if before > limit:  # what is held is past the budget already (prices moved): no entry at all
            assert tail.room_usd == 0
            continue
        sized = np.sign(signed) * min(abs(signed), tail.room_usd)
        assert _cvar(book, symbol, sized, returns, confidence) <= limit * (1 + 1e-6)
    for book, symbol, signed, returns, confidence, limit, tail in capped:
        if tail.room_usd > 0:  # at the room, the budget is used up: no smaller size was taken than needed
            assert _cvar(book, symbol, np.sign(signed) * tail.room_usd, returns, confidence) == pytest.approx(
                limit, rel=1e-6
            )


def test_cvar_sizing_makes_entries_smaller_than_risk_sizing_and_the_result_says_how_many(runs):
    _, risk_out, risk_calls = runs[("risk", False)]
    cvar_plan, cvar_out, _ = runs[("cvar", False)]
    assert risk_calls == [] and risk_out["cvar_sized_entries"] == 0
    result = result_from(cvar_plan, cvar_out)
    assert result.request.sizing == "cvar"
    n = result.risk_adherence.entries_sized_down_by_cvar
    assert n == cvar_out["cvar_sized_entries"] > 0
    assert any(f"Sizing 'cvar': {n} entries were made smaller" in note for note in result.notes)
    largest = max(t[T_SIZE] for t in risk_out["trades"])
    assert max(t[T_SIZE] for t in cvar_out["trades"]) < largest


def test_cvar_sizing_of_a_strategy_that_sizes_itself_is_refused(tmp_path):
    from jesse_mcp.backtesting.catalog import StrategySpec

    candles = CandleStore(tmp_path / "candles")
    generate_synthetic(candles, "BTC-USDT", START, START + 20 * DAY, seed=1)
    plain = StrategySpec(**{**BUILTIN[STRATEGY].__dict__, "name": "plain", "risk_managed": False})
    with pytest.raises(BacktestError, match="sizing 'cvar' is a mode of RiskManagedStrategy"):
        build_plan(cfg=configure(tmp_path), candles=candles, strategy=plain, req=PlanRequest(sizing="cvar"))
    with pytest.raises(BacktestError, match="Unknown sizing 'x'; valid: risk, cvar"):
        build_plan(cfg=configure(tmp_path), candles=candles, strategy=BUILTIN[STRATEGY], req=PlanRequest(sizing="x"))

"""Portfolio backtests: several markets traded in one account, every entry meeting the paper account's pre-trade
checks (one implementation). The open-position limit binds and its refusals are counted; the same order is refused
by the same rule in paper; the report adds up; fast mode equals normal mode. Jesse runs in this process on 60 days
of synthetic candles of three markets."""

from __future__ import annotations

from itertools import pairwise

import pytest
from mcp.shared.memory import create_connected_server_and_client_session as connect

from jesse_mcp.backtesting.catalog import BUILTIN
from jesse_mcp.backtesting.daily_equity import DAILY_KEYS
from jesse_mcp.backtesting.plans import PlanRequest, build_plan, result_from
from jesse_mcp.backtesting.strategies import portfolio
from jesse_mcp.backtesting.trade_rows import T_CLOSED, T_OPENED, T_SYMBOL
from jesse_mcp.candles.ops import generate_synthetic
from jesse_mcp.server import build_server
from shared.market.candles import CandleStore
from tests.mcp_helpers import payload, text_of
from tests.paper_helpers import Clock, NoPool, TablePrices, configure

START = 1_704_067_200_000  # 2024-01-01
DAY = 86_400_000
MARKETS = ("BTC-USDT", "ETH-USDT", "SOL-USDT")
STRATEGY = "trend_following"
ONE_OPEN = {  # at most one open position; correlation out of the way, so the position count is what binds
    "portfolio_limits.max_open_positions": 1,
    f"strategies.{STRATEGY}.risk_overrides.max_correlation": 1.0,
}
PAPER = {"stage": "paper", f"strategies.{STRATEGY}.stage": "paper", "paper.monitor_interval_s": 3600.0}

pytestmark = pytest.mark.slow  # Jesse in this process


@pytest.fixture(scope="module")
def candles(tmp_path_factory) -> CandleStore:
    store = CandleStore(tmp_path_factory.mktemp("portfolio") / "candles")
    for i, symbol in enumerate(MARKETS):
        generate_synthetic(store, symbol, START, START + 60 * DAY, seed=11 + i)
    return store


@pytest.fixture(scope="module")
def bound(candles, tmp_path_factory):
    """A run where only one position may be open: every check the gate made, with its inputs and refusals."""
    from jesse_mcp.backtesting import engine

    cfg = configure(tmp_path_factory.mktemp("cfg"), **ONE_OPEN)
    req = PlanRequest(days=40, markets=MARKETS)
    plan = build_plan(cfg=cfg, candles=candles, strategy=BUILTIN[STRATEGY], req=req)
    calls, real = [], portfolio.pre_trade_checks

    def spy(inputs, risk, limits):
        checks, violations = real(inputs, risk, limits)
        calls.append((inputs, {v.rule for v in violations if v is not None}))
        return checks, violations

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(portfolio, "pre_trade_checks", spy)
        out = engine.run_backtest({**plan.spec, "png": True})
    return plan, out, calls


def test_the_open_position_limit_binds_and_its_refusals_are_counted(bound):
    plan, out, calls = bound
    refused = [rules for _, rules in calls if rules]
    result = result_from(plan, out)
    counted = result.portfolio.refused_entries
    assert counted["max_open_positions"] == sum("max_open_positions" in r for r in refused) > 0
    assert any("max_open_positions" in n for n in result.notes)
    # never two positions at once: each entry opens after every other market's position closed
    trades = sorted(out["trades"], key=lambda t: t[T_OPENED])
    assert {t[T_SYMBOL] for t in trades} == set(MARKETS)
    assert all(a[T_CLOSED] <= b[T_OPENED] for a, b in pairwise(trades))
    assert result.portfolio.max_open_positions == 1


@pytest.mark.anyio
async def test_the_same_order_is_refused_by_the_same_rule_in_paper(bound, home, deps):
    _, _, calls = bound
    inputs = next(i for i, rules in calls if "max_open_positions" in rules)
    (held,) = inputs.book.positions
    configure(home, **{**PAPER, **ONE_OPEN})
    prices = TablePrices({held.symbol: held.mark_price, inputs.symbol: 100.0}, clock=Clock())
    deps.extras.paper_prices, deps.extras.clock = prices, prices.clock
    server = build_server(deps, warmup=(), pool=NoPool())
    order = {"strategy": STRATEGY, "notional_usd": 500.0}
    async with connect(server._mcp_server) as s:
        first = {**order, "symbol": held.symbol, "side": held.side}
        payload(await s.call_tool("place_paper_order", first))
        second = {**order, "symbol": inputs.symbol, "side": "long" if inputs.long else "short"}
        refused = await s.call_tool("place_paper_order", second)
    assert refused.isError and "max_open_positions" in text_of(refused)
    assert "1 already, the limit is 1" in text_of(refused)


def test_the_report_adds_up(bound):
    plan, out, _ = bound
    result = result_from(plan, out)
    p = result.portfolio
    assert p.markets == list(MARKETS) and p.data_markets == []
    assert sum(c.trades for c in p.contributions) == len(out["trades"])
    net = sum(c.net_pnl_quote for c in p.contributions)
    assert net == pytest.approx(result.performance.net_profit_quote, rel=1e-9)
    m = p.correlation
    assert all(m[a][a] == pytest.approx(1.0) and m[a][b] == pytest.approx(m[b][a]) for a in MARKETS for b in MARKETS)
    assert p.exposure and all(0 <= e.open_positions <= 1 for e in p.exposure)
    assert out["png"][:8] == b"\x89PNG\r\n\x1a\n"


def test_fast_mode_equals_normal_mode_for_a_portfolio(candles):
    from jesse_mcp.backtesting import engine

    req = PlanRequest(days=30, risk_profile="aggressive", markets=MARKETS[:2])
    plan = build_plan(cfg=configure_default(), candles=candles, strategy=BUILTIN["momentum"], req=req)
    fast = engine.run_backtest(plan.spec)
    normal = engine.run_backtest({**plan.spec, "fast_mode": False})
    assert fast["fast_mode"] is True and len(fast["trades"]) > 10
    assert fast["equity"] == normal["equity"]
    assert {k: fast["metrics"][k] for k in DAILY_KEYS} == {k: normal["metrics"][k] for k in DAILY_KEYS}
    assert fast["trades"] == normal["trades"]


def test_data_markets_inform_and_are_never_traded(candles):
    from jesse_mcp.backtesting import engine

    req = PlanRequest(days=20, markets=MARKETS[:2], data_markets=MARKETS[2:])
    plan = build_plan(cfg=configure_default(), candles=candles, strategy=BUILTIN[STRATEGY], req=req)
    out = engine.run_backtest(plan.spec)
    result = result_from(plan, out)
    assert {t[T_SYMBOL] for t in out["trades"]} <= set(MARKETS[:2])
    assert result.portfolio.data_markets == ["SOL-USDT"]
    assert [c.market for c in result.portfolio.contributions] == list(MARKETS[:2])


def configure_default():
    from shared.config.models import TradingConfig

    return TradingConfig()

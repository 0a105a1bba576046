"""The protections in a paper account through a real MCP session: a cooldown after an exit, and the stop-loss guard
after the third stop of the moderate profile, each refusing at its threshold and not before, with its reason."""

from __future__ import annotations

import pytest

from tests.jesse_mcp.trading.test_paper_ledger import (  # noqa: F401 (open_ledger is a fixture)
    BTC,
    assert_refused,
    open_ledger,
    place,
    placed,
)
from tests.mcp_helpers import payload

pytestmark = pytest.mark.anyio


PRICES = {"BTC-USDT": BTC, "ETH-USDT": 3_000.0, "SOL-USDT": 150.0, "XRP-USDT": 0.5}


async def stopped_out(ledger, s, symbol: str = "BTC-USDT") -> None:
    """One long that the next price check stops out (moderate: stop 2 % below the entry; it loses about 3.3 %)."""
    ledger.prices.set(symbol, PRICES[symbol])
    await placed(s, symbol=symbol, notional_usd=500.0)
    ledger.prices.set(symbol, PRICES[symbol] * 0.97)
    portfolio = payload(await s.call_tool("get_paper_portfolio", {}))
    assert portfolio["positions"] == [] and "stop" in str(portfolio["events"])
    ledger.prices.set(symbol, PRICES[symbol])


async def test_a_new_entry_waits_out_the_cooldown_after_an_exit(open_ledger):  # noqa: F811
    ledger = open_ledger()  # moderate: cooldown 60 min
    async with ledger.session() as s:
        await stopped_out(ledger, s)
        ledger.prices.set("BTC-USDT", BTC)
        ledger.clock.advance(59 * 60)
        before = ledger.rows()
        refused = await place(s, notional_usd=500.0)
        assert_refused(ledger, before, refused, "cooldown", "new entries in BTC-USDT paused until", "60 min after")
        other = await placed(s, symbol="ETH-USDT", notional_usd=300.0)  # another market is not locked
        assert other["fill"] is not None
        ledger.clock.advance(2 * 60)
        assert (await placed(s, notional_usd=500.0))["fill"] is not None


async def test_the_third_stop_within_the_window_pauses_every_entry_for_the_pause(open_ledger):  # noqa: F811
    ledger = open_ledger()  # moderate: 3 stops within 24 h pause new entries for 12 h
    async with ledger.session() as s:
        for symbol in ("BTC-USDT", "ETH-USDT"):  # one stop per market: no market loses past the low-profit lock
            await stopped_out(ledger, s, symbol)
        await stopped_out(ledger, s, "SOL-USDT")  # two stops before it: allowed; it is the third
        before = ledger.rows()
        refused = await place(s, symbol="XRP-USDT", notional_usd=300.0)
        assert_refused(ledger, before, refused, "stoploss_guard", "all new entries paused", "3 stop losses within 24 h")
        ledger.clock.advance(12 * 3600 - 1)
        assert_refused(ledger, before, await place(s, symbol="XRP-USDT", notional_usd=300.0), "stoploss_guard")
        ledger.clock.advance(1)  # 12 h after the third stop
        assert (await placed(s, symbol="XRP-USDT", notional_usd=300.0))["fill"] is not None


async def test_each_lock_is_recorded_once_with_its_reason_in_the_journal_and_shown_while_in_force(open_ledger):  # noqa: F811
    ledger = open_ledger()  # moderate: cooldown 60 min
    async with ledger.session() as s:
        ledger.prices.set("BTC-USDT", BTC)
        await placed(s, notional_usd=500.0)
        ledger.prices.set("BTC-USDT", BTC * 0.97)
        first = payload(await s.call_tool("get_paper_portfolio", {}))  # the stop, then the cooldown it starts
        again = payload(await s.call_tool("get_paper_portfolio", {}))
        ledger.clock.advance(61 * 60)
        later = payload(await s.call_tool("get_paper_portfolio", {}))
        journal = payload(await s.call_tool("get_journal", {"tool": "paper_monitor"}))
    locks = [e for e in first["events"] if e["kind"] == "protection_lock"]
    assert len(locks) == 1 and locks[0]["detail"].startswith("trend_following: cooldown: new entries in BTC-USDT")
    assert "60 min after" in locks[0]["detail"]
    assert not [e for e in again["events"] if e["kind"] == "protection_lock"]  # recorded once
    (shown,) = first["protection_locks"]
    assert (shown["strategy"], shown["rule"], shown["market"]) == ("trend_following", "cooldown", "BTC-USDT")
    assert later["protection_locks"] == []  # over after its 60 minutes
    logged = [r for r in journal["entries"] if "protection_lock" in str(r["arguments"])]
    assert len(logged) == 1 and "60 min after" in str(logged[0]["arguments"])

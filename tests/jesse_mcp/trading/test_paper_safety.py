# ruff: noqa: F811  (the ledger fixture is imported from test_paper_ledger and used as a parameter)
"""Regressions from the review of the paper ledger: what must keep working when things go wrong."""

from __future__ import annotations

import pytest

from shared.state import trading_state
from tests.jesse_mcp.trading.test_paper_ledger import BTC, STRATEGY, open_ledger, place, placed  # noqa: F401 (fixture)
from tests.mcp_helpers import payload, text_of
from tests.timeouts import hang_guard

pytestmark = pytest.mark.anyio


async def test_stops_still_execute_while_the_configuration_file_is_broken(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        pid = (await placed(s, notional_usd=900.0))["position"]["id"]
        ledger.deps.config.path.write_text("{ broken")
        refused = await s.call_tool("get_paper_portfolio", {})
        assert refused.isError and "config_invalid" in text_of(refused)
        ledger.prices.set("BTC-USDT", 50_000.0)
        events, _ = await ledger.deps.extras.paper.reconcile()
    assert ledger.position(pid)["exit_reason"] == "stop_loss"
    assert [e.kind for e in events if e.kind != "protection_lock"] == ["stop_loss"]


async def test_a_resting_order_of_a_demoted_strategy_is_cancelled_not_filled(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        oid = (await placed(s, type="limit", limit_price=59_000.0, notional_usd=590.0))["order"]["id"]
        payload(await s.call_tool("demote_stage", {"strategy": STRATEGY}))
        ledger.prices.set("BTC-USDT", 58_500.0)
        events, _ = await ledger.deps.extras.paper.reconcile()
    assert ledger.order(oid)["status"] == "cancelled"
    assert [e.kind for e in events] == ["order_cancelled"]


async def test_a_loss_over_midnight_counts_against_the_new_days_limit(open_ledger):
    ledger = open_ledger(**{"paper.daily_loss_limit": 0.001, "global_risk_settings.emergency_stop": 0.5})
    async with ledger.session() as s:
        await placed(s, notional_usd=900.0, leverage=1.0)
        seconds_to_midnight = 86_400 - ledger.clock() % 86_400
        ledger.clock.advance(seconds_to_midnight + 10)
        ledger.prices.set("BTC-USDT", BTC * 0.985)  # -1.5 % on 900 USD: 0.135 % of equity, past 0.1 %
        portfolio = payload(await s.call_tool("get_paper_portfolio", {}))
    assert portfolio["trading_state"] == "HALTED"
    assert "daily_loss_limit" in portfolio["trading_state_reason"]


async def test_an_order_of_exactly_the_size_limit_passes(open_ledger):
    ledger = open_ledger()
    async with ledger.session() as s:
        ok = await placed(s, notional_usd=1_000.0)  # 10 % of 10 000: at the limit, not past it
    check = next(c for c in ok["checks"] if c["rule"] == "max_position_size")
    assert check["passed"] and check["value"] == 1_000.0


async def test_a_refusal_while_halted_gives_the_halt_reason_and_how_to_resume(open_ledger):
    ledger = open_ledger()
    trading_state.write(ledger.deps.store, "HALTED", "kill switch (emergency_stop): test")
    async with ledger.session() as s:
        refused = await place(s, notional_usd=500.0)
    text = text_of(refused)
    assert "kill switch (emergency_stop): test" in text and "reset_kill_switch" in text


async def test_a_price_library_replaced_by_a_configuration_change_is_closed_once_idle(tmp_path):
    import httpx

    from jesse_mcp.trading.prices import ConfiguredPrices, NoPrice
    from shared.config.store import ConfigStore

    store = ConfigStore(tmp_path / "config.json")
    down = httpx.MockTransport(lambda request: httpx.Response(503))
    prices = ConfiguredPrices(store.load, tmp_path, down)
    with pytest.raises(NoPrice):
        await prices.quote("BTC-USDT")
    first = prices.current()
    store.update(lambda d: {**d, "price_config": {**d["price_config"], "quote_ttl_s": 1.0}})
    with pytest.raises(NoPrice):
        await prices.quote("BTC-USDT")
    assert prices.current() is not first and first.quotes.net.client.is_closed
    assert not prices.current().quotes.net.client.is_closed
    await prices.aclose()


async def test_an_http_server_with_no_client_connected_still_executes_stops(open_ledger):
    import socket

    import anyio

    ledger = open_ledger(**{"paper.monitor_interval_s": 0.05})
    async with ledger.session() as s:
        pid = (await placed(s, notional_usd=900.0))["position"]["id"]
    with socket.socket() as probe:  # a free port on loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ledger.server
    server.settings.host, server.settings.port = "127.0.0.1", port
    ledger.prices.set("BTC-USDT", 50_000.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.run_streamable_http_async)
        with anyio.fail_after(hang_guard(60)):
            while ledger.position(pid)["status"] == "open":
                await anyio.sleep(0.05)
        server.http_server.should_exit = True  # uvicorn closes its socket and returns
    assert ledger.position(pid)["exit_reason"] == "stop_loss"
    assert ledger.deps.extras.paper_monitor.runs >= 1


async def test_a_replaced_price_library_is_closed_even_when_the_request_is_cancelled(tmp_path):
    import anyio
    import httpx

    from jesse_mcp.trading.prices import ConfiguredPrices, NoPrice
    from shared.config.store import ConfigStore

    store = ConfigStore(tmp_path / "config.json")
    prices = ConfiguredPrices(store.load, tmp_path, httpx.MockTransport(lambda request: httpx.Response(503)))
    with pytest.raises(NoPrice):
        await prices.quote("BTC-USDT")
    first = prices.current()
    store.update(lambda d: {**d, "price_config": {**d["price_config"], "quote_ttl_s": 1.0}})
    with anyio.CancelScope() as scope:
        scope.cancel()
        await prices.quote("BTC-USDT")
    assert first.quotes.net.client.is_closed
    await prices.aclose()

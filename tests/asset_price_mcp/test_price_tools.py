"""asset-price-mcp end to end: MCP session -> tools -> providers -> a local server speaking their protocols."""

from __future__ import annotations

import pytest
from mcp.shared.memory import create_connected_server_and_client_session as connect

from asset_price_mcp.server import build_server
from tests.fake_price_server import FakeMarket
from tests.mcp_helpers import payload, text_of

pytestmark = pytest.mark.anyio

PRICES = {
    "binance": {"BTC-USDT": "60001.5", "ETH-USDT": "3000.1"},
    "coinbase": {"BTC-USD": "60010.0", "BTC-USDT": "60002.0", "ETH-USD": "3001.0"},
    "kraken": {"BTC-USD": "60012.0", "BTC-USDT": "60003.0", "ETH-USD": "3002.0"},
    "coingecko": {"BTC-USD": "60011", "ETH-USD": "3000.5"},
    "yahoo": {"BTC-USD": "60009.5", "AAPL": "190.25", "EURUSD=X": "1.0845"},
}


@pytest.fixture
def market(monkeypatch):
    with FakeMarket(PRICES) as m:
        for key, value in m.env().items():
            monkeypatch.setenv(key, value)
        yield m


async def test_get_price_is_a_cross_checked_consensus_from_every_provider(deps, market):
    async with connect(build_server(deps)) as client:
        btc = payload(await client.call_tool("get_price", {"symbol": "btc"}))
        usdt = payload(await client.call_tool("get_price", {"symbol": "BTC/USDT"}))
    assert btc["symbol"] == "BTC-USD" and btc["asked"] == "btc" and btc["kind"] == "crypto"
    assert {s["provider"] for s in btc["sources"]} == {"coinbase", "kraken", "coingecko", "yahoo"}
    assert btc["price_exact"] == "60010.5" and btc["sources_used"] == 4 and not btc["stale"]
    assert usdt["symbol"] == "BTC-USDT" and usdt["price_exact"] == "60002.0"  # USD and USDT stay apart
    assert {s["provider"] for s in usdt["sources"]} == {"binance", "coinbase", "kraken"}


async def test_a_provider_down_is_named_and_the_others_answer(deps, market):
    market.failing["kraken"] = 503
    async with connect(build_server(deps)) as client:
        btc = payload(await client.call_tool("get_price", {"symbol": "XBT/USD"}))
        providers = payload(await client.call_tool("list_providers", {}))["providers"]
    assert btc["sources_used"] == 3 and [f["provider"] for f in btc["failures"]] == ["kraken"]
    kraken = next(p for p in providers if p["provider"] == "kraken")
    assert kraken["errors"] == {"unavailable": 1} and kraken["base_url"] == market.url


async def test_get_prices_mixes_crypto_stocks_fx_and_reports_bad_symbols_one_by_one(deps, market):
    async with connect(build_server(deps)) as client:
        result = payload(
            await client.call_tool("get_prices", {"symbols": ["ETH", "$AAPL", "EUR/USD", "DOGE-USDT", "???"]})
        )
    by = {p["symbol"]: p for p in result["prices"]}
    assert by["ETH-USD"]["sources_used"] == 3 and by["AAPL"]["price_exact"] == "190.25"
    assert by["EUR-USD"]["kind"] == "fx" and by["EUR-USD"]["price_exact"] == "1.0845"
    assert "error" in by["DOGE-USDT"] and "error" in by["???"] and result["failed"] == 2


async def test_an_unknown_symbol_gets_suggestions(deps, market):
    async with connect(build_server(deps)) as client:
        result = await client.call_tool("get_price", {"symbol": "BTCC-USDT"})
    assert result.isError and "No provider knows BTCC-USDT" in text_of(result)
    assert "Did you mean: BTC-USDT" in text_of(result)


async def test_the_price_resource_and_the_journal(deps, market):
    async with connect(build_server(deps)) as client:
        resource = await client.read_resource("prices://ETH-USDT")
        await client.call_tool("get_price", {"symbol": "eth"})
        journal = payload(await client.call_tool("get_journal", {"limit": 5, "tool": "get_price"}))
    assert '"price_exact": "3000.1"' in resource.contents[0].text  # only Binance lists ETH-USDT here
    entry = journal["entries"][0]
    assert (entry["tool"], entry["decision"], entry["outcome"], entry["arguments"]) == (
        "get_price",
        "allow",
        "ok",
        {"symbol": "eth"},
    )


async def test_get_ohlcv_end_to_end_pages_binance_klines_and_leaves_the_open_bar_out(deps, market):
    async with connect(build_server(deps)) as client:
        answer = payload(
            await client.call_tool(
                "get_ohlcv", {"symbol": "BTCUSDT", "interval": "60m", "start": "2024-01-01", "end": "2024-03-01"}
            )
        )
        recent = payload(await client.call_tool("get_ohlcv", {"symbol": "BTC-USDT", "interval": "1h", "hours": 5}))
    assert answer["provider"] == "binance" and answer["count"] == 60 * 24 and answer["gaps"] == []
    assert answer["candles"][0][0] == "2024-01-01T00:00:00Z" and answer["candles"][-1][0] == "2024-02-29T23:00:00Z"
    assert sum("/api/v3/klines" in r for r in market.requests) == 3  # 1440 bars in pages of 1000, then 1
    assert not recent["open_bar_included"] and 4 <= recent["count"] <= 5


def test_other_servers_get_the_same_configured_price_service_as_a_library(home, monkeypatch):
    from asset_price_mcp.service import open_price_service

    monkeypatch.setenv("KRAKEN_BASE_URL", "http://127.0.0.1:9/")
    service = open_price_service(home)
    by_name = {p.name: p.base_url for p in service.providers}
    assert list(by_name) == ["binance", "coinbase", "kraken", "coingecko", "yahoo"]  # replay is off by default
    assert by_name["kraken"] == "http://127.0.0.1:9" and by_name["binance"] == "https://data-api.binance.vision"


async def test_a_price_answer_declares_the_fields_it_always_has_as_non_null(deps):
    """A successful answer always carries a consensus; only fields that can really be absent are nullable, which
    keeps the schema honest for clients and cheap for them to validate."""
    async with connect(build_server(deps)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    props = tools["get_price"].outputSchema["properties"]
    for field, kind in {"price": "number", "price_exact": "string", "as_of": "string", "age_s": "number"}.items():
        assert props[field]["type"] == kind, field
    assert props["currency"]["type"] == ["string", "null"]  # a stock quote may come without one

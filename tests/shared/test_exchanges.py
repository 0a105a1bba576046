"""Jesse's exchange names are accepted wherever an exchange is named, map to the store's keys and back, and reach
Jesse in backtests; an unknown exchange lists the valid ones."""

from __future__ import annotations

import numpy as np
import pytest
from mcp.shared.memory import create_connected_server_and_client_session as connect

from jesse_mcp.backtesting.catalog import BUILTIN
from jesse_mcp.backtesting.engine import jesse_inputs
from jesse_mcp.backtesting.plans import PlanRequest, build_plan
from jesse_mcp.candles.csv_import import synthetic_candles
from jesse_mcp.candles.ops import generate_synthetic
from jesse_mcp.server import build_server
from shared.config.models import TradingConfig
from shared.market.candles import MINUTE_MS, CandleError, CandleStore
from shared.market.exchanges import JESSE_NAMES, ExchangeError, jesse_exchange, jesse_name, store_key
from tests.jesse_mcp.candles.test_candle_tools import local_binance  # noqa: F401  (fixture)
from tests.mcp_helpers import payload, text_of

START = 1_704_067_200_000  # 2024-01-01T00:00:00Z
T0 = 1_747_699_200_000
CANDLES = "timestamp,open,high,low,close,volume\n" + "".join(
    f"{T0 + i * 60_000},100,101,99,100.5,1\n" for i in range(5)
)


def test_every_jesse_name_in_the_table_is_one_of_jesses_exchanges():
    from jesse.enums import exchanges

    known = {v for k, v in vars(exchanges).items() if not k.startswith("_") and isinstance(v, str)}
    assert set(JESSE_NAMES.values()) <= known
    assert {"Binance Spot", "Binance Perpetual Futures", "Bybit USDT Perpetual"} <= set(JESSE_NAMES.values())


@pytest.mark.parametrize(("key", "jesse"), sorted(JESSE_NAMES.items()))
def test_each_jesse_name_and_store_key_maps_to_the_store_key_and_back(key, jesse):
    assert store_key(jesse) == key and store_key(key) == key
    assert store_key(f"  {jesse.upper()}  ".replace(" ", "   ")) == key
    assert store_key(jesse.lower().replace(" ", "_")) == key
    assert jesse_name(key) == jesse and jesse_exchange(key) == jesse


def test_synthetic_and_labels_already_stored_are_accepted_and_run_on_binance_perpetual_futures():
    assert store_key("Synthetic") == "synthetic" and jesse_name("synthetic") is None
    assert store_key("MyFeed", stored=["myfeed"]) == "myfeed"
    assert jesse_exchange("synthetic") == jesse_exchange("myfeed") == "Binance Perpetual Futures"


def test_an_unknown_exchange_lists_both_spellings_of_the_valid_ones_and_no_symbol():
    with pytest.raises(ExchangeError) as caught:
        store_key("Binance Moon")
    message = str(caught.value)
    assert "Unknown exchange 'Binance Moon'" in message
    assert "binance (Binance Spot)" in message and "binance-perp (Binance Perpetual Futures)" in message
    assert "bybit-usdt-perp (Bybit USDT Perpetual)" in message and "synthetic" in message
    assert "BTC-USDT" not in message


def test_an_invalid_store_name_gives_an_exchange_example_for_an_exchange(tmp_path):
    with pytest.raises(CandleError) as caught:
        CandleStore(tmp_path).info("bad name!", "BTC-USDT")
    assert "e.g. binance" in str(caught.value) and "BTC-USDT" not in str(caught.value)


def _plan(store: CandleStore, exchange: str):
    return build_plan(
        cfg=TradingConfig(),
        candles=store,
        strategy=BUILTIN["trend_following"],
        req=PlanRequest(exchange=exchange, timeframe="1h"),
    )


@pytest.mark.parametrize(
    ("asked", "key", "jesse"),
    [
        ("Binance Perpetual Futures", "binance-perp", "Binance Perpetual Futures"),
        ("binance spot", "binance", "Binance Spot"),
        ("Bybit USDT Perpetual", "bybit-usdt-perp", "Bybit USDT Perpetual"),
        ("synthetic", "synthetic", "Binance Perpetual Futures"),
    ],
)
def test_a_backtest_plan_picks_the_stored_market_and_hands_jesse_its_jesse_name(tmp_path, asked, key, jesse):
    store = CandleStore(tmp_path)
    rows, _ = synthetic_candles(START, 20 * 1440, seed=3)
    for other in ("binance", "binance-perp", "bybit-usdt-perp"):
        store.save(other, "BTC-USDT", rows, "test", synthetic=True)
    generate_synthetic(store, "BTC-USDT", START, START + 20 * 1440 * MINUTE_MS, seed=3)
    plan = _plan(store, asked)
    inputs = jesse_inputs(plan.spec, np.zeros((plan.spec["warmup_minutes"] + 10, 6)))
    assert plan.request.exchange == key and plan.spec["exchange"] == key
    assert inputs["config"]["exchange"] == jesse and inputs["routes"][0]["exchange"] == jesse
    assert (
        list(inputs["candles"]) == [f"{jesse}-BTC-USDT"] and inputs["candles"][f"{jesse}-BTC-USDT"]["exchange"] == jesse
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("asked", "key"),
    [
        ("Binance Spot", "binance"),
        ("Binance Perpetual Futures", "binance-perp"),
        ("  bybit   USDT perpetual ", "bybit-usdt-perp"),
        ("bybit-usdt-perp", "bybit-usdt-perp"),
    ],
)
async def test_csv_import_accepts_jesses_names_and_the_list_shows_both_spellings(deps, home, asked, key):
    (home / "imports").mkdir()
    (home / "imports" / "btc.csv").write_text(CANDLES)
    async with connect(build_server(deps, warmup=())) as client:
        report = payload(
            await client.call_tool("import_candles_csv", {"path": "btc.csv", "symbol": "BTC-USDT", "exchange": asked})
        )
        listing = payload(await client.call_tool("list_candles", {"exchange": asked}))
        filled = payload(await client.call_tool("fill_candle_gaps", {"exchange": asked, "symbol": "BTC-USDT"}))
    assert report["exchange"] == key and filled["exchange"] == key
    assert [(m["exchange"], m["jesse_exchange"]) for m in listing["markets"]] == [(key, JESSE_NAMES[key])]


@pytest.mark.anyio
async def test_an_unknown_exchange_in_a_csv_import_lists_the_valid_ones_and_stores_nothing(deps, home):
    (home / "imports").mkdir()
    (home / "imports" / "btc.csv").write_text(CANDLES)
    async with connect(build_server(deps, warmup=())) as client:
        result = await client.call_tool(
            "import_candles_csv", {"path": "btc.csv", "symbol": "BTC-USDT", "exchange": "Binance Moon"}
        )
        listing = payload(await client.call_tool("list_candles", {}))
    assert result.isError and "Unknown exchange 'Binance Moon'" in text_of(result)
    assert "binance-perp (Binance Perpetual Futures)" in text_of(result) and "e.g. BTC-USDT" not in text_of(result)
    assert listing["count"] == 0 and not (home / "candles").exists()


@pytest.mark.anyio
async def test_import_candles_takes_binance_spot_by_jesses_name_and_points_other_exchanges_to_csv(
    deps,
    local_binance,  # noqa: F811
):
    async with connect(build_server(deps, warmup=())) as client:
        spot = await client.call_tool(
            "import_candles",
            {"symbol": "BTC-USDT", "exchange": "Binance Spot", "start": "2021-10-22T23:03:00", "days": 1},
        )
        bybit = await client.call_tool(
            "import_candles", {"symbol": "BTC-USDT", "exchange": "Bybit USDT Perpetual", "days": 1}
        )
        listing = payload(await client.call_tool("list_candles", {}))
    assert payload(spot)["exchange"] == "binance"
    assert bybit.isError and "Binance Spot only" in text_of(bybit) and "import_candles_csv" in text_of(bybit)
    assert [m["exchange"] for m in listing["markets"]] == ["binance"]


@pytest.mark.anyio
@pytest.mark.slow
@pytest.mark.xdist_group("jesse-pool")
async def test_a_real_backtest_runs_on_a_market_named_by_jesses_name(tmp_path_factory, jesse_pool):
    from shared.server.common import make_deps

    home = tmp_path_factory.mktemp("bt_exchange")
    rows, _ = synthetic_candles(START, 30 * 1440, seed=5)
    CandleStore(home / "candles").save("bybit-usdt-perp", "BTC-USDT", rows, "test", synthetic=True)
    deps = make_deps("jesse-mcp", home)
    try:
        async with connect(build_server(deps, pool=jesse_pool)) as client:
            result = payload(
                await client.call_tool(
                    "backtest", {"strategy": "trend_following", "exchange": "Bybit USDT Perpetual", "timeframe": "1h"}
                )
            )
    finally:
        deps.store.close()
    assert result["request"]["exchange"] == "bybit-usdt-perp" and result["request"]["symbol"] == "BTC-USDT"
    assert result["performance"]["trades"] >= 0

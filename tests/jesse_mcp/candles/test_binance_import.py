from __future__ import annotations

import httpx
import numpy as np
import pytest

from jesse_mcp.candles.binance import KlineRange, import_binance, parse_klines
from shared.market.candles import MINUTE_MS, CandleError, CandleStore
from shared.net.http import make_client

pytestmark = pytest.mark.anyio
T0 = 1_634_943_780_000  # 2021-10-22T23:03:00Z, as in Binance's recorded answer
NOW = T0 + 10_000 * MINUTE_MS


def kline(t: int) -> list:
    """A kline in Binance's real shape: prices as strings, close time = open + 59,999 ms."""
    base = 60_000 + (t - T0) // MINUTE_MS
    return [
        t,
        f"{base:.8f}",
        f"{base + 5:.8f}",
        f"{base - 5:.8f}",
        f"{base + 1:.8f}",
        "21.63272000",
        t + 59_999,
        "1313200.01340410",
        617,
        "12.28492000",
        "745719.41022840",
        "0",
    ]


class FakeBinance:
    """Serves /api/v3/klines like Binance: startTime/endTime/limit, ascending, up to `limit` rows."""

    def __init__(self, missing: range = range(0), fail_after: int | None = None, statuses: list[int] | None = None):
        self.requests: list[dict] = []
        self.missing, self.fail_after, self.statuses = missing, fail_after, list(statuses or [])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.requests.append(params)
        assert request.url.path == "/api/v3/klines" and params["interval"] == "1m"
        if self.statuses:
            status = self.statuses.pop(0)
            return httpx.Response(status, headers={"Retry-After": "3"}, json={"code": -1003, "msg": "Too many"})
        if self.fail_after is not None and len(self.requests) > self.fail_after:
            raise httpx.ConnectError("connection reset")
        start, end, limit = int(params["startTime"]), int(params["endTime"]), int(params["limit"])
        out, t = [], start - start % MINUTE_MS
        while t <= min(end, NOW) and len(out) < limit:
            if (t - T0) // MINUTE_MS not in self.missing:
                out.append(kline(t))
            t += MINUTE_MS
        return httpx.Response(200, json=out, headers={"X-MBX-USED-WEIGHT-1M": "2"})


def _client(fake: FakeBinance) -> httpx.AsyncClient:
    return make_client("https://binance.test", transport=httpx.MockTransport(fake))


async def _no_sleep(seconds: float) -> None:
    _no_sleep.slept.append(seconds)


_no_sleep.slept = []


async def test_paginated_import_stores_every_closed_minute_in_jesse_order(tmp_path):
    fake, store = FakeBinance(), CandleStore(tmp_path)
    async with _client(fake) as client:
        report = await import_binance(
            client, store, KlineRange("BTC-USDT", T0, T0 + 2500 * MINUTE_MS), now_ms=NOW, sleep=_no_sleep
        )
    assert report.fetched_rows == 2500 and report.requests == 3 and report.gaps == []
    rows = store.load("binance", "BTC-USDT")
    np.testing.assert_array_equal(rows[0], [T0, 60_000.0, 60_001.0, 60_005.0, 59_995.0, 21.63272])
    assert fake.requests[0]["symbol"] == "BTCUSDT"


async def test_the_still_open_newest_kline_is_not_stored(tmp_path):
    now = T0 + 10 * MINUTE_MS + 30_000  # half-way through the 11th minute
    assert len(parse_klines([kline(T0 + i * MINUTE_MS) for i in range(11)], now)) == 10


async def test_rate_limits_are_waited_out_with_retry_after(tmp_path):
    fake, store = FakeBinance(statuses=[429, 418]), CandleStore(tmp_path)
    _no_sleep.slept.clear()
    async with _client(fake) as client:
        report = await import_binance(
            client, store, KlineRange("BTC-USDT", T0, T0 + 10 * MINUTE_MS), now_ms=NOW, sleep=_no_sleep
        )
    assert report.fetched_rows == 10 and _no_sleep.slept[:2] == [3.0, 3.0]


async def test_region_refusal_451_says_what_to_do(tmp_path):
    def refuse(request):
        return httpx.Response(451, json={"code": 0, "msg": "Service unavailable from a restricted location"})

    async with make_client("https://binance.test", transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(CandleError, match=r"HTTP 451.*BINANCE_BASE_URL"):
            await import_binance(
                client,
                CandleStore(tmp_path),
                KlineRange("BTC-USDT", T0, T0 + MINUTE_MS * 5),
                now_ms=NOW,
                sleep=_no_sleep,
            )


async def test_an_interrupted_import_keeps_its_pages_and_resumes_where_it_stopped(tmp_path):
    store = CandleStore(tmp_path)
    broken = FakeBinance(fail_after=2)
    async with _client(broken) as client:
        with pytest.raises(CandleError, match="could not be reached"):
            await import_binance(
                client, store, KlineRange("BTC-USDT", T0, T0 + 3500 * MINUTE_MS), now_ms=NOW, sleep=_no_sleep
            )
    assert store.info("binance", "BTC-USDT").rows == 2000
    healthy = FakeBinance()
    async with _client(healthy) as client:
        report = await import_binance(
            client, store, KlineRange("BTC-USDT", T0, T0 + 3500 * MINUTE_MS), now_ms=NOW, sleep=_no_sleep
        )
    assert report.resumed_from == "2021-10-24T08:23:00Z" and report.fetched_rows == 1500
    assert int(healthy.requests[0]["startTime"]) == T0 + 2000 * MINUTE_MS
    assert store.info("binance", "BTC-USDT").rows == 3500


async def test_exchange_outages_are_reported_as_gaps(tmp_path):
    fake, store = FakeBinance(missing=range(100, 180)), CandleStore(tmp_path)
    async with _client(fake) as client:
        report = await import_binance(
            client, store, KlineRange("BTC-USDT", T0, T0 + 300 * MINUTE_MS), now_ms=NOW, sleep=_no_sleep
        )
    assert [(g.missing_minutes, g.first_missing) for g in report.gaps] == [(80, "2021-10-23T00:43:00Z")]

"""Candles through the provider layer: pagination, trimming, closed bars, gaps, failover and caching."""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace

import httpx
import pytest

from asset_price_mcp.ohlcv import OhlcvService, find_bar_gaps
from asset_price_mcp.providers.base import Candle, http_failure
from asset_price_mcp.providers.runtime import Provider, ProviderClient
from asset_price_mcp.quotes import PriceError

pytestmark = pytest.mark.anyio
H = 3_600_000
T0 = 1_704_067_200_000
NOW = (T0 + 30 * H + 1_800_000) / 1000  # half way through bar 30


def fake(name: str, max_candles: int = 10, missing: tuple[int, ...] = ()):
    """GET /c?from=ms&n=k -> up to k hourly bars [open_ms, price] from `from`, up to 'now' (bar 30 still open)."""

    def candles_request(base_url, symbol, interval, start_ms, end_ms, limit):
        return httpx.Request("GET", f"{base_url}/c", params={"from": start_ms, "n": limit})

    def parse_candles(status, headers, body, symbol, interval, now_ms):
        if status != 200:
            raise http_failure(name, status, headers, body)
        return [
            Candle(t, Decimal(p), Decimal(p) + 1, Decimal(p) - 1, Decimal(p), Decimal(1), t + H <= now_ms)
            for t, p in json.loads(body)
        ]

    return SimpleNamespace(
        NAME=name,
        MAX_CANDLES=max_candles,
        INTERVALS={"1h": "1h"},
        provider_symbol=lambda s: s,
        candles_request=candles_request,
        parse_candles=parse_candles,
        missing=missing,
    )


def net(handler, *modules) -> ProviderClient:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ProviderClient([Provider(m, f"http://{m.NAME}.test", retries=0) for m in modules], client, lambda: NOW, 0)


def hourly(missing=(), down=()):
    log = []

    def handler(request: httpx.Request) -> httpx.Response:
        log.append(request)
        if request.url.host in down:
            return httpx.Response(503)
        start, n = int(request.url.params["from"]), int(request.url.params["n"])
        bars = [[t, str(100 + (t - T0) // H)] for t in range(start, start + n * H, H) if t <= T0 + 30 * H]
        return httpx.Response(200, json=[b for b in bars if (b[0] - T0) // H not in missing])

    return handler, log


async def test_pages_across_the_provider_limit_and_trims_to_the_range():
    handler, log = hourly()
    answer = await OhlcvService(net(handler, fake("a"))).ohlcv("BTC-USD", "1h", T0 + 5 * H, T0 + 28 * H)
    assert answer.count == 23 and answer.candles[0][0] == "2024-01-01T05:00:00Z" and answer.candles[-1][4] == 127.0
    assert len(log) == 3 and answer.gaps == [] and not answer.open_bar_included


async def test_the_open_bar_is_left_out_unless_asked_for():
    handler, _ = hourly()
    svc = OhlcvService(net(handler, fake("a")))
    closed = await svc.ohlcv("BTC-USD", "1h", T0 + 20 * H, T0 + 40 * H)
    with_open = await svc.ohlcv("BTC-USD", "1h", T0 + 20 * H, T0 + 40 * H, closed_only=False)
    assert closed.count == 10 and with_open.count == 11 and with_open.open_bar_included


async def test_gaps_are_reported_exactly():
    handler, _ = hourly(missing=(7, 8))
    answer = await OhlcvService(net(handler, fake("a"))).ohlcv("BTC-USD", "1h", T0, T0 + 12 * H)
    assert [(g.first_missing, g.last_missing, g.missing_bars) for g in answer.gaps] == [
        ("2024-01-01T07:00:00Z", "2024-01-01T08:00:00Z", 2)
    ]


async def test_a_failing_provider_is_skipped_and_named():
    handler, _ = hourly(down=("a.test",))
    answer = await OhlcvService(net(handler, fake("a"), fake("b"))).ohlcv("BTC-USD", "1h", T0, T0 + 5 * H)
    assert answer.provider == "b" and [(f.provider, f.kind) for f in answer.failures] == [("a", "unavailable")]


async def test_all_failing_is_an_error_naming_each_and_closed_history_is_cached():
    handler, log = hourly(down=("a.test", "b.test"))
    with pytest.raises(PriceError, match=r"a \(unavailable\).*b \(unavailable\)"):
        await OhlcvService(net(handler, fake("a"), fake("b"))).ohlcv("BTC-USD", "1h", T0, T0 + 5 * H)
    handler, log = hourly()
    svc = OhlcvService(net(handler, fake("a")))
    await svc.ohlcv("BTC-USD", "1h", T0, T0 + 5 * H)
    again = await svc.ohlcv("BTC-USD", "1h", T0, T0 + 5 * H)
    assert again.cached and len(log) == 1


async def test_too_many_bars_are_refused_with_what_to_do():
    handler, _ = hourly()
    with pytest.raises(PriceError, match="at most 5000 per call"):
        await OhlcvService(net(handler, fake("a"))).ohlcv("BTC-USD", "1h", T0 - 6000 * H, T0)


def test_bar_gaps_from_open_times():
    assert find_bar_gaps([0, H, 4 * H], H)[0].missing_bars == 2 and find_bar_gaps([0, H], H) == []

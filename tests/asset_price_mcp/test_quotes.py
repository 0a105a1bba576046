"""Fan-out, consensus, failover, stale fallback and breakers of asset_price_mcp.quotes, over httpx.MockTransport."""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace

import httpx
import pytest

from asset_price_mcp.providers.base import ProviderError, Quote, dec, http_failure
from asset_price_mcp.providers.runtime import Breaker, Provider
from asset_price_mcp.quotes import PriceError, QuoteService, QuoteSettings, consensus

pytestmark = pytest.mark.anyio
NOW = 1_750_000_000.0


def fake_provider(name: str, batch: int = 10, serves: tuple[str, ...] = ("BTC-USD", "ETH-USD", "SOL-USD")):
    """A provider speaking a tiny JSON protocol: GET /q?s=A,B -> {"A": "1.5", ...}, or {"error": "..."}."""

    def quotes_request(base_url: str, symbols: list[str]) -> httpx.Request:
        return httpx.Request("GET", f"{base_url}/q", params={"s": ",".join(symbols)})

    def parse_quotes(status, headers, body, symbols, now_ms):
        if status != 200:
            raise http_failure(name, status, headers, body)
        try:
            data = json.loads(body)
        except ValueError:
            raise ProviderError(name, "bad_response", "not JSON") from None
        if "error" in data:
            raise ProviderError(name, "provider_error", data["error"])
        return {
            s: Quote(s, dec(data[s], name, "price"), int(data.get("_ts", now_ms)), name, currency="USD")
            for s in symbols
            if s in data
        }

    return SimpleNamespace(
        NAME=name,
        QUOTE_BATCH=batch,
        provider_symbol=lambda s: s if s in serves else None,
        quotes_request=quotes_request,
        parse_quotes=parse_quotes,
    )


class Market:
    """The HTTP side: per provider host, a behaviour (prices, or a failure) and a request log."""

    def __init__(self, prices: dict[str, dict[str, str]]):
        self.prices = prices
        self.behaviour: dict[str, str] = {}
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        host = request.url.host
        mode = self.behaviour.get(host, "ok")
        if mode == "500":
            return httpx.Response(500, text="oops")
        if mode == "429":
            return httpx.Response(429, headers={"Retry-After": "60"}, text="slow down")
        if mode == "garbage":
            return httpx.Response(200, text="<html>not json")
        if mode == "envelope":
            return httpx.Response(200, json={"error": "EService:Unavailable"})
        if mode == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        asked = request.url.params["s"].split(",")
        if mode == "strict" and any(s not in self.prices[host] for s in asked):
            return httpx.Response(404, text="unknown symbol in batch")  # like Binance -1121 / Kraken EQuery
        return httpx.Response(200, json={s: p for s, p in self.prices[host].items() if s in asked or s == "_ts"})


def service(market: Market, names=("a", "b", "c"), clock=lambda: NOW, **kw) -> QuoteService:
    client = httpx.AsyncClient(transport=httpx.MockTransport(market.handler))
    providers = [Provider(fake_provider(n), f"http://{n}.test", retries=0) for n in names]
    return QuoteService(providers, client, QuoteSettings(backoff_s=0, **kw), clock=clock)


PRICES = {
    "a.test": {"BTC-USD": "60000.10", "ETH-USD": "3000"},
    "b.test": {"BTC-USD": "60010.30", "ETH-USD": "3001"},
    "c.test": {"BTC-USD": "60005.00", "ETH-USD": "2999"},
}


async def test_consensus_is_the_median_with_spread_and_exact_decimals():
    (btc,) = await service(Market(PRICES)).prices(["BTC-USD"])
    assert btc.price_exact == "60005.00" and btc.sources_used == 3 and btc.outliers == []
    assert btc.spread_bps == pytest.approx(
        float((Decimal("60010.30") - Decimal("60000.10")) / Decimal("60005") * 10000)
    )
    assert {s.provider for s in btc.sources} == {"a", "b", "c"} and not btc.stale and not btc.cached


@pytest.mark.parametrize("failure", ["500", "429", "garbage", "envelope", "timeout"])
async def test_one_provider_down_the_others_answer_and_the_failure_is_named(failure):
    market = Market(PRICES)
    market.behaviour["b.test"] = failure
    (btc,) = await service(market).prices(["BTC-USD"])
    assert btc.sources_used == 2 and btc.price_exact == str((Decimal("60000.10") + Decimal("60005.00")) / 2)
    kinds = {"500": "unavailable", "429": "rate_limited", "garbage": "bad_response", "envelope": "provider_error"}
    assert [(f.provider, f.kind) for f in btc.failures] == [("b", kinds.get(failure, "unavailable"))]


async def test_an_outlier_is_excluded_and_named():
    prices = {**PRICES, "c.test": {"BTC-USD": "61500"}}
    (btc,) = await service(Market(prices)).prices(["BTC-USD"])
    assert btc.outliers == ["c"] and btc.sources_used == 2
    c = next(s for s in btc.sources if s.provider == "c")
    assert not c.used and c.why_excluded.startswith("outlier: ")
    assert btc.price_exact == str((Decimal("60000.10") + Decimal("60010.30")) / 2)


async def test_all_down_with_a_warm_cache_serves_a_stale_flagged_value():
    market, now = Market(PRICES), [NOW]
    svc = service(market, clock=lambda: now[0])
    await svc.prices(["BTC-USD"])
    market.behaviour = dict.fromkeys(("a.test", "b.test", "c.test"), "500")
    now[0] += 30
    (btc,) = await svc.prices(["BTC-USD"])
    assert btc.stale and btc.cached and btc.price_exact == "60005.00" and btc.age_s == pytest.approx(30)
    assert {f.provider for f in btc.failures} == {"a", "b", "c"}


async def test_all_down_with_a_cold_cache_names_each_failure():
    market = Market(PRICES)
    market.behaviour = {"a.test": "500", "b.test": "429", "c.test": "garbage"}
    with pytest.raises(PriceError) as e:
        await service(market).price("BTC-USD")
    text = str(e.value)
    assert "a (unavailable)" in text and "b (rate_limited)" in text and "c (bad_response)" in text


async def test_fresh_cache_answers_without_asking_again():
    market, now = Market(PRICES), [NOW]
    svc = service(market, clock=lambda: now[0], quote_ttl_s=5)
    await svc.prices(["BTC-USD"])
    asked = len(market.requests)
    now[0] += 2
    (again,) = await svc.prices(["BTC-USD"])
    assert again.cached and len(market.requests) == asked
    now[0] += 10
    (fresh,) = await svc.prices(["BTC-USD"])
    assert not fresh.cached and len(market.requests) == 2 * asked


async def test_many_symbols_go_in_batches_one_per_provider_and_batch_size():
    prices = {h: {f"S{i}-USD": str(100 + i) for i in range(25)} for h in ("a.test", "b.test")}
    market = Market(prices)
    client = httpx.AsyncClient(transport=httpx.MockTransport(market.handler))
    serves = tuple(f"S{i}-USD" for i in range(25))
    providers = [Provider(fake_provider(n, batch=10, serves=serves), f"http://{n}.test") for n in ("a", "b")]
    answers = await QuoteService(providers, client, clock=lambda: NOW).prices(list(serves))
    assert [a.price_exact for a in answers] == [str(100 + i) for i in range(25)]
    assert len(market.requests) == 6  # 3 batches of <= 10 per provider, not 50 round trips


async def test_old_answers_are_not_fresh_and_say_why():
    prices = {h: {"BTC-USD": "60000", "_ts": str(int((NOW - 600) * 1000))} for h in ("a.test", "b.test", "c.test")}
    with pytest.raises(PriceError, match="Answers too old: a 600 s"):
        await service(Market(prices)).price("BTC-USD")


async def test_a_symbol_no_provider_serves_is_a_clear_error():
    with pytest.raises(PriceError, match="No configured provider serves DOGE-USD"):
        await service(Market(PRICES)).price("DOGE-USD")


async def test_the_breaker_opens_after_repeated_failures_and_half_opens_after_the_cooldown():
    market, now = Market(PRICES), [NOW]
    svc = service(market, clock=lambda: now[0])
    market.behaviour["b.test"] = "500"
    for _ in range(3):
        await svc.prices(["ETH-USD"])
        now[0] += 6  # past the quote cache
    b = svc.providers[1]
    assert b.breaker.state(now[0]) == "open"
    before = sum(r.url.host == "b.test" for r in market.requests)
    (eth,) = await svc.prices(["ETH-USD"])
    assert sum(r.url.host == "b.test" for r in market.requests) == before  # not even asked
    assert "circuit open" in next(f.message for f in eth.failures if f.provider == "b")
    market.behaviour.clear()
    now[0] += 31
    (eth,) = await svc.prices(["ETH-USD"])
    assert eth.sources_used == 3 and b.breaker.state(now[0]) == "closed"
    assert svc.health()[1]["errors"] == {"unavailable": 3}


def test_retry_after_keeps_the_breaker_open_at_least_that_long():
    breaker = Breaker(threshold=3, cooldown_s=30)
    breaker.failure(NOW, retry_after_s=120)
    assert breaker.state(NOW + 60) == "open" and breaker.state(NOW + 121) == "half_open"
    assert breaker.allow(NOW + 121) and not breaker.allow(NOW + 121)  # one trial at a time


def test_two_disagreeing_sources_both_stay_and_the_spread_shows_it():
    quotes = [Quote("X-USD", Decimal("100"), 0, "a"), Quote("X-USD", Decimal("110"), 0, "b")]
    median, details, outliers = consensus("X-USD", quotes, 0, 100, 120)
    assert median == Decimal("105") and outliers == [] and all(d.used for d in details)


async def test_one_unknown_symbol_does_not_hide_the_rest_of_a_batch():
    market = Market({h: {"BTC-USD": "60000", "ETH-USD": "3000"} for h in ("a.test", "b.test", "c.test")})
    market.behaviour = dict.fromkeys(("a.test", "b.test", "c.test"), "strict")
    svc = service(market)
    for p in svc.providers:
        p.module.provider_symbol = lambda s: s  # claims to serve anything, as a batch endpoint would
    btc, eth, nope = await svc.prices(["BTC-USD", "ETH-USD", "NOPE-USD"])
    assert btc.price_exact == "60000" and eth.price_exact == "3000" and btc.sources_used == 3
    assert nope.symbol == "NOPE-USD" and nope.error.startswith("No provider knows NOPE-USD")
    assert all(p.breaker.state(NOW) == "closed" for p in svc.providers)  # unknown symbols are not outages


def test_retry_after_is_read_from_any_mapping_whatever_its_case():
    from asset_price_mcp.providers.base import retry_after_seconds

    assert retry_after_seconds({"Retry-After": "7"}) == 7.0 and retry_after_seconds({"retry-after": "x"}) is None


async def test_a_large_request_skips_one_request_per_symbol_providers_where_batches_cover_it():
    serves = tuple(f"S{i}-USD" for i in range(20))
    prices = {h: {s: "100" for s in serves} for h in ("a.test", "b.test", "c.test")}
    market = Market(prices)
    client = httpx.AsyncClient(transport=httpx.MockTransport(market.handler))
    providers = [
        Provider(fake_provider("a", batch=10, serves=(*serves, "ONLY-USD")), "http://a.test"),
        Provider(fake_provider("b", batch=10, serves=serves), "http://b.test"),
        Provider(fake_provider("c", batch=1, serves=(*serves[:5], "ONLY-USD")), "http://c.test"),
    ]
    prices["a.test"]["ONLY-USD"] = "5"
    prices["c.test"]["ONLY-USD"] = "5"
    answers = await QuoteService(providers, client, clock=lambda: NOW).prices([*serves, "ONLY-USD"])
    assert all(a.price_exact == "100" for a in answers[:20]) and answers[20].sources_used == 2
    hosts = [r.url.host for r in market.requests]
    assert hosts.count("c.test") == 1  # only for ONLY-USD, which one batch provider covers
    small = await QuoteService(providers, client, clock=lambda: NOW).prices(list(serves[:3]))
    assert {s.provider for s in small[0].sources} == {"a", "b", "c"}  # small requests ask everyone

"""Prices from several providers at once: fan-out, consensus, outliers, cache, stale fallback and circuit breakers.

The providers are pure modules (asset_price_mcp.providers.*): this module sends their requests through one shared
httpx client with a per-provider concurrency limit, timeout, retries with backoff and a circuit breaker, then agrees
on a consensus: the median of the fresh answers, with outliers beyond `outlier_bps` from it excluded and named.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import anyio
import httpx
from pydantic import BaseModel, Field

from asset_price_mcp.providers.base import ProviderError, Quote
from asset_price_mcp.providers.runtime import Clock, Provider, ProviderClient
from shared.errors import TradingMcpError


class PriceError(TradingMcpError):
    """No provider could give a price, and no earlier value may stand in."""


# --- answers -----------------------------------------------------------------------------------------------------
class SourcePrice(BaseModel):
    provider: str
    price: str = Field(description="Exact decimal, as the provider gave it.")
    as_of: str = Field(description="UTC time the provider says the price was valid.")
    age_s: float
    currency: str | None
    deviation_bps: float | None = Field(description="Distance from the consensus, basis points.")
    used: bool = Field(description="False when excluded as stale or as an outlier.")
    why_excluded: str | None = None


class SourceFailure(BaseModel):
    provider: str
    kind: str
    message: str


class PriceFailure(BaseModel):
    symbol: str
    error: str


class PriceAnswer(BaseModel):
    symbol: str
    price: float = Field(description="Consensus: the median of the fresh, agreeing answers.")
    price_exact: str = Field(description="The consensus as an exact decimal string.")
    currency: str | None
    as_of: str = Field(description="Newest time among the answers used.")
    sources_used: int
    spread_bps: float = Field(description="Highest minus lowest used price, basis points of the consensus.")
    outliers: list[str] = Field(description="Providers excluded for being too far from the others.")
    stale: bool = Field(description="True when every provider failed and this is the last good value.")
    age_s: float = Field(description="Seconds since the newest price used.")
    cached: bool
    sources: list[SourcePrice]
    failures: list[SourceFailure]
    replay: bool = Field(False, description="True when the price comes from stored history (replay), not live.")
    synthetic: bool = Field(
        False, description="True when a replayed price comes from generated (synthetic) candles, not a market."
    )


def _iso(ms: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def consensus(
    symbol: str, quotes: list[Quote], now_ms: int, outlier_bps: float, max_age_s: float
) -> tuple[Decimal | None, list[SourcePrice], list[str]]:
    """Median of the fresh quotes; with three or more, quotes farther than `outlier_bps` from it are excluded (and
    the median taken again over the rest). With two that disagree, both stay and the spread says so."""

    def is_fresh(q: Quote) -> bool:
        return bool(q.extra.get("replay")) or (now_ms - q.ts_ms) / 1000 <= max_age_s

    fresh = [q for q in quotes if is_fresh(q)]
    median = Decimal(statistics.median([q.price for q in fresh])) if fresh else None
    outliers: list[str] = []
    if median is not None and len(fresh) >= 3:
        far = [q for q in fresh if abs(q.price - median) / median * 10_000 > Decimal(str(outlier_bps))]
        if len(far) < len(fresh) / 2:  # a minority: exclude them; a majority disagreeing means no agreement to enforce
            outliers = [q.provider for q in far]
            kept = [q for q in fresh if q.provider not in outliers]
            median = Decimal(statistics.median([q.price for q in kept]))
    details = []
    for q in quotes:
        age = (now_ms - q.ts_ms) / 1000
        dev = float(abs(q.price - median) / median * 10_000) if median else None
        why = None
        if not is_fresh(q):
            why = f"stale: {age:.0f} s old (limit {max_age_s:g} s)"
        elif q.provider in outliers:
            why = f"outlier: {dev:.0f} bps from the others (limit {outlier_bps:g} bps)"
        details.append(
            SourcePrice(
                provider=q.provider,
                price=str(q.price),
                as_of=_iso(q.ts_ms),
                age_s=round(age, 3),
                currency=q.currency,
                deviation_bps=round(dev, 2) if dev is not None else None,
                used=why is None,
                why_excluded=why,
            )
        )
    return median, details, outliers


# --- the service -------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QuoteSettings:
    """How the consensus is reached and kept: cache life, outlier and staleness limits, retry backoff, and how many
    symbols are asked one by one before switching to batches."""

    quote_ttl_s: float = 5.0
    outlier_bps: float = 100.0
    max_age_s: float = 120.0
    backoff_s: float = 0.2
    single_request_limit: int = 10


@dataclass
class CacheEntry:
    answer: PriceAnswer
    stored_at: float


class QuoteService:
    def __init__(
        self,
        providers: list[Provider],
        client: httpx.AsyncClient,
        settings: QuoteSettings = QuoteSettings(),
        *,
        clock: Clock = time.time,
    ):
        self.providers = providers
        self.clock = clock
        self.quote_ttl_s = settings.quote_ttl_s  # plain attributes: a benchmark may lengthen the cache life
        self.outlier_bps = settings.outlier_bps
        self.max_age_s = settings.max_age_s
        self.single_request_limit = settings.single_request_limit
        self.net = ProviderClient(providers, client, clock, settings.backoff_s)
        self._cache: dict[str, CacheEntry] = {}

    def health(self) -> list[dict[str, Any]]:
        return self.net.health()

    async def _quotes_from(self, provider: Provider, symbols: list[str]) -> dict[str, Quote]:
        """Quotes of `symbols` from one provider, in batches as large as it allows, concurrently."""
        module = provider.module
        if hasattr(module, "local_quotes"):  # in-process (replay): no HTTP, same breaker and health
            now_ms = int(self.clock() * 1000)

            async def local() -> dict[str, Quote]:
                return module.local_quotes(provider.base_url, symbols, now_ms)

            return await self.net.call(provider, local)
        batches = [symbols[i : i + module.QUOTE_BATCH] for i in range(0, len(symbols), module.QUOTE_BATCH)]
        out: dict[str, Quote] = {}
        errors: list[ProviderError] = []

        async def one(batch: list[str]) -> None:
            async def go() -> dict[str, Quote]:
                status, headers, body = await self.net.send(provider, module.quotes_request(provider.base_url, batch))
                return module.parse_quotes(status, headers, body, batch, int(self.clock() * 1000))

            try:
                out.update(await self.net.call(provider, go))
            except ProviderError as e:
                if e.kind == "not_found" and len(batch) > 1:
                    # some providers fail a whole batch for one unknown symbol: halve it so the rest still answer
                    mid = len(batch) // 2
                    await one(batch[:mid])
                    await one(batch[mid:])
                else:
                    errors.append(e)

        async with anyio.create_task_group() as tg:
            for batch in batches:
                tg.start_soon(one, batch)
        if errors and not out:
            raise errors[0]
        return out

    async def price(self, symbol: str) -> PriceAnswer:
        """One consensus price; raises PriceError when there is none."""
        (answer,) = await self.prices([symbol])
        if isinstance(answer, PriceFailure):
            raise PriceError(answer.error)
        return answer

    async def prices(self, symbols: list[str]) -> list[PriceAnswer | PriceFailure]:
        """Consensus prices of canonical symbols, fanned out to every provider that serves them; a symbol with no
        price gets a PriceFailure saying why, and does not affect the others."""
        now = self.clock()
        answers: dict[str, PriceAnswer | PriceFailure] = {}
        wanted = []
        for s in dict.fromkeys(symbols):
            hit = self._cache.get(s)
            if hit is not None and now - hit.stored_at <= self.quote_ttl_s and not hit.answer.stale:
                answers[s] = hit.answer.model_copy(update={"cached": True})
            else:
                wanted.append(s)
        per_provider = self._plan(wanted)
        results: dict[str, dict[str, Quote]] = {}
        failures: dict[str, ProviderError] = {}

        async def ask(p: Provider) -> None:
            try:
                results[p.name] = await self._quotes_from(p, per_provider[p.name])
            except ProviderError as e:
                failures[p.name] = e

        async with anyio.create_task_group() as tg:
            for p in self.providers:
                if per_provider[p.name]:
                    tg.start_soon(ask, p)
        now_ms = int(self.clock() * 1000)
        for s in wanted:
            try:
                answers[s] = self._answer(s, results, failures, per_provider, now_ms)
            except PriceError as e:
                answers[s] = PriceFailure(symbol=s, error=str(e))
        return [answers[s] for s in dict.fromkeys(symbols)]

    def _plan(self, wanted: list[str]) -> dict[str, list[str]]:
        """Which provider is asked for which symbols. Everyone who serves a symbol is asked, except that in a large
        request a provider without a batch endpoint (one request per symbol) is asked only for the symbols that
        fewer than two batch-capable providers serve: many symbols stay a few round trips, not one per symbol."""
        serving = {p.name: [s for s in wanted if p.serves(s)] for p in self.providers}
        if len(wanted) <= self.single_request_limit:
            return serving
        batched = [p for p in self.providers if getattr(p.module, "QUOTE_BATCH", 1) > 1]
        covered = {s: sum(s in serving[p.name] for p in batched) for s in wanted}
        return {
            p.name: serving[p.name] if p in batched else [s for s in serving[p.name] if covered[s] < 2]
            for p in self.providers
        }

    def _answer(
        self,
        symbol: str,
        results: dict[str, dict[str, Quote]],
        failures: dict[str, ProviderError],
        per_provider: dict[str, list[str]],
        now_ms: int,
    ) -> PriceAnswer:
        asked = [name for name, syms in per_provider.items() if symbol in syms]
        quotes = [results[name][symbol] for name in asked if symbol in results.get(name, {})]
        failed = [
            SourceFailure(provider=name, kind=failures[name].kind, message=failures[name].message)
            for name in asked
            if name in failures
        ]
        failed += [
            SourceFailure(provider=name, kind="not_found", message=f"{name}: no price for {symbol} in its answer")
            for name in asked
            if name not in failures and symbol not in results.get(name, {})
        ]
        median, details, outliers = consensus(symbol, quotes, now_ms, self.outlier_bps, self.max_age_s)
        if median is None:
            return self._fallback(symbol, asked, failed, details, now_ms)
        used = [q for q, d in zip(quotes, details, strict=True) if d.used]
        prices = [q.price for q in used]
        newest = max(q.ts_ms for q in used)
        answer = PriceAnswer(
            symbol=symbol,
            price=float(median),
            price_exact=str(median),
            currency=used[0].currency,
            as_of=_iso(newest),
            sources_used=len(used),
            spread_bps=float((max(prices) - min(prices)) / median * 10_000),
            outliers=outliers,
            stale=False,
            age_s=round((now_ms - newest) / 1000, 3),
            cached=False,
            sources=details,
            failures=failed,
            replay=any(q.extra.get("replay") for q in used),
            synthetic=any(q.extra.get("synthetic") for q in used),
        )
        self._cache[symbol] = CacheEntry(answer, self.clock())
        return answer

    def _fallback(
        self, symbol: str, asked: list[str], failed: list[SourceFailure], details: list[SourcePrice], now_ms: int
    ) -> PriceAnswer:
        if not asked:
            raise PriceError(
                f"No configured provider serves {symbol}. Providers: "
                + ", ".join(f"{p.name}" for p in self.providers)
                + "."
            )
        hit = self._cache.get(symbol)
        if hit is not None:
            last = hit.answer
            age = round(now_ms / 1000 - hit.stored_at + last.age_s, 3)
            return last.model_copy(
                update={"stale": True, "cached": True, "age_s": age, "failures": failed, "sources": details}
            )
        if failed and all(f.kind == "not_found" for f in failed):
            raise PriceError(
                f"No provider knows {symbol}: " + "; ".join(f.message for f in failed) + ". Check the symbol."
            )
        reasons = "; ".join(f"{f.provider} ({f.kind}): {f.message}" for f in failed) or "no fresh answer"
        stale = [d for d in details if not d.used]
        extra = " Answers too old: " + ", ".join(f"{d.provider} {d.age_s:.0f} s" for d in stale) + "." if stale else ""
        raise PriceError(
            f"No price for {symbol}: every provider failed and nothing is cached. {reasons}.{extra} "
            "Try again shortly; list_providers shows each provider's health."
        )

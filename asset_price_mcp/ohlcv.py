"""Candles from the providers: first healthy provider that has the symbol and interval, paginated across its limit,
trimmed to the range, closed bars by default, gaps reported, closed history cached."""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import pairwise

from pydantic import BaseModel, Field

from asset_price_mcp.providers.base import INTERVAL_MS, Candle, ProviderError
from asset_price_mcp.providers.runtime import Provider, ProviderClient
from asset_price_mcp.quotes import PriceError, SourceFailure

COLUMNS = ["open_time", "open", "high", "low", "close", "volume"]
MAX_BARS = 5000


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


class BarGap(BaseModel):
    first_missing: str
    last_missing: str
    missing_bars: int


class OhlcvAnswer(BaseModel):
    symbol: str
    interval: str
    provider: str
    start: str
    end: str = Field(description="Exclusive end of the range asked for.")
    columns: list[str] = Field(default_factory=lambda: list(COLUMNS))
    candles: list[list[str | float]] = Field(description="Rows in `columns` order, oldest first (UTC open times).")
    count: int
    closed_only: bool
    open_bar_included: bool = Field(description="True when the last row is a bar that has not closed yet.")
    gaps: list[BarGap] = Field(description="Missing bars inside the range (for stocks: also market closures).")
    failures: list[SourceFailure] = Field(description="Providers tried before this one, and why they failed.")
    replay: bool = Field(False, description="True when the candles come from stored history (replay).")
    cached: bool = False


def find_bar_gaps(opens: list[int], step: int) -> list[BarGap]:
    gaps = []
    for a, b in pairwise(opens):
        if b - a > step:
            gaps.append(
                BarGap(first_missing=_iso(a + step), last_missing=_iso(b - step), missing_bars=(b - a) // step - 1)
            )
    return gaps


@dataclass(frozen=True, slots=True)
class _Query:
    """One candle request, its start aligned to the interval; also the cache key."""

    symbol: str
    interval: str
    start_ms: int
    end_ms: int
    closed_only: bool


@dataclass
class _Cached:
    answer: OhlcvAnswer
    stored_at: float


class OhlcvService:
    def __init__(self, net: ProviderClient, candle_ttl_s: float = 86_400.0):
        self.net = net
        self.candle_ttl_s = candle_ttl_s
        self._cache: dict[_Query, _Cached] = {}

    def _able(self, symbol: str, interval: str) -> list[Provider]:
        return [p for p in self.net.providers if p.serves(symbol) and (interval in p.module.INTERVALS)]

    async def _fetch(self, p: Provider, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[Candle]:
        module, step, now_ms = p.module, INTERVAL_MS[interval], int(self.net.clock() * 1000)
        if hasattr(module, "local_candles"):

            async def local() -> list[Candle]:
                return module.local_candles(p.base_url, symbol, interval, start_ms, end_ms, now_ms)

            return await self.net.call(p, local)
        out: list[Candle] = []
        cursor = start_ms
        for _ in range((end_ms - start_ms) // step // module.MAX_CANDLES + 3):  # bounded: never loops forever

            async def page(cursor: int = cursor) -> list[Candle]:
                request = module.candles_request(p.base_url, symbol, interval, cursor, end_ms, module.MAX_CANDLES)
                status, headers, body = await self.net.send(p, request)
                return module.parse_candles(status, headers, body, symbol, interval, now_ms)

            bars = [c for c in await self.net.call(p, page) if cursor <= c.open_ms < end_ms]
            if not bars:
                break
            out.extend(bars)
            cursor = bars[-1].open_ms + step
            if cursor >= end_ms or cursor > now_ms:
                break
        return out

    async def ohlcv(
        self, symbol: str, interval: str, start_ms: int, end_ms: int, closed_only: bool = True
    ) -> OhlcvAnswer:
        step = INTERVAL_MS[interval]
        start_ms -= start_ms % step
        if (end_ms - start_ms) // step > MAX_BARS:
            raise PriceError(
                f"{(end_ms - start_ms) // step} bars of {interval} asked; at most {MAX_BARS} per call. Use a shorter "
                "range or a larger interval."
            )
        key = _Query(symbol, interval, start_ms, end_ms, closed_only)
        hit = self._cache.get(key)
        if hit is not None and self.net.clock() - hit.stored_at <= self.candle_ttl_s:
            return hit.answer.model_copy(update={"cached": True})
        able = self._able(symbol, interval)
        if not able:
            raise PriceError(f"No enabled provider has {interval} candles for {symbol}.")
        failures: list[SourceFailure] = []
        for p in able:
            try:
                bars = await self._fetch(p, symbol, interval, start_ms, end_ms)
            except ProviderError as e:
                failures.append(SourceFailure(provider=p.name, kind=e.kind, message=e.message))
                continue
            answer = self._answer(p, key, bars, failures)
            if not answer.open_bar_included and end_ms <= self.net.clock() * 1000:
                self._cache[key] = _Cached(answer, self.net.clock())  # closed history does not change
            return answer
        raise PriceError(
            f"No candles for {symbol} {interval}: "
            + "; ".join(f"{f.provider} ({f.kind}): {f.message}" for f in failures)
        )

    @staticmethod
    def _answer(p: Provider, q: _Query, bars: list[Candle], failures: list[SourceFailure]) -> OhlcvAnswer:
        unique = {b.open_ms: b for b in bars}
        kept = [unique[t] for t in sorted(unique) if not q.closed_only or unique[t].closed]
        rows: list[list[str | float]] = [
            [_iso(b.open_ms), float(b.open), float(b.high), float(b.low), float(b.close), float(b.volume)] for b in kept
        ]
        return OhlcvAnswer(
            symbol=q.symbol,
            interval=q.interval,
            provider=p.name,
            start=_iso(q.start_ms),
            end=_iso(q.end_ms),
            candles=rows,
            count=len(rows),
            closed_only=q.closed_only,
            open_bar_included=bool(kept) and not kept[-1].closed,
            gaps=find_bar_gaps([b.open_ms for b in kept], INTERVAL_MS[q.interval]),
            failures=failures,
            replay=p.name == "replay",
        )

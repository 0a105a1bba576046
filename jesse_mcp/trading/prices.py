"""Prices for the paper ledger, from the price library (asset_price_mcp) directly, never through MCP.

A fill uses the consensus price; a stale fallback (every provider failed) is never filled at. Correlations use daily
closes of the same library (live providers, or stored candles through the replay provider).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import anyio
import httpx

from asset_price_mcp.library import OhlcvService, PriceError, QuoteService, build_quote_service
from shared.config.models import PriceConfig, TradingConfig
from shared.errors import TradingMcpError
from shared.market.candles import iso_ms

T = TypeVar("T")
log = logging.getLogger(__name__)

DAY_MS = 86_400_000


class NoPrice(TradingMcpError):
    """No fresh price for a symbol: nothing fills, nothing is marked."""


@dataclass(frozen=True, slots=True)
class PaperQuote:
    symbol: str
    price: float
    as_of_ms: int
    source: str  # e.g. "consensus of 3 providers", "replay (stored candles)"


class PriceSource(Protocol):
    async def quote(self, symbol: str) -> PaperQuote: ...

    async def daily_closes(self, symbol: str, days: int, now_ms: int) -> list[tuple[int, float]]: ...


class LibraryPrices:
    """The price library as configured for this user (the same providers as the asset-price-mcp server)."""

    def __init__(self, quotes: QuoteService, ohlcv: OhlcvService):
        self.quotes = quotes
        self.ohlcv = ohlcv

    @classmethod
    def build(cls, cfg: TradingConfig, home: Path, transport: httpx.AsyncBaseTransport | None = None) -> LibraryPrices:
        quotes = build_quote_service(cfg, home, transport)
        return cls(quotes, OhlcvService(quotes.net, cfg.price_config.candle_ttl_s))

    async def quote(self, symbol: str) -> PaperQuote:
        try:
            answer = await self.quotes.price(symbol)
        except PriceError as e:
            raise NoPrice(f"no price for {symbol}: {e}") from None
        if answer.stale:
            raise NoPrice(
                f"no fresh price for {symbol}: every provider failed and the last good value is {answer.age_s:.0f} s "
                "old; paper fills and marks never use a stale price"
            )
        if answer.replay:
            source = "replay (synthetic candles)" if answer.synthetic else "replay (stored candles)"
        else:
            source = f"consensus of {answer.sources_used} provider(s)"
        return PaperQuote(
            symbol, answer.price, iso_ms(answer.as_of) if answer.as_of else int(time.time() * 1000), source
        )

    async def daily_closes(self, symbol: str, days: int, now_ms: int) -> list[tuple[int, float]]:
        end = now_ms - now_ms % DAY_MS
        try:
            answer = await self.ohlcv.ohlcv(symbol, "1d", end - days * DAY_MS, end, closed_only=True)
        except (PriceError, TradingMcpError) as e:
            raise NoPrice(f"no daily candles for {symbol}: {e}") from None
        return [(iso_ms(row[0]), float(row[4])) for row in answer.candles]

    async def aclose(self) -> None:
        await self.quotes.net.client.aclose()


class ConfiguredPrices:
    """LibraryPrices that follow the configuration: rebuilt when its `price_config` section changes, so provider
    switches and cache settings apply to paper fills without a restart (the file is re-read on every call)."""

    def __init__(
        self,
        config: Callable[[], TradingConfig],
        home: Path,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self._config, self._home, self._transport = config, home, transport
        self._key: PriceConfig | None = None
        self._prices: LibraryPrices | None = None
        self._retired: list[LibraryPrices] = []  # replaced, closed once no request uses them any more
        self._in_use: dict[int, int] = {}

    def current(self) -> LibraryPrices:
        cfg = self._config()
        if self._prices is None or cfg.price_config != self._key:
            if self._prices is not None:
                self._retired.append(self._prices)
            self._prices, self._key = LibraryPrices.build(cfg, self._home, self._transport), cfg.price_config
        return self._prices

    async def quote(self, symbol: str) -> PaperQuote:
        return await self._using(lambda prices: prices.quote(symbol))

    async def daily_closes(self, symbol: str, days: int, now_ms: int) -> list[tuple[int, float]]:
        return await self._using(lambda prices: prices.daily_closes(symbol, days, now_ms))

    async def _using(self, call: Callable[[LibraryPrices], Awaitable[T]]) -> T:
        prices = self.current()
        self._in_use[id(prices)] = self._in_use.get(id(prices), 0) + 1
        try:
            return await call(prices)
        finally:
            self._in_use[id(prices)] -= 1
            await self._close_idle_retired()

    async def _close_idle_retired(self) -> None:
        """Close replaced libraries no request uses; shielded, so a cancelled request still closes them, and a
        failing close never replaces the request's own answer."""
        with anyio.CancelScope(shield=True):
            for prices in [p for p in self._retired if not self._in_use.get(id(p))]:
                try:
                    await prices.aclose()
                except (OSError, RuntimeError, httpx.HTTPError):
                    log.warning("closing a replaced price client failed", exc_info=True)
                self._retired.remove(prices)
                self._in_use.pop(id(prices), None)

    async def aclose(self) -> None:
        for prices in [*self._retired, *([self._prices] if self._prices else [])]:
            await prices.aclose()
        self._retired, self._prices, self._key = [], None, None

"""What the price tools answer, as plain Python: symbols in any usual spelling, prices with the instrument they
belong to, candles over a time window given as a start or as days/hours back, and the providers' health.

Bad input raises InvalidArgumentsError with the fix; a price nobody has raises PriceError (with close spellings).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, Field

from asset_price_mcp.ohlcv import OhlcvAnswer, OhlcvService
from asset_price_mcp.quotes import PriceAnswer, PriceError, PriceFailure, QuoteService
from asset_price_mcp.symbols import Instrument, UnknownSymbol, parse_symbol, suggest
from shared.errors import InvalidArgumentsError

INTERVAL_ALIASES = {
    "1m": ("1m", "1min", "1minute", "m1"),
    "5m": ("5m", "5min", "5minutes", "m5"),
    "15m": ("15m", "15min", "15minutes", "m15"),
    "30m": ("30m", "30min", "30minutes", "m30"),
    "1h": ("1h", "60m", "60min", "1hour", "1hr", "h1", "hourly"),
    "4h": ("4h", "240m", "4hour", "4hours", "h4"),
    "1d": ("1d", "1day", "d1", "daily", "24h", "1440m"),
}
_ALIAS = {a: canonical for canonical, aliases in INTERVAL_ALIASES.items() for a in aliases}


class PriceResult(PriceAnswer):
    asked: str = Field(description="The symbol as it was given.")
    kind: str = Field(description="crypto, stock, etf, fx or metal.")


class PricesResult(BaseModel):
    prices: list[PriceResult | PriceFailure]
    count: int
    failed: int


class ProvidersResult(BaseModel):
    providers: list[dict[str, Any]]


def instrument(text: str) -> Instrument:
    try:
        return parse_symbol(text)
    except UnknownSymbol as e:
        raise InvalidArgumentsError(str(e)) from None


def interval_of(text: str) -> str:
    key = text.strip().lower().replace(" ", "")
    if key not in _ALIAS:
        raise InvalidArgumentsError(
            f"Unknown interval {text!r}; use one of {', '.join(INTERVAL_ALIASES)} (aliases "
            "like 1hour, 60m, daily work too)."
        )
    return _ALIAS[key]


def to_ms(value: datetime | date) -> int:
    """A date (midnight UTC) or datetime (naive = UTC) as epoch milliseconds."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def time_range(
    start: datetime | date | None, end: datetime | date | None, days: float | None, hours: float | None, now_s: float
) -> tuple[int, int]:
    end_ms = to_ms(end) if end is not None else int(now_s * 1000)
    if start is not None and (days is not None or hours is not None):
        raise InvalidArgumentsError("Give start (with optional end), or days/hours back from end, not both.")
    if start is not None:
        start_ms = to_ms(start)
    else:
        span_h = (days or 0) * 24 + (hours or 0)
        if span_h <= 0:
            raise InvalidArgumentsError("Give start, or days or hours (e.g. days=7 or hours=24).")
        start_ms = end_ms - int(span_h * 3_600_000)
    if end_ms <= start_ms:
        raise InvalidArgumentsError("end must be after start.")
    return start_ms, end_ms


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A candle range as asked: a start (and an optional end), or days and/or hours back from the end (default
    now). Dates are midnight UTC, naive datetimes UTC."""

    start: datetime | date | None = None
    end: datetime | date | None = None
    days: float | None = None
    hours: float | None = None

    def range_ms(self, now_s: float) -> tuple[int, int]:
        return time_range(self.start, self.end, self.days, self.hours, now_s)


class PriceLookup:
    """The tools' answers over one QuoteService and its OhlcvService."""

    def __init__(self, quotes: QuoteService, candles: OhlcvService, clock: Callable[[], float] = time.time):
        self.quotes = quotes
        self.candles = candles
        self.clock = clock

    async def price(self, symbol: str) -> PriceResult:
        inst = instrument(symbol)
        return _result(symbol, inst, await self._price_of(inst))

    async def _price_of(self, inst: Instrument) -> PriceAnswer:
        try:
            return await self.quotes.price(inst.symbol)
        except PriceError as e:
            hints = [s for s in suggest(inst.symbol) if s != inst.symbol]
            if str(e).startswith("No provider knows") and hints:
                raise PriceError(f"{e} Did you mean: {', '.join(hints)}?") from None
            raise

    async def prices(self, symbols: list[str]) -> PricesResult:
        """Each symbol its own answer: an unknown spelling or a failed price does not affect the others."""
        parsed: list[tuple[str, Instrument | str]] = []
        for text in symbols:
            try:
                parsed.append((text, parse_symbol(text)))
            except UnknownSymbol as e:
                parsed.append((text, str(e)))
        canon = [i.symbol for _, i in parsed if isinstance(i, Instrument)]
        answers = {a.symbol: a for a in await self.quotes.prices(canon)} if canon else {}
        out: list[PriceResult | PriceFailure] = []
        for text, inst in parsed:
            if isinstance(inst, str):
                out.append(PriceFailure(symbol=text, error=inst))
                continue
            a = answers[inst.symbol]
            out.append(a if isinstance(a, PriceFailure) else _result(text, inst, a))
        return PricesResult(prices=out, count=len(out), failed=sum(isinstance(a, PriceFailure) for a in out))

    async def ohlcv(
        self, symbol: str, interval: str, window: TimeWindow, include_open_bar: bool = False
    ) -> OhlcvAnswer:
        """Candles of `symbol` over `window`, `interval` in any alias; closed bars only unless include_open_bar."""
        inst = instrument(symbol)
        start_ms, end_ms = window.range_ms(self.clock())
        return await self.candles.ohlcv(inst.symbol, interval_of(interval), start_ms, end_ms, not include_open_bar)

    def providers(self) -> ProvidersResult:
        return ProvidersResult(providers=self.quotes.health())


def _result(asked: str, inst: Instrument, answer: PriceAnswer) -> PriceResult:
    return PriceResult(**answer.model_dump(), asked=asked, kind=inst.kind)

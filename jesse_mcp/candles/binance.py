"""Import 1-minute candles from Binance's public REST API (`/api/v3/klines`): paginated, resumable, polite.

Pages are saved to the candle store as they arrive, so an interrupted import keeps what it fetched and the next
call continues after the last stored minute. The newest kline is still open and is never stored.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anyio
import httpx
import numpy as np
from pydantic import BaseModel, Field

from shared.market.candles import MINUTE_MS, TS, CandleError, CandleStore, Gap, iso
from shared.net.http import HttpError, Sleep, get_json

DEFAULT_BASE_URL = "https://data-api.binance.vision"
PAGE_LIMIT = 1000
WEIGHT_BUDGET_1M = 1000  # Binance allows 6000 weight a minute on spot; stay far below it
SAVE_EVERY_PAGES = 20


def base_url() -> str:
    return os.environ.get("BINANCE_BASE_URL") or DEFAULT_BASE_URL


def binance_symbol(symbol: str) -> str:
    """BTC-USDT, btc/usdt, BTCUSDT -> BTCUSDT."""
    return symbol.upper().replace("-", "").replace("/", "").replace("_", "")


class ImportReport(BaseModel):
    exchange: str
    symbol: str
    requested_start: str
    requested_end: str
    fetched_rows: int = Field(description="Closed 1-minute candles received in this call.")
    resumed_from: str | None = Field(description="Where this call started when earlier data was already stored.")
    requests: int
    stored_rows: int = Field(description="Rows now stored for this market in total.")
    gaps: list[Gap] = Field(description="Missing minutes in the stored data (exchange outages included).")
    source: str


def parse_klines(payload: object, now_ms: int) -> np.ndarray:
    """Binance kline arrays -> Jesse rows; prices parsed exactly from strings; open klines dropped."""
    if not isinstance(payload, list):
        raise CandleError(f"Binance answered {str(payload)[:200]!r} instead of a list of klines.")
    rows = []
    for k in payload:
        if not isinstance(k, list) or len(k) < 7:
            raise CandleError(f"Unexpected kline shape from Binance: {str(k)[:200]!r}")
        if int(k[6]) >= now_ms:  # close time in the future: the candle is still open
            continue
        o, h, lo, c, v = (float(Decimal(str(x))) for x in k[1:6])
        rows.append((float(k[0]), o, c, h, lo, v))
    return np.array(rows, dtype=np.float64).reshape(-1, 6)


@dataclass(frozen=True, slots=True)
class KlineRange:
    """What to import: a market's 1-minute candles over [start_ms, end_ms), stored under `exchange`."""

    symbol: str
    start_ms: int
    end_ms: int
    exchange: str = "binance"


ImportProgress = Callable[[int, int], Awaitable[None]]


async def import_binance(
    client: httpx.AsyncClient,
    store: CandleStore,
    wanted: KlineRange,
    *,
    now_ms: int | None = None,
    sleep: Sleep = anyio.sleep,
    progress: ImportProgress | None = None,
) -> ImportReport:
    """Fetch [start_ms, end_ms) into the store, continuing after data already stored at the start."""
    start_ms, symbol, exchange = wanted.start_ms, wanted.symbol, wanted.exchange
    if wanted.end_ms <= start_ms:
        raise CandleError(f"The end {iso(wanted.end_ms)} must be after the start {iso(start_ms)}.")
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    end_ms = min(wanted.end_ms, now_ms - now_ms % MINUTE_MS)
    pair = binance_symbol(symbol)
    cursor, resumed = _resume_point(store, wanted, start_ms - start_ms % MINUTE_MS, end_ms)
    pages = _Pages(client, store, wanted, pair, now_ms, sleep)
    await pages.fetch(cursor, end_ms, progress)
    info = store.info(exchange, symbol)
    if info is None:
        raise CandleError(f"Binance returned no candles for {pair} between {iso(start_ms)} and {iso(end_ms)}.")
    return ImportReport(
        exchange=exchange,
        symbol=symbol.upper(),
        requested_start=iso(start_ms),
        requested_end=iso(end_ms),
        fetched_rows=pages.fetched,
        resumed_from=resumed,
        requests=pages.requests,
        stored_rows=info.rows,
        gaps=info.gaps,
        source=f"binance REST {client.base_url}",
    )


def _resume_point(store: CandleStore, wanted: KlineRange, cursor: int, end_ms: int) -> tuple[int, str | None]:
    """Where to start: after the stored minutes contiguous from `cursor` (and since when), else `cursor`."""
    try:
        existing = store.load(wanted.exchange, wanted.symbol, cursor, end_ms)
    except CandleError:
        return cursor, None  # nothing stored yet
    if len(existing) and existing[0, TS] <= cursor:
        contiguous = np.nonzero(np.diff(existing[:, TS]) != MINUTE_MS)[0]
        last = existing[contiguous[0], TS] if len(contiguous) else existing[-1, TS]
        return int(last) + MINUTE_MS, iso(last + MINUTE_MS)
    return cursor, None


@dataclass
class _Pages:
    """The page loop of one import: fetches, saves every SAVE_EVERY_PAGES pages and at the end (interrupted too),
    and counts rows and requests."""

    client: httpx.AsyncClient
    store: CandleStore
    wanted: KlineRange
    pair: str
    now_ms: int
    sleep: Sleep
    fetched: int = 0
    requests: int = 0
    pending: list[np.ndarray] = field(default_factory=list)

    async def fetch(self, cursor: int, end_ms: int, progress: ImportProgress | None) -> None:
        total_minutes = max(1, (end_ms - cursor) // MINUTE_MS)
        try:
            while cursor < end_ms:
                payload, response = await self._get(cursor, end_ms)
                page = parse_klines(payload, self.now_ms)
                if len(page) == 0:
                    break
                self.pending.append(page)
                self.fetched += len(page)
                cursor = int(page[-1, TS]) + MINUTE_MS
                if len(self.pending) >= SAVE_EVERY_PAGES:
                    self.flush()
                await _pace(response, self.sleep)
                if progress is not None:
                    await progress(min(total_minutes, self.fetched), total_minutes)
                if len(payload) < PAGE_LIMIT:
                    break
        finally:
            self.flush()  # keep what arrived, even when interrupted

    async def _get(self, cursor: int, end_ms: int) -> tuple[Any, httpx.Response]:
        params = {
            "symbol": self.pair,
            "interval": "1m",
            "startTime": cursor,
            "endTime": end_ms - 1,
            "limit": PAGE_LIMIT,
        }
        try:
            payload, response = await get_json(self.client, "/api/v3/klines", params, sleep=self.sleep)
        except HttpError as e:
            raise _explain(e, self.pair) from None
        self.requests += 1
        return payload, response

    def flush(self) -> None:
        if self.pending:
            rows = np.concatenate(self.pending)
            self.store.save(self.wanted.exchange, self.wanted.symbol, rows, "binance:/api/v3/klines", synthetic=False)
            self.pending.clear()


async def _pace(response: httpx.Response, sleep: Sleep) -> None:
    """Stay inside Binance's request-weight budget using the weight it reports."""
    used = response.headers.get("X-MBX-USED-WEIGHT-1M") or response.headers.get("x-mbx-used-weight-1m")
    if used and used.isdigit() and int(used) >= WEIGHT_BUDGET_1M:
        await sleep(60 - time.time() % 60 + 1)


def _explain(error: HttpError, pair: str) -> CandleError:
    if error.status == 451:
        return CandleError(
            "Binance refuses requests from this region (HTTP 451). Set BINANCE_BASE_URL to an endpoint you may "
            "use, or import a CSV file with import_candles_csv."
        )
    if error.status == 400 and "Invalid symbol" in str(error):
        return CandleError(f"Binance does not list {pair}. Use a spot pair such as BTCUSDT or ETHUSDT.")
    return CandleError(f"Binance import of {pair} failed: {error}")

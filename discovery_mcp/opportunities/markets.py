"""Daily prices for opportunities, through the price library (asset_price_mcp), never through MCP.

Volatility (regime and sigma), the recent return (price confirmation) and return correlations (diversified top-k)
all come from daily closes. A symbol whose prices cannot be had is simply unpriced: the opportunity says so.
"""

from __future__ import annotations

import logging
import math

import anyio
import numpy as np

from asset_price_mcp.library import OhlcvService, PriceError
from discovery_mcp.news.assets import ASSETS
from discovery_mcp.opportunities.ranking import Market
from shared.errors import TradingMcpError
from shared.market.candles import iso_ms

log = logging.getLogger(__name__)
DAY_MS = 86_400_000
HISTORY_DAYS = 90


def price_symbols(symbol: str) -> list[str]:
    """Where to look for a symbol's prices: its canonical price symbol, and for crypto also the USDT pair (the
    candle store and Binance keep USDT markets)."""
    asset = ASSETS[symbol]
    out = [asset.price_symbol]
    if asset.kind == "crypto" and asset.price_symbol.endswith("-USD"):
        out.append(asset.price_symbol[:-4] + "-USDT")
    return out


def market_from_closes(opens_ms: list[int], closes: list[float], horizon_h: float) -> Market | None:
    if len(closes) < 3 or min(closes) <= 0:
        return None
    c = np.asarray(closes, dtype=float)
    days = np.asarray(opens_ms[1:], dtype=np.int64)
    returns = np.diff(np.log(c))
    back = max(1, math.ceil(horizon_h / 24))
    recent = float(c[-1] / c[-1 - back] - 1) if len(c) > back else None
    return Market(days=days, returns=returns, recent_return=recent)


async def load_markets(
    ohlcv: OhlcvService, symbols: list[str], horizon_h: float, now_ms: int
) -> dict[str, Market | None]:
    """Daily history of every symbol, fetched concurrently; None for those no provider has."""
    end = now_ms - now_ms % DAY_MS
    start = end - HISTORY_DAYS * DAY_MS
    out: dict[str, Market | None] = {}

    async def one(symbol: str) -> None:
        out[symbol] = None
        for candidate in price_symbols(symbol):
            try:
                answer = await ohlcv.ohlcv(candidate, "1d", start, end, closed_only=True)
            except (PriceError, TradingMcpError) as e:
                log.debug("no daily prices for %s as %s: %s", symbol, candidate, e)
                continue
            opens = [iso_ms(row[0]) for row in answer.candles]
            market = market_from_closes(opens, [float(row[4]) for row in answer.candles], horizon_h)
            if market is not None:
                out[symbol] = market
                return

    async with anyio.create_task_group() as tg:
        for s in symbols:
            tg.start_soon(one, s)
    return out

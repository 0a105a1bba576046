"""replay: prices from the local candle store (offline use, the demo, paper trading on history).

Not an HTTP provider: its "base URL" is the candle store's folder, and it answers in-process. Every quote it gives
is labelled replay (Quote.extra["replay"]), and the consensus says so; it is off while live providers are configured
unless the configuration turns it on.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from pathlib import Path

from asset_price_mcp.providers.base import Candle, ProviderError, Quote
from shared.market.candles import CandleStore

NAME = "replay"
QUOTE_BATCH = 1000
MAX_CANDLES = 100_000
INTERVALS = {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1h", "4h": "4h", "1d": "1d"}
INTERVAL_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440}
MINUTE_MS = 60_000
TS, OPEN, CLOSE, HIGH, LOW, VOLUME = range(6)


_markets_cache: dict[str, tuple[tuple, list]] = {}


def _markets(root: str) -> list:
    """The stored markets, read again only when a market's metadata file changes (serves() runs per symbol)."""
    folder = Path(root)
    signature = (
        tuple(sorted((str(f), f.stat().st_mtime_ns) for f in folder.glob("*/*.json"))) if folder.is_dir() else ()
    )
    cached = _markets_cache.get(root)
    if cached is None or cached[0] != signature:
        cached = (signature, CandleStore(folder).markets())
        _markets_cache[root] = cached
    return cached[1]


def _market(root: str, symbol: str) -> tuple[str, str] | None:
    """(exchange, symbol) of the stored market for a canonical symbol: real data before synthetic."""
    markets = _markets(root)
    found = sorted((m for m in markets if m.symbol == symbol.upper()), key=lambda m: (m.synthetic, m.exchange))
    return (found[0].exchange, found[0].symbol) if found else None


def provider_symbol(symbol: str) -> str | None:  # any symbol may be stored; `serves` checks the store
    return symbol


def serves(root: str, symbol: str) -> bool:
    return _market(root, symbol) is not None


def local_quotes(root: str, symbols: list[str], now_ms: int) -> dict[str, Quote]:
    """The close of the last stored minute at or before now, for each symbol that is stored."""
    store = CandleStore(Path(root))
    out: dict[str, Quote] = {}
    for symbol in symbols:
        market = _market(root, symbol)
        if market is None:
            continue
        rows = store.load(*market, None, now_ms + 1)
        if len(rows) == 0:
            continue
        last = rows[-1]
        info = store.info(*market)
        out[symbol] = Quote(
            symbol=symbol,
            price=Decimal(repr(float(last[CLOSE]))),
            ts_ms=int(last[TS]) + MINUTE_MS,
            provider=NAME,
            volume_24h=Decimal(repr(float(rows[-1440:, VOLUME].sum()))),
            currency=symbol.split("-", 1)[1] if "-" in symbol else None,
            extra={"replay": True, "exchange": market[0], "synthetic": bool(info and info.synthetic)},
        )
    return out


def local_candles(root: str, symbol: str, interval: str, start_ms: int, end_ms: int, now_ms: int) -> list[Candle]:
    """Stored minutes aggregated to the interval; bars are aligned to UTC multiples of the interval."""
    market = _market(root, symbol)
    if market is None:
        raise ProviderError(NAME, "not_found", f"{symbol} is not in the candle store")
    step = INTERVAL_MINUTES[interval] * MINUTE_MS
    rows = CandleStore(Path(root)).load(*market, start_ms - start_ms % step, end_ms)
    bars: list[Candle] = []
    if len(rows) == 0:
        return bars
    keys = (rows[:, TS] // step).astype("int64")
    cut = [0, *list((keys[1:] != keys[:-1]).nonzero()[0] + 1), len(rows)]
    for a, b in pairwise(cut):
        chunk = rows[a:b]
        open_ms = int(keys[a] * step)
        bars.append(
            Candle(
                open_ms=open_ms,
                open=Decimal(repr(float(chunk[0, OPEN]))),
                high=Decimal(repr(float(chunk[:, HIGH].max()))),
                low=Decimal(repr(float(chunk[:, LOW].min()))),
                close=Decimal(repr(float(chunk[-1, CLOSE]))),
                volume=Decimal(repr(float(chunk[:, VOLUME].sum()))),
                closed=open_ms + step <= min(now_ms, int(chunk[-1, TS]) + MINUTE_MS),
            )
        )
    return bars

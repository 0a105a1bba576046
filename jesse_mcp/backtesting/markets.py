"""The markets of a backtest: the stored market(s) a request names, and the traded range every one of them covers
with contiguous minutes and room for warm-up. Pure and strict, with messages that list what is valid."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from jesse_mcp.backtesting.catalog import TIMEFRAME_MINUTES
from jesse_mcp.candles import ops as candle_ops
from shared.errors import TradingMcpError
from shared.market.candles import MINUTE_MS, CandleError, CandleStore, MarketInfo, iso
from shared.market.exchanges import store_key

DAY_MS = 86_400_000


class BacktestError(TradingMcpError):
    """A backtest could not be planned or run."""


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _overlapping(gaps: list[Any], start_ms: int, end_ms: int) -> list[Any]:
    return [g for g in gaps if _ms(g.first_missing) < end_ms and _ms(g.last_missing) >= start_ms]


def gap_minutes_in(gaps: list[Any], start_ms: int, end_ms: int) -> int:
    total = 0
    for g in gaps:
        lo, hi = max(_ms(g.first_missing), start_ms), min(_ms(g.last_missing) + MINUTE_MS, end_ms)
        total += max(0, (hi - lo) // MINUTE_MS)
    return total


def pick_market(candles: CandleStore, exchange: str | None, symbol: str | None) -> MarketInfo:
    markets = candles.markets()
    if not markets:
        raise BacktestError(
            "No candles are stored yet. Import some with import_candles (e.g. symbol='BTC-USDT', days=90), "
            "import_candles_csv, or generate_synthetic_candles for an offline try."
        )
    stored = ", ".join(f"{m.exchange}:{m.symbol}" for m in markets)
    key = None if exchange is None else store_key(exchange, (m.exchange for m in markets))
    found = [
        m for m in markets if (key is None or m.exchange == key) and (symbol is None or m.symbol == symbol.upper())
    ]
    if not found:
        what = ":".join(x for x in (key, symbol and symbol.upper()) if x)
        raise BacktestError(
            f"No candles stored for {what}. Stored markets: {stored}. Import it with import_candles "
            f"(symbol='{(symbol or 'BTC-USDT').upper()}') or import_candles_csv, or pick a stored market."
        )
    if len(found) > 1:
        raise BacktestError(f"Several stored markets match; give exchange and symbol. Stored markets: {stored}.")
    market = found[0]
    if "-" not in market.symbol:
        raise BacktestError(
            f"Jesse needs symbols written BASE-QUOTE (e.g. BTC-USDT); {market.symbol} has no dash. Import the data "
            "again under a symbol like BTC-USDT."
        )
    return market


def plan_range(
    market: MarketInfo,
    timeframe: str,
    warmup_candles: int,
    start: candle_ops.When | None,
    end: candle_ops.When | None,
    days: int | None,
) -> tuple[int, int, list[str]]:
    """The traded range [start, end): whole candles of the timeframe, with room for warm-up before it."""
    if market.first is None or market.last is None:
        raise BacktestError(f"{market.exchange}:{market.symbol} has no candles stored.")
    first, last_end = _ms(market.first), _ms(market.last) + MINUTE_MS
    tf = TIMEFRAME_MINUTES[timeframe] * MINUTE_MS
    warm = warmup_candles * tf
    notes: list[str] = []
    stored = f"stored: {market.first} to {iso(last_end)}"
    if start is None and days is None:  # from the start of the data (after the warm-up) up to end, or all of it
        req_start, req_end = first + warm, (candle_ops.to_ms(end) if end is not None else last_end)
    else:
        try:
            req_start, req_end = candle_ops.resolve_range(
                start, end, days, now_ms=last_end if end is None and start is not None else None
            )
        except CandleError as e:
            raise BacktestError(str(e)) from None
        if days is not None and start is None and end is None:  # "the last N days" means of the stored data
            req_start, req_end = last_end - days * 1440 * MINUTE_MS, last_end
    lo = -(-max(req_start, first + warm) // tf) * tf  # first whole candle with warm-up before it
    hi = min(req_end, last_end) // tf * tf
    explicit = start is not None or end is not None or days is not None
    if explicit and (req_end <= first or req_start >= last_end):
        raise BacktestError(
            f"No {market.exchange}:{market.symbol} candles between {iso(req_start)} and {iso(req_end)} ({stored}). "
            f"Import that range with import_candles(symbol='{market.symbol}', start='{iso(req_start)[:10]}', "
            f"end='{iso(req_end)[:10]}') or import_candles_csv, or choose dates inside the stored range."
        )
    if hi - lo < 2 * tf:
        need_days = (warm + 2 * tf) / 86_400_000
        raise BacktestError(
            f"Not enough {market.exchange}:{market.symbol} data for a {timeframe} run with {warmup_candles} warm-up "
            f"candles: it needs about {need_days:.1f} days before the end of the range ({stored}). Import more data "
            "(import_candles with an earlier start), use a smaller timeframe, or pass a smaller warmup_candles."
        )
    if lo > req_start and (start is not None or days is not None):
        notes.append(
            f"Start moved from {iso(req_start)} to {iso(lo)}: {warmup_candles} warm-up candles of {timeframe} must "
            f"come before it and the data begins at {market.first}."
        )
    if hi < req_end and (end is not None or start is not None):
        notes.append(f"End moved from {iso(req_end)} to {iso(hi)}: the data ends at {iso(last_end)}.")
    gaps = _overlapping(market.gaps, lo - warm, hi)
    if gaps:
        shown = "; ".join(f"{g.first_missing} .. {g.last_missing} ({g.missing_minutes} min)" for g in gaps[:5])
        more = f" and {len(gaps) - 5} more" if len(gaps) > 5 else ""
        raise BacktestError(
            f"{market.exchange}:{market.symbol} has missing minutes inside the run (with warm-up): {shown}{more}. "
            "Jesse needs contiguous minutes. Choose a range without gaps, or fill them explicitly with "
            "fill_candle_gaps (flat candles at the previous close, recorded as filled)."
        )
    return lo, hi, notes


def daily_closes(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(day start ms, close) of every UTC day whose last minute is in these 1-minute rows, oldest first."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    ts = rows[:, 0].astype(np.int64)
    last = (ts % DAY_MS) == DAY_MS - MINUTE_MS
    return ts[last] - (DAY_MS - MINUTE_MS), rows[last, 2].astype(float)


def history_closes(candles: CandleStore, exchange: str, symbols: list[str], before_ms: int, days: int):
    """symbol -> [[day start ms, close]] of the stored days among the `days` before `before_ms` (what a portfolio
    backtest's correlation and CVaR checks see before the run's own candles)."""
    out = {}
    for symbol in symbols:
        day_ms, close = daily_closes(candles.load(exchange, symbol, before_ms - days * DAY_MS, before_ms))
        out[symbol] = [[int(d), float(c)] for d, c in zip(day_ms, close, strict=True)]
    return out


def pick_markets(
    candles: CandleStore, exchange: str | None, markets: list[str], data_markets: list[str], most: int
) -> tuple[list[MarketInfo], list[MarketInfo]]:
    """The traded and data-only markets of a portfolio backtest: each stored, none twice, all on one exchange (one
    account), at most `most` together."""
    asked = [m.strip().upper() for m in [*markets, *data_markets]]
    if len(markets) < 2:
        raise BacktestError(
            f"A portfolio backtest trades at least 2 markets; got {len(markets)} ({', '.join(markets) or 'none'}). "
            "For one market pass symbol instead."
        )
    twice = sorted({m for m in asked if asked.count(m) > 1})
    if twice:
        raise BacktestError(
            f"{', '.join(twice)} appear{'s' if len(twice) == 1 else ''} more than once among markets and "
            "data_markets; name each market once (a market that is traded also informs the strategy)."
        )
    if len(asked) > most:
        raise BacktestError(
            f"{len(asked)} markets is more than backtest_config.max_portfolio_markets ({most}); trade fewer markets "
            "at once, or raise the limit with update_config."
        )
    found = [pick_market(candles, exchange, m) for m in asked]
    venues = sorted({m.exchange for m in found})
    if len(venues) > 1:
        listed = ", ".join(f"{m.exchange}:{m.symbol}" for m in found)
        raise BacktestError(
            f"A portfolio backtest runs in one account on one exchange; these markets are stored on {', '.join(venues)}"
            f" ({listed}). Pass exchange, or pick markets of one exchange."
        )
    return found[: len(markets)], found[len(markets) :]


def common_range(
    markets: list[MarketInfo],
    timeframe: str,
    warmup_candles: int,
    start: candle_ops.When | None,
    end: candle_ops.When | None,
    days: int | None,
) -> tuple[int, int, list[str]]:
    """The range every market covers: each market's own plan_range, intersected, then checked again for every market
    (warm-up room, gaps) on the common range."""
    ranges = [plan_range(m, timeframe, warmup_candles, start, end, days) for m in markets]
    lo, hi = max(r[0] for r in ranges), min(r[1] for r in ranges)
    tf = TIMEFRAME_MINUTES[timeframe] * MINUTE_MS
    if hi - lo < 2 * tf:
        stored = "; ".join(f"{m.symbol}: {m.first} .. {m.last}" for m in markets)
        raise BacktestError(
            f"The markets have no common range of at least two {timeframe} candles with warm-up before it (stored: "
            f"{stored}). Import the missing history (import_candles) or pick markets stored over the same dates."
        )
    for m in markets:
        plan_range(m, timeframe, warmup_candles, _dt(lo), _dt(hi), None)
    notes = sorted({n for r in ranges for n in r[2]})
    if any((r[0], r[1]) != (lo, hi) for r in ranges):
        notes.append(f"The run covers {iso(lo)} .. {iso(hi)}: the range every market has stored.")
    return lo, hi, notes


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)

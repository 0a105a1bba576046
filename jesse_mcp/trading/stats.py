"""Paper-trading statistics from ledger rows: performance of an equity curve and its closed positions, and the
directional correlation of two daily close series. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from jesse_mcp.trading.ledger import EPS
from jesse_mcp.trading.models import PaperTrade, Performance
from jesse_mcp.trading.prices import DAY_MS
from jesse_mcp.trading.rows import PositionRow
from shared.state.store import utc_now_iso


def directional_correlation(
    a: list[tuple[int, float]],
    b: list[tuple[int, float]],
    names: tuple[str, str] = ("the first", "the second"),
    min_overlap: int = 10,
) -> float | str:
    """Correlation of daily log returns over the days both series have, or why it cannot be measured (fewer than
    `min_overlap` common returns, or a series that never moved)."""
    da, db = dict(a), dict(b)
    days = sorted(set(da) & set(db))
    if len(days) < min_overlap + 1:
        return f"fewer than {min_overlap} common daily returns of {names[0]} and {names[1]} ({max(len(days) - 1, 0)})"
    xa = np.log(np.array([da[d] for d in days], dtype=float))
    xb = np.log(np.array([db[d] for d in days], dtype=float))
    ra, rb = np.diff(xa), np.diff(xb)
    flat = [name for name, r in zip(names, (ra, rb), strict=True) if r.std() < EPS]
    if flat:
        return f"the price of {' and '.join(flat)} did not move over the {len(days)} common days"
    return float(np.corrcoef(ra, rb)[0, 1])


def correlations_with(
    symbol: str, others: list[str], series: dict[str, list[tuple[int, float]] | str]
) -> dict[str, float | str]:
    """The correlation of `symbol` with each of `others` from their daily closes in `series` (or why a series could
    not be had); `symbol` itself counts as 1.0."""
    out: dict[str, float | str] = {}
    mine = series[symbol]
    for s in others:
        if s == symbol:
            out[s] = 1.0
            continue
        theirs = series[s]
        if isinstance(mine, str) or isinstance(theirs, str):
            out[s] = mine if isinstance(mine, str) else theirs  # type: ignore[assignment]
            continue
        out[s] = directional_correlation(mine, theirs, (symbol, s))
    return out


@dataclass(frozen=True)
class TrackRecord:
    """A paper track record as read from the ledger, of one strategy or the whole account."""

    starting_balance: float
    curve: list[tuple[int, float]]  # (ms, equity), oldest first
    closed: list[PositionRow]  # closed position rows, oldest first
    open_count: int
    first_ms: int | None  # the first fill
    fees: float
    sizes: list[float] = field(default_factory=list)  # entry notional of every position
    replay_fills: int = 0  # fills priced by the replay provider


def performance_of(strategy: str | None, record: TrackRecord, now: int, max_points: int = 500) -> Performance:
    """Performance from an equity curve and closed positions. Pure."""
    start, curve, closed, first_ms = record.starting_balance, record.curve, record.closed, record.first_ms
    median = float(np.median(record.sizes)) / start * 100 if record.sizes else None
    values = np.array([e for _, e in curve], dtype=float) if curve else np.array([start])
    equity = float(values[-1])
    peak = np.maximum.accumulate(np.concatenate([[start], values]))
    dd = float(np.max(1 - np.concatenate([[start], values]) / peak)) if len(values) else 0.0
    sharpe = _daily_sharpe(start, curve, first_ms, now)
    pnls = [p.realised_pnl for p in closed if p.realised_pnl is not None]  # every closed row has one
    wins = [x for x in pnls if x > 0]
    losses = [x for x in pnls if x <= 0]
    return Performance(
        strategy=strategy,
        starting_balance=start,
        equity=round(equity, 2),
        net_pnl=round(equity - start, 2),
        net_return_pct=round((equity / start - 1) * 100, 4),
        first_fill_at=utc_now_iso(first_ms) if first_ms else None,
        days=round((now - first_ms) / DAY_MS, 4) if first_ms else 0.0,
        sharpe=round(sharpe, 4) if sharpe is not None else None,
        max_drawdown=round(dd, 6),
        trades=len(closed),
        open_positions=record.open_count,
        win_rate=round(len(wins) / len(closed), 4) if closed else None,
        profit_factor=round(sum(wins) / -sum(losses), 4) if losses and sum(losses) < 0 else None,
        fees_paid=round(record.fees, 2),
        median_position_pct=round(median, 4) if median is not None else None,
        replay_fills=record.replay_fills,
        equity_curve=[[utc_now_iso(ts), round(e, 2)] for ts, e in _thinned(curve, max_points)],
        recent_trades=[_paper_trade(p) for p in closed[-20:][::-1]],
    )


def _daily_sharpe(start: float, curve: list[tuple[int, float]], first_ms: int | None, now: int) -> float | None:
    """Annualised Sharpe of the returns between the closes of every UTC day from the first fill to today, from the
    starting balance; a day without an equity record closes at the previous equity (a return of 0), so days the
    server was off are not skipped."""
    if first_ms is None:
        return None
    first_day, today = first_ms // DAY_MS, now // DAY_MS
    closes, last, points = [start], start, iter(sorted(curve))
    point = next(points, None)
    for day in range(first_day, today + 1):
        while point is not None and point[0] // DAY_MS <= day:
            last, point = point[1], next(points, None)
        closes.append(last)
    if len(closes) < 3:
        return None
    r = np.diff(np.array(closes)) / np.array(closes[:-1])
    if r.std(ddof=1) <= EPS:
        return None
    return float(r.mean() / r.std(ddof=1) * math.sqrt(365))


def _thinned(curve: list[tuple[int, float]], max_points: int) -> list[tuple[int, float]]:
    """At most about `max_points` evenly spaced points of `curve`, always ending with its last."""
    step = max(1, math.ceil(len(curve) / max_points))
    points = curve[::step]
    if curve and points[-1] != curve[-1]:
        points.append(curve[-1])
    return points


def _paper_trade(p: PositionRow) -> PaperTrade:
    if p.closed_ms is None or p.exit_price is None or p.exit_reason is None or p.realised_pnl is None:
        raise ValueError(f"position {p.id} is not closed: it has no exit")
    return PaperTrade(
        position_id=p.id,
        symbol=p.symbol,
        side=p.side,
        opened_at=utc_now_iso(p.opened_ms),
        closed_at=utc_now_iso(p.closed_ms),
        entry_price=p.entry_price,
        exit_price=p.exit_price,
        qty=p.qty,
        realised_pnl=round(p.realised_pnl, 2),
        exit_reason=p.exit_reason,
    )

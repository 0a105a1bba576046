"""What a portfolio backtest reports beyond one market's: each market's contribution, the account's exposure over
time, the correlation of the markets' daily returns, and the entries the portfolio limits refused, by rule.

`sampled` runs in the worker (it needs the 1-minute rows); `report_of` runs in the server on what the worker
returned. Trades are engine.TRADE_FIELDS rows (results.T_*).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from jesse_mcp.backtesting.trade_rows import (
    T_CLOSED,
    T_ENTRY,
    T_FEE,
    T_OPENED,
    T_PNL,
    T_QTY,
    T_SYMBOL,
    T_TYPE,
    union_ms,
)
from jesse_mcp.trading.stats import directional_correlation
from shared.market.candles import MINUTE_MS, iso


class MarketContribution(BaseModel):
    market: str
    trades: int
    net_pnl_quote: float = Field(description="Profit of this market's trades net of fees, quote currency.")
    contribution_pct: float = Field(description="That profit, % of the starting balance.")
    win_rate_pct: float | None
    fees_quote: float
    exposure_pct: float = Field(description="Share of the run with a position open in this market, %.")


class ExposurePoint(BaseModel):
    time: str
    open_positions: int
    gross_exposure_pct: float = Field(description="Notional of every open position at the close, % of equity.")


class PortfolioReport(BaseModel):
    markets: list[str] = Field(description="Traded markets, in route order (one account).")
    data_markets: list[str] = Field(description="Markets whose candles only informed the strategy.")
    contributions: list[MarketContribution]
    exposure: list[ExposurePoint] = Field(description="Account exposure at the last equity sample of each week.")
    max_open_positions: int = Field(description="Most positions open at one equity sample.")
    average_gross_exposure_pct: float | None
    max_gross_exposure_pct: float | None
    correlation: dict[str, dict[str, float | None]] = Field(
        description="Correlation of the markets' daily log returns over the run (None: a market did not move)."
    )
    correlation_days: int = Field(description="Daily returns the correlation is measured on.")
    refused_entries: dict[str, int] = Field(
        description="Entry signals the paper account's pre-trade checks refused inside the run, by rule."
    )
    limits: dict[str, float] = Field(description="The portfolio limits and risk limits the entries met.")


def _row_at(t_ms: int, start_ms: int) -> int:
    return (t_ms - start_ms) // MINUTE_MS - 1  # the minute that ends at t (as daily_equity.equity_at)


def sampled(trades: list[list[Any]], rows: dict[str, np.ndarray], times_ms: list[int]) -> dict[str, Any]:
    """At each time: every market's P&L (closed trades' net P&L plus the open trade marked at the close) and the
    account's open positions and gross notional. `rows`: each traded market's trading rows (the same minutes)."""
    start = int(next(iter(rows.values()))[0, 0])
    t = np.array(times_ms, dtype=np.int64)
    idx = np.clip(np.array([_row_at(x, start) for x in times_ms], dtype=np.int64), 0, None)
    lines = {s: np.zeros(len(t)) for s in rows}
    gross, count = np.zeros(len(t)), np.zeros(len(t), dtype=np.int64)
    for tr in trades:
        symbol = tr[T_SYMBOL]
        close = rows[symbol][idx, 2]
        lines[symbol] += np.where(t >= tr[T_CLOSED], tr[T_PNL] or 0.0, 0.0)
        held = (t >= tr[T_OPENED]) & (t < tr[T_CLOSED])
        qty, entry = abs(tr[T_QTY]), tr[T_ENTRY]
        marked = qty * (entry - close) if tr[T_TYPE] == "short" else qty * (close - entry)
        lines[symbol] += np.where(held, marked - (tr[T_FEE] or 0.0) / 2, 0.0)
        gross += np.where(held, qty * close, 0.0)
        count += held
    return {
        "lines": {s: v.tolist() for s, v in lines.items()},
        "exposure": [[int(a), int(b), float(c)] for a, b, c in zip(t, count, gross, strict=True)],
    }


def _weekly(points: list[ExposurePoint]) -> list[ExposurePoint]:
    """The last point of each ISO week."""
    out: dict[tuple[int, int], ExposurePoint] = {}
    for p in points:
        out[datetime.fromisoformat(p.time).isocalendar()[:2]] = p
    return list(out.values())


def correlation_matrix(closes: dict[str, list[list[float]]]) -> tuple[dict[str, dict[str, float | None]], int]:
    """Pairwise correlation of daily log returns (the paper checks' directional_correlation, over the days both
    markets have; None where it cannot be measured), and the returns every market has."""
    series = {s: [(int(d), float(c)) for d, c in v] for s, v in closes.items()}
    out: dict[str, dict[str, float | None]] = {}
    for a, sa in series.items():
        out[a] = {}
        for b, sb in series.items():
            value = directional_correlation(sa, sb, (a, b), min_overlap=2)
            out[a][b] = value if isinstance(value, float) else None
    days = set.intersection(*(set(d for d, _ in v) for v in series.values())) if series else set()
    return out, max(len(days) - 1, 0)


def _contribution(symbol: str, trades: list[list[Any]], balance: float, span_ms: int) -> MarketContribution:
    mine = [t for t in trades if t[T_SYMBOL] == symbol]
    pnl = sum(t[T_PNL] or 0.0 for t in mine)
    held = union_ms([(t[T_OPENED], t[T_CLOSED]) for t in mine])
    wins = sum(1 for t in mine if (t[T_PNL] or 0.0) > 0)
    return MarketContribution(
        market=symbol,
        trades=len(mine),
        net_pnl_quote=pnl,
        contribution_pct=pnl / balance * 100,
        win_rate_pct=wins / len(mine) * 100 if mine else None,
        fees_quote=sum(t[T_FEE] or 0.0 for t in mine),
        exposure_pct=held / span_ms * 100 if span_ms > 0 else 0.0,
    )


def report_of(
    out: dict[str, Any], trades: list[list[Any]], equity: list[list[float]], balance: float, span_ms: int
) -> PortfolioReport:
    """The report from the worker's out["portfolio"], the run's trades and its equity samples ([seconds, value])."""
    values = {round(t * 1000): v for t, v in equity}
    points = [
        ExposurePoint(
            time=iso(t),
            open_positions=n,
            gross_exposure_pct=g / values[t] * 100 if values.get(t, 0) > 0 else 0.0,
        )
        for t, n, g in out.get("exposure") or []
    ]
    correlation, days = correlation_matrix(out.get("closes") or {})
    gross = [p.gross_exposure_pct for p in points]
    return PortfolioReport(
        markets=list(out["markets"]),
        data_markets=list(out.get("data_markets") or []),
        contributions=[_contribution(s, trades, balance, span_ms) for s in out["markets"]],
        exposure=_weekly(points),
        max_open_positions=max((p.open_positions for p in points), default=0),
        average_gross_exposure_pct=float(np.mean(gross)) if gross else None,
        max_gross_exposure_pct=max(gross) if gross else None,
        correlation=correlation,
        correlation_days=days,
        refused_entries=dict(sorted((out.get("refused") or {}).items())),
        limits=dict(out.get("limits") or {}),
    )

"""Typed backtest results: names carry their units, undefined numbers are None (never NaN).

Built from what a worker returns (Jesse's metrics, compact trades, daily equity) by pure functions, so the numbers
can be checked without running Jesse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from jesse_mcp.backtesting.portfolio_report import PortfolioReport
from jesse_mcp.backtesting.tail_report import TailRisk
from jesse_mcp.backtesting.trade_rows import (
    T_CLOSED,
    T_ENTRY,
    T_FEE,
    T_OPENED,
    T_PNL,
    T_QTY,
    T_SIZE,
    T_SYMBOL,
    T_TYPE,
    equity_before,
    num,
    union_ms,
)
from shared.market.candles import iso

EPS = 1e-9


class RunRequest(BaseModel):
    strategy: str
    exchange: str
    symbol: str
    timeframe: str
    start: str = Field(description="UTC open time of the first traded candle.")
    end: str = Field(description="UTC end of the last traded candle (exclusive).")
    start_ms: int
    end_ms: int
    risk_profile: str
    hyperparameters: dict[str, int | float]
    fee_rate: float = Field(description="Fee per fill, fraction of notional (0.001 = 0.1 %).")
    leverage: float = Field(description="Futures leverage Jesse was configured with, a multiple.")
    starting_balance: float
    quote_currency: str
    warmup_candles: int = Field(description="Candles of the route timeframe kept for indicators before start.")
    strategy_sha256: str | None = Field(None, description="sha256 of the strategy code that ran.")
    markets: list[str] = Field(
        default_factory=list, description="A portfolio backtest's traded markets, in one account (symbol: the first)."
    )
    data_markets: list[str] = Field(default_factory=list, description="Markets whose candles only informed it.")
    portfolio_rules: dict[str, Any] | None = Field(
        None, description="A portfolio backtest's entry rules: the portfolio limits and the return windows."
    )
    sizing: Literal["risk", "cvar"] = Field(
        "risk",
        description="risk: risk per trade / stop distance, capped by size and leverage; cvar: also no larger than "
        "keeps the account's one-day CVaR within max_cvar.",
    )


class Performance(BaseModel):
    net_profit_pct: float | None = Field(description="Net profit over the run, % of the starting balance.")
    net_profit_quote: float | None = Field(description="Net profit, in the quote currency.")
    annual_return_pct: float | None = Field(description="Annualised return, %.")
    sharpe: float | None = Field(description="Annualised Sharpe ratio of daily returns.")
    sortino: float | None = Field(description="Annualised Sortino ratio of daily returns.")
    calmar: float | None = Field(description="Annual return / max drawdown.")
    max_drawdown_pct: float | None = Field(description="Largest fall of daily equity from its peak, % (positive).")
    win_rate_pct: float | None = Field(description="Winning trades, % of closed trades.")
    profit_factor: float | None = Field(description="Gross profit / gross loss.")
    expectancy_quote: float | None = Field(description="Average profit per trade, quote currency.")
    expectancy_pct: float | None = Field(description="Average profit per trade, % of the starting balance.")
    trades: int
    winning_trades: int | None
    losing_trades: int | None
    longs: int | None
    shorts: int | None
    average_holding_hours: float | None
    exposure_pct: float | None = Field(description="Share of the run with a position open, %.")
    fees_quote: float | None = Field(description="Fees paid, quote currency.")
    starting_balance_quote: float
    finishing_balance_quote: float | None
    largest_winning_trade_quote: float | None
    largest_losing_trade_quote: float | None


class RiskAdherence(BaseModel):
    largest_position_pct_of_equity: float | None = Field(
        description="Largest entry notional, % of the equity at entry."
    )
    largest_leverage_used_x: float | None = Field(description="Largest entry notional / equity at entry, a multiple.")
    largest_planned_risk_pct_of_equity: float | None = Field(
        description="Largest notional x stop distance, % of equity (risk-managed strategies)."
    )
    largest_loss_pct_of_equity: float | None = Field(description="Largest realised loss of one trade, % of equity.")
    max_drawdown_intraday_pct: float | None = Field(
        description="Largest fall from the equity peak marked to market every minute at the minute's worst price "
        "(low for longs, high for shorts), %: catches crashes that daily equity samples miss."
    )
    drawdown_within_profile: bool | None = Field(
        description="The larger of the daily and the intraday drawdown stayed within the profile's max_drawdown."
    )
    emergency_stop_breached: bool | None = Field(
        description="The larger of the daily and the intraday drawdown reached the emergency_stop level."
    )
    limits: dict[str, float] = Field(description="The limits checked, in the same units as the numbers above.")
    entries_halted_at: str | None = Field(
        description="UTC time from which no new entries were made because drawdown reached max_drawdown."
    )
    violations: list[str] = Field(description="Every limit a trade or the run went past; empty when none.")
    protection_locks: list[ProtectionLock] = Field(
        default_factory=list,
        description="Every pause the profile's protections made (cooldown, stoploss_guard, low_profit_lock, "
        "drawdown_pause), with its reason: the same rules as paper trading.",
    )
    entries_refused_by_protection: dict[str, int] = Field(
        default_factory=dict, description="Entry signals a protection lock refused, by rule (one per candle)."
    )
    entries_sized_down_by_cvar: int = Field(
        0, description="Sizing 'cvar': entries made smaller, or skipped, to keep the one-day CVaR within max_cvar."
    )


class ProtectionLock(BaseModel):
    rule: str
    market: str | None = Field(description="The locked market; None: every market.")
    start: str
    end: str
    reason: str


class DataProvenance(BaseModel):
    exchange: str
    symbol: str
    timeframe: str
    start: str
    end: str
    candles_1m: int = Field(description="1-minute candles simulated (warm-up not counted).")
    warmup_start: str = Field(description="UTC time of the first warm-up minute.")
    synthetic: bool = Field(description="True: generated data, not a market's history. Results are hypothetical.")
    sources: list[str]
    gaps_in_range: int = Field(description="Missing minutes in the range (always 0: runs refuse gaps).")
    filled_gaps_in_range: int = Field(description="Minutes in the range that were filled on request (flat candles).")
    markets: list[str] = Field(default_factory=list, description="A portfolio's markets (traded, then data-only).")


class RunInfo(BaseModel):
    engine: str
    fast_mode: bool = Field(
        description="True: Jesse's fast mode ran, with normal mode's daily equity and daily metrics rebuilt; "
        "false: Jesse's normal mode ran (asked for, or the rebuild did not match)."
    )
    duration_s: float = Field(description="Time the worker spent, seconds.")


class BacktestResult(BaseModel):
    id: str
    kind: Literal["backtest"] = "backtest"
    created_at: str
    synthetic: bool = Field(description="True when the candles were generated: say so whenever quoting these numbers.")
    request: RunRequest
    risk_settings: dict[str, float] = Field(description="Effective risk settings the strategy was sized with.")
    risk_sources: dict[str, str] = Field(description="Which layer set each risk field.")
    performance: Performance
    risk_adherence: RiskAdherence
    data: DataProvenance
    run: RunInfo
    tail_risk: TailRisk | None = Field(
        None, description="VaR and CVaR of the daily equity returns at the profile's var_confidence (three estimates)."
    )
    portfolio: PortfolioReport | None = Field(
        None, description="A portfolio backtest's per-market contribution, exposure, correlation and refused entries."
    )
    notes: list[str]
    jesse_metrics: dict[str, Any] = Field(description="Jesse's metrics as returned (NaN shown as null).")
    image: str | None = Field(None, description="'attached' when an equity-curve PNG was returned with this result.")


def performance(metrics: dict[str, Any], trades: list[list[Any]], start_ms: int, end_ms: int, balance: float):
    m = metrics
    total = int(m.get("total") or 0)
    gross_loss = num(m.get("gross_loss"))
    gross_profit = num(m.get("gross_profit"))
    profit_factor = None
    if gross_profit is not None and gross_loss is not None and gross_loss < 0:
        profit_factor = gross_profit / -gross_loss
    held_ms = union_ms([(t[T_OPENED] or 0, t[T_CLOSED] or 0) for t in trades])  # a portfolio's overlap counts once
    dd = num(m.get("max_drawdown"))
    win_rate = num(m.get("win_rate"))
    hold = num(m.get("average_holding_period"))
    return Performance(
        net_profit_pct=num(m.get("net_profit_percentage")),
        net_profit_quote=num(m.get("net_profit")),
        annual_return_pct=num(m.get("annual_return")),
        sharpe=num(m.get("sharpe_ratio")),
        sortino=num(m.get("sortino_ratio")),
        calmar=num(m.get("calmar_ratio")),
        max_drawdown_pct=-dd if dd is not None else None,
        win_rate_pct=win_rate * 100 if win_rate is not None and total else None,
        profit_factor=profit_factor,
        expectancy_quote=num(m.get("expectancy")),
        expectancy_pct=num(m.get("expectancy_percentage")),
        trades=total,
        winning_trades=m.get("total_winning_trades"),
        losing_trades=m.get("total_losing_trades"),
        longs=m.get("longs_count"),
        shorts=m.get("shorts_count"),
        average_holding_hours=hold / 3600 if hold is not None else None,
        exposure_pct=held_ms / (end_ms - start_ms) * 100 if end_ms > start_ms else None,
        fees_quote=num(m.get("fee")),
        starting_balance_quote=balance,
        finishing_balance_quote=num(m.get("finishing_balance")) if total else balance,
        largest_winning_trade_quote=num(m.get("largest_winning_trade")),
        largest_losing_trade_quote=num(m.get("largest_losing_trade")),
    )


@dataclass(frozen=True, slots=True)
class RunDrawdown:
    """What a run reports about its drawdown: Jesse's max drawdown, the intraday one (open positions marked to
    market every minute) and when entries stopped at the profile's max_drawdown (ms), each when known."""

    max_drawdown_pct: float | None
    intraday_pct: float | None = None
    entries_halted_at: int | None = None


def risk_adherence(
    trades: list[list[Any]],
    starting_balance: float,
    settings: dict[str, float],
    risk_managed: bool,
    drawdown: RunDrawdown,
) -> RiskAdherence:
    max_drawdown_pct, intraday_drawdown_pct = drawdown.max_drawdown_pct, drawdown.intraday_pct
    before = equity_before(trades, starting_balance)
    pos = [t[T_SIZE] / e * 100 for t, e in zip(trades, before, strict=True) if e > 0]
    losses = [-t[T_PNL] / e * 100 for t, e in zip(trades, before, strict=True) if e > 0 and t[T_PNL] < 0]
    planned = [p * settings["stop_loss"] for p in pos] if risk_managed else []
    limits = {
        "max_position_pct_of_equity": settings["max_position_size"] * 100,
        "max_leverage_x": settings["max_leverage"],
        "max_risk_per_trade_pct_of_equity": settings["max_portfolio_risk"] * 100,
        "max_drawdown_pct": settings["max_drawdown"] * 100,
        "emergency_stop_pct": settings["emergency_stop"] * 100,
    }
    violations = []
    worst_pos = max(pos, default=None)
    if worst_pos is not None and worst_pos > limits["max_position_pct_of_equity"] * (1 + 1e-6):
        n = sum(p > limits["max_position_pct_of_equity"] * (1 + 1e-6) for p in pos)
        violations.append(
            f"{n} trade(s) above max_position_size: largest {worst_pos:.2f} % of equity "
            f"(limit {limits['max_position_pct_of_equity']:g} %)."
        )
    worst_lev = worst_pos / 100 if worst_pos is not None else None
    if worst_lev is not None and worst_lev > settings["max_leverage"] * (1 + 1e-6):
        violations.append(f"leverage used {worst_lev:.2f}x above max_leverage {settings['max_leverage']:g}x.")
    worst_loss = max(losses, default=None)
    if worst_loss is not None and worst_loss > limits["max_risk_per_trade_pct_of_equity"] * (1 + 1e-6):
        violations.append(
            f"a single trade lost {worst_loss:.2f} % of equity, more than max_portfolio_risk "
            f"{limits['max_risk_per_trade_pct_of_equity']:g} % (a gap through the stop, or a strategy that sizes "
            "itself)."
        )
    worst_dd = max((d for d in (max_drawdown_pct, intraday_drawdown_pct) if d is not None), default=None)
    within = None if worst_dd is None else worst_dd <= limits["max_drawdown_pct"] + EPS
    breached = None if worst_dd is None else worst_dd >= limits["emergency_stop_pct"] - EPS
    if within is False:
        violations.append(
            f"max drawdown {worst_dd:.2f} % went past the profile's max_drawdown {limits['max_drawdown_pct']:g} %."
        )
    if breached:
        violations.append(f"max drawdown reached the emergency_stop level {limits['emergency_stop_pct']:g} %.")
    return RiskAdherence(
        largest_position_pct_of_equity=worst_pos,
        largest_leverage_used_x=worst_lev,
        largest_planned_risk_pct_of_equity=max(planned, default=None),
        largest_loss_pct_of_equity=worst_loss,
        max_drawdown_intraday_pct=intraday_drawdown_pct,
        drawdown_within_profile=within,
        emergency_stop_breached=breached,
        limits=limits,
        entries_halted_at=iso(drawdown.entries_halted_at) if drawdown.entries_halted_at else None,
        violations=violations,
    )


def intraday_drawdown_pct(rows: np.ndarray | dict[str, np.ndarray], trades: list[list[Any]], balance: float):
    """Largest fall of equity from its peak, marking open positions to market every minute at the minute's worst
    price (low for longs, high for shorts), in %, or None without rows. `rows` are the traded 1-minute candles
    (Jesse column order): one market's, or symbol -> rows of a portfolio's markets (the same minutes).

    Jesse stamps an order with the end of the minute it filled in, so a trade is held through minutes
    [opened, closed - 1); in the minute it closes, the realised result counts (a stop fills at its price)."""
    by_symbol = rows if isinstance(rows, dict) else {None: rows}
    first = next(iter(by_symbol.values()))
    n = len(first)
    if n == 0:
        return None
    ts0 = first[0, 0]

    def minute(t: float) -> int:
        return int(min(max((t - ts0) // 60_000, 0), n))

    realised = np.zeros(n + 1)
    worst = np.zeros(n)
    marked = np.zeros(n)
    for t in trades:
        opened, closed = minute(t[T_OPENED]), minute(t[T_CLOSED])
        realised[max(closed - 1, 0)] += t[T_PNL] or 0.0
        if closed - 1 <= opened:
            continue
        r = by_symbol[t[T_SYMBOL]] if len(by_symbol) > 1 else first
        qty, entry, held = abs(t[T_QTY]), t[T_ENTRY], slice(opened, closed - 1)
        entry_fee = (t[T_FEE] or 0.0) / 2
        if t[T_TYPE] == "short":
            worst[held] += qty * (entry - r[held, 3]) - entry_fee
            marked[held] += qty * (entry - r[held, 2]) - entry_fee
        else:
            worst[held] += qty * (r[held, 4] - entry) - entry_fee
            marked[held] += qty * (r[held, 2] - entry) - entry_fee
    equity_realised = balance + np.cumsum(realised[:n])
    peak = np.maximum.accumulate(np.maximum(equity_realised + marked, balance))
    low = equity_realised + worst
    return float(max(0.0, np.max(1 - low / peak)) * 100)


def summary_of(result: BacktestResult) -> dict[str, Any]:
    p, r = result.performance, result.request
    return {
        "strategy": r.strategy,
        "market": f"{r.exchange}:{'+'.join(r.markets) if r.markets else r.symbol}",
        "timeframe": r.timeframe,
        "risk_profile": r.risk_profile,
        "range": f"{r.start} .. {r.end}",
        "synthetic": result.synthetic,
        "net_profit_pct": p.net_profit_pct,
        "max_drawdown_pct": p.max_drawdown_pct,
        "sharpe": p.sharpe,
        "trades": p.trades,
    }


def fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"

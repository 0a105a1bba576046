"""The portfolio gate of a backtest over several markets: every entry signal of every route meets the paper account's
pre-trade checks (jesse_mcp.trading.checks.pre_trade_checks, the one implementation), on a `Book` built from the
routes' positions in Jesse's one account.

The engine opens a `PortfolioRun` before the simulation (`begin`) and closes it after (`end`); each
RiskManagedStrategy of the run registers itself, and asks `refused_by` before it enters. Daily closes come from the
run's own 1-minute candles (and stored history before them), only of days that ended before the simulated time: no
look-ahead. What the checks need and a backtest does not have is stated as the backtest's equivalent: trades are the
entries the run made in the same UTC day, ISO week and month; nothing rests (the strategies enter at the market);
protection locks are left to the strategy base (they are reported by their own rule).
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import numpy as np

from jesse_mcp.trading.checks import CheckInputs, pre_trade_checks
from jesse_mcp.trading.models import Position
from jesse_mcp.trading.stats import correlations_with
from jesse_mcp.trading.tail import aligned_returns, order_tail
from jesse_mcp.trading.venue import Book
from shared.config.models import PortfolioLimits
from shared.state.counters import window_keys

DAY_MS = 86_400_000
STRATEGY_NAME = "backtest"  # every route runs the one strategy of the run: its positions are all "mine"


@dataclass
class PortfolioRun:
    """What the routes of one portfolio backtest share."""

    risk: dict[str, Any]
    limits: dict[str, Any]
    closes: dict[str, tuple[np.ndarray, np.ndarray]]  # symbol -> daily_closes
    correlation_days: int
    cvar_days: int
    fee_rate: float
    leverage: float
    admit: bool = True  # a portfolio: entries meet the checks; False: a one-market run that only sizes by CVaR
    cvar_sizing: bool = False
    strategies: list[Any] = field(default_factory=list)
    entries: Counter[tuple[str, str]] = field(default_factory=Counter)  # (period, UTC day/week/month) -> entries
    refused: dict[str, int] = field(default_factory=dict)  # rule -> entry signals it refused
    peak_equity: float = 0.0
    cvar_sized: set[tuple[str, int]] = field(default_factory=set)  # (market, time) of every entry CVaR made smaller

    def __post_init__(self) -> None:
        self._risk = SimpleNamespace(**self.risk)
        self._limits = PortfolioLimits.model_validate(self.limits)
        self._series_at: tuple[int, dict[str, list[tuple[int, float]]]] | None = None
        self._corr: dict[tuple[int, str, str], float | str] = {}

    def series(self, now_ms: int) -> dict[str, list[tuple[int, float]]]:
        """Every market's daily closes of the days that ended by `now_ms` (cached per day)."""
        day = now_ms // DAY_MS
        if self._series_at is None or self._series_at[0] != day:
            out = {}
            for symbol, (days, closes) in self.closes.items():
                n = bisect.bisect_right(days, day * DAY_MS - DAY_MS)  # days that ended by the start of today
                out[symbol] = list(zip(days[:n].tolist(), closes[:n].tolist(), strict=True))
            self._series_at = (day, out)
        return self._series_at[1]

    def equity(self) -> float:
        """The account's equity: the one wallet plus every route's open position's P&L."""
        first = self.strategies[0]
        return float(first.balance) + sum(float(s.position.pnl) for s in self.strategies if s.position.is_open)

    def watch(self, strategy: Any) -> None:
        """The account's peak equity (wallet plus every open position's PNL), watched by the first route each
        candle."""
        if self.strategies and self.strategies[0] is strategy:
            self.peak_equity = max(self.peak_equity, self.equity())

    def _correlations(self, symbol: str, held: list[str], recent: dict, now_ms: int) -> dict[str, float | str]:
        """correlations_with, remembered for the day (the daily closes it reads change once a day)."""
        day, out = now_ms // DAY_MS, {}
        for other in held:
            key = (day, symbol, other)
            if key not in self._corr:
                self._corr[key] = correlations_with(symbol, [other], recent)[other]
            out[other] = self._corr[key]
        return out

    def trade_counts(self, now_ms: int) -> dict[str, int]:
        now = _windows(now_ms)
        return {period: self.entries[(period, key)] for period, key in now.items()}

    def _book(self) -> Book:
        book = book_of(self.strategies, self.leverage)
        self.peak_equity = max(self.peak_equity, book.equity)
        return Book(book.cash, book.equity, self.peak_equity, book.margin_used, book.positions, [])

    def _wanted(self, symbol: str, book: Book, now: int) -> dict[str, list[tuple[int, float]]]:
        series = self.series(now)
        return {s: series[s] for s in {symbol, *(p.symbol for p in book.positions)}}

    def cvar_cap(self, strategy: Any, long: bool, notional: float) -> float:
        """Sizing 'cvar': the entry's notional, at most what keeps the account's one-day historical CVaR (at
        var_confidence, over cvar_days) within max_cvar with everything held; unchanged while the markets have too
        few daily returns to measure it."""
        if not self.cvar_sizing or notional <= 0:
            return notional
        now, book = int(strategy.time), self._book()
        returns = aligned_returns(self._wanted(strategy.symbol, book, now), self.cvar_days)
        if isinstance(returns, str):
            return notional
        signed = notional if long else -notional
        conf, limit = float(self.risk["var_confidence"]), float(self.risk["max_cvar"])
        room = order_tail(book, strategy.symbol, signed, returns, conf, limit).room_usd
        if room < notional:
            self.cvar_sized.add((strategy.symbol, now))
        return min(notional, room)

    def refused_by(self, strategy: Any, long: bool, notional: float) -> list[str]:
        """The rules that refuse this entry (none: it may enter, and counts as a trade)."""
        if not self.admit:
            return []
        now, book = int(strategy.time), self._book()
        held = sorted({p.symbol for p in book.positions})
        wanted = self._wanted(strategy.symbol, book, now)
        recent = {s: v[-self.correlation_days :] for s, v in wanted.items()}
        inputs = CheckInputs(
            strategy=STRATEGY_NAME,
            symbol=strategy.symbol,
            long=long,
            leverage=self.leverage,
            notional=notional,
            fee_bps=self.fee_rate * 10_000,
            book=book,
            trade_counts=self.trade_counts(now),
            correlations=self._correlations(strategy.symbol, held, recent, now),
            daily_returns=aligned_returns(wanted, self.cvar_days),
            locks=[],
            now_ms=now,
        )
        _, violations = pre_trade_checks(inputs, self._risk, self._limits)
        rules = sorted({v.rule for v in violations if v is not None})
        for rule in rules:
            self.refused[rule] = self.refused.get(rule, 0) + 1
        if not rules:
            self.entries.update(_windows(now).items())
        return rules


def _windows(ms: int) -> dict[str, str]:
    return window_keys("trades", datetime.fromtimestamp(ms / 1000, UTC))


def _position(s: Any, leverage: float) -> Position:
    """A route's open position as the typed model the checks read (money in the quote currency, taken as USD)."""
    p = s.position
    at = datetime.fromtimestamp(int(s.time) / 1000, UTC).isoformat()
    qty, entry, mark = abs(float(p.qty)), float(p.entry_price), float(s.price)
    return Position(
        id=s.symbol,
        strategy=STRATEGY_NAME,
        symbol=s.symbol,
        side="long" if p.qty > 0 else "short",
        qty=qty,
        entry_price=entry,
        leverage=leverage,
        notional=qty * mark,
        margin=qty * entry / leverage,
        stop_loss_price=0.0,
        take_profit_price=0.0,
        opened_at=at,
        mark_price=mark,
        marked_at=at,
        unrealised_pnl=float(p.pnl),
        status="open",
        fees=0.0,
        expires_at=at,
    )


def book_of(strategies: list[Any], leverage: float) -> Book:
    """The account as the checks see it: the one wallet, every route's open position, nothing resting."""
    positions = [_position(s, leverage) for s in strategies if s.position.is_open]
    wallet = float(strategies[0].balance)
    margin = sum(p.margin for p in positions)
    equity = wallet + sum(p.unrealised_pnl for p in positions)
    return Book(
        cash=wallet - margin, equity=equity, peak_equity=equity, margin_used=margin, positions=positions, orders=[]
    )


_current: PortfolioRun | None = None


def begin(run: PortfolioRun) -> None:
    global _current
    _current = run


def end() -> PortfolioRun | None:
    global _current
    run, _current = _current, None
    return run


def current() -> PortfolioRun | None:
    return _current

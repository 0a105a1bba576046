"""Protections: pauses on new entries after losses, one implementation for backtests and paper trading.

Four rules, each set per risk profile and per strategy override (risk fields, so loosening one needs the person):

- cooldown: after an exit in a market, no new entry in that market for `cooldown_minutes`.
- stoploss_guard: `stoploss_guard_stops` stop-loss exits (any market) within `protection_window_hours` pause every
  new entry for `protection_pause_hours` from the stop that made the count.
- low_profit_lock: a market whose trades closed within the window lose more than `low_profit_max_loss` in all (the
  sum of each trade's return on its notional) is locked for the pause.
- drawdown_pause: equity `window_drawdown` below its highest point of the window pauses every new entry for the
  pause.

Locks are made by events (an exit, an equity reading) and are active until their end; the venue gathers the events
(the strategy base in a backtest, the paper ledger in paper) and asks `blocking()` before an entry. Pure.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
EPS = 1e-9
FIELDS = (
    "cooldown_minutes",
    "stoploss_guard_stops",
    "low_profit_max_loss",
    "window_drawdown",
    "protection_window_hours",
    "protection_pause_hours",
)


@dataclass(frozen=True)
class Protections:
    cooldown_minutes: float
    stoploss_guard_stops: float
    low_profit_max_loss: float
    window_drawdown: float
    protection_window_hours: float
    protection_pause_hours: float

    @classmethod
    def of(cls, settings: Mapping[str, float]) -> Protections:
        return cls(**{f: float(settings[f]) for f in FIELDS})

    @property
    def window_ms(self) -> int:
        return int(self.protection_window_hours * HOUR_MS)

    @property
    def pause_ms(self) -> int:
        return int(self.protection_pause_hours * HOUR_MS)

    @property
    def lookback_ms(self) -> int:
        """How far back events can still make a lock that is active now."""
        return max(self.window_ms + self.pause_ms, int(self.cooldown_minutes * MINUTE_MS))


@dataclass(frozen=True)
class Exit:
    symbol: str
    closed_ms: int
    trade_return: float  # net P&L / entry notional
    stop_loss: bool


@dataclass(frozen=True)
class Lock:
    rule: str  # cooldown, stoploss_guard, low_profit_lock, drawdown_pause
    symbol: str | None  # None: every market
    from_ms: int
    until_ms: int
    reason: str

    def blocks(self, symbol: str, now_ms: int) -> bool:
        return self.from_ms <= now_ms < self.until_ms and self.symbol in (None, symbol)

    def describe(self) -> str:
        where = f"new entries in {self.symbol}" if self.symbol else "all new entries"
        return f"{self.rule}: {where} paused until {_iso(self.until_ms)} ({self.reason})"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def locks_on_exit(exit: Exit, earlier: Sequence[Exit], p: Protections) -> list[Lock]:
    """The locks an exit makes; `earlier` are exits before it (any market, oldest first, may be longer)."""
    window = ExitWindow(p)
    for e in earlier:
        window.add(e)
    return window.add(exit)


class ExitWindow:
    """The exits of the last protection window (any market) and what the locks read of them: the stop losses and
    each market's summed trade returns, kept up to date as exits arrive and age out (O(1) each, so a day of many
    exits costs what one does). Backtests (per route) and paper (per strategy) feed exits oldest first."""

    def __init__(self, p: Protections):
        self.p = p
        self._exits: deque[Exit] = deque()
        self._stops = 0
        self._count: Counter[str] = Counter()
        self._returns: dict[str, float] = {}

    def add(self, exit: Exit) -> list[Lock]:
        """The locks this exit makes, with the exits of the window before it."""
        start = exit.closed_ms - self.p.window_ms
        while self._exits and self._exits[0].closed_ms <= start:
            self._drop(self._exits.popleft())
        self._exits.append(exit)
        self._stops += exit.stop_loss
        self._count[exit.symbol] += 1
        self._returns[exit.symbol] = self._returns.get(exit.symbol, 0.0) + exit.trade_return
        return _exit_locks(exit, self._stops, -self._returns[exit.symbol], self.p)

    def _drop(self, old: Exit) -> None:
        self._stops -= old.stop_loss
        self._count[old.symbol] -= 1
        left = self._count[old.symbol] > 0  # a market with none left restarts from 0: no rounding carried over
        self._returns[old.symbol] = self._returns[old.symbol] - old.trade_return if left else 0.0


def _exit_locks(exit: Exit, stops: int, loss: float, p: Protections) -> list[Lock]:
    """The locks of an exit, given the stop losses of the window (it included) and its market's loss there."""
    t = exit.closed_ms
    locks: list[Lock] = []
    if p.cooldown_minutes > 0:
        until = t + int(p.cooldown_minutes * MINUTE_MS)
        locks.append(Lock("cooldown", exit.symbol, t, until, f"{p.cooldown_minutes:g} min after the exit at {_iso(t)}"))
    if exit.stop_loss and stops >= p.stoploss_guard_stops:
        reason = f"{stops} stop losses within {p.protection_window_hours:g} h (limit {p.stoploss_guard_stops:g})"
        locks.append(Lock("stoploss_guard", None, t, t + p.pause_ms, reason))
    if loss > p.low_profit_max_loss + EPS:
        reason = (
            f"trades closed within {p.protection_window_hours:g} h lost {loss * 100:.2f} % of their notional "
            f"(limit {p.low_profit_max_loss * 100:g} %)"
        )
        locks.append(Lock("low_profit_lock", exit.symbol, t, t + p.pause_ms, reason))
    return locks


def drawdown_lock(now_ms: int, equity: float, window_peak: float, p: Protections) -> Lock | None:
    """The lock an equity reading makes when it is `window_drawdown` below the window's highest equity."""
    if window_peak <= 0:
        return None
    fall = 1 - equity / window_peak
    if fall + EPS < p.window_drawdown:
        return None
    reason = (
        f"equity {fall * 100:.2f} % below its high of the last {p.protection_window_hours:g} h "
        f"(limit {p.window_drawdown * 100:g} %)"
    )
    return Lock("drawdown_pause", None, now_ms, now_ms + p.pause_ms, reason)


def replay(exits: Sequence[Exit], equity: Sequence[tuple[int, float]], p: Protections) -> list[Lock]:
    """Every lock made by these exits and equity readings (each oldest first), as they happened."""
    locks: list[Lock] = []
    window = ExitWindow(p)
    for e in exits:
        locks += window.add(e)
    peaks = WindowPeak(p.window_ms)
    for t, value in equity:
        lock = drawdown_lock(t, value, peaks.add(t, value), p)
        if lock is not None:
            locks.append(lock)
    return locks


class WindowPeak:
    """The highest value of the readings within the last `window_ms` (a monotonic queue: O(1) per reading)."""

    def __init__(self, window_ms: int):
        self.window_ms = window_ms
        self._q: deque[tuple[int, float]] = deque()

    def add(self, t: int, value: float) -> float:
        while self._q and self._q[-1][1] <= value:
            self._q.pop()
        self._q.append((t, value))
        while self._q[0][0] <= t - self.window_ms:
            self._q.popleft()
        return self._q[0][1]


def blocking(locks: Iterable[Lock], symbol: str, now_ms: int) -> list[Lock]:
    """The locks that stop a new entry in `symbol` now, the one lasting longest first."""
    return sorted((k for k in locks if k.blocks(symbol, now_ms)), key=lambda k: -k.until_ms)

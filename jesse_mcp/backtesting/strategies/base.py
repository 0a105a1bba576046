"""RiskManagedStrategy: the Jesse Strategy base whose positions are shaped by the effective risk profile.

Subclasses say when to enter and exit (`long_signal`, `short_signal`, `exit_long`, `exit_short`); the base does the
rest the same way for every strategy:

- size: notional = max_portfolio_risk x equity / stop_loss (the stop distance), capped at
  min(max_position_size, max_leverage) x equity and at what the margin allows;
- stop loss and take profit at the profile's distances from the entry price;
- no new entries once equity has fallen max_drawdown from its peak (entries stay off for the rest of the run);
- in a backtest over several markets, the paper account's pre-trade checks on every entry (strategies/portfolio.py):
  open and total positions, account usage, correlation with what is held, CVaR, trades per day, week and month;
- the protections of the profile (shared.policy.protections, the same code paper trading uses): a cooldown after an
  exit, the stop-loss guard, the low-profit lock and the drawdown pause; every lock and every entry signal it
  refused are reported at the end of the run.

The risk settings reach the strategy as the hyperparameter `_risk` (a dict), so a direct
`jesse.research.backtest(..., hyperparameters=...)` call with the same dict reproduces a run exactly.
User strategies may subclass it: `from jesse_mcp.backtesting.strategies.base import RiskManagedStrategy`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from jesse.strategies import Strategy

from jesse_mcp.backtesting.strategies import portfolio
from shared.policy.protections import (
    FIELDS,
    Exit,
    ExitWindow,
    Lock,
    Protections,
    WindowPeak,
    blocking,
    drawdown_lock,
)

RISK_KEY = "_risk"
REQUIRED_RISK = ("max_portfolio_risk", "max_position_size", "max_leverage", "max_drawdown", "stop_loss", "take_profit")
MARGIN_HEADROOM = 0.98  # keep fees and rounding from ever exceeding the available margin
RUN_STATE: dict[
    str, Any
] = {}  # what the last run's strategy reported at its end (read by jesse_mcp.backtesting.engine)


class RiskManagedStrategy(Strategy):
    catalog_name: ClassVar[str | None] = None  # built-ins: their name in jesse_mcp.backtesting.catalog

    def __init__(self) -> None:
        super().__init__()
        self._peak_equity: float | None = None
        self.entries_halted_at: int | None = None
        self._window: ExitWindow | None = None  # the exits of the protection window (made on the first exit)
        self._locks: list[Lock] = []  # every lock made, in order (a drawdown pause extended in place)
        self._window_peak: WindowPeak | None = None
        self.refused_by_lock: dict[str, int] = {}
        self._portfolio = portfolio.current()  # a backtest over several markets: the routes share one gate
        if self._portfolio is not None:
            self._portfolio.strategies.append(self)

    # --- what subclasses implement ---------------------------------------------------------------------------
    def long_signal(self) -> bool:
        raise TypeError(
            f"{type(self).__name__} must define long_signal() (and may define short_signal, exit_long, "
            "exit_short): RiskManagedStrategy subclasses say when to enter; the base does the sizing."
        )

    def short_signal(self) -> bool:
        return False

    def exit_long(self) -> bool:
        return False

    def exit_short(self) -> bool:
        return False

    # --- Jesse's hooks ----------------------------------------------------------------------------------------
    def hyperparameters(self) -> list:
        if self.catalog_name is None:
            return []
        from jesse_mcp.backtesting.catalog import BUILTIN

        return [p.jesse() for p in BUILTIN[self.catalog_name].params]

    @property
    def risk(self) -> dict[str, float]:
        risk = self.hp.get(RISK_KEY) if self.hp else None
        if not isinstance(risk, dict) or any(k not in risk for k in REQUIRED_RISK):
            raise ValueError(
                f"{type(self).__name__} needs the hyperparameter {RISK_KEY!r}: a dict with {', '.join(REQUIRED_RISK)}."
            )
        return risk

    @property
    def protections(self) -> Protections | None:
        """None when the risk dict has no protections (a direct call with only the sizing fields)."""
        risk = self.risk
        return Protections.of(risk) if all(f in risk for f in FIELDS) else None

    def _watch_drawdown(self, p: Protections) -> None:
        if self._window_peak is None:
            self._window_peak = WindowPeak(p.window_ms)
        value = self.portfolio_value
        lock = drawdown_lock(self.time, value, self._window_peak.add(self.time, value), p)
        if lock is None:
            return
        last = self._locks[-1] if self._locks else None
        if last is not None and last.rule == lock.rule and last.until_ms >= lock.from_ms:  # still paused: extend
            self._locks[-1] = Lock(last.rule, None, last.from_ms, lock.until_ms, last.reason)
        else:
            self._locks.append(lock)

    def before(self) -> None:
        if self._portfolio is not None:
            self._portfolio.watch(self)
        p = self.protections
        if p is not None:
            self._watch_drawdown(p)
        if self.position.is_open:
            return
        equity = self.balance
        if self._peak_equity is None or equity > self._peak_equity:
            self._peak_equity = equity
        if self.entries_halted_at is None and equity <= self._peak_equity * (1 - self.risk["max_drawdown"]):
            self.entries_halted_at = self.time

    @property
    def entries_allowed(self) -> bool:
        return self.entries_halted_at is None

    def _unlocked(self) -> bool:
        """False while a protection lock blocks entries here; the refused signal is counted by its rule."""
        locks = blocking(self._locks[-32:], self.symbol, self.time)  # only recent locks can still be active
        if locks:
            self.refused_by_lock[locks[0].rule] = self.refused_by_lock.get(locks[0].rule, 0) + 1
        return not locks

    def _admitted(self, long: bool) -> bool:
        """In a portfolio run, the account's pre-trade checks admit this entry (refusals are counted by rule)."""
        if self._portfolio is None:
            return True
        notional = self.entry_notional(long)
        if notional <= 0:  # sizing 'cvar' found no room under max_cvar (counted as sized down)
            return False
        return not self._portfolio.refused_by(self, long, notional)

    def should_long(self) -> bool:
        return self.entries_allowed and self.long_signal() and self._unlocked() and self._admitted(True)

    def should_short(self) -> bool:
        return (
            self.entries_allowed
            and bool(self.hp.get("allow_short", 1))
            and self.short_signal()
            and self._unlocked()
            and self._admitted(False)
        )

    def should_cancel_entry(self) -> bool:
        return True

    def position_qty(self, long: bool = True) -> float:
        return self.entry_notional(long) / self.price

    def entry_notional(self, long: bool = True) -> float:
        """The entry's size in the quote currency. In a portfolio run equity counts the other routes' open positions
        (as the pre-trade checks do); the checks see this very number, not qty x price (one rounding less). With
        sizing 'cvar', also no larger than keeps the account's one-day CVaR within max_cvar."""
        r = self.risk
        equity = self.balance if self._portfolio is None else self._portfolio.equity()
        notional = r["max_portfolio_risk"] * equity / r["stop_loss"]
        notional = min(notional, min(r["max_position_size"], r["max_leverage"]) * equity)
        notional = max(min(notional, self.available_margin * self.leverage * MARGIN_HEADROOM), 0.0)
        return notional if self._portfolio is None else self._portfolio.cvar_cap(self, long, notional)

    def go_long(self) -> None:
        self.buy = self.position_qty(True), self.price

    def go_short(self) -> None:
        self.sell = self.position_qty(False), self.price

    def on_open_position(self, order: Any) -> None:
        r, entry = self.risk, self.position.entry_price
        if self.is_long:
            self.stop_loss = self.position.qty, entry * (1 - r["stop_loss"])
            self.take_profit = self.position.qty, entry * (1 + r["take_profit"])
        else:
            self.stop_loss = self.position.qty, entry * (1 + r["stop_loss"])
            self.take_profit = self.position.qty, entry * (1 - r["take_profit"])

    def on_close_position(self, order: Any, closed_trade: Any) -> None:
        p = self.protections
        if p is None or closed_trade is None:
            return
        size = abs(closed_trade.qty) * closed_trade.entry_price
        exit = Exit(self.symbol, int(self.time), closed_trade.pnl / size if size else 0.0, bool(order.is_stop_loss))
        if self._window is None:
            self._window = ExitWindow(p)
        self._locks += self._window.add(exit)

    def before_terminate(self) -> None:
        """Adds this route's report to the run's (a portfolio's routes report one after another)."""
        halted = RUN_STATE.get("entries_halted_at")
        if self.entries_halted_at is not None and (halted is None or self.entries_halted_at < halted):
            halted = self.entries_halted_at
        RUN_STATE["entries_halted_at"] = halted
        seen = RUN_STATE.setdefault("protection_locks", [])
        for k in self._locks:  # a drawdown pause locks every market: each route saw it, report it once
            lock = {
                "rule": k.rule,
                "symbol": k.symbol,
                "from_ms": k.from_ms,
                "until_ms": k.until_ms,
                "reason": k.reason,
            }
            if lock not in seen:
                seen.append(lock)
        refused = RUN_STATE.setdefault("refused_by_lock", {})
        for rule, n in self.refused_by_lock.items():
            refused[rule] = refused.get(rule, 0) + n

    def update_position(self) -> None:
        if (self.is_long and self.exit_long()) or (self.is_short and self.exit_short()):
            self.liquidate()

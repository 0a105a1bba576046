"""Paper trading, one venue (trading/venue.py): the service that reconciles the ledger with prices, places, cancels
and closes paper orders, and reports the portfolio and performance. The ledger itself is in ledger.py, an order's
transaction in orders.py, the steps of a reconciliation in reconcile.py, the kill switch in kill_switch.py, the
read-side results in views.py, the pre-trade checks in checks.py and the statistics in stats.py.

Stops, take profits, limit orders, timeouts and the kill switch are applied by `reconcile()`, which the server's
monitor runs on an interval and every paper call runs first.

An order commits whole or not at all: order, fill, position, trade counters and the journal row are written in one
SQLite transaction (BEGIN IMMEDIATE), after every pre-trade check was evaluated by the guard inside it, so several
server processes together never pass a limit.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import anyio

from jesse_mcp.trading import ledger, orders, protect, rows
from jesse_mcp.trading import reconcile as paper_reconcile
from jesse_mcp.trading import views as paper_views
from jesse_mcp.trading.kill_switch import snapshot_and_trip
from jesse_mcp.trading.models import (
    CancelResult,
    CloseResult,
    Event,
    OrderRequest,
    OrderResult,
    Performance,
    Portfolio,
    ResetResult,
)
from jesse_mcp.trading.orders import PaperError
from jesse_mcp.trading.prices import NoPrice, PaperQuote, PriceSource
from jesse_mcp.trading.rows import OrderRow, PositionRow
from jesse_mcp.trading.stats import correlations_with, performance_of
from jesse_mcp.trading.tail import DailyReturns, Series, aligned_returns, book_tail_risk
from shared.config.models import TradingConfig
from shared.config.resolve import resolve_risk
from shared.errors import ConfigError
from shared.market.candles import iso_ms
from shared.policy.guard import CallRecord
from shared.state import trading_state
from shared.state.callscope import current_call
from shared.state.store import JournalEntry, Store, utc_now_iso

log = logging.getLogger(__name__)


class PaperService:
    """The paper venue: a simulated account on the shared SQLite ledger, priced by the price library."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], TradingConfig],
        prices: PriceSource,
        clock: Callable[[], float] = time.time,
        server: str = "jesse-mcp",
    ):
        self.store = store
        self.config = config
        self.prices = prices
        self.clock = clock
        self.server = server
        self._reconcile_lock = anyio.Lock()
        self._orders = orders.PaperOrders(store, server)

    def last_good_config(self) -> TradingConfig:
        """The configuration; while the file is broken, the last valid one, so stops and the kill switch keep
        working (tool calls are refused with config_invalid meanwhile)."""
        try:
            self._last_cfg = self.config()
        except ConfigError:
            if getattr(self, "_last_cfg", None) is None:
                raise
            log.warning("the configuration file is invalid; the paper ledger uses the last valid one")
        return self._last_cfg

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self.store.reading() as db:
            return fn(db)

    # --- reconciliation -----------------------------------------------------------------------------------------
    async def _quotes(self, symbols: set[str]) -> tuple[dict[str, PaperQuote], dict[str, str]]:
        quotes: dict[str, PaperQuote] = {}
        missing: dict[str, str] = {}

        async def one(symbol: str) -> None:
            try:
                quotes[symbol] = await self.prices.quote(symbol)
            except NoPrice as e:
                missing[symbol] = str(e)

        async with anyio.create_task_group() as tg:
            for s in sorted(symbols):
                tg.start_soon(one, s)
        return quotes, missing

    async def reconcile(self, record_locks: bool = False) -> tuple[list[Event], dict[str, str]]:
        """Apply everything prices say should have happened: limit fills, stops, take profits, liquidations,
        timeouts, then the kill switch; with `record_locks` (the monitor, the portfolio view) also record the
        protection locks not seen before. Returns the events and the symbols that had no fresh price."""
        async with self._reconcile_lock:
            cfg = self.last_good_config()
            with self.store.reading() as db:
                positions, orders = ledger.open_positions(db), ledger.open_orders(db)
                has_account = db.execute("SELECT 1 FROM paper_account").fetchone() is not None
            if not has_account:
                return [], {}
            asked_ms = self.now_ms()
            quotes, missing = await self._quotes({p.symbol for p in positions} | {o.symbol for o in orders})
            now = self.now_ms()
            events: list[Event] = []
            with self.store.transaction() as db:
                account = ledger.load_account(db, cfg, now)
                ledger.roll_day(db, account, now)  # at the old marks: a move over midnight counts for the new day
                if trading_state.read_in(db).active:
                    events += paper_reconcile.cancel_orphans(db, cfg, now)
                    events += paper_reconcile.fill_limits(db, cfg, quotes, now, asked_ms)
                events += paper_reconcile.apply_marks(db, cfg, quotes, now, asked_ms)
                if record_locks:  # each lock once, with its reason (journaled below); orders need not wait for it
                    events += protect.record_all(db, cfg, now)
                _, halt = snapshot_and_trip(db, self.store, self.server, cfg, now)
                if halt is not None:
                    events.append(halt)
                events += paper_reconcile.unpriced_timeouts(db, cfg, missing, now)
                if any(e.kind != "no_price" for e in events):
                    self.store.journal_insert(
                        JournalEntry(
                            self.server,
                            "paper_monitor",
                            None,
                            None,
                            {"events": [e.model_dump() for e in events]},
                            "system",
                            "ok",
                        ),
                        db,
                    )
            return events, missing

    # --- orders ----------------------------------------------------------------------------------------------------
    def _duplicate_result(self, row: OrderRow, cfg: TradingConfig, events: list[Event]) -> OrderResult:
        return self._read(lambda db: paper_views.duplicate_result(db, cfg, row, self.now_ms(), events))

    async def place_order(self, req: OrderRequest) -> OrderResult:
        """Check every limit inside the guard, then record the order (and its fill, for a market order) whole."""
        orders.validate(req)
        cfg = self.config()
        scope = current_call("place_paper_order", self.server, {"request": req.__dict__})
        # Tighten-only: a call may narrow the profile's stop or take profit, never widen them.
        per_call = {"stop_loss": req.stop_loss, "take_profit": req.take_profit}
        risk = resolve_risk(cfg, req.strategy, per_call=per_call, mode="paper").settings
        existing = self._read(lambda db: orders.existing(db, req))
        if existing is not None:
            return self._duplicate_result(existing, cfg, [])
        events, _ = await self.reconcile()
        quote = await self.prices.quote(req.symbol)
        held_now = self._read(lambda db: [*ledger.open_positions(db), *ledger.open_orders(db)])
        correlations, daily = await self._daily_risk(req, held_now, quote.as_of_ms)
        now = self.now_ms()
        record = CallRecord(scope.server, scope.tool, "paper", req.strategy)
        cfg = self.config()  # again: a demotion or a tightening while prices were fetched counts
        risk = resolve_risk(cfg, req.strategy, per_call=per_call, mode="paper").settings
        placement = orders.Placement(req, cfg, risk, quote, correlations, daily, record, now)
        with self.store.transaction() as db:
            existing = orders.existing(db, req)
            if existing is None:
                outcome = self._orders.place_in(db, placement)
                scope.journal(self.store, db)
        if existing is not None:  # another process placed it while we fetched prices
            return self._duplicate_result(existing, cfg, events)
        return outcome.model_copy(update={"events": events + outcome.events})

    async def _daily_risk(
        self, req: OrderRequest, positions: list[PositionRow | OrderRow], as_of_ms: int
    ) -> tuple[dict[str, float | str], DailyReturns | str]:
        """From one fetch of daily closes per symbol, the days before the order's quote (a replay quote is as of the
        stored data's end): the directional return correlation with each held symbol (or why it could not be
        measured), and the daily returns the CVaR check revalues the book on."""
        paper = self.config().paper
        now = min(self.now_ms(), as_of_ms)
        others = sorted({p.symbol for p in positions})
        series = await self._daily_closes({req.symbol, *others}, max(paper.correlation_days, paper.cvar_days), now)
        recent = {s: v if isinstance(v, str) else v[-paper.correlation_days :] for s, v in series.items()}
        correlations = correlations_with(req.symbol, others, recent) if others else {}
        return correlations, aligned_returns(series, paper.cvar_days)

    async def cancel_order(self, order_id: str) -> CancelResult:
        events, _ = await self.reconcile()
        scope = current_call("cancel_paper_order", self.server, {"order_id": order_id})
        now = self.now_ms()
        with self.store.transaction() as db:
            found = ledger.select_orders(
                db, "WHERE id = ? OR client_order_id = ? ORDER BY id = ? DESC", (order_id, order_id, order_id)
            )
            if not found:
                raise PaperError(
                    f"No paper order {order_id!r} (order id or client order id). get_paper_portfolio lists open orders."
                )
            o = found[0]
            if o.status != "open":
                raise PaperError(f"Order {o.id} is already {o.status} ({o.reason or '-'}); nothing to cancel.")
            db.execute(
                "UPDATE paper_orders SET status = 'cancelled', reason = 'cancelled by request', updated_ms = ? "
                "WHERE id = ?",
                (now, o.id),
            )
            scope.journal(self.store, db)
            o = ledger.order_by_id(db, o.id)
        return CancelResult(order=rows.order_model(o), events=events)

    async def close_position(self, position_id: str) -> CloseResult:
        events, _ = await self.reconcile()
        cfg = self.config()
        scope = current_call("close_paper_position", self.server, {"position_id": position_id})
        pos: list[PositionRow] = self._read(lambda db: ledger.select_positions(db, "WHERE id = ?", (position_id,)))
        if not pos:
            raise PaperError(f"No paper position {position_id!r}. get_paper_portfolio lists open positions.")
        if pos[0].status != "open":
            p = pos[0]
            raise PaperError(f"Position {position_id} is already closed ({p.exit_reason}, {utc_now_iso(p.closed_ms)}).")
        quote = await self.prices.quote(pos[0].symbol)
        now = self.now_ms()
        with self.store.transaction() as db:
            still_open = ledger.select_positions(db, "WHERE id = ? AND status = 'open'", (position_id,))
            if not still_open:
                raise PaperError(
                    f"Position {position_id} was closed while this call fetched its price (a stop or "
                    "another call); nothing more to do."
                )
            fill = ledger.close_position(db, cfg, still_open[0], quote, "manual", now)
            equity, halt = snapshot_and_trip(db, self.store, self.server, cfg, now)
            scope.journal(self.store, db)
            closed = ledger.position_by_id(db, position_id)
            cash = ledger.load_account(db, cfg, now).cash
        return CloseResult(
            position=rows.position_model(closed, cfg),
            fill=rows.fill_model(fill),
            equity=round(equity, 2),
            cash=round(cash, 2),
            events=events + ([halt] if halt else []),
        )

    # --- reads ---------------------------------------------------------------------------------------------------
    async def portfolio(self, reconcile: bool = True) -> Portfolio:
        events, missing = await self.reconcile(record_locks=True) if reconcile else ([], {})
        cfg = self.config()
        now = self.now_ms()

        held = self._read(lambda db: paper_views.portfolio_of(db, self.store, cfg, now, events, missing))
        if not held.positions and not held.open_orders:
            return held
        return await self._with_tail_risk(held, cfg)

    async def _daily_closes(self, symbols: set[str], days: int, as_of: int) -> dict[str, Series | str]:
        """Daily closes of each symbol up to `as_of`, fetched at once, or why a symbol has none."""
        series: dict[str, Series | str] = {}

        async def load(symbol: str) -> None:
            try:
                series[symbol] = await self.prices.daily_closes(symbol, days, as_of)
            except NoPrice as e:
                series[symbol] = str(e)

        async with anyio.create_task_group() as tg:
            for s in sorted(symbols):
                tg.start_soon(load, s)
        return series

    async def _with_tail_risk(self, held: Portfolio, cfg: TradingConfig) -> Portfolio:
        """The open book revalued on the last paper.cvar_days daily closes, as the max_cvar check does."""
        symbols = sorted({p.symbol for p in held.positions} | {o.symbol for o in held.open_orders})
        marks = [iso_ms(p.marked_at) for p in held.positions]
        as_of = min(self.now_ms(), max(marks)) if marks else self.now_ms()
        series = await self._daily_closes(set(symbols), cfg.paper.cvar_days, as_of)
        returns = aligned_returns(series, cfg.paper.cvar_days)
        if isinstance(returns, str):
            return held.model_copy(update={"tail_risk_unmeasured": returns})
        risk = resolve_risk(cfg, None, mode="paper").settings
        return held.model_copy(update={"tail_risk": book_tail_risk(held, returns, risk)})

    def performance(self, strategy: str | None = None, max_points: int = 500) -> Performance:
        cfg = self.config()
        now = self.now_ms()
        record = self._read(lambda db: paper_views.track_record(db, cfg, strategy, now))
        return performance_of(strategy, record, now, max_points)

    def reset_kill_switch(self, confirmation: str, reason: str, seen_since: str | None = None) -> ResetResult:
        """Clear a halt (the caller got the person's confirmation). The peak and the day restart at today's equity.
        `seen_since`: when the halt the person was shown began; a different halt since then is not cleared."""
        cfg = self.config()
        scope = current_call("reset_kill_switch", self.server, {"reason": reason})
        now = self.now_ms()
        with self.store.transaction() as db:
            state = trading_state.read_in(db)
            if state.active:
                raise PaperError("Trading is not halted (state ACTIVE); there is nothing to reset.")
            if seen_since is not None and state.since != seen_since:
                raise PaperError(
                    f"The halt changed while the person was asked (now: {state.reason}, since {state.since}); "
                    "nothing was reset. Call reset_kill_switch again so the person sees the current halt."
                )
            account = ledger.load_account(db, cfg, now)
            equity, _, _ = ledger.equity_of(account, ledger.open_positions(db))
            db.execute(
                "UPDATE paper_account SET peak_equity = ?, day = ?, day_start_equity = ? WHERE id = 1",
                (equity, ledger.utc_day(now), equity),
            )
            trading_state.set_in(db, "ACTIVE", f"reset by an admin, {confirmation}: {reason or '-'}")
            scope.journal(self.store, db)
        return ResetResult(
            trading_state="ACTIVE",
            was=state.reason,
            confirmation=confirmation,
            equity=round(equity, 2),
            new_peak_equity=round(equity, 2),
        )

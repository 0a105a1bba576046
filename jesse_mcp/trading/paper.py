"""Paper trading: the service that reconciles the ledger with prices, places, cancels and closes paper orders, and
reports the portfolio and performance. The ledger itself is in paper_ledger.py, the steps of a reconciliation in
paper_reconcile.py, the read-side results in paper_views.py, the pre-trade checks in paper_checks.py and the
statistics in paper_stats.py.

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
from datetime import UTC, datetime
from typing import Any

import anyio
import numpy as np

from jesse_mcp.trading import ledger
from jesse_mcp.trading import reconcile as paper_reconcile
from jesse_mcp.trading import views as paper_views
from jesse_mcp.trading.checks import CheckInputs, pre_trade_checks
from jesse_mcp.trading.models import (
    CancelResult,
    Check,
    CloseResult,
    Event,
    OrderRequest,
    OrderResult,
    Performance,
    Portfolio,
    ResetResult,
)
from jesse_mcp.trading.prices import NoPrice, PaperQuote, PriceSource
from jesse_mcp.trading.stats import correlations_with, performance_of
from shared.config.models import TradingConfig
from shared.config.resolve import resolve_risk
from shared.errors import ConfigError, InvalidArgumentsError, PolicyDenied, TradingMcpError
from shared.policy.guard import CallRecord, decide
from shared.state.callscope import current_call
from shared.state.store import JournalEntry, Store, utc_now_iso, window_keys

log = logging.getLogger(__name__)


class PaperError(TradingMcpError):
    """A paper call that cannot be done as asked (unknown order, closed position, reused client order id...)."""


class PaperService:
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

    async def reconcile(self) -> tuple[list[Event], dict[str, str]]:
        """Apply everything prices say should have happened: limit fills, stops, take profits, liquidations,
        timeouts, then the kill switch. Returns the events and the symbols that had no fresh price."""
        async with self._reconcile_lock:
            cfg = self.last_good_config()
            with self.store.reading() as db:
                positions, orders = ledger.open_positions(db), ledger.open_orders(db)
                has_account = db.execute("SELECT 1 FROM paper_account").fetchone() is not None
            if not has_account:
                return [], {}
            asked_ms = self.now_ms()
            quotes, missing = await self._quotes({p["symbol"] for p in positions} | {o["symbol"] for o in orders})
            now = self.now_ms()
            events: list[Event] = []
            with self.store.transaction() as db:
                account = ledger.load_account(db, cfg, now)
                ledger.roll_day(db, account, now)  # at the old marks: a move over midnight counts for the new day
                state = self.store.trading_state_in(db)["state"]
                if state == "ACTIVE":
                    events += paper_reconcile.cancel_orphans(db, cfg, now)
                    events += paper_reconcile.fill_limits(db, cfg, quotes, now, asked_ms)
                events += paper_reconcile.apply_marks(db, cfg, quotes, now, asked_ms)
                account = ledger.load_account(db, cfg, now)
                equity = ledger.snapshot(db, cfg, account, now)
                halt = ledger.kill_switch(db, self.store, self.server, cfg, account, equity, now)
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
    def _existing(self, db: sqlite3.Connection, req: OrderRequest) -> dict[str, Any] | None:
        if req.client_order_id is None:
            return None
        rows = ledger.rows_of(
            db.execute("SELECT * FROM paper_orders WHERE client_order_id = ?", (req.client_order_id,))
        )
        if not rows:
            return None
        if rows[0]["request_hash"] != req.digest():
            raise PaperError(
                f"client_order_id {req.client_order_id!r} was already used for a different order ({rows[0]['id']}: "
                f"{rows[0]['side']} {rows[0]['qty']:g} {rows[0]['symbol']}, {rows[0]['status']}). A client order id "
                "names one order: use a new id for a new order."
            )
        return rows[0]

    def _duplicate_result(self, row: dict[str, Any], cfg: TradingConfig, events: list[Event]) -> OrderResult:
        return self._read(lambda db: paper_views.duplicate_result(db, cfg, row, self.now_ms(), events))

    def _validate(self, req: OrderRequest) -> None:
        if (req.quantity is None) == (req.notional_usd is None):
            raise InvalidArgumentsError("Give exactly one of quantity (units of the asset) or notional_usd (USD).")
        if req.type == "limit" and req.limit_price is None:
            raise InvalidArgumentsError("A limit order needs limit_price (the worst price you accept).")
        if req.type == "market" and req.limit_price is not None:
            raise InvalidArgumentsError("limit_price applies to limit orders only: set type='limit' or drop it.")

    async def place_order(self, req: OrderRequest) -> OrderResult:
        """Check every limit inside the guard, then record the order (and its fill, for a market order) whole."""
        self._validate(req)
        cfg = self.config()
        scope = current_call("place_paper_order", self.server, {"request": req.__dict__})
        # Tighten-only: a call may narrow the profile's stop or take profit, never widen them.
        per_call = {"stop_loss": req.stop_loss, "take_profit": req.take_profit}
        risk = resolve_risk(cfg, req.strategy, per_call=per_call, mode="paper").settings
        existing = self._read(lambda db: self._existing(db, req))
        if existing is not None:
            return self._duplicate_result(existing, cfg, [])
        events, _ = await self.reconcile()
        quote = await self.prices.quote(req.symbol)
        held_now = self._read(lambda db: ledger.open_positions(db) + ledger.open_orders(db))
        correlations = await self._correlations(req, held_now)
        now = self.now_ms()
        record = CallRecord(scope.server, scope.tool, "paper", req.strategy)
        cfg = self.config()  # again: a demotion or a tightening while prices were fetched counts
        risk = resolve_risk(cfg, req.strategy, per_call=per_call, mode="paper").settings
        with self.store.transaction() as db:
            existing = self._existing(db, req)
            if existing is None:
                outcome = self._place_in(db, cfg, req, risk, quote, correlations, record, now)
                scope.journal(self.store, db)
        if existing is not None:  # another process placed it while we fetched prices
            return self._duplicate_result(existing, cfg, events)
        return outcome.model_copy(update={"events": events + outcome.events})

    async def _correlations(self, req: OrderRequest, positions: list[dict[str, Any]]) -> dict[str, float | str]:
        """Directional return correlation with each open position's symbol (or why it could not be measured)."""
        days = self.config().paper.correlation_days
        now = self.now_ms()
        others = sorted({p["symbol"] for p in positions})
        if not others:
            return {}
        series: dict[str, list[tuple[int, float]] | str] = {}

        async def load(symbol: str) -> None:
            try:
                series[symbol] = await self.prices.daily_closes(symbol, days, now)
            except NoPrice as e:
                series[symbol] = str(e)

        async with anyio.create_task_group() as tg:
            for s in {req.symbol, *others}:
                tg.start_soon(load, s)
        return correlations_with(req.symbol, others, series)

    def _place_in(
        self,
        db: sqlite3.Connection,
        cfg: TradingConfig,
        req: OrderRequest,
        risk: Any,
        quote: PaperQuote,
        correlations: dict[str, float | str],
        record: CallRecord,
        now: int,
    ) -> OrderResult:
        """Inside the order's transaction: every pre-trade check, the guard's decision, then the order written."""
        account = ledger.load_account(db, cfg, now)
        positions, orders = ledger.open_positions(db), ledger.open_orders(db)
        equity, margin_used, _ = ledger.equity_of(account, positions, {req.symbol: quote.price})
        marketable, price = ledger.entry_price(req, quote.price, cfg.paper.slippage_bps)
        qty = req.quantity if req.quantity is not None else req.notional_usd / price  # type: ignore[operator]
        notional = req.notional_usd if req.notional_usd is not None else qty * price  # no float drift past a limit
        keys = window_keys("paper_trades", datetime.fromtimestamp(now / 1000, UTC))
        counts = self.store.counters_read(db, list(keys.values()))
        inputs = CheckInputs(
            strategy=req.strategy,
            symbol=req.symbol,
            long=req.side == "long",
            leverage=req.leverage,
            notional=notional,
            fee_bps=cfg.paper.fee_bps,
            cash=account["cash"],
            peak_equity=account["peak_equity"],
            equity=equity,
            margin_used=margin_used,
            positions=positions,
            orders=orders,
            trade_counts={period: counts[keys[period]] for period in ("day", "week", "month")},
            correlations=correlations,
        )
        checks, violations = pre_trade_checks(inputs, risk, cfg.portfolio_limits)
        state = self.store.trading_state_in(db)["state"]
        decision = decide(record, cfg, state, violations)
        if not decision.allowed:
            raise PolicyDenied(decision.rule, decision.reason, decision.remedy)
        oid = ledger.insert_order(db, req, qty, risk, now)
        self.store.counters_add(db, list(keys.values()))
        order = ledger.rows_of(db.execute("SELECT * FROM paper_orders WHERE id = ?", (oid,)))[0]
        return self._fill_or_rest(db, cfg, req, order, quote, price, marketable, checks, now)

    def _fill_or_rest(
        self,
        db: sqlite3.Connection,
        cfg: TradingConfig,
        req: OrderRequest,
        order: dict[str, Any],
        quote: PaperQuote,
        price: float,
        marketable: bool,
        checks: list[Check],
        now: int,
    ) -> OrderResult:
        """Fill the just written order now if it is marketable (else it rests), then snapshot and the kill switch."""
        position = fill = None
        notes = []
        if marketable:
            position, fill = ledger.open_position(db, cfg, order, quote.price, price, quote.source, req.type, now)
            order = ledger.rows_of(db.execute("SELECT * FROM paper_orders WHERE id = ?", (order["id"],)))[0]
        else:
            notes.append(
                f"resting limit order: fills when a price check finds {req.symbol} at or "
                f"{'below' if req.side == 'long' else 'above'} {req.limit_price:g} (now {quote.price:g}); it holds a "
                "position slot and its margin until then, and counts as a trade now."
            )
        if "replay" in quote.source:
            notes.append("priced from stored candles (replay), not a live market.")
        account = ledger.load_account(db, cfg, now)
        equity = ledger.snapshot(db, cfg, account, now)
        events = []
        halt = ledger.kill_switch(db, self.store, self.server, cfg, account, equity, now)
        if halt is not None:
            events.append(halt)
        return OrderResult(
            order=ledger.order_model(order),
            position=ledger.position_model(position, cfg) if position else None,
            fill=ledger.fill_model(fill) if fill else None,
            duplicate=False,
            checks=checks,
            equity=round(equity, 2),
            cash=round(ledger.load_account(db, cfg, now)["cash"], 2),
            events=events,
            notes=notes,
        )

    async def cancel_order(self, order_id: str) -> CancelResult:
        events, _ = await self.reconcile()
        scope = current_call("cancel_paper_order", self.server, {"order_id": order_id})
        now = self.now_ms()
        with self.store.transaction() as db:
            rows = ledger.rows_of(
                db.execute(
                    "SELECT * FROM paper_orders WHERE id = ? OR client_order_id = ? ORDER BY id = ? DESC",
                    (order_id, order_id, order_id),
                )
            )
            if not rows:
                raise PaperError(
                    f"No paper order {order_id!r} (order id or client order id). get_paper_portfolio lists open orders."
                )
            o = rows[0]
            if o["status"] != "open":
                raise PaperError(f"Order {o['id']} is already {o['status']} ({o['reason'] or '-'}); nothing to cancel.")
            db.execute(
                "UPDATE paper_orders SET status = 'cancelled', reason = 'cancelled by request', updated_ms = ? "
                "WHERE id = ?",
                (now, o["id"]),
            )
            scope.journal(self.store, db)
            o = ledger.rows_of(db.execute("SELECT * FROM paper_orders WHERE id = ?", (o["id"],)))[0]
        return CancelResult(order=ledger.order_model(o), events=events)

    async def close_position(self, position_id: str) -> CloseResult:
        events, _ = await self.reconcile()
        cfg = self.config()
        scope = current_call("close_paper_position", self.server, {"position_id": position_id})
        pos = self._read(
            lambda db: ledger.rows_of(db.execute("SELECT * FROM paper_positions WHERE id = ?", (position_id,)))
        )
        if not pos:
            raise PaperError(f"No paper position {position_id!r}. get_paper_portfolio lists open positions.")
        if pos[0]["status"] != "open":
            p = pos[0]
            raise PaperError(
                f"Position {position_id} is already closed ({p['exit_reason']}, {utc_now_iso(p['closed_ms'])})."
            )
        quote = await self.prices.quote(pos[0]["symbol"])
        now = self.now_ms()
        with self.store.transaction() as db:
            rows = ledger.rows_of(
                db.execute("SELECT * FROM paper_positions WHERE id = ? AND status = 'open'", (position_id,))
            )
            if not rows:
                raise PaperError(
                    f"Position {position_id} was closed while this call fetched its price (a stop or "
                    "another call); nothing more to do."
                )
            fill = ledger.close_position(db, cfg, rows[0], quote.price, quote.source, "manual", now)
            account = ledger.load_account(db, cfg, now)
            equity = ledger.snapshot(db, cfg, account, now)
            halt = ledger.kill_switch(db, self.store, self.server, cfg, account, equity, now)
            scope.journal(self.store, db)
            closed = ledger.rows_of(db.execute("SELECT * FROM paper_positions WHERE id = ?", (position_id,)))[0]
            cash = ledger.load_account(db, cfg, now)["cash"]
        return CloseResult(
            position=ledger.position_model(closed, cfg),
            fill=ledger.fill_model(fill),
            equity=round(equity, 2),
            cash=round(cash, 2),
            events=events + ([halt] if halt else []),
        )

    # --- reads ---------------------------------------------------------------------------------------------------
    async def portfolio(self, reconcile: bool = True) -> Portfolio:
        events, missing = await self.reconcile() if reconcile else ([], {})
        cfg = self.config()
        now = self.now_ms()

        return self._read(lambda db: paper_views.portfolio_of(db, self.store, cfg, now, events, missing))

    def performance(self, strategy: str | None = None, max_points: int = 500) -> Performance:
        cfg = self.config()
        now = self.now_ms()

        account, curve, closed, opened, first, fees, sizes, replay = self._read(
            lambda db: paper_views.performance_rows(db, cfg, strategy, now)
        )
        perf = performance_of(
            strategy, account["starting_balance"], curve, closed, opened, first, fees, now, max_points
        )
        start = account["starting_balance"]
        median = float(np.median(sizes)) / start * 100 if sizes else None
        return perf.model_copy(
            update={"median_position_pct": round(median, 4) if median is not None else None, "replay_fills": replay}
        )

    def reset_kill_switch(self, confirmation: str, reason: str, seen_since: str | None = None) -> ResetResult:
        """Clear a halt (the caller got the person's confirmation). The peak and the day restart at today's equity.
        `seen_since`: when the halt the person was shown began; a different halt since then is not cleared."""
        cfg = self.config()
        scope = current_call("reset_kill_switch", self.server, {"reason": reason})
        now = self.now_ms()
        with self.store.transaction() as db:
            state = self.store.trading_state_in(db)
            if state["state"] == "ACTIVE":
                raise PaperError("Trading is not halted (state ACTIVE); there is nothing to reset.")
            if seen_since is not None and state["since"] != seen_since:
                raise PaperError(
                    f"The halt changed while the person was asked (now: {state['reason']}, since {state['since']}); "
                    "nothing was reset. Call reset_kill_switch again so the person sees the current halt."
                )
            account = ledger.load_account(db, cfg, now)
            equity, _, _ = ledger.equity_of(account, ledger.open_positions(db))
            db.execute(
                "UPDATE paper_account SET peak_equity = ?, day = ?, day_start_equity = ? WHERE id = 1",
                (equity, ledger.utc_day(now), equity),
            )
            self.store.set_trading_state("ACTIVE", f"reset by an admin, {confirmation}: {reason or '-'}", db)
            scope.journal(self.store, db)
        return ResetResult(
            trading_state="ACTIVE",
            was=state["reason"],
            confirmation=confirmation,
            equity=round(equity, 2),
            new_peak_equity=round(equity, 2),
        )

"""A paper order inside its transaction: the venue's `Book` read, every pre-trade check evaluated and decided by the
guard, then the order written and filled now (marketable) or left resting, and the equity recorded."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jesse_mcp.trading import ledger, rows
from jesse_mcp.trading.checks import CheckInputs, pre_trade_checks
from jesse_mcp.trading.kill_switch import snapshot_and_trip
from jesse_mcp.trading.models import Check, OrderRequest, OrderResult
from jesse_mcp.trading.prices import PaperQuote
from jesse_mcp.trading.protect import locks_in
from jesse_mcp.trading.rows import OrderRow
from jesse_mcp.trading.tail import DailyReturns
from jesse_mcp.trading.venue import Book
from shared.config.models import TradingConfig
from shared.errors import InvalidArgumentsError, PolicyDenied, TradingMcpError
from shared.policy.guard import CallRecord, decide
from shared.state import counters, trading_state
from shared.state.store import Store


class PaperError(TradingMcpError):
    """A paper call that cannot be done as asked (unknown order, closed position, reused client order id...)."""


@dataclass(frozen=True)
class Placement:
    """An order with everything fetched before its transaction: configuration, resolved risk, quote, correlations
    and the daily returns the CVaR check revalues the book on."""

    req: OrderRequest
    cfg: TradingConfig
    risk: Any
    quote: PaperQuote
    correlations: dict[str, float | str]
    daily_returns: DailyReturns | str
    record: CallRecord
    now: int


def validate(req: OrderRequest) -> None:
    if (req.quantity is None) == (req.notional_usd is None):
        raise InvalidArgumentsError("Give exactly one of quantity (units of the asset) or notional_usd (USD).")
    if req.type == "limit" and req.limit_price is None:
        raise InvalidArgumentsError("A limit order needs limit_price (the worst price you accept).")
    if req.type == "market" and req.limit_price is not None:
        raise InvalidArgumentsError("limit_price applies to limit orders only: set type='limit' or drop it.")


def existing(db: sqlite3.Connection, req: OrderRequest) -> OrderRow | None:
    """The order placed before under the request's client order id; another order under that id is an error."""
    if req.client_order_id is None:
        return None
    found = ledger.select_orders(db, "WHERE client_order_id = ?", (req.client_order_id,))
    if not found:
        return None
    if found[0].request_hash != req.digest():
        raise PaperError(
            f"client_order_id {req.client_order_id!r} was already used for a different order ({found[0].id}: "
            f"{found[0].side} {found[0].qty:g} {found[0].symbol}, {found[0].status}). A client order id "
            "names one order: use a new id for a new order."
        )
    return found[0]


def book_in(db: sqlite3.Connection, cfg: TradingConfig, symbol: str, price: float, now: int) -> Book:
    """The paper account and open book, with `symbol` marked at `price` (the account opens on first use)."""
    account = ledger.load_account(db, cfg, now)
    positions, orders = ledger.open_positions(db), ledger.open_orders(db)
    equity, margin_used, _ = ledger.equity_of(account, positions, {symbol: price})
    return Book(
        cash=account.cash,
        equity=equity,
        peak_equity=account.peak_equity,
        margin_used=margin_used,
        positions=[rows.position_model(p, cfg) for p in positions],
        orders=[rows.order_model(o) for o in orders],
    )


class PaperOrders:
    """Writes orders to the paper ledger of `store`, journaling halts as `server`."""

    def __init__(self, store: Store, server: str):
        self.store = store
        self.server = server

    def place_in(self, db: sqlite3.Connection, p: Placement) -> OrderResult:
        """Inside the order's transaction: every pre-trade check, the guard's decision, then the order written."""
        req, cfg, now = p.req, p.cfg, p.now
        book = book_in(db, cfg, req.symbol, p.quote.price, now)
        marketable, price = ledger.entry_price(req, p.quote.price, cfg.paper.slippage_bps)
        qty = req.quantity if req.quantity is not None else req.notional_usd / price  # type: ignore[operator]
        notional = req.notional_usd if req.notional_usd is not None else qty * price  # no float drift past a limit
        keys = counters.window_keys("paper_trades", datetime.fromtimestamp(now / 1000, UTC))
        counts = counters.read_in(db, list(keys.values()))
        inputs = CheckInputs(
            strategy=req.strategy,
            symbol=req.symbol,
            long=req.side == "long",
            leverage=req.leverage,
            notional=notional,
            fee_bps=cfg.paper.fee_bps,
            book=book,
            trade_counts={period: counts[keys[period]] for period in ("day", "week", "month")},
            correlations=p.correlations,
            daily_returns=p.daily_returns,
            locks=locks_in(db, req.strategy, p.risk, now),
            now_ms=now,
        )
        checks, violations = pre_trade_checks(inputs, p.risk, cfg.portfolio_limits)
        decision = decide(p.record, cfg, trading_state.read_in(db).state, violations)
        if not decision.allowed:
            raise PolicyDenied(decision.rule, decision.reason, decision.remedy)
        oid = ledger.insert_order(db, req, qty, p.risk, now)
        counters.add_in(db, list(keys.values()))
        order = ledger.order_by_id(db, oid)
        return self._fill_or_rest(db, p, order, (marketable, price), checks)

    def _fill_or_rest(
        self,
        db: sqlite3.Connection,
        p: Placement,
        order: OrderRow,
        entry: tuple[bool, float],
        checks: list[Check],
    ) -> OrderResult:
        """Fill the just written order now if it is marketable (else it rests), then snapshot and the kill switch."""
        (marketable, price), req, cfg, quote = entry, p.req, p.cfg, p.quote
        position = fill = None
        notes = []
        if marketable:
            at = ledger.Execution(quote.price, price, quote.source, req.type)
            position, fill = ledger.open_position(db, cfg, order, at, p.now)
            order = ledger.order_by_id(db, order.id)
        else:
            notes.append(
                f"resting limit order: fills when a price check finds {req.symbol} at or "
                f"{'below' if req.side == 'long' else 'above'} {req.limit_price:g} (now {quote.price:g}); it holds a "
                "position slot and its margin until then, and counts as a trade now."
            )
        if "replay" in quote.source:
            notes.append("priced from stored candles (replay), not a live market.")
        equity, halt = snapshot_and_trip(db, self.store, self.server, cfg, p.now)
        return OrderResult(
            order=rows.order_model(order),
            position=rows.position_model(position, cfg) if position else None,
            fill=rows.fill_model(fill) if fill else None,
            duplicate=False,
            checks=checks,
            equity=round(equity, 2),
            cash=round(ledger.load_account(db, cfg, p.now).cash, 2),
            events=[halt] if halt is not None else [],
            notes=notes,
        )

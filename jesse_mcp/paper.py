"""The paper-trading ledger in state.db: account, orders, fills, positions, equity history, and the kill switch.

Costs: a market fill is `slippage_bps` worse than the consensus price (buying higher, selling lower); every fill
pays `fee_bps` of its notional. A position sets aside margin = entry notional / leverage; equity = cash + margin +
unrealised P&L at the latest marks. Stops, take profits, limit orders, timeouts and the kill switch are applied by
`reconcile()`, which the server's monitor runs on an interval and every paper call runs first.

An order commits whole or not at all: order, fill, position, trade counters and the journal row are written in one
SQLite transaction (BEGIN IMMEDIATE), after every pre-trade check was evaluated by the guard inside it, so several
server processes together never pass a limit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import numpy as np

from jesse_mcp.paper_models import (
    Account,
    CancelResult,
    Check,
    CloseResult,
    Event,
    Fill,
    Order,
    OrderResult,
    PaperTrade,
    Performance,
    Portfolio,
    Position,
    ResetResult,
)
from jesse_mcp.paper_prices import DAY_MS, NoPrice, PaperQuote, PriceSource
from shared import policy
from shared.callscope import current_call
from shared.config import TradingConfig
from shared.errors import InvalidArgumentsError, PolicyDenied, TradingMcpError
from shared.guard import CallRecord, decide
from shared.resolve import resolve_risk
from shared.store import JournalEntry, Store, utc_now_iso, window_keys

log = logging.getLogger(__name__)
MINUTE_MS = 60_000
EPS = 1e-9
ACCOUNT_KEY = ""  # paper_equity.strategy of the whole account


class PaperError(TradingMcpError):
    """A paper call that cannot be done as asked (unknown order, closed position, reused client order id...)."""


@dataclass(frozen=True)
class OrderRequest:
    strategy: str
    symbol: str
    side: str
    type: str = "market"
    quantity: float | None = None
    notional_usd: float | None = None
    limit_price: float | None = None
    leverage: float = 1.0
    stop_loss: float | None = None
    take_profit: float | None = None
    client_order_id: str | None = None

    def digest(self) -> str:
        fields = {k: v for k, v in self.__dict__.items() if k != "client_order_id"}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _upnl(side: str, entry: float, price: float, qty: float) -> float:
    return (price - entry) * qty if side == "long" else (entry - price) * qty


def _slipped(price: float, buying: bool, bps: float) -> float:
    return price * (1 + bps / 10_000) if buying else price * (1 - bps / 10_000)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def directional_correlation(
    a: list[tuple[int, float]], b: list[tuple[int, float]], min_overlap: int = 10
) -> float | None:
    """Correlation of daily log returns over the days both series have; None with fewer than `min_overlap`."""
    da, db = dict(a), dict(b)
    days = sorted(set(da) & set(db))
    if len(days) < min_overlap + 1:
        return None
    xa = np.log(np.array([da[d] for d in days], dtype=float))
    xb = np.log(np.array([db[d] for d in days], dtype=float))
    ra, rb = np.diff(xa), np.diff(xb)
    if ra.std() < EPS or rb.std() < EPS:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


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

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- reading --------------------------------------------------------------------------------------------------
    def _account(self, db: sqlite3.Connection, cfg: TradingConfig, now: int, create: bool = True) -> dict[str, Any]:
        """The account row; opened with the configured starting balance on first use (reads see it unopened)."""
        row = _rows(db.execute("SELECT * FROM paper_account WHERE id = 1"))
        if row:
            return row[0]
        bal = cfg.paper.starting_balance
        if not create:
            return {
                "starting_balance": bal,
                "cash": bal,
                "peak_equity": bal,
                "day": _day(now),
                "day_start_equity": bal,
                "created_ms": now,
            }
        db.execute(
            "INSERT INTO paper_account (id, starting_balance, cash, peak_equity, day, day_start_equity, created_ms)"
            " VALUES (1, ?, ?, ?, ?, ?, ?)",
            (bal, bal, bal, _day(now), bal, now),
        )
        return _rows(db.execute("SELECT * FROM paper_account WHERE id = 1"))[0]

    @staticmethod
    def _open_positions(db: sqlite3.Connection) -> list[dict[str, Any]]:
        return _rows(db.execute("SELECT * FROM paper_positions WHERE status = 'open' ORDER BY opened_ms, id"))

    @staticmethod
    def _open_orders(db: sqlite3.Connection) -> list[dict[str, Any]]:
        return _rows(db.execute("SELECT * FROM paper_orders WHERE status = 'open' ORDER BY created_ms, id"))

    @staticmethod
    def _equity(account: dict[str, Any], positions: list[dict[str, Any]], marks: dict[str, float] | None = None):
        marks = marks or {}
        margin = sum(p["margin"] for p in positions)
        upnl = sum(
            _upnl(p["side"], p["entry_price"], marks.get(p["symbol"], p["mark_price"]), p["qty"]) for p in positions
        )
        return account["cash"] + margin + upnl, margin, upnl

    def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self.store.reading() as db:
            return fn(db)

    # --- models -------------------------------------------------------------------------------------------------
    def _position_model(self, p: dict[str, Any], cfg: TradingConfig) -> Position:
        timeout_ms = int(cfg.portfolio_limits.position_timeout_hours * 3_600_000)
        mark = p["mark_price"] if p["status"] == "open" else (p["exit_price"] or p["mark_price"])
        return Position(
            id=p["id"],
            strategy=p["strategy"],
            symbol=p["symbol"],
            side=p["side"],
            qty=p["qty"],
            entry_price=p["entry_price"],
            leverage=p["leverage"],
            notional=round(p["qty"] * mark, 2),
            margin=round(p["margin"], 2),
            stop_loss_price=p["stop_loss_price"],
            take_profit_price=p["take_profit_price"],
            opened_at=utc_now_iso(p["opened_ms"]),
            mark_price=mark,
            marked_at=utc_now_iso(p["closed_ms"] or p["mark_ms"]),
            unrealised_pnl=round(_upnl(p["side"], p["entry_price"], mark, p["qty"]), 2) if p["status"] == "open" else 0,
            status=p["status"],
            closed_at=utc_now_iso(p["closed_ms"]) if p["closed_ms"] else None,
            exit_price=p["exit_price"],
            exit_reason=p["exit_reason"],
            fees=round(p["fees"], 4),
            realised_pnl=round(p["realised_pnl"], 2) if p["realised_pnl"] is not None else None,
            expires_at=utc_now_iso(p["opened_ms"] + timeout_ms),
        )

    @staticmethod
    def _order_model(o: dict[str, Any]) -> Order:
        return Order(
            id=o["id"],
            client_order_id=o["client_order_id"],
            strategy=o["strategy"],
            symbol=o["symbol"],
            side=o["side"],
            type=o["type"],
            qty=o["qty"],
            limit_price=o["limit_price"],
            leverage=o["leverage"],
            stop_loss=o["stop_loss"],
            take_profit=o["take_profit"],
            status=o["status"],
            reason=o["reason"],
            position_id=o["position_id"],
            created_at=utc_now_iso(o["created_ms"]),
            updated_at=utc_now_iso(o["updated_ms"]),
        )

    @staticmethod
    def _fill_model(f: dict[str, Any]) -> Fill:
        return Fill(
            ts=utc_now_iso(f["ts_ms"]),
            order_id=f["order_id"],
            position_id=f["position_id"],
            strategy=f["strategy"],
            symbol=f["symbol"],
            action=f["action"],
            side=f["side"],
            qty=f["qty"],
            price=f["price"],
            reference_price=f["reference_price"],
            fee=round(f["fee"], 4),
            reason=f["reason"],
            price_source=f["price_source"],
            realised_pnl=round(f["realised_pnl"], 2) if f["realised_pnl"] is not None else None,
        )

    # --- ledger writes (inside an open transaction) ---------------------------------------------------------------
    def _open_position(
        self,
        db: sqlite3.Connection,
        cfg: TradingConfig,
        order: dict[str, Any],
        ref: float,
        price: float,
        source: str,
        reason: str,
        now: int,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        qty, side, lev = order["qty"], order["side"], order["leverage"]
        notional = qty * price
        fee = notional * cfg.paper.fee_bps / 10_000
        margin = notional / lev
        sl = price * (1 - order["stop_loss"]) if side == "long" else price * (1 + order["stop_loss"])
        tp = price * (1 + order["take_profit"]) if side == "long" else price * (1 - order["take_profit"])
        pid = f"pp_{uuid.uuid4().hex[:12]}"
        db.execute(
            "INSERT INTO paper_positions (id, strategy, symbol, side, qty, entry_price, leverage, margin, "
            "stop_loss_price, take_profit_price, opened_ms, mark_price, mark_ms, status, fees) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,'open',?)",
            (pid, order["strategy"], order["symbol"], side, qty, price, lev, margin, sl, tp, now, ref, now, fee),
        )
        db.execute("UPDATE paper_account SET cash = cash - ? WHERE id = 1", (margin + fee,))
        db.execute(
            "UPDATE paper_orders SET status = 'filled', reason = ?, position_id = ?, updated_ms = ? WHERE id = ?",
            (reason, pid, now, order["id"]),
        )
        fill = self._insert_fill(db, now, order["id"], pid, order, "open", qty, price, ref, fee, reason, source, None)
        position = _rows(db.execute("SELECT * FROM paper_positions WHERE id = ?", (pid,)))[0]
        return position, fill

    def _close_position(
        self,
        db: sqlite3.Connection,
        cfg: TradingConfig,
        pos: dict[str, Any],
        ref: float,
        source: str,
        reason: str,
        now: int,
    ) -> dict[str, Any]:
        price = _slipped(ref, buying=pos["side"] == "short", bps=cfg.paper.slippage_bps)
        qty = pos["qty"]
        fee = qty * price * cfg.paper.fee_bps / 10_000
        gross = _upnl(pos["side"], pos["entry_price"], price, qty)
        net = gross - pos["fees"] - fee
        db.execute(
            "UPDATE paper_positions SET status = 'closed', closed_ms = ?, exit_price = ?, exit_reason = ?, "
            "fees = fees + ?, realised_pnl = ?, mark_price = ?, mark_ms = ? WHERE id = ? AND status = 'open'",
            (now, price, reason, fee, net, ref, now, pos["id"]),
        )
        db.execute("UPDATE paper_account SET cash = cash + ? WHERE id = 1", (pos["margin"] + gross - fee,))
        return self._insert_fill(db, now, None, pos["id"], pos, "close", qty, price, ref, fee, reason, source, net)

    @staticmethod
    def _insert_fill(
        db: sqlite3.Connection,
        now: int,
        order_id: str | None,
        pid: str,
        src: dict[str, Any],
        action: str,
        qty: float,
        price: float,
        ref: float,
        fee: float,
        reason: str,
        source: str,
        pnl: float | None,
    ) -> dict[str, Any]:
        cur = db.execute(
            "INSERT INTO paper_fills (ts_ms, order_id, position_id, strategy, symbol, action, side, qty, price, "
            "reference_price, fee, reason, price_source, realised_pnl) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                now,
                order_id,
                pid,
                src["strategy"],
                src["symbol"],
                action,
                src["side"],
                qty,
                price,
                ref,
                fee,
                reason,
                source,
                pnl,
            ),
        )
        return _rows(db.execute("SELECT * FROM paper_fills WHERE id = ?", (cur.lastrowid,)))[0]

    def _snapshot(self, db: sqlite3.Connection, cfg: TradingConfig, account: dict[str, Any], now: int) -> float:
        """Record account and per-strategy equity (one point per minute); update the peak and the day. Returns
        the account equity."""
        positions = self._open_positions(db)
        equity, _, _ = self._equity(account, positions)
        minute = now - now % MINUTE_MS
        rows = [(ACCOUNT_KEY, equity)]
        start = account["starting_balance"]
        realised = dict(
            db.execute(
                "SELECT strategy, SUM(realised_pnl) FROM paper_positions WHERE status = 'closed' GROUP BY strategy"
            ).fetchall()
        )
        strategies = set(realised) | {p["strategy"] for p in positions}
        for s in sorted(strategies):
            own = [p for p in positions if p["strategy"] == s]
            open_pnl = sum(_upnl(p["side"], p["entry_price"], p["mark_price"], p["qty"]) - p["fees"] for p in own)
            rows.append((s, start + (realised.get(s) or 0.0) + open_pnl))
        db.executemany(
            "INSERT OR REPLACE INTO paper_equity (ts_ms, strategy, equity) VALUES (?, ?, ?)",
            [(minute, s, e) for s, e in rows],
        )
        today = _day(now)
        if account["day"] != today:
            db.execute("UPDATE paper_account SET day = ?, day_start_equity = ? WHERE id = 1", (today, equity))
            account["day"], account["day_start_equity"] = today, equity
        if equity > account["peak_equity"]:
            db.execute("UPDATE paper_account SET peak_equity = ? WHERE id = 1", (equity,))
            account["peak_equity"] = equity
        return equity

    def _kill_switch(
        self, db: sqlite3.Connection, cfg: TradingConfig, account: dict[str, Any], equity: float, now: int
    ) -> Event | None:
        """Halt when equity fell `emergency_stop` from its peak or the day's loss reached the daily limit."""
        if self.store.trading_state_in(db)["state"] != "ACTIVE":
            return None
        emergency = resolve_risk(cfg, None, mode="backtest").settings.emergency_stop
        tripped = policy.check_emergency_stop(equity, account["peak_equity"], emergency)
        day_loss = 1 - equity / account["day_start_equity"] if account["day_start_equity"] > 0 else 0.0
        if tripped is None and day_loss >= cfg.paper.daily_loss_limit - EPS:
            tripped = policy.Violation(
                "daily_loss_limit",
                f"equity {equity:,.2f} USD is {day_loss * 100:.2f}% below the day's start "
                f"{account['day_start_equity']:,.2f} USD ({account['day']} UTC), at or past the daily loss limit "
                f"{cfg.paper.daily_loss_limit * 100:.2f}%: trading halts.",
                "review the losses; an admin reset with a person's confirmation resumes trading.",
                day_loss,
                cfg.paper.daily_loss_limit,
            )
        if tripped is None:
            return None
        reason = f"kill switch ({tripped.rule}): {tripped.reason}"
        self.store.set_trading_state("HALTED", reason, db)
        cancelled = [o["id"] for o in self._open_orders(db)]
        db.execute(
            "UPDATE paper_orders SET status = 'cancelled', reason = 'kill switch', updated_ms = ? "
            "WHERE status = 'open'",
            (now,),
        )
        detail = reason + (f" Cancelled open orders: {', '.join(cancelled)}." if cancelled else "")
        self.store.journal_insert(
            JournalEntry(
                self.server,
                "kill_switch",
                None,
                None,
                {"equity": round(equity, 2)},
                "system",
                "halted",
                rule=tripped.rule,
                reason=detail,
            ),
            db,
        )
        return Event(ts=utc_now_iso(now), kind="kill_switch", detail=detail)

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
            cfg = self.config()
            with self.store.reading() as db:
                positions, orders = self._open_positions(db), self._open_orders(db)
                has_account = db.execute("SELECT 1 FROM paper_account").fetchone() is not None
            if not has_account:
                return [], {}
            quotes, missing = await self._quotes({p["symbol"] for p in positions} | {o["symbol"] for o in orders})
            now = self.now_ms()
            events: list[Event] = []
            with self.store.transaction() as db:
                account = self._account(db, cfg, now)
                state = self.store.trading_state_in(db)["state"]
                if state == "ACTIVE":
                    events += self._fill_limits(db, cfg, quotes, now)
                events += self._apply_marks(db, cfg, quotes, now)
                account = self._account(db, cfg, now)
                equity = self._snapshot(db, cfg, account, now)
                halt = self._kill_switch(db, cfg, account, equity, now)
                if halt is not None:
                    events.append(halt)
                events += self._unpriced_timeouts(db, cfg, missing, now)
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

    def _fill_limits(
        self, db: sqlite3.Connection, cfg: TradingConfig, quotes: dict[str, PaperQuote], now: int
    ) -> list[Event]:
        events = []
        for o in self._open_orders(db):
            q = quotes.get(o["symbol"])
            if q is None or o["type"] != "limit":
                continue
            crossed = q.price <= o["limit_price"] if o["side"] == "long" else q.price >= o["limit_price"]
            if not crossed:
                continue
            pos, _ = self._open_position(db, cfg, o, q.price, o["limit_price"], q.source, "limit", now)
            events.append(
                Event(
                    ts=utc_now_iso(now),
                    kind="limit_fill",
                    detail=f"limit {o['side']} {o['qty']:g} {o['symbol']} at {o['limit_price']:g} filled "
                    f"(price {q.price:g})",
                    position_id=pos["id"],
                    order_id=o["id"],
                )
            )
        return events

    def _apply_marks(
        self, db: sqlite3.Connection, cfg: TradingConfig, quotes: dict[str, PaperQuote], now: int
    ) -> list[Event]:
        events = []
        timeout_ms = cfg.portfolio_limits.position_timeout_hours * 3_600_000
        for p in self._open_positions(db):
            q = quotes.get(p["symbol"])
            if q is None:
                continue
            price, long = q.price, p["side"] == "long"
            db.execute("UPDATE paper_positions SET mark_price = ?, mark_ms = ? WHERE id = ?", (price, now, p["id"]))
            loss = -_upnl(p["side"], p["entry_price"], price, p["qty"])
            reason = None
            if loss >= p["margin"] - EPS:
                reason = "liquidation"
            elif (price <= p["stop_loss_price"]) if long else (price >= p["stop_loss_price"]):
                reason = "stop_loss"
            elif (price >= p["take_profit_price"]) if long else (price <= p["take_profit_price"]):
                reason = "take_profit"
            elif now - p["opened_ms"] >= timeout_ms:
                reason = "timeout"
            if reason is None:
                continue
            fill = self._close_position(db, cfg, p, price, q.source, reason, now)
            what = {
                "liquidation": "the loss used up the position's margin",
                "stop_loss": f"price {price:g} crossed the stop {p['stop_loss_price']:g}",
                "take_profit": f"price {price:g} reached the take profit {p['take_profit_price']:g}",
                "timeout": f"open longer than position_timeout_hours "
                f"({cfg.portfolio_limits.position_timeout_hours:g} h)",
            }[reason]
            events.append(
                Event(
                    ts=utc_now_iso(now),
                    kind=reason,
                    detail=f"{p['side']} {p['qty']:g} {p['symbol']} ({p['strategy']}) closed at {fill['price']:g}: "
                    f"{what}; net P&L {fill['realised_pnl']:,.2f} USD",
                    position_id=p["id"],
                )
            )
        return events

    def _unpriced_timeouts(
        self, db: sqlite3.Connection, cfg: TradingConfig, missing: dict[str, str], now: int
    ) -> list[Event]:
        timeout_ms = cfg.portfolio_limits.position_timeout_hours * 3_600_000
        return [
            Event(
                ts=utc_now_iso(now),
                kind="no_price",
                detail=f"{p['symbol']} position {p['id']} is past its timeout but has no fresh price, so it stays "
                f"open until one comes: {missing[p['symbol']]}",
                position_id=p["id"],
            )
            for p in self._open_positions(db)
            if p["symbol"] in missing and now - p["opened_ms"] >= timeout_ms
        ]

    # --- orders ----------------------------------------------------------------------------------------------------
    def _existing(self, db: sqlite3.Connection, req: OrderRequest) -> dict[str, Any] | None:
        if req.client_order_id is None:
            return None
        rows = _rows(db.execute("SELECT * FROM paper_orders WHERE client_order_id = ?", (req.client_order_id,)))
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
        def read(db: sqlite3.Connection) -> OrderResult:
            account = self._account(db, cfg, self.now_ms(), create=False)
            positions = self._open_positions(db)
            pos = _rows(db.execute("SELECT * FROM paper_positions WHERE id = ?", (row["position_id"],)))
            fill = _rows(db.execute("SELECT * FROM paper_fills WHERE order_id = ? AND action = 'open'", (row["id"],)))
            equity, _, _ = self._equity(account, positions)
            return OrderResult(
                order=self._order_model(row),
                position=self._position_model(pos[0], cfg) if pos else None,
                fill=self._fill_model(fill[0]) if fill else None,
                duplicate=True,
                checks=[],
                equity=round(equity, 2),
                cash=round(account["cash"], 2),
                events=events,
                notes=[
                    f"client_order_id {row['client_order_id']!r} was placed before ({row['id']}, now {row['status']}); "
                    "this retry changed nothing and filled nothing."
                ],
            )

        return self._read(read)

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
        held_now = self._read(lambda db: self._open_positions(db) + self._open_orders(db))
        correlations = await self._correlations(req, held_now)
        now = self.now_ms()
        record = CallRecord(scope.server, scope.tool, "paper", req.strategy)
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
        out: dict[str, float | str] = {}
        series: dict[str, list[tuple[int, float]] | str] = {}

        async def load(symbol: str) -> None:
            try:
                series[symbol] = await self.prices.daily_closes(symbol, days, now)
            except NoPrice as e:
                series[symbol] = str(e)

        async with anyio.create_task_group() as tg:
            for s in {req.symbol, *others}:
                tg.start_soon(load, s)
        mine = series[req.symbol]
        for s in others:
            if s == req.symbol:
                out[s] = 1.0
                continue
            theirs = series[s]
            if isinstance(mine, str) or isinstance(theirs, str):
                out[s] = mine if isinstance(mine, str) else theirs  # type: ignore[assignment]
                continue
            c = directional_correlation(mine, theirs)
            out[s] = c if c is not None else f"fewer than 10 common daily returns of {req.symbol} and {s}"
        return out

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
        account = self._account(db, cfg, now)
        positions, orders = self._open_positions(db), self._open_orders(db)
        equity, margin_used, _ = self._equity(account, positions, {req.symbol: quote.price})
        long = req.side == "long"
        marketable = req.type == "market" or (
            quote.price <= req.limit_price if long else quote.price >= req.limit_price  # type: ignore[operator]
        )
        slipped = _slipped(quote.price, buying=long, bps=cfg.paper.slippage_bps)
        if req.type == "market":
            price = slipped
        elif marketable:  # a limit that can fill now fills at the market, never worse than its limit
            price = min(slipped, req.limit_price) if long else max(slipped, req.limit_price)  # type: ignore[type-var]
        else:
            price = req.limit_price  # type: ignore[assignment]
        qty = req.quantity if req.quantity is not None else req.notional_usd / price  # type: ignore[operator]
        notional = qty * price
        margin = notional / req.leverage
        fee = notional * cfg.paper.fee_bps / 10_000
        resting_margin = sum(o["qty"] * (o["limit_price"] or 0) / o["leverage"] for o in orders)
        resting_fees = sum(o["qty"] * (o["limit_price"] or 0) for o in orders) * cfg.paper.fee_bps / 10_000
        limits = cfg.portfolio_limits
        keys = window_keys("paper_trades", datetime.fromtimestamp(now / 1000, UTC))
        counts = self.store.counters_read(db, list(keys.values()))
        mine = sum(1 for p in positions if p["strategy"] == req.strategy) + sum(
            1 for o in orders if o["strategy"] == req.strategy
        )
        total = len(positions) + len(orders)
        cash_after = account["cash"] - resting_margin - resting_fees - margin - fee  # resting orders will take theirs
        checks: list[Check] = []

        def add(rule: str, value: float | None, limit: float | None, detail: str, v: policy.Violation | None):
            text = detail if v is None else f"{v.reason} Remedy: {v.remedy}"
            checks.append(Check(rule=rule, passed=v is None, value=value, limit=limit, detail=text))
            return v

        violations = [
            add(
                "max_position_size",
                notional,
                risk.max_position_size * equity,
                f"notional {notional:,.2f} USD of equity {equity:,.2f} USD",
                policy.check_position_size(notional, equity, risk.max_position_size),
            ),
            add(
                "max_leverage",
                req.leverage,
                risk.max_leverage,
                f"leverage {req.leverage:g}x",
                policy.check_leverage(req.leverage, risk.max_leverage),
            ),
            add(
                "max_portfolio_risk",
                notional * risk.stop_loss,
                risk.max_portfolio_risk * equity,
                f"notional x stop {risk.stop_loss * 100:.2f}% = {notional * risk.stop_loss:,.2f} USD at risk",
                policy.check_risk_per_trade(notional, risk.stop_loss, equity, risk.max_portfolio_risk),
            ),
            add(
                "max_open_positions",
                mine,
                limits.max_open_positions,
                f"{mine} open positions and resting orders of '{req.strategy}'",
                policy.check_count_below(
                    "max_open_positions", mine, limits.max_open_positions, f"positions of '{req.strategy}'"
                ),
            ),
            add(
                "max_total_positions",
                total,
                limits.max_total_positions,
                f"{total} open positions and resting orders in all",
                policy.check_count_below(
                    "max_total_positions", total, limits.max_total_positions, "positions of all strategies"
                ),
            ),
        ]
        for period, limit in (
            ("day", limits.max_trades_per_day),
            ("week", limits.max_trades_per_week),
            ("month", limits.max_trades_per_month),
        ):
            n = counts[keys[period]]
            violations.append(
                add(
                    f"max_trades_per_{period}",
                    n,
                    limit,
                    f"{n} paper trades this {period} (UTC), counted across processes",
                    policy.check_count_below(
                        f"max_trades_per_{period}",
                        n,
                        limit,
                        f"trades this {period}",
                        f"wait for the next UTC {period} (closing positions does not lower the count), or raise "
                        f"max_trades_per_{period} in portfolio_limits (a person confirms loosening).",
                    ),
                )
            )
        violations += [
            add(
                "min_account_balance",
                cash_after,
                limits.min_account_balance,
                f"cash after this order and any resting orders fill: {cash_after:,.2f} USD",
                policy.check_min_balance(
                    cash_after, limits.min_account_balance, " after this order and any resting orders fill"
                ),
            ),
            add(
                "max_account_usage",
                margin_used + resting_margin + margin,
                limits.max_account_usage * equity,
                f"margin in use with this order {margin_used + resting_margin + margin:,.2f} USD",
                policy.check_account_usage(
                    margin_used + resting_margin, margin, equity, limits.max_account_usage, "margin in use"
                ),
            ),
            add(
                "max_drawdown",
                policy.drawdown(equity, account["peak_equity"]),
                risk.max_drawdown,
                f"drawdown {policy.drawdown(equity, account['peak_equity']) * 100:.2f}% from the peak",
                policy.check_drawdown(equity, account["peak_equity"], risk.max_drawdown),
            ),
        ]
        sign = 1.0 if long else -1.0
        for p in positions + orders:  # a resting order is a position to be: it counts too
            held = (
                f"the open {p['side']} position in {p['symbol']}"
                if "entry_price" in p
                else (f"the resting {p['side']} order in {p['symbol']}")
            )
            measured = 1.0 if p["symbol"] == req.symbol else correlations.get(p["symbol"])
            if measured is None:
                measured = f"{p['symbol']} was opened while this order was being checked; place the order again"
            if isinstance(measured, str):
                violations.append(
                    add(
                        "max_correlation",
                        None,
                        risk.max_correlation,
                        "",
                        policy.Violation(
                            "max_correlation",
                            f"the return correlation with {held} could not be measured ({measured}), and an "
                            "unmeasured correlation is not allowed.",
                            "make daily candles available (import_candles, or a price provider that has them) or "
                            f"close {held} first.",
                            None,
                            risk.max_correlation,
                        ),
                    )
                )
                continue
            effective = measured * sign * (1.0 if p["side"] == "long" else -1.0)
            violations.append(
                add(
                    "max_correlation",
                    effective,
                    risk.max_correlation,
                    f"return correlation {measured:.2f} with {held} (direction-adjusted {effective:.2f})",
                    None
                    if effective <= risk.max_correlation
                    else policy.check_correlation(effective, held, risk.max_correlation),
                )
            )
        state = self.store.trading_state_in(db)["state"]
        decision = decide(record, cfg, state, violations)
        if not decision.allowed:
            raise PolicyDenied(decision.rule, decision.reason, decision.remedy)

        oid = f"po_{uuid.uuid4().hex[:12]}"
        client_id = req.client_order_id or f"auto-{oid}"
        db.execute(
            "INSERT INTO paper_orders (id, client_order_id, request_hash, strategy, symbol, side, type, qty, "
            "limit_price, leverage, stop_loss, take_profit, status, reason, created_ms, updated_ms) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'open',NULL,?,?)",
            (
                oid,
                client_id,
                req.digest(),
                req.strategy,
                req.symbol,
                req.side,
                req.type,
                qty,
                req.limit_price,
                req.leverage,
                risk.stop_loss,
                risk.take_profit,
                now,
                now,
            ),
        )
        self.store.counters_add(db, list(keys.values()))
        order = _rows(db.execute("SELECT * FROM paper_orders WHERE id = ?", (oid,)))[0]
        position = fill = None
        notes = []
        if marketable:
            position, fill = self._open_position(db, cfg, order, quote.price, price, quote.source, req.type, now)
            order = _rows(db.execute("SELECT * FROM paper_orders WHERE id = ?", (oid,)))[0]
        else:
            notes.append(
                f"resting limit order: fills when a price check finds {req.symbol} at or "
                f"{'below' if long else 'above'} {req.limit_price:g} (now {quote.price:g}); it holds a position "
                "slot and its margin until then, and counts as a trade now."
            )
        if "replay" in quote.source:
            notes.append("priced from stored candles (replay), not a live market.")
        account = self._account(db, cfg, now)
        equity = self._snapshot(db, cfg, account, now)
        events = []
        halt = self._kill_switch(db, cfg, account, equity, now)
        if halt is not None:
            events.append(halt)
        return OrderResult(
            order=self._order_model(order),
            position=self._position_model(position, cfg) if position else None,
            fill=self._fill_model(fill) if fill else None,
            duplicate=False,
            checks=checks,
            equity=round(equity, 2),
            cash=round(self._account(db, cfg, now)["cash"], 2),
            events=events,
            notes=notes,
        )

    async def cancel_order(self, order_id: str) -> CancelResult:
        events, _ = await self.reconcile()
        scope = current_call("cancel_paper_order", self.server, {"order_id": order_id})
        now = self.now_ms()
        with self.store.transaction() as db:
            rows = _rows(
                db.execute("SELECT * FROM paper_orders WHERE id = ? OR client_order_id = ?", (order_id, order_id))
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
            o = _rows(db.execute("SELECT * FROM paper_orders WHERE id = ?", (o["id"],)))[0]
        return CancelResult(order=self._order_model(o), events=events)

    async def close_position(self, position_id: str) -> CloseResult:
        events, _ = await self.reconcile()
        cfg = self.config()
        scope = current_call("close_paper_position", self.server, {"position_id": position_id})
        pos = self._read(lambda db: _rows(db.execute("SELECT * FROM paper_positions WHERE id = ?", (position_id,))))
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
            rows = _rows(db.execute("SELECT * FROM paper_positions WHERE id = ? AND status = 'open'", (position_id,)))
            if not rows:
                raise PaperError(
                    f"Position {position_id} was closed while this call fetched its price (a stop or "
                    "another call); nothing more to do."
                )
            fill = self._close_position(db, cfg, rows[0], quote.price, quote.source, "manual", now)
            account = self._account(db, cfg, now)
            equity = self._snapshot(db, cfg, account, now)
            halt = self._kill_switch(db, cfg, account, equity, now)
            scope.journal(self.store, db)
            closed = _rows(db.execute("SELECT * FROM paper_positions WHERE id = ?", (position_id,)))[0]
            cash = self._account(db, cfg, now)["cash"]
        return CloseResult(
            position=self._position_model(closed, cfg),
            fill=self._fill_model(fill),
            equity=round(equity, 2),
            cash=round(cash, 2),
            events=events + ([halt] if halt else []),
        )

    # --- reads ---------------------------------------------------------------------------------------------------
    async def portfolio(self, reconcile: bool = True) -> Portfolio:
        events, missing = await self.reconcile() if reconcile else ([], {})
        cfg = self.config()
        now = self.now_ms()

        def read(db: sqlite3.Connection) -> Portfolio:
            account = self._account(db, cfg, now, create=False)
            positions = self._open_positions(db)
            equity, margin, upnl = self._equity(account, positions)
            realised = db.execute(
                "SELECT COALESCE(SUM(realised_pnl), 0) FROM paper_positions WHERE status = 'closed'"
            ).fetchone()[0]
            fees = db.execute("SELECT COALESCE(SUM(fee), 0) FROM paper_fills").fetchone()[0]
            state = self.store.trading_state_in(db)
            fills = _rows(db.execute("SELECT * FROM paper_fills ORDER BY id DESC LIMIT 20"))
            settings = resolve_risk(cfg, None, mode="backtest").settings
            return Portfolio(
                account=Account(
                    starting_balance=account["starting_balance"],
                    cash=round(account["cash"], 2),
                    equity=round(equity, 2),
                    margin_used=round(margin, 2),
                    unrealised_pnl=round(upnl, 2),
                    realised_pnl=round(realised, 2),
                    fees_paid=round(fees, 2),
                    peak_equity=round(account["peak_equity"], 2),
                    drawdown=round(policy.drawdown(equity, account["peak_equity"]), 6),
                    day=account["day"],
                    day_start_equity=round(account["day_start_equity"], 2),
                    day_pnl=round(equity - account["day_start_equity"], 2),
                    emergency_stop=settings.emergency_stop,
                    daily_loss_limit=cfg.paper.daily_loss_limit,
                ),
                trading_state=state["state"],
                trading_state_reason=state["reason"],
                positions=[self._position_model(p, cfg) for p in positions],
                open_orders=[self._order_model(o) for o in self._open_orders(db)],
                recent_fills=[self._fill_model(f) for f in fills],
                events=events,
                unpriced=sorted(missing),
            )

        return self._read(read)

    def performance(self, strategy: str | None = None, max_points: int = 500) -> Performance:
        cfg = self.config()
        now = self.now_ms()

        def read(db: sqlite3.Connection) -> tuple[Any, ...]:
            account = self._account(db, cfg, now, create=False)
            curve = db.execute(
                "SELECT ts_ms, equity FROM paper_equity WHERE strategy = ? ORDER BY ts_ms",
                (strategy or ACCOUNT_KEY,),
            ).fetchall()
            where, params = ("WHERE strategy = ?", (strategy,)) if strategy else ("", ())
            closed = _rows(
                db.execute(
                    f"SELECT * FROM paper_positions {where} {'AND' if where else 'WHERE'} status = 'closed' "
                    "ORDER BY closed_ms",
                    params,
                )
            )
            opened = db.execute(
                f"SELECT COUNT(*) FROM paper_positions {where} {'AND' if where else 'WHERE'} status = 'open'", params
            ).fetchone()[0]
            first = db.execute(f"SELECT MIN(ts_ms) FROM paper_fills {where}", params).fetchone()[0]
            fees = db.execute(f"SELECT COALESCE(SUM(fee), 0) FROM paper_fills {where}", params).fetchone()[0]
            return account, curve, closed, opened, first, fees

        account, curve, closed, opened, first, fees = self._read(read)
        return performance_of(
            strategy, account["starting_balance"], curve, closed, opened, first, fees, now, max_points
        )

    def reset_kill_switch(self, confirmation: str, reason: str) -> ResetResult:
        """Clear a halt (the caller got the person's confirmation). The peak and the day restart at today's equity."""
        cfg = self.config()
        scope = current_call("reset_kill_switch", self.server, {"reason": reason})
        now = self.now_ms()
        with self.store.transaction() as db:
            state = self.store.trading_state_in(db)
            if state["state"] == "ACTIVE":
                raise PaperError("Trading is not halted (state ACTIVE); there is nothing to reset.")
            account = self._account(db, cfg, now)
            equity, _, _ = self._equity(account, self._open_positions(db))
            db.execute(
                "UPDATE paper_account SET peak_equity = ?, day = ?, day_start_equity = ? WHERE id = 1",
                (equity, _day(now), equity),
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

    def halt_reason(self) -> dict[str, str]:
        return self.store.trading_state()


def performance_of(
    strategy: str | None,
    start: float,
    curve: list[tuple[int, float]],
    closed: list[dict[str, Any]],
    open_count: int,
    first_ms: int | None,
    fees: float,
    now: int,
    max_points: int = 500,
) -> Performance:
    """Performance from an equity curve and closed positions. Pure."""
    values = np.array([e for _, e in curve], dtype=float) if curve else np.array([start])
    equity = float(values[-1])
    peak = np.maximum.accumulate(np.concatenate([[start], values]))
    dd = float(np.max(1 - np.concatenate([[start], values]) / peak)) if len(values) else 0.0
    daily: dict[str, float] = {}
    for ts, e in curve:
        daily[_day(ts)] = e  # last value of each UTC day
    closes = [start, *daily.values()] if first_ms is not None else []
    sharpe = None
    if len(closes) >= 3:
        r = np.diff(np.array(closes)) / np.array(closes[:-1])
        if r.std(ddof=1) > EPS:
            sharpe = float(r.mean() / r.std(ddof=1) * math.sqrt(365))
    wins = [p["realised_pnl"] for p in closed if p["realised_pnl"] > 0]
    losses = [p["realised_pnl"] for p in closed if p["realised_pnl"] <= 0]
    step = max(1, math.ceil(len(curve) / max_points))
    points = curve[::step]
    if curve and points[-1] != curve[-1]:
        points.append(curve[-1])
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
        open_positions=open_count,
        win_rate=round(len(wins) / len(closed), 4) if closed else None,
        profit_factor=round(sum(wins) / -sum(losses), 4) if losses and sum(losses) < 0 else None,
        fees_paid=round(fees, 2),
        equity_curve=[[utc_now_iso(ts), round(e, 2)] for ts, e in points],
        recent_trades=[
            PaperTrade(
                position_id=p["id"],
                symbol=p["symbol"],
                side=p["side"],
                opened_at=utc_now_iso(p["opened_ms"]),
                closed_at=utc_now_iso(p["closed_ms"]),
                entry_price=p["entry_price"],
                exit_price=p["exit_price"],
                qty=p["qty"],
                realised_pnl=round(p["realised_pnl"], 2),
                exit_reason=p["exit_reason"],
            )
            for p in closed[-20:][::-1]
        ],
    )

"""The paper ledger on an open sqlite3 connection: account, open positions and orders, fills and the equity
history (the kill switch is in kill_switch.py), read and written as the typed rows of rows.py. Writes run inside the
caller's transaction.

Costs: a market fill is `slippage_bps` worse than the consensus price (buying higher, selling lower); every fill
pays `fee_bps` of its notional. A position sets aside margin = entry notional / leverage; equity = cash + margin +
unrealised P&L at the latest marks.

The functions call each other through this module's globals, so a test can replace one (e.g. `insert_fill`).
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import astuple, dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from jesse_mcp.trading.models import OrderRequest
from jesse_mcp.trading.prices import PaperQuote
from jesse_mcp.trading.rows import (
    AccountRow,
    EquityRow,
    FillRow,
    LockRow,
    NewFill,
    OrderRow,
    PositionRow,
    columns,
    upnl,
)
from shared.config.models import TradingConfig

MINUTE_MS = 60_000
EPS = 1e-9
ACCOUNT_KEY = ""  # paper_equity.strategy of the whole account
R = TypeVar("R", AccountRow, OrderRow, PositionRow, FillRow, EquityRow)


# --- row helpers ----------------------------------------------------------------------------------------------------
def slipped(price: float, buying: bool, bps: float) -> float:
    return price * (1 + bps / 10_000) if buying else price * (1 - bps / 10_000)


def utc_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


# --- reading: one reader per table, `tail` the WHERE / ORDER BY / LIMIT after its FROM -----------------------------
def _select(db: sqlite3.Connection, cls: type[R], table: str, tail: str, params: tuple[Any, ...]) -> list[R]:
    return [cls(*r) for r in db.execute(f"SELECT {columns(cls)} FROM {table} {tail}", params)]


def select_account(db: sqlite3.Connection) -> AccountRow | None:
    rows = _select(db, AccountRow, "paper_account", "WHERE id = 1", ())
    return rows[0] if rows else None


def select_orders(db: sqlite3.Connection, tail: str, params: tuple[Any, ...] = ()) -> list[OrderRow]:
    return _select(db, OrderRow, "paper_orders", tail, params)


def select_positions(db: sqlite3.Connection, tail: str, params: tuple[Any, ...] = ()) -> list[PositionRow]:
    return _select(db, PositionRow, "paper_positions", tail, params)


def select_fills(db: sqlite3.Connection, tail: str, params: tuple[Any, ...] = ()) -> list[FillRow]:
    return _select(db, FillRow, "paper_fills", tail, params)


def select_equity(db: sqlite3.Connection, tail: str, params: tuple[Any, ...] = ()) -> list[EquityRow]:
    return _select(db, EquityRow, "paper_equity", tail, params)


def select_locks(db: sqlite3.Connection, tail: str, params: tuple[Any, ...] = ()) -> list[LockRow]:
    return _select(db, LockRow, "paper_locks", tail, params)


def order_by_id(db: sqlite3.Connection, oid: str) -> OrderRow:
    return select_orders(db, "WHERE id = ?", (oid,))[0]


def position_by_id(db: sqlite3.Connection, pid: str) -> PositionRow:
    return select_positions(db, "WHERE id = ?", (pid,))[0]


def load_account(db: sqlite3.Connection, cfg: TradingConfig, now: int, create: bool = True) -> AccountRow:
    """The account row; opened with the configured starting balance on first use (reads see it unopened)."""
    row = select_account(db)
    if row is not None:
        return row
    bal = cfg.paper.starting_balance
    if not create:
        return AccountRow(1, bal, bal, bal, utc_day(now), bal, now)
    db.execute(
        "INSERT INTO paper_account (id, starting_balance, cash, peak_equity, day, day_start_equity, created_ms)"
        " VALUES (1, ?, ?, ?, ?, ?, ?)",
        (bal, bal, bal, utc_day(now), bal, now),
    )
    return _select(db, AccountRow, "paper_account", "WHERE id = 1", ())[0]


def open_positions(db: sqlite3.Connection) -> list[PositionRow]:
    return select_positions(db, "WHERE status = 'open' ORDER BY opened_ms, id")


def open_orders(db: sqlite3.Connection) -> list[OrderRow]:
    return select_orders(db, "WHERE status = 'open' ORDER BY created_ms, id")


def equity_of(
    account: AccountRow, positions: list[PositionRow], marks: dict[str, float] | None = None
) -> tuple[float, float, float]:
    """(equity, margin, unrealised P&L), marking each position at `marks` or else at its stored mark."""
    marks = marks or {}
    margin = sum(p.margin for p in positions)
    open_pnl = sum(upnl(p.side, p.entry_price, marks.get(p.symbol, p.mark_price), p.qty) for p in positions)
    return account.cash + margin + open_pnl, margin, open_pnl


# --- writes (inside an open transaction) ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Execution:
    """How a fill is priced: `price` paid, `ref` the consensus price it came from, that price's `source`, and
    `reason` (market, limit, manual, stop_loss, ...)."""

    ref: float
    price: float
    source: str
    reason: str


def insert_fill(db: sqlite3.Connection, row: NewFill) -> FillRow:
    cur = db.execute(
        "INSERT INTO paper_fills (ts_ms, order_id, position_id, strategy, symbol, action, side, qty, price, "
        "reference_price, fee, reason, price_source, realised_pnl) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        astuple(row),
    )
    return select_fills(db, "WHERE id = ?", (cur.lastrowid,))[0]


def open_position(
    db: sqlite3.Connection, cfg: TradingConfig, order: OrderRow, at: Execution, now: int
) -> tuple[PositionRow, FillRow]:
    """Fill `order` at `at.price`: the position, its margin and fee, the order marked filled. Returns the position
    and fill rows."""
    qty, side, lev, price = order.qty, order.side, order.leverage, at.price
    notional = qty * price
    fee = notional * cfg.paper.fee_bps / 10_000
    margin = notional / lev
    sl = price * (1 - order.stop_loss) if side == "long" else price * (1 + order.stop_loss)
    tp = price * (1 + order.take_profit) if side == "long" else price * (1 - order.take_profit)
    pid = f"pp_{uuid.uuid4().hex[:12]}"
    db.execute(
        "INSERT INTO paper_positions (id, strategy, symbol, side, qty, entry_price, leverage, margin, "
        "stop_loss_price, take_profit_price, opened_ms, mark_price, mark_ms, status, fees) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,'open',?)",
        (pid, order.strategy, order.symbol, side, qty, price, lev, margin, sl, tp, now, at.ref, now, fee),
    )
    db.execute("UPDATE paper_account SET cash = cash - ? WHERE id = 1", (margin + fee,))
    db.execute(
        "UPDATE paper_orders SET status = 'filled', reason = ?, position_id = ?, updated_ms = ? WHERE id = ?",
        (at.reason, pid, now, order.id),
    )
    fill = insert_fill(
        db,
        NewFill(
            ts_ms=now,
            order_id=order.id,
            position_id=pid,
            strategy=order.strategy,
            symbol=order.symbol,
            action="open",
            side=side,
            qty=qty,
            price=price,
            reference_price=at.ref,
            fee=fee,
            reason=at.reason,
            price_source=at.source,
            realised_pnl=None,
        ),
    )
    return position_by_id(db, pid), fill


def close_position(
    db: sqlite3.Connection, cfg: TradingConfig, pos: PositionRow, quote: PaperQuote, reason: str, now: int
) -> FillRow:
    """Close `pos` at the slipped quote, release its margin with the P&L. Returns the fill row."""
    ref = quote.price
    price = slipped(ref, buying=pos.side == "short", bps=cfg.paper.slippage_bps)
    qty = pos.qty
    fee = qty * price * cfg.paper.fee_bps / 10_000
    gross = upnl(pos.side, pos.entry_price, price, qty)
    net = gross - pos.fees - fee
    db.execute(
        "UPDATE paper_positions SET status = 'closed', closed_ms = ?, exit_price = ?, exit_reason = ?, "
        "fees = fees + ?, realised_pnl = ?, mark_price = ?, mark_ms = ? WHERE id = ? AND status = 'open'",
        (now, price, reason, fee, net, ref, now, pos.id),
    )
    db.execute("UPDATE paper_account SET cash = cash + ? WHERE id = 1", (pos.margin + gross - fee,))
    return insert_fill(
        db,
        NewFill(
            ts_ms=now,
            order_id=None,
            position_id=pos.id,
            strategy=pos.strategy,
            symbol=pos.symbol,
            action="close",
            side=pos.side,
            qty=qty,
            price=price,
            reference_price=ref,
            fee=fee,
            reason=reason,
            price_source=quote.source,
            realised_pnl=net,
        ),
    )


def roll_day(db: sqlite3.Connection, account: AccountRow, now: int) -> AccountRow:
    """Start a new UTC day at the equity of the latest marks (before any new price is applied). Returns the account
    as it is now."""
    today = utc_day(now)
    if account.day == today:
        return account
    equity, _, _ = equity_of(account, open_positions(db))
    db.execute("UPDATE paper_account SET day = ?, day_start_equity = ? WHERE id = 1", (today, equity))
    return replace(account, day=today, day_start_equity=equity)


def snapshot(db: sqlite3.Connection, cfg: TradingConfig, account: AccountRow, now: int) -> tuple[float, AccountRow]:
    """Record account and per-strategy equity (one point per minute); update the peak and the day. Returns
    the account equity and the account as it is now."""
    positions = open_positions(db)
    equity, _, _ = equity_of(account, positions)
    minute = now - now % MINUTE_MS
    points = [(ACCOUNT_KEY, equity)]
    start = account.starting_balance
    realised = dict(
        db.execute(
            "SELECT strategy, SUM(realised_pnl) FROM paper_positions WHERE status = 'closed' GROUP BY strategy"
        ).fetchall()
    )
    strategies = set(realised) | {p.strategy for p in positions}
    for s in sorted(strategies):
        own = [p for p in positions if p.strategy == s]
        open_pnl = sum(upnl(p.side, p.entry_price, p.mark_price, p.qty) - p.fees for p in own)
        points.append((s, start + (realised.get(s) or 0.0) + open_pnl))
    db.executemany(
        "INSERT OR REPLACE INTO paper_equity (ts_ms, strategy, equity) VALUES (?, ?, ?)",
        [(minute, s, e) for s, e in points],
    )
    today = utc_day(now)
    if account.day != today:
        db.execute("UPDATE paper_account SET day = ?, day_start_equity = ? WHERE id = 1", (today, equity))
        account = replace(account, day=today, day_start_equity=equity)
    if equity > account.peak_equity:
        db.execute("UPDATE paper_account SET peak_equity = ? WHERE id = 1", (equity,))
        account = replace(account, peak_equity=equity)
    return equity, account


# --- orders -----------------------------------------------------------------------------------------------------------


def entry_price(req: OrderRequest, quoted: float, slippage_bps: float) -> tuple[bool, float]:
    """Whether the order fills now, and at what price (for a resting limit: its limit)."""
    long = req.side == "long"
    marketable = req.type == "market" or (
        quoted <= req.limit_price if long else quoted >= req.limit_price  # type: ignore[operator]
    )
    at_market = slipped(quoted, buying=long, bps=slippage_bps)
    if req.type == "market":
        price = at_market
    elif marketable:  # a limit that can fill now fills at the market, never worse than its limit
        price = min(at_market, req.limit_price) if long else max(at_market, req.limit_price)  # type: ignore[type-var]
    else:
        price = req.limit_price  # type: ignore[assignment]
    return marketable, price


def insert_order(db: sqlite3.Connection, req: OrderRequest, qty: float, risk: Any, now: int) -> str:
    """The order row, open, with the resolved stop and take profit. Returns its id."""
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
    return oid

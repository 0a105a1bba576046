"""The paper ledger on an open sqlite3 connection: account, open positions and orders, fills and the equity
history (the kill switch is in kill_switch.py). Writes run inside the caller's transaction.

Costs: a market fill is `slippage_bps` worse than the consensus price (buying higher, selling lower); every fill
pays `fee_bps` of its notional. A position sets aside margin = entry notional / leverage; equity = cash + margin +
unrealised P&L at the latest marks.

The functions call each other through this module's globals, so a test can replace one (e.g. `insert_fill`).
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import Any

from jesse_mcp.trading.models import Fill, Order, OrderRequest, Position
from jesse_mcp.trading.prices import PaperQuote
from shared.config.models import TradingConfig
from shared.state.store import utc_now_iso

MINUTE_MS = 60_000
EPS = 1e-9
ACCOUNT_KEY = ""  # paper_equity.strategy of the whole account


# --- row helpers ----------------------------------------------------------------------------------------------------
def rows_of(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def upnl(side: str, entry: float, price: float, qty: float) -> float:
    return (price - entry) * qty if side == "long" else (entry - price) * qty


def slipped(price: float, buying: bool, bps: float) -> float:
    return price * (1 + bps / 10_000) if buying else price * (1 - bps / 10_000)


def utc_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


# --- reading --------------------------------------------------------------------------------------------------------
def load_account(db: sqlite3.Connection, cfg: TradingConfig, now: int, create: bool = True) -> dict[str, Any]:
    """The account row; opened with the configured starting balance on first use (reads see it unopened)."""
    row = rows_of(db.execute("SELECT * FROM paper_account WHERE id = 1"))
    if row:
        return row[0]
    bal = cfg.paper.starting_balance
    if not create:
        return {
            "starting_balance": bal,
            "cash": bal,
            "peak_equity": bal,
            "day": utc_day(now),
            "day_start_equity": bal,
            "created_ms": now,
        }
    db.execute(
        "INSERT INTO paper_account (id, starting_balance, cash, peak_equity, day, day_start_equity, created_ms)"
        " VALUES (1, ?, ?, ?, ?, ?, ?)",
        (bal, bal, bal, utc_day(now), bal, now),
    )
    return rows_of(db.execute("SELECT * FROM paper_account WHERE id = 1"))[0]


def open_positions(db: sqlite3.Connection) -> list[dict[str, Any]]:
    return rows_of(db.execute("SELECT * FROM paper_positions WHERE status = 'open' ORDER BY opened_ms, id"))


def open_orders(db: sqlite3.Connection) -> list[dict[str, Any]]:
    return rows_of(db.execute("SELECT * FROM paper_orders WHERE status = 'open' ORDER BY created_ms, id"))


def equity_of(
    account: dict[str, Any], positions: list[dict[str, Any]], marks: dict[str, float] | None = None
) -> tuple[float, float, float]:
    """(equity, margin, unrealised P&L), marking each position at `marks` or else at its stored mark."""
    marks = marks or {}
    margin = sum(p["margin"] for p in positions)
    open_pnl = sum(
        upnl(p["side"], p["entry_price"], marks.get(p["symbol"], p["mark_price"]), p["qty"]) for p in positions
    )
    return account["cash"] + margin + open_pnl, margin, open_pnl


# --- writes (inside an open transaction) ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FillRow:
    """One paper_fills row, in the table's column order."""

    ts_ms: int
    order_id: str | None
    position_id: str
    strategy: str
    symbol: str
    action: str
    side: str
    qty: float
    price: float
    reference_price: float
    fee: float
    reason: str
    price_source: str
    realised_pnl: float | None


@dataclass(frozen=True)
class Execution:
    """How a fill is priced: `price` paid, `ref` the consensus price it came from, that price's `source`, and
    `reason` (market, limit, manual, stop_loss, ...)."""

    ref: float
    price: float
    source: str
    reason: str


def insert_fill(db: sqlite3.Connection, row: FillRow) -> dict[str, Any]:
    cur = db.execute(
        "INSERT INTO paper_fills (ts_ms, order_id, position_id, strategy, symbol, action, side, qty, price, "
        "reference_price, fee, reason, price_source, realised_pnl) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        astuple(row),
    )
    return rows_of(db.execute("SELECT * FROM paper_fills WHERE id = ?", (cur.lastrowid,)))[0]


def open_position(
    db: sqlite3.Connection, cfg: TradingConfig, order: dict[str, Any], at: Execution, now: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fill `order` at `at.price`: the position, its margin and fee, the order marked filled. Returns the position
    and fill rows."""
    qty, side, lev, price = order["qty"], order["side"], order["leverage"], at.price
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
        (pid, order["strategy"], order["symbol"], side, qty, price, lev, margin, sl, tp, now, at.ref, now, fee),
    )
    db.execute("UPDATE paper_account SET cash = cash - ? WHERE id = 1", (margin + fee,))
    db.execute(
        "UPDATE paper_orders SET status = 'filled', reason = ?, position_id = ?, updated_ms = ? WHERE id = ?",
        (at.reason, pid, now, order["id"]),
    )
    fill = insert_fill(
        db,
        FillRow(
            ts_ms=now,
            order_id=order["id"],
            position_id=pid,
            strategy=order["strategy"],
            symbol=order["symbol"],
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
    position = rows_of(db.execute("SELECT * FROM paper_positions WHERE id = ?", (pid,)))[0]
    return position, fill


def close_position(
    db: sqlite3.Connection, cfg: TradingConfig, pos: dict[str, Any], quote: PaperQuote, reason: str, now: int
) -> dict[str, Any]:
    """Close `pos` at the slipped quote, release its margin with the P&L. Returns the fill row."""
    ref = quote.price
    price = slipped(ref, buying=pos["side"] == "short", bps=cfg.paper.slippage_bps)
    qty = pos["qty"]
    fee = qty * price * cfg.paper.fee_bps / 10_000
    gross = upnl(pos["side"], pos["entry_price"], price, qty)
    net = gross - pos["fees"] - fee
    db.execute(
        "UPDATE paper_positions SET status = 'closed', closed_ms = ?, exit_price = ?, exit_reason = ?, "
        "fees = fees + ?, realised_pnl = ?, mark_price = ?, mark_ms = ? WHERE id = ? AND status = 'open'",
        (now, price, reason, fee, net, ref, now, pos["id"]),
    )
    db.execute("UPDATE paper_account SET cash = cash + ? WHERE id = 1", (pos["margin"] + gross - fee,))
    return insert_fill(
        db,
        FillRow(
            ts_ms=now,
            order_id=None,
            position_id=pos["id"],
            strategy=pos["strategy"],
            symbol=pos["symbol"],
            action="close",
            side=pos["side"],
            qty=qty,
            price=price,
            reference_price=ref,
            fee=fee,
            reason=reason,
            price_source=quote.source,
            realised_pnl=net,
        ),
    )


def roll_day(db: sqlite3.Connection, account: dict[str, Any], now: int) -> None:
    """Start a new UTC day at the equity of the latest marks (before any new price is applied)."""
    today = utc_day(now)
    if account["day"] == today:
        return
    equity, _, _ = equity_of(account, open_positions(db))
    db.execute("UPDATE paper_account SET day = ?, day_start_equity = ? WHERE id = 1", (today, equity))
    account["day"], account["day_start_equity"] = today, equity


def snapshot(db: sqlite3.Connection, cfg: TradingConfig, account: dict[str, Any], now: int) -> float:
    """Record account and per-strategy equity (one point per minute); update the peak and the day. Returns
    the account equity."""
    positions = open_positions(db)
    equity, _, _ = equity_of(account, positions)
    minute = now - now % MINUTE_MS
    points = [(ACCOUNT_KEY, equity)]
    start = account["starting_balance"]
    realised = dict(
        db.execute(
            "SELECT strategy, SUM(realised_pnl) FROM paper_positions WHERE status = 'closed' GROUP BY strategy"
        ).fetchall()
    )
    strategies = set(realised) | {p["strategy"] for p in positions}
    for s in sorted(strategies):
        own = [p for p in positions if p["strategy"] == s]
        open_pnl = sum(upnl(p["side"], p["entry_price"], p["mark_price"], p["qty"]) - p["fees"] for p in own)
        points.append((s, start + (realised.get(s) or 0.0) + open_pnl))
    db.executemany(
        "INSERT OR REPLACE INTO paper_equity (ts_ms, strategy, equity) VALUES (?, ?, ?)",
        [(minute, s, e) for s, e in points],
    )
    today = utc_day(now)
    if account["day"] != today:
        db.execute("UPDATE paper_account SET day = ?, day_start_equity = ? WHERE id = 1", (today, equity))
        account["day"], account["day_start_equity"] = today, equity
    if equity > account["peak_equity"]:
        db.execute("UPDATE paper_account SET peak_equity = ? WHERE id = 1", (equity,))
        account["peak_equity"] = equity
    return equity


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


# --- rows -> models -------------------------------------------------------------------------------------------------
def position_model(p: dict[str, Any], cfg: TradingConfig) -> Position:
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
        unrealised_pnl=round(upnl(p["side"], p["entry_price"], mark, p["qty"]), 2) if p["status"] == "open" else 0,
        status=p["status"],
        closed_at=utc_now_iso(p["closed_ms"]) if p["closed_ms"] else None,
        exit_price=p["exit_price"],
        exit_reason=p["exit_reason"],
        fees=round(p["fees"], 4),
        realised_pnl=round(p["realised_pnl"], 2) if p["realised_pnl"] is not None else None,
        expires_at=utc_now_iso(p["opened_ms"] + timeout_ms),
    )


def order_model(o: dict[str, Any]) -> Order:
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


def fill_model(f: dict[str, Any]) -> Fill:
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

"""The paper tables' rows as typed values: one frozen class per table, its fields the table's columns in order with
their Python types (shared/state/migrations.py PAPER_V4; tests/test_tables.py holds them to it), and the conversion
of a row into the result model the tools return. ledger.py reads and writes them."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from jesse_mcp.trading.models import Fill, Order, Position, Side
from shared.config.models import TradingConfig
from shared.state.store import utc_now_iso


@dataclass(frozen=True, slots=True)
class AccountRow:
    """paper_account: the one paper account (id 1)."""

    id: int
    starting_balance: float
    cash: float
    peak_equity: float
    day: str  # the UTC day (YYYY-MM-DD) day_start_equity belongs to
    day_start_equity: float
    created_ms: int


@dataclass(frozen=True, slots=True)
class OrderRow:
    """paper_orders: an order, open (a resting limit), filled or cancelled."""

    id: str
    client_order_id: str
    request_hash: str
    strategy: str
    symbol: str
    side: Side
    type: Literal["market", "limit"]
    qty: float
    limit_price: float | None
    leverage: float
    stop_loss: float  # fractions of the entry price
    take_profit: float
    status: Literal["open", "filled", "cancelled"]
    reason: str | None
    position_id: str | None
    created_ms: int
    updated_ms: int


@dataclass(frozen=True, slots=True)
class PositionRow:
    """paper_positions: a position, open or closed."""

    id: str
    strategy: str
    symbol: str
    side: Side
    qty: float
    entry_price: float
    leverage: float
    margin: float
    stop_loss_price: float
    take_profit_price: float
    opened_ms: int
    mark_price: float
    mark_ms: int
    status: Literal["open", "closed"]
    closed_ms: int | None
    exit_price: float | None
    exit_reason: str | None
    fees: float
    realised_pnl: float | None


@dataclass(frozen=True, slots=True)
class NewFill:
    """A paper_fills row before it is written: every column but the id."""

    ts_ms: int
    order_id: str | None
    position_id: str
    strategy: str
    symbol: str
    action: Literal["open", "close"]
    side: Side
    qty: float
    price: float
    reference_price: float
    fee: float
    reason: str
    price_source: str
    realised_pnl: float | None


@dataclass(frozen=True, slots=True)
class FillRow:
    """paper_fills: one fill, opening or closing a position."""

    id: int
    ts_ms: int
    order_id: str | None
    position_id: str
    strategy: str
    symbol: str
    action: Literal["open", "close"]
    side: Side
    qty: float
    price: float
    reference_price: float
    fee: float
    reason: str
    price_source: str
    realised_pnl: float | None


@dataclass(frozen=True, slots=True)
class EquityRow:
    """paper_equity: the equity of the account (strategy '') or of one strategy, one point per minute."""

    ts_ms: int
    strategy: str
    equity: float


@dataclass(frozen=True, slots=True)
class LockRow:
    """paper_locks: a protection lock of a strategy, recorded when first seen (symbol '*': every market)."""

    strategy: str
    rule: str
    symbol: str
    from_ms: int
    until_ms: int
    reason: str
    seen_ms: int


ROWS = {
    "paper_account": AccountRow,
    "paper_orders": OrderRow,
    "paper_positions": PositionRow,
    "paper_fills": FillRow,
    "paper_equity": EquityRow,
    "paper_locks": LockRow,
}


def columns(cls: type[AccountRow | OrderRow | PositionRow | FillRow | NewFill | EquityRow | LockRow]) -> str:
    """The row class's columns for a SELECT or an INSERT, in field order."""
    return ", ".join(f.name for f in fields(cls))


# --- rows -> models -------------------------------------------------------------------------------------------------
def upnl(side: str, entry: float, price: float, qty: float) -> float:
    return (price - entry) * qty if side == "long" else (entry - price) * qty


def position_model(p: PositionRow, cfg: TradingConfig) -> Position:
    timeout_ms = int(cfg.portfolio_limits.position_timeout_hours * 3_600_000)
    mark = p.mark_price if p.status == "open" else (p.exit_price or p.mark_price)
    return Position(
        id=p.id,
        strategy=p.strategy,
        symbol=p.symbol,
        side=p.side,
        qty=p.qty,
        entry_price=p.entry_price,
        leverage=p.leverage,
        notional=round(p.qty * mark, 2),
        margin=round(p.margin, 2),
        stop_loss_price=p.stop_loss_price,
        take_profit_price=p.take_profit_price,
        opened_at=utc_now_iso(p.opened_ms),
        mark_price=mark,
        marked_at=utc_now_iso(p.closed_ms or p.mark_ms),
        unrealised_pnl=round(upnl(p.side, p.entry_price, mark, p.qty), 2) if p.status == "open" else 0,
        status=p.status,
        closed_at=utc_now_iso(p.closed_ms) if p.closed_ms else None,
        exit_price=p.exit_price,
        exit_reason=p.exit_reason,
        fees=round(p.fees, 4),
        realised_pnl=round(p.realised_pnl, 2) if p.realised_pnl is not None else None,
        expires_at=utc_now_iso(p.opened_ms + timeout_ms),
    )


def order_model(o: OrderRow) -> Order:
    return Order(
        id=o.id,
        client_order_id=o.client_order_id,
        strategy=o.strategy,
        symbol=o.symbol,
        side=o.side,
        type=o.type,
        qty=o.qty,
        limit_price=o.limit_price,
        leverage=o.leverage,
        stop_loss=o.stop_loss,
        take_profit=o.take_profit,
        status=o.status,
        reason=o.reason,
        position_id=o.position_id,
        created_at=utc_now_iso(o.created_ms),
        updated_at=utc_now_iso(o.updated_ms),
    )


def fill_model(f: FillRow) -> Fill:
    return Fill(
        ts=utc_now_iso(f.ts_ms),
        order_id=f.order_id,
        position_id=f.position_id,
        strategy=f.strategy,
        symbol=f.symbol,
        action=f.action,
        side=f.side,
        qty=f.qty,
        price=f.price,
        reference_price=f.reference_price,
        fee=round(f.fee, 4),
        reason=f.reason,
        price_source=f.price_source,
        realised_pnl=round(f.realised_pnl, 2) if f.realised_pnl is not None else None,
    )

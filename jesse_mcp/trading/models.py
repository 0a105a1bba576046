"""What the paper-trading tools return. Money is USD; fractions are fractions unless a name ends in _pct."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from jesse_mcp.backtesting.tail_report import TailRiskEstimate

Side = Literal["long", "short"]


@dataclass(frozen=True)
class OrderRequest:
    """A paper order as asked for, before any check: what every venue receives."""

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


class Check(BaseModel):
    """One pre-trade check: every check is evaluated and reported, passed or not."""

    rule: str
    passed: bool
    value: float | None = Field(description="The measured value, in the unit of the limit.")
    limit: float | None
    detail: str = Field(description="What was measured; for a failed check also why and what to do.")


class Fill(BaseModel):
    ts: str
    order_id: str | None
    position_id: str
    strategy: str
    symbol: str
    action: Literal["open", "close"]
    side: Side
    qty: float
    price: float = Field(description="Fill price after slippage (market) or the limit price.")
    reference_price: float = Field(description="The consensus price the fill was based on.")
    fee: float
    reason: str = Field(description="market, limit, manual, stop_loss, take_profit, timeout, liquidation.")
    price_source: str = Field(description="Where the reference price came from (consensus of N providers, replay).")
    realised_pnl: float | None = Field(description="Net profit of the position (after both fees), on a close.")


class Order(BaseModel):
    id: str
    client_order_id: str
    strategy: str
    symbol: str
    side: Side
    type: Literal["market", "limit"]
    qty: float
    limit_price: float | None
    leverage: float
    stop_loss: float = Field(description="Stop distance attached to the position, fraction of the entry price.")
    take_profit: float = Field(description="Take-profit distance, fraction of the entry price.")
    status: Literal["open", "filled", "cancelled"]
    reason: str | None = Field(description="Why it was cancelled, or how it filled.")
    position_id: str | None
    created_at: str
    updated_at: str


class Position(BaseModel):
    id: str
    strategy: str
    symbol: str
    side: Side
    qty: float
    entry_price: float
    leverage: float
    notional: float = Field(description="qty x mark price.")
    margin: float = Field(description="Cash set aside: entry notional / leverage.")
    stop_loss_price: float
    take_profit_price: float
    opened_at: str
    mark_price: float
    marked_at: str
    unrealised_pnl: float = Field(description="At the mark price, before the exit fee.")
    status: Literal["open", "closed"]
    closed_at: str | None = None
    exit_price: float | None = None
    exit_reason: str | None = None
    fees: float
    realised_pnl: float | None = Field(None, description="Net of both fees, once closed.")
    expires_at: str = Field(description="When position_timeout_hours closes it.")


class Event(BaseModel):
    """Something the ledger did by itself: a stop, a limit fill, a timeout, a halt."""

    ts: str
    kind: str = Field(
        description="limit_fill, stop_loss, take_profit, timeout, liquidation, kill_switch, protection_lock, no_price."
    )
    detail: str
    position_id: str | None = None
    order_id: str | None = None


class OrderResult(BaseModel):
    order: Order
    position: Position | None = Field(description="The position the order opened, when it filled.")
    fill: Fill | None
    duplicate: bool = Field(description="True: this client_order_id was placed before; nothing new was done.")
    checks: list[Check] = Field(description="Every pre-trade check, with its measured value and limit.")
    equity: float
    cash: float
    events: list[Event] = Field(description="What reconciliation did before this order (stops, fills, halts).")
    notes: list[str]


class CancelResult(BaseModel):
    order: Order
    events: list[Event]


class CloseResult(BaseModel):
    position: Position
    fill: Fill
    equity: float
    cash: float
    events: list[Event]


class Account(BaseModel):
    starting_balance: float
    cash: float
    equity: float = Field(description="Cash + margin + unrealised P&L of open positions, at the latest marks.")
    margin_used: float
    unrealised_pnl: float
    realised_pnl: float = Field(description="Net of fees, closed positions.")
    fees_paid: float
    peak_equity: float
    drawdown: float = Field(description="Fall from the peak, fraction.")
    day: str
    day_start_equity: float
    day_pnl: float
    emergency_stop: float = Field(description="Drawdown from the peak that halts trading, fraction.")
    daily_loss_limit: float = Field(description="Loss from the day's start that halts trading, fraction.")


class BookTailRisk(BaseModel):
    confidence: float = Field(description="var_confidence of the global risk profile (0.95 = 95 %).")
    max_cvar: float = Field(description="The global profile's max_cvar, fraction of equity.")
    daily_returns: int = Field(description="Days of daily closes the book was revalued on (paper.cvar_days).")
    estimates: list[TailRiskEstimate] = Field(
        description="One-day VaR and CVaR of everything held now, % of equity: historical (what max_cvar checks), "
        "parametric (normal) and cornish_fisher (skew and fat tails)."
    )


class ActiveLock(BaseModel):
    strategy: str
    rule: str = Field(description="cooldown, stoploss_guard, low_profit_lock or drawdown_pause.")
    market: str | None = Field(description="None: every market of the strategy.")
    start: str
    end: str
    reason: str


class Portfolio(BaseModel):
    account: Account
    trading_state: str
    trading_state_reason: str
    positions: list[Position]
    open_orders: list[Order]
    recent_fills: list[Fill]
    events: list[Event] = Field(description="What reconciliation did for this call.")
    unpriced: list[str] = Field(description="Symbols with no fresh price now: their marks are older.")
    tail_risk: BookTailRisk | None = Field(
        None, description="One-day VaR/CVaR of the open book (None with nothing open, see tail_risk_unmeasured)."
    )
    tail_risk_unmeasured: str | None = Field(None, description="Why the open book's tail risk could not be measured.")
    protection_locks: list[ActiveLock] = Field(
        default_factory=list, description="Protection locks in force now (each journaled once, when first seen)."
    )


class PaperTrade(BaseModel):
    position_id: str
    symbol: str
    side: Side
    opened_at: str
    closed_at: str
    entry_price: float
    exit_price: float
    qty: float
    realised_pnl: float
    exit_reason: str


class Performance(BaseModel):
    strategy: str | None = Field(description="None: the whole account.")
    starting_balance: float
    equity: float = Field(description="Strategy: starting balance + its own net P&L. Account: the account equity.")
    net_pnl: float
    net_return_pct: float
    first_fill_at: str | None
    days: float = Field(description="Days since the first paper fill.")
    sharpe: float | None = Field(
        description="Annualised (365) Sharpe of daily equity returns, every UTC day since the first fill (a day "
        "without an equity record keeps the previous equity); None under 2 days."
    )
    max_drawdown: float = Field(description="Largest fall of the equity curve from its peak, fraction.")
    trades: int = Field(description="Closed positions.")
    open_positions: int
    win_rate: float | None
    profit_factor: float | None = Field(description="Gross profit / gross loss; None when there is no loss.")
    fees_paid: float
    median_position_pct: float | None = Field(
        None, description="Median entry notional of the positions, % of the starting balance (None: no position)."
    )
    replay_fills: int = Field(0, description="Fills priced by the replay provider (stored candles, not live prices).")
    equity_curve: list[list[float | str]] = Field(description="[UTC time, equity] points, at most 500.")
    recent_trades: list[PaperTrade]
    image: str | None = Field(None, description="'attached' when a PNG of the curve came with this answer.")


class ResetResult(BaseModel):
    trading_state: str
    was: str = Field(description="The halt reason that was cleared.")
    confirmation: str
    equity: float
    new_peak_equity: float = Field(description="The drawdown of the kill switch is measured from here now.")

"""Where orders go: a venue places, cancels and closes, and reports its portfolio, in the typed models of
trading/models.py. The paper ledger (trading/paper.py) is one venue; a real exchange or broker is another beside it.

The pre-trade checks (trading/checks.py) never read a venue's internals: a venue hands them a `Book`, its account and
everything open, as the same typed models every venue reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from jesse_mcp.trading.models import CancelResult, CloseResult, Order, OrderRequest, OrderResult, Portfolio, Position


@dataclass(frozen=True)
class Book:
    """A venue's account and open book at the moment an order is checked. Money in USD."""

    cash: float
    equity: float  # with the order's symbol marked at its quote
    peak_equity: float
    margin_used: float  # by the open positions
    positions: list[Position]
    orders: list[Order]  # resting orders


class Venue(Protocol):
    async def place_order(self, req: OrderRequest) -> OrderResult:
        """Check every limit against the venue's book, then place the order (a retry with the same client order id
        places nothing new)."""
        ...

    async def cancel_order(self, order_id: str) -> CancelResult: ...

    async def close_position(self, position_id: str) -> CloseResult: ...

    async def portfolio(self) -> Portfolio: ...

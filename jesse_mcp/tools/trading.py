"""The MCP surface of paper trading, stage transitions and the kill switch reset (thin: the work is in
jesse_mcp/trading/ and jesse_mcp/promotion/). The order tools speak to a `Venue`; paper is the one venue so far."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal

import anyio
from mcp.server.fastmcp import Context
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from asset_price_mcp.library import UnknownSymbol, parse_symbol
from jesse_mcp.backtesting.service import BacktestService
from jesse_mcp.promotion import gates as promotion
from jesse_mcp.promotion import kill_switch
from jesse_mcp.promotion.evidence import current_code
from jesse_mcp.tools.research import with_image
from jesse_mcp.trading.models import (
    CancelResult,
    CloseResult,
    OrderRequest,
    OrderResult,
    Performance,
    Portfolio,
    ResetResult,
)
from jesse_mcp.trading.paper import PaperService
from jesse_mcp.trading.venue import Venue
from shared.config import stage_history
from shared.errors import InvalidArgumentsError
from shared.market.candles import iso_ms
from shared.server.confirm import require_confirmation
from shared.server.registry import ToolRegistry

StrategyName = Annotated[str, Field(description="The strategy the order belongs to.", min_length=1, max_length=64)]
OptionalStrategy = Annotated[
    str | None, Field(description="A strategy name; omit for the whole account / the global stage.", max_length=64)
]
Reason = Annotated[str, Field(description="Why, recorded in the stage history and the journal.", max_length=500)]

# The arguments of place_paper_order.
OrderSymbol = Annotated[str, Field(description="Instrument, e.g. BTC-USDT, ETH-USD, AAPL.", max_length=32)]
OrderSide = Annotated[Literal["long", "short"], Field(description="long buys, short sells first.")]
OrderQuantity = Annotated[float | None, Field(description="Units of the asset (or give notional_usd).", gt=0, le=1e12)]
OrderNotional = Annotated[float | None, Field(description="Size in USD (or give quantity).", gt=0, le=1e12)]
OrderType = Annotated[Literal["market", "limit"], Field(description="market fills now; limit rests.")]
LimitPrice = Annotated[float | None, Field(description="Worst price accepted (limit orders).", gt=0, le=1e12)]
OrderLeverage = Annotated[float, Field(description="A multiple; margin = notional / leverage.", ge=1, le=125)]
OrderStopLoss = Annotated[
    float | None, Field(description="Tighter stop distance than the profile's, fraction of price.", gt=0, lt=1)
]
OrderTakeProfit = Annotated[
    float | None, Field(description="Closer take profit than the profile's, fraction of price.", gt=0, le=10)
]
ClientOrderId = Annotated[
    str | None,
    Field(
        description="Your id for this order: a retry with the same id never fills twice. Recommended.",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
    ),
]


class HistoryView(BaseModel):
    strategy: str | None
    changes: list[dict[str, str | None]] = Field(description="Stage changes, newest first, with their reasons.")


def _symbol(text: str) -> str:
    try:
        return parse_symbol(text).symbol
    except UnknownSymbol as e:
        raise InvalidArgumentsError(str(e)) from None


def register_paper_tools(tools: ToolRegistry, paper: PaperService, backtests: BacktestService) -> None:
    """The paper venue's order tools, its track record, stage transitions and the kill switch reset."""
    _register_order_tools(tools, paper)
    _register_cancel_tools(tools, paper)
    _register_position_tools(tools, paper)
    _register_performance_tools(tools, paper)
    _register_promotion_tools(tools, paper, backtests)
    _register_stage_tools(tools, paper)


def _register_order_tools(tools: ToolRegistry, venue: Venue) -> None:
    @tools.paper(title="Place a paper order", strategy_arg="strategy", journal_in_transaction=True)
    async def place_paper_order(
        strategy: StrategyName,
        symbol: OrderSymbol,
        side: OrderSide,
        quantity: OrderQuantity = None,
        notional_usd: OrderNotional = None,
        type: OrderType = "market",
        limit_price: LimitPrice = None,
        leverage: OrderLeverage = 1.0,
        stop_loss: OrderStopLoss = None,
        take_profit: OrderTakeProfit = None,
        client_order_id: ClientOrderId = None,
    ) -> OrderResult:
        """Place a paper order for a strategy at stage paper or higher. A market order fills at the live consensus
        price plus slippage and fee; a limit order fills when a later price check crosses it. Before anything is
        written, every limit is checked and reported: position size, leverage, risk per trade (size x stop),
        positions per strategy and in total, trades per day/week/month, minimum cash, account usage (margin),
        drawdown, and return correlation with each open position or resting order (the same symbol in the same
        direction counts as 1.0). The profile's stop loss and take profit are attached to the position; per-order
        values may only be tighter."""
        req = OrderRequest(
            strategy=strategy,
            symbol=_symbol(symbol),
            side=side,
            type=type,
            quantity=quantity,
            notional_usd=notional_usd,
            limit_price=limit_price,
            leverage=leverage,
            stop_loss=stop_loss,
            take_profit=take_profit,
            client_order_id=client_order_id,
        )
        return await venue.place_order(req)


def _register_cancel_tools(tools: ToolRegistry, venue: Venue) -> None:
    @tools.paper(title="Cancel a paper order", reduces_risk=True, journal_in_transaction=True)
    async def cancel_paper_order(
        order_id: Annotated[str, Field(description="The order id (po_...) or your client order id.", max_length=64)],
    ) -> CancelResult:
        """Cancel a resting paper limit order. Works for a demoted strategy too (it only reduces risk); refused
        while trading is halted (the kill switch already cancelled every open order)."""
        return await venue.cancel_order(order_id)


def _register_position_tools(tools: ToolRegistry, venue: Venue) -> None:
    @tools.paper(destructive=True, title="Close a paper position", reduces_risk=True, journal_in_transaction=True)
    async def close_paper_position(
        position_id: Annotated[str, Field(description="The position id (pp_...).", max_length=64)],
    ) -> CloseResult:
        """Close an open paper position at the consensus price (with slippage and fee) and report its net P&L.
        Works for a demoted strategy too (it only reduces risk)."""
        return await venue.close_position(position_id)

    @tools.read(open_world=True, title="Paper portfolio")
    async def get_paper_portfolio() -> Portfolio:
        """The paper account: cash, equity, margin, realised and unrealised P&L, drawdown against the emergency
        stop and the day's loss against its limit, trading state, open positions with their stops, open orders,
        recent fills, and what reconciliation did just now (stops, limit fills, timeouts, halts)."""
        return await venue.portfolio()


def _register_performance_tools(tools: ToolRegistry, paper: PaperService) -> None:
    @tools.read(title="Paper performance", strategy_arg="strategy")
    async def get_paper_performance(
        strategy: OptionalStrategy = None,
        equity_image: Annotated[bool, Field(description="Also return the equity curve as a PNG image.")] = False,
    ) -> Annotated[CallToolResult, Performance]:
        """Paper track record of a strategy (its own P&L on the starting balance) or of the whole account: equity
        curve, annualised Sharpe of daily returns, max drawdown, win rate, profit factor, fees, recent trades.
        This is the evidence the paper -> live promotion gates read."""
        perf = paper.performance(strategy)
        png = None
        if equity_image:
            from jesse_mcp.backtesting.pictures import equity_png

            curve = [[iso_ms(t) / 1000, float(e)] for t, e in perf.equity_curve]
            png = await anyio.to_thread.run_sync(equity_png, curve, f"Paper equity: {strategy or 'account'}")
            perf = perf.model_copy(update={"image": "attached" if png else None})
        return with_image(perf, png)


def _register_promotion_tools(tools: ToolRegistry, paper: PaperService, backtests: BacktestService) -> None:
    deps = tools.deps

    def promotion_deps(ask: promotion.PromotionAsk) -> promotion.PromotionDeps:
        code_of = partial(current_code, backtests, deps.config.load, ask.strategy, ask.to_stage)
        return promotion.PromotionDeps(deps.config, deps.store, paper, paper.clock, code_of)

    @tools.read(title="Promotion gates", strategy_arg="strategy")
    async def get_promotion_gates(
        strategy: OptionalStrategy,
        to_stage: Annotated[Literal["paper", "live"], Field(description="The stage asked for.")],
    ) -> promotion.PromotionReport:
        """Measure every gate of a promotion on the stored evidence, without changing anything: what
        request_stage_promotion would find now (the paper record at the last checked prices; the promotion itself
        reconciles first)."""
        ask = promotion.PromotionAsk(strategy, to_stage)
        code = await promotion_deps(ask).code()
        return promotion.evaluate(deps.config.load(), deps.store, paper, ask, paper.clock(), code)

    @tools.admin(title="Request a stage promotion", strategy_arg="strategy")
    async def request_stage_promotion(
        strategy: OptionalStrategy,
        to_stage: Annotated[Literal["paper", "live"], Field(description="One stage up from the current one.")],
        reason: Reason = "",
        ctx: Context | None = None,
    ) -> promotion.PromotionReport:
        """Promote a strategy one stage, only on recorded evidence: exploration -> paper needs a stored backtest of
        the strategy under its effective profile, recent, within the profile's max drawdown, with enough Sharpe
        and trades, plus a passed stress test of it; paper -> live needs a paper track record (days, trades,
        Sharpe, drawdown) and the person's confirmation through elicitation. Raising the global stage (no
        strategy) needs the person's confirmation. Every gate is reported with its value and threshold."""
        ask = promotion.PromotionAsk(strategy, to_stage, reason)
        return await promotion.request_promotion(promotion_deps(ask), ask, partial(require_confirmation, ctx))


def _register_stage_tools(tools: ToolRegistry, paper: PaperService) -> None:
    deps = tools.deps

    @tools.admin(destructive=True, title="Demote a stage", strategy_arg="strategy", halt_exempt=True)
    def demote_stage(
        strategy: OptionalStrategy,
        to_stage: Annotated[
            Literal["exploration", "paper"] | None, Field(description="Default: one stage down.")
        ] = None,
        reason: Reason = "",
    ) -> promotion.StageChange:
        """Lower a strategy's stage (or the global stage) at once: no evidence needed, works while halted. Open
        paper positions stay open with their stops; they can still be closed."""
        return promotion.demote(deps.config, deps.store, strategy, to_stage, reason)

    @tools.read(title="Stage history", strategy_arg="strategy")
    def get_stage_history(
        strategy: OptionalStrategy = None,
        limit: Annotated[int, Field(description="Newest first, at most this many.", ge=1, le=1000)] = 50,
    ) -> HistoryView:
        """Every stage change (promotions with their evidence, demotions) with time and reason, newest first."""
        return HistoryView(
            strategy=strategy, changes=[c.as_dict() for c in stage_history.history(deps.store, strategy, limit)]
        )

    @tools.admin(title="Reset the kill switch", halt_exempt=True, journal_in_transaction=True)
    async def reset_kill_switch(reason: Reason = "", ctx: Context | None = None) -> ResetResult:
        """Resume trading after the kill switch halted it. The person must confirm through elicitation; the
        drawdown and the day's loss are measured from the current equity afterwards."""
        return await kill_switch.reset_kill_switch(paper, reason, partial(require_confirmation, ctx))

"""The argument types the jesse_mcp tools share (what a client sees in each tool's input schema)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from jesse_mcp.backtesting.plans import DEFAULT_BALANCE, DEFAULT_FEE
from jesse_mcp.candles import ops as candle_ops

Profile = Literal["conservative", "moderate", "aggressive"]
Timeframe = Literal["1m", "3m", "5m", "15m", "30m", "45m", "1h", "2h", "3h", "4h", "6h", "8h", "12h", "1D"]

StrategyName = Annotated[
    str, Field(description="Strategy name (list_strategies), e.g. trend_following.", min_length=1, max_length=64)
]
SymbolArg = Annotated[
    str | None,
    Field(description="Stored market symbol, e.g. BTC-USDT; may be omitted when one market is stored.", max_length=32),
]
ExchangeArg = Annotated[
    str | None,
    Field(
        description="Stored exchange: a store key (binance, binance-perp, synthetic, ...) or Jesse's name (Binance "
        "Spot, Binance Perpetual Futures, ...), any case; may be omitted when one market is stored.",
        max_length=48,
    ),
]
TimeframeArg = Annotated[Timeframe, Field(description="Candle timeframe the strategy trades on.")]
StartArg = Annotated[candle_ops.When | None, Field(description="UTC start, e.g. 2025-06-01. Default: all stored data.")]
EndArg = Annotated[candle_ops.When | None, Field(description="UTC end (exclusive). Default: end of the stored data.")]
DaysArg = Annotated[
    int | None,
    Field(description="N days: after start if given, else the last N days of the stored data.", ge=1, le=3650),
]
HyperValue = Annotated[int, Field(ge=-(10**9), le=10**9)] | Annotated[float, Field(ge=-1e9, le=1e9)]
HyperArg = Annotated[
    dict[str, HyperValue] | None,
    Field(
        description='Hyperparameter overrides, e.g. {"fast_period": 10}; see list_strategies for ranges. Unset ones '
        "come from the configuration (strategies.<name>.custom_params), then the strategy's defaults."
    ),
]
FeeArg = Annotated[
    float | None,
    Field(description=f"Fee per fill, fraction of notional (default {DEFAULT_FEE} = 0.1 %).", ge=0, le=0.05),
]
BalanceArg = Annotated[
    float | None,
    Field(description=f"Starting balance in the quote currency (default {DEFAULT_BALANCE:g}).", gt=0, le=1e12),
]
WarmupArg = Annotated[
    int | None,
    Field(
        description="Warm-up candles of the timeframe before start (default: from the strategy's periods).",
        ge=1,
        le=2000,
    ),
]
Market = Annotated[str, Field(min_length=1, max_length=32)]
MarketsArg = Annotated[
    list[Market] | None,
    Field(
        description="A portfolio: these stored markets (same exchange) traded by the strategy in one account, the "
        "configuration's portfolio limits applied across them, e.g. [BTC-USDT, ETH-USDT, SOL-USDT]; instead of "
        "symbol.",
        min_length=2,
        max_length=50,
    ),
]
DataMarketsArg = Annotated[
    list[Market] | None,
    Field(
        description="With markets: stored markets whose candles only inform the strategy (never traded).",
        min_length=1,
        max_length=50,
    ),
]
SizingArg = Annotated[
    Literal["risk", "cvar"],
    Field(
        description="risk: risk per trade / stop distance, capped by max_position_size and max_leverage; cvar: also "
        "no larger than keeps the account's one-day CVaR (historical, at var_confidence) within the profile's "
        "max_cvar, on the stored daily closes before each entry."
    ),
]
PortfolioFlag = Annotated[
    bool,
    Field(
        description="true: the symbols are traded together in one account under the portfolio limits, as one "
        "portfolio backtest per run (backtest_batch) or per trial (optimize_strategy, whose objective is then the "
        "portfolio's)."
    ),
]
BacktestId = Annotated[
    str,
    Field(
        description="Id of a stored backtest (bt_...), from backtest or list_backtests.", min_length=3, max_length=40
    ),
]

"""The backtest tools and resources of jesse_mcp (thin: arguments in, service call, typed result out)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Annotated, Any, Literal

from mcp.server.fastmcp import Context
from mcp.types import CallToolResult, ImageContent, TextContent
from pydantic import BaseModel, Field

from jesse_mcp.backtesting import batch
from jesse_mcp.backtesting.plans import PlanRequest
from jesse_mcp.backtesting.results import BacktestResult
from jesse_mcp.backtesting.service import BacktestService, ProfileComparison, StrategyList, view_of
from jesse_mcp.backtesting.trade_rows import Trade
from jesse_mcp.candles import ops as candle_ops
from jesse_mcp.research import montecarlo, stress, walkforward
from jesse_mcp.tools.args import (
    BacktestId,
    BalanceArg,
    DataMarketsArg,
    DaysArg,
    EndArg,
    ExchangeArg,
    FeeArg,
    HyperArg,
    HyperValue,
    MarketsArg,
    PortfolioFlag,
    Profile,
    SizingArg,
    StartArg,
    StrategyName,
    SymbolArg,
    Timeframe,
    TimeframeArg,
    WarmupArg,
)
from shared.config.profiles import PROFILE_NAMES
from shared.server.registry import GuardedServer, ToolRegistry
from shared.state import results as result_store


class BacktestRecord(BaseModel):
    record: dict[str, Any] = Field(description="The stored result, as returned when it was made.")
    trades: list[Trade] | None = Field(None, description="Closed trades (when asked for), oldest first.")
    trades_total: int | None = None
    trades_offset: int | None = None


class ResultPage(BaseModel):
    results: list[dict[str, Any]]
    total: int
    offset: int


def with_image(model: BaseModel, png: bytes | None) -> CallToolResult:
    data = model.model_dump(mode="json")
    content: list[Any] = [TextContent(type="text", text=json.dumps(data, indent=2))]
    if png:
        content.append(ImageContent(type="image", data=base64.b64encode(png).decode("ascii"), mimeType="image/png"))
    return CallToolResult(content=content, structuredContent=data)


def progress_reporter(ctx: Context | None):
    if ctx is None:
        return None

    last = [-1.0]

    async def report(done: float, total: float, message: str) -> None:
        if done > last[0]:  # MCP progress must increase with every notification
            last[0] = done
            await ctx.report_progress(done, total, message)

    return report


def register_backtest_tools(tools: ToolRegistry, service: BacktestService) -> None:
    """Strategies, backtests, profile comparisons and stored results."""
    _register_strategy_tools(tools, service)
    _register_run_tools(tools, service)
    _register_comparison_tools(tools, service)
    _register_batch_tools(tools, service)
    _register_result_tools(tools, service)


def _register_strategy_tools(tools: ToolRegistry, service: BacktestService) -> None:
    @tools.read(title="Strategies")
    async def list_strategies() -> StrategyList:
        """Built-in and user strategies: what each does, its hyperparameters (type, default, range, meaning), and
        whether the risk profile sizes it. User strategies are Jesse Strategy files in the strategies folder."""
        return await service.list_strategies()


def _register_run_tools(tools: ToolRegistry, service: BacktestService) -> None:
    @tools.research(title="Backtest", strategy_arg="strategy")
    async def backtest(
        strategy: StrategyName,
        symbol: SymbolArg = None,
        markets: MarketsArg = None,
        data_markets: DataMarketsArg = None,
        exchange: ExchangeArg = None,
        timeframe: TimeframeArg = "1h",
        start: StartArg = None,
        end: EndArg = None,
        days: DaysArg = None,
        risk_profile: Annotated[
            Profile | None, Field(description="Default: the strategy's configured profile, else the global one.")
        ] = None,
        hyperparameters: HyperArg = None,
        fee: FeeArg = None,
        leverage: Annotated[
            float | None,
            Field(description="Futures leverage, at most the profile's max_leverage (default).", ge=1, le=125),
        ] = None,
        starting_balance: BalanceArg = None,
        warmup_candles: WarmupArg = None,
        sizing: SizingArg = "risk",
        equity_image: Annotated[bool, Field(description="Also return the equity curve as a PNG image.")] = False,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, BacktestResult]:
        """Run a real Jesse backtest on stored 1-minute candles, sized by the risk profile: position = risk per
        trade / stop distance, capped by max_position_size and max_leverage; stop loss and take profit from the
        profile; no new entries after max_drawdown. With markets: a portfolio in one account, every entry meeting
        the paper account's pre-trade checks (open and total positions, account usage, correlation, CVaR, trades
        per day/week/month), refusals counted by rule, with per-market contribution, exposure over time and the
        correlation matrix. Returns metrics with units, risk adherence checked from the trades, data provenance
        (synthetic data is flagged) and a result id (get_backtest, stress_test, monte_carlo, validate_strategy)."""
        req = PlanRequest(
            symbol=symbol,
            markets=tuple(markets) if markets else None,
            data_markets=tuple(data_markets) if data_markets else None,
            exchange=exchange,
            timeframe=timeframe,
            start=start,
            end=end,
            days=days,
            risk_profile=risk_profile,
            hyperparameters=hyperparameters,
            fee=fee,
            leverage=leverage,
            starting_balance=starting_balance,
            warmup_candles=warmup_candles,
            sizing=sizing,
        )
        plan = await service.plan(strategy, req)
        result, png = await service.backtest(plan, png=equity_image, progress=progress_reporter(ctx))
        return with_image(result, png)


def _register_comparison_tools(tools: ToolRegistry, service: BacktestService) -> None:
    @tools.research(title="Compare risk profiles", strategy_arg="strategy")
    async def compare_risk_profiles(
        strategy: StrategyName,
        symbol: SymbolArg = None,
        markets: MarketsArg = None,
        data_markets: DataMarketsArg = None,
        exchange: ExchangeArg = None,
        timeframe: TimeframeArg = "1h",
        start: StartArg = None,
        end: EndArg = None,
        days: DaysArg = None,
        hyperparameters: HyperArg = None,
        fee: FeeArg = None,
        starting_balance: BalanceArg = None,
        warmup_candles: WarmupArg = None,
        sizing: SizingArg = "risk",
        ctx: Context | None = None,
    ) -> ProfileComparison:
        """The same backtest under the conservative, moderate and aggressive profiles, run in parallel, with a
        side-by-side table (return, drawdown, Sharpe, position sizes, limit breaches); a portfolio with markets, as
        in backtest. Each run is stored."""
        base = PlanRequest(
            symbol=symbol,
            markets=tuple(markets) if markets else None,
            data_markets=tuple(data_markets) if data_markets else None,
            exchange=exchange,
            timeframe=timeframe,
            start=start,
            end=end,
            days=days,
            hyperparameters=hyperparameters,
            fee=fee,
            starting_balance=starting_balance,
            warmup_candles=warmup_candles,
            sizing=sizing,
        )
        plans = [
            await service.plan(strategy, replace(base, risk_profile=profile, label=f"{strategy} {profile}"))
            for profile in PROFILE_NAMES
        ]
        return await service.compare(plans, progress=progress_reporter(ctx))


def _register_batch_tools(tools: ToolRegistry, service: BacktestService) -> None:
    @tools.research(title="Backtest batch")
    async def backtest_batch(
        strategies: Annotated[
            list[StrategyName] | None,
            Field(description="Default: every built-in strategy.", min_length=1, max_length=32),
        ] = None,
        symbols: Annotated[
            list[Annotated[str, Field(min_length=1, max_length=32)]] | None,
            Field(
                description="Stored market symbols, e.g. [BTC-USDT, ETH-USDT]. Default: the one stored market.",
                min_length=1,
                max_length=32,
            ),
        ] = None,
        exchange: ExchangeArg = None,
        timeframes: Annotated[
            list[Timeframe] | None, Field(description="Default: [1h].", min_length=1, max_length=14)
        ] = None,
        risk_profiles: Annotated[
            list[Profile] | None, Field(description="Default: each strategy's configured profile.", min_length=1)
        ] = None,
        start: StartArg = None,
        end: EndArg = None,
        days: DaysArg = None,
        fee: FeeArg = None,
        hyperparameters: Annotated[
            dict[str, HyperValue] | None, Field(description="Overrides for a batch of exactly one strategy.")
        ] = None,
        sort_by: Annotated[
            batch.SortKey, Field(description="Metric to rank by: largest first, max_drawdown_pct smallest first.")
        ] = "sharpe",
        portfolio: PortfolioFlag = False,
        ctx: Context | None = None,
    ) -> batch.BatchReport:
        """Backtest a grid of strategies x symbols x timeframes x risk profiles in parallel (at most
        backtest_config.max_batch_runs runs, default 48), each run stored with its id, ranked in one table by
        sort_by. A run that cannot be made (e.g. no candles for a symbol) is a row with its error. Progress is
        reported per finished run. Same range and fee arguments as backtest."""
        base = PlanRequest(exchange=exchange, start=start, end=end, days=days, fee=fee, hyperparameters=hyperparameters)
        req = batch.BatchRequest(
            strategies=tuple(strategies or ()),
            symbols=tuple(symbols or (None,)),
            timeframes=tuple(timeframes or ("1h",)),
            risk_profiles=tuple(risk_profiles or (None,)),
            base=base,
            sort_by=sort_by,
            portfolio=portfolio,
        )
        return await batch.run_batch(service, req, progress_reporter(ctx))


def _register_result_tools(tools: ToolRegistry, service: BacktestService) -> None:
    @tools.read(title="Stored result")
    def get_backtest(
        id: BacktestId,
        include_trades: Annotated[bool, Field(description="Also return the closed trades (paged).")] = False,
        trades_offset: Annotated[int, Field(ge=0, le=10_000_000, description="First trade to return.")] = 0,
        trades_limit: Annotated[int, Field(ge=1, le=1000, description="Most trades to return.")] = 100,
    ) -> BacktestRecord:
        """A stored result (backtest, stress test, Monte Carlo or validation) by id, optionally with its trades:
        entry and exit, size, fee, profit and the equity at entry."""
        record = service.get(id)
        if not include_trades:
            return BacktestRecord(record=record)
        trades, total = service.trades(id, trades_offset, trades_limit)
        return BacktestRecord(record=record, trades=trades, trades_total=total, trades_offset=trades_offset)

    @tools.read(title="Stored results")
    def list_backtests(
        strategy: Annotated[str | None, Field(description="Only results of this strategy.", max_length=64)] = None,
        kind: Annotated[
            Literal["backtest", "stress_test", "monte_carlo", "validation"] | None,
            Field(description="Only results of this kind."),
        ] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
        offset: Annotated[int, Field(ge=0, le=10_000_000)] = 0,
    ) -> ResultPage:
        """Stored results, newest first, with a one-line summary each (net profit %, max drawdown %, Sharpe,
        trades, synthetic or real data)."""
        kinds = kind or ("backtest", "stress_test", "monte_carlo", "validation")  # not other servers' results
        rows, total = result_store.listed(service.store, kinds, strategy, limit, offset)
        return ResultPage(results=[r.listing() for r in rows], total=total, offset=offset)


def register_analysis_tools(tools: ToolRegistry, service: BacktestService) -> None:
    """Stress tests, Monte Carlo and walk-forward validation of stored backtests."""
    _register_resampling_tools(tools, service)
    _register_validation_tools(tools, service)


def _register_resampling_tools(tools: ToolRegistry, service: BacktestService) -> None:
    @tools.research(title="Stress test")
    async def stress_test(
        backtest_id: BacktestId,
        scenarios: Annotated[
            list[stress.Scenario] | None,
            Field(description="Default: all of flash_crash, volatility_x3, gap_down, crash_2020.", min_length=1),
        ] = None,
        at: Annotated[
            candle_ops.When | None,
            Field(description="UTC time each scenario starts; default the middle of the backtest's range."),
        ] = None,
        ctx: Context | None = None,
    ) -> stress.StressReport:
        """Re-run a stored backtest on its candles with shocks applied: a flash crash (-30 % in an hour),
        volatility x3 for a week, a -15 % gap down, and a March-2020-style crash. Reports, per scenario, return,
        drawdown, the worst trade, and whether drawdown went past the profile's max_drawdown or reached the
        emergency stop."""
        chosen = scenarios or list(stress.SCENARIOS)
        at_ms = candle_ops.to_ms(at) if at is not None else None
        return await stress.stress_test(service, backtest_id, chosen, at_ms, progress_reporter(ctx))

    @tools.research(title="Monte Carlo")
    async def monte_carlo(
        backtest_id: BacktestId,
        methods: Annotated[
            list[montecarlo.MonteCarloMethod] | None,
            Field(
                description="trade_order (shuffle the trades), trade_bootstrap (draw trades with replacement), "
                "candles (re-run on block-bootstrapped candles). Default: trade_order and candles.",
                min_length=1,
            ),
        ] = None,
        trade_simulations: Annotated[int, Field(ge=100, le=100_000, description="Paths per trade method.")] = 1000,
        candle_simulations: Annotated[int, Field(ge=2, le=200, description="Backtests on resampled candles.")] = 20,
        seed: Annotated[int, Field(ge=0, le=2**32 - 1, description="Same seed, same result.")] = 0,
        ctx: Context | None = None,
    ) -> montecarlo.MonteCarloReport:
        """Distribution of returns and drawdowns of a stored backtest under resampling: percentiles (5-95), the
        probability of a loss, and the probability that drawdown exceeds the profile's max_drawdown."""
        chosen = methods or ["trade_order", "candles"]
        request = montecarlo.MonteCarloRequest(backtest_id, chosen, trade_simulations, candle_simulations, seed)
        return await montecarlo.monte_carlo(service, request, progress_reporter(ctx))


def _register_validation_tools(tools: ToolRegistry, service: BacktestService) -> None:
    @tools.research(title="Walk-forward validation")
    async def validate_strategy(
        backtest_id: BacktestId,
        folds: Annotated[int, Field(ge=2, le=12, description="Out-of-sample windows.")] = 4,
        ctx: Context | None = None,
    ) -> walkforward.ValidationReport:
        """Walk-forward validation of a stored backtest: its range is split into windows; on each in-sample
        window the strategy's hyperparameter grid is tried and the best (daily Sharpe) is run on the next,
        unseen window. Reports in-sample vs out-of-sample per fold with the market regimes found in the data, and
        the deflated Sharpe ratio of the out-of-sample returns given the number of trials."""
        return await walkforward.validate(service, backtest_id, folds, progress_reporter(ctx))


def add_backtest_resources(server: GuardedServer, service: BacktestService) -> None:
    @server.resource(
        "strategies://{name}", name="strategy", title="Strategy source and parameters", mime_type="application/json"
    )
    async def strategy_resource(name: str) -> str:
        """A strategy's source code and its hyperparameters."""
        path, source = service.strategy_source(name)
        spec = await service.strategy(name)
        return json.dumps({"path": path, "strategy": view_of(spec).model_dump(mode="json"), "source": source}, indent=2)

    @server.resource("backtests://{id}", name="backtest", title="Stored backtest result", mime_type="application/json")
    def backtest_resource(id: str) -> str:
        """A stored result by id (the same record get_backtest returns)."""
        return json.dumps(service.get(id), indent=2)

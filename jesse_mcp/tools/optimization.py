"""The optimization tools of jesse_mcp (thin: arguments in, the runner, typed result out)."""

from __future__ import annotations

from typing import Annotated

from mcp.server.fastmcp import Context
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from jesse_mcp.backtesting.plans import PlanRequest
from jesse_mcp.optimization.models import Objective, OptimizeRequest, Sampler, StudyList, StudyView, Validation
from jesse_mcp.optimization.picture import study_png
from jesse_mcp.optimization.runner import OptimizationRunner
from jesse_mcp.optimization.space import Narrowing
from jesse_mcp.tools.args import (
    DaysArg,
    EndArg,
    ExchangeArg,
    FeeArg,
    PortfolioFlag,
    Profile,
    StartArg,
    StrategyName,
    TimeframeArg,
)
from jesse_mcp.tools.research import progress_reporter, with_image
from shared.errors import InvalidArgumentsError
from shared.server.registry import ToolRegistry

StudyId = Annotated[str, Field(description="Optimization id (opt_...), from optimize_strategy.", max_length=40)]
Offset = Annotated[int, Field(ge=0, le=100_000, description="First trial of the page.")]
Limit = Annotated[int, Field(ge=1, le=200, description="Most trials in the page.")]
Bound = Annotated[float, Field(ge=-1e9, le=1e9)]


class SpaceBound(BaseModel):
    min: Bound | None = None
    max: Bound | None = None
    step: Annotated[float, Field(gt=0, le=1e9)] | None = None


TrialMarkets = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=32)]] | None,
    Field(description="Stored markets; each trial runs on each, the objective is their mean.", max_length=8),
]
SpaceArg = Annotated[
    dict[str, SpaceBound] | None,
    Field(description="Narrow a hyperparameter: {name: {min, max, step}}; never wider than declared."),
]


def register_optimization_tools(tools: ToolRegistry, runner: OptimizationRunner) -> None:
    _register_optimize(tools, runner)
    _register_study_tools(tools, runner)


def _objectives(objective: Objective | list[Objective]) -> tuple[str, ...]:
    chosen = (objective,) if isinstance(objective, str) else tuple(dict.fromkeys(objective))
    if not 1 <= len(chosen) <= 2:
        raise InvalidArgumentsError("objective takes one objective or two different ones (a Pareto front).")
    return chosen


def _register_optimize(tools: ToolRegistry, runner: OptimizationRunner) -> None:
    @tools.research(title="Optimize strategy", strategy_arg="strategy")
    async def optimize_strategy(
        strategy: StrategyName,
        symbols: TrialMarkets = None,
        portfolio: PortfolioFlag = False,
        exchange: ExchangeArg = None,
        timeframe: TimeframeArg = "1h",
        start: StartArg = None,
        end: EndArg = None,
        days: DaysArg = None,
        risk_profile: Annotated[Profile | None, Field(description="Default: the configured profile.")] = None,
        fee: FeeArg = None,
        objective: Annotated[
            Objective | list[Objective],
            Field(description='One objective, or two for a Pareto front, e.g. ["net_profit", "max_drawdown"].'),
        ] = "sharpe",
        trials: Annotated[int | None, Field(ge=1, le=10_000, description="Trials (per fold). Default 30.")] = None,
        budget_s: Annotated[float | None, Field(gt=0, le=86_400, description="Stop asking after this.")] = None,
        sampler: Annotated[Sampler, Field(description="tpe (default; nsga2 for two objectives), random.")] = "tpe",
        seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0,
        space: SpaceArg = None,
        validation: Annotated[Validation, Field(description="holdout or walk_forward.")] = "holdout",
        holdout_pct: Annotated[float, Field(gt=0, lt=90, description="Unseen last % of the range.")] = 30.0,
        folds: Annotated[int, Field(ge=1, le=10, description="Walk-forward folds.")] = 3,
        min_trades: Annotated[int, Field(ge=0, le=100_000, description="Fewer trades: infeasible.")] = 5,
        wait: Annotated[bool, Field(description="false: return the id at once; the study goes on.")] = True,
        ctx: Context | None = None,
    ) -> StudyView:
        """Search a strategy's hyperparameters with Optuna (trials are backtests on the worker pool, in parallel)
        and judge the winner out of sample (holdout or walk-forward). Trials breaching the profile's max drawdown
        or below min_trades are infeasible. Answers the out-of-sample figures first, deflated Sharpe over every
        trial, importances, top trials and the update_config change to adopt: it never changes the configuration.
        Limits: optimize_config.*."""
        req = OptimizeRequest(
            strategy=strategy,
            symbols=tuple(symbols or (None,)),
            portfolio=portfolio,
            base=PlanRequest(
                exchange=exchange,
                timeframe=timeframe,
                start=start,
                end=end,
                days=days,
                risk_profile=risk_profile,
                fee=fee,
            ),
            objectives=_objectives(objective),
            trials=trials if trials is not None or budget_s is not None else 30,
            budget_s=budget_s,
            sampler=sampler,
            seed=seed,
            space={k: Narrowing(v.min, v.max, v.step) for k, v in (space or {}).items()},
            validation=validation,
            holdout_pct=holdout_pct,
            folds=folds,
            min_trades=min_trades,
        )
        study_id = await runner.start(req, wait, progress_reporter(ctx) if wait else None)
        return runner.view(study_id, 0, 10)  # wait false: status running; get_optimization(id) follows it


def _register_study_tools(tools: ToolRegistry, runner: OptimizationRunner) -> None:
    @tools.read(title="Optimization")
    def get_optimization(
        id: StudyId,
        offset: Offset = 0,
        limit: Limit = 10,
        picture: Annotated[bool, Field(description="Attach the history and parameters as a PNG.")] = False,
    ) -> Annotated[CallToolResult, StudyView]:
        """A study: status (running, finished, cancelled, failed, interrupted), best feasible trial so far, trials
        paged, and the report once finished (top trials paged by the same offset/limit)."""
        view = runner.view(id, offset, limit)
        png = None
        if picture:
            rows = runner.view(id, 0, 100_000).trials
            png = study_png(rows, runner.record(id)["request"]["objectives"][0], f"{view.strategy} {id}")
            view.image = "attached" if png else None
        return with_image(view, png)

    @tools.read(title="Optimizations")
    def list_optimizations(limit: Limit = 20, offset: Offset = 0) -> StudyList:
        """Stored optimizations, newest first, with status and best trial so far (no trial pages)."""
        ids = runner.ids()[offset : offset + limit]
        return StudyList(studies=[runner.view(i, 0, 1).model_copy(update={"trials": []}) for i in ids])

    @tools.research(title="Cancel optimization", idempotent=True)
    async def cancel_optimization(id: StudyId) -> StudyView:
        """Stop a running study: its running trials are stopped (their workers killed and replaced) and it is
        recorded as cancelled with the trials done so far."""
        return await runner.cancel(id)

    @tools.research(title="Resume optimization")
    async def resume_optimization(
        id: StudyId,
        wait: Annotated[bool, Field(description="false: return at once; the study goes on.")] = True,
        ctx: Context | None = None,
    ) -> StudyView:
        """Resume a study interrupted by a server restart: trials left running are failed and run again, then the
        study finishes its trials as an uninterrupted one would (same seed, sampler and batch size)."""
        await runner.resume(id, wait, progress_reporter(ctx) if wait else None)
        return runner.view(id, 0, 10)

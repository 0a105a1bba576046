"""What an optimization is asked (OptimizeRequest, stored as plain JSON) and what it answers (typed reports)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from jesse_mcp.backtesting.plans import PlanRequest
from jesse_mcp.optimization.space import Narrowing

Objective = Literal["sharpe", "sortino", "calmar", "net_profit", "max_drawdown"]
Sampler = Literal["tpe", "random", "nsga2"]
Validation = Literal["holdout", "walk_forward"]
Status = Literal["running", "finished", "cancelled", "failed", "interrupted"]

# objective -> (the Figures field it reads, Optuna's direction)
OBJECTIVES: dict[str, tuple[str, str]] = {
    "sharpe": ("sharpe", "maximize"),
    "sortino": ("sortino", "maximize"),
    "calmar": ("calmar", "maximize"),
    "net_profit": ("net_profit_pct", "maximize"),
    "max_drawdown": ("max_drawdown_pct", "minimize"),
}


@dataclass(frozen=True)
class OptimizeRequest:
    """One optimization as asked. `symbols` (None: the one stored market) are each run by every trial; the
    objective is their mean; with `portfolio`, each trial is one portfolio backtest of them all (one account).
    `base` carries what every run shares (exchange, timeframe, range, profile, fee)."""

    strategy: str
    symbols: tuple[str | None, ...] = (None,)
    portfolio: bool = False
    base: PlanRequest = field(default_factory=PlanRequest)
    objectives: tuple[str, ...] = ("sharpe",)
    trials: int | None = None
    budget_s: float | None = None
    sampler: str = "tpe"
    seed: int = 0
    space: dict[str, Narrowing] = field(default_factory=dict)
    validation: str = "holdout"
    holdout_pct: float = 30.0
    folds: int = 3
    min_trades: int = 5
    batch_size: int | None = None  # None: the pool's size when the study starts (then recorded)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["symbols"] = list(self.symbols)
        data["objectives"] = list(self.objectives)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OptimizeRequest:
        d = dict(data)
        d["symbols"] = tuple(d["symbols"])
        d["objectives"] = tuple(d["objectives"])
        d["base"] = PlanRequest(**d["base"])
        d["space"] = {k: Narrowing(**v) for k, v in d["space"].items()}
        return cls(**d)


class Figures(BaseModel):
    """One settings' results on one window: means over the markets (trades: their sum), each market below."""

    net_profit_pct: float | None = None
    sharpe: float | None = None
    sortino: float | None = None
    calmar: float | None = None
    max_drawdown_pct: float | None = Field(None, description="Largest drawdown, % (positive).")
    trades: int = 0
    per_market: dict[str, dict[str, float | int | None]] = Field(
        default_factory=dict, description="Market -> its own figures."
    )


class TrialRow(BaseModel):
    number: int = Field(description="Optuna's trial number (0-based, in the order trials were asked).")
    state: Literal["feasible", "infeasible", "failed", "running"]
    params: dict[str, int | float]
    values: dict[str, float] | None = Field(None, description="Objective -> value (mean over the markets).")
    in_sample: Figures | None = None
    reasons: list[str] = Field(default_factory=list, description="Why infeasible or failed.")


class TrialCounts(BaseModel):
    total: int = Field(description="Trials run, every one counted (feasible + infeasible + failed).")
    feasible: int
    infeasible: int
    failed: int


class DeflatedSharpe(BaseModel):
    deflated_sharpe: float | None = Field(
        description="Probability (0..1) that the chosen settings' in-sample Sharpe beats the best that luck gives "
        "over all trials run (>= 0.95 is significant)."
    )
    n_trials: int = Field(description="Completed trials the deflation counts (feasible and infeasible).")
    trial_sharpe_variance: float | None = Field(description="Variance of the trials' daily Sharpe ratios.")
    expected_max_sharpe: float | None = Field(description="Daily Sharpe the luckiest of n_trials would show.")
    probabilistic_sharpe_in_sample: float | None
    probabilistic_sharpe_out_of_sample: float | None = Field(
        description="Probability (0..1) that the true Sharpe is above 0, from the out-of-sample daily returns."
    )


class FoldReport(BaseModel):
    fold: int
    in_sample: str = Field(description="UTC range the trials were run on.")
    out_of_sample: str = Field(description="UTC range the chosen settings were then run on, unseen.")
    chosen_trial: int | None
    chosen_hyperparameters: dict[str, int | float] | None
    in_sample_figures: Figures | None
    out_of_sample_figures: Figures | None
    trials: TrialCounts
    deflated_sharpe: DeflatedSharpe | None


class Adoption(BaseModel):
    tool: str = "update_config"
    changes: dict[str, Any] = Field(description="The update_config `changes` argument that adopts the values.")
    note: str


class OptimizationReport(BaseModel):
    id: str
    status: Status
    strategy: str
    markets: list[str]
    timeframe: str
    risk_profile: str
    synthetic: bool
    objectives: list[str]
    verdict: str = Field(description="In words: do the chosen settings hold out of sample?")
    out_of_sample: Figures | None = Field(description="The chosen settings on the unseen period(s).")
    in_sample: Figures | None
    chosen_hyperparameters: dict[str, int | float] | None
    deflated_sharpe: DeflatedSharpe | None
    trials: TrialCounts
    importances: dict[str, float] | None = Field(description="Parameter importances (fANOVA, seeded), largest first.")
    pareto_front: list[TrialRow] | None = Field(None, description="Two objectives: the feasible non-dominated trials.")
    top_trials: list[TrialRow] = Field(description="Feasible trials, best first, paged by offset/limit.")
    offset: int
    limit: int
    more: bool = Field(description="True when more trials follow this page.")
    folds: list[FoldReport]
    adopt: Adoption | None
    study: dict[str, Any] = Field(description="What reproduces it: sampler, seed, batch size, space, validation.")
    notes: list[str]
    wall_time_s: float | None = None


class StudyView(BaseModel):
    """A study as stored: its status, the best feasible trial so far, trials paged, the report once finished."""

    id: str
    status: Status
    strategy: str
    created_at: str
    trials_done: int
    trials_planned: int | None
    best_so_far: TrialRow | None
    trials: list[TrialRow]
    offset: int
    more: bool
    report: OptimizationReport | None
    error: str | None = None
    image: str | None = Field(None, description="'attached' when a PNG picture is attached.")


class StudyList(BaseModel):
    studies: list[StudyView]

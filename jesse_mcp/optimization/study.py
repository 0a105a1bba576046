"""The study loop on Optuna's ask/tell interface: a batch of trials asked, run at once on the worker pool, told in
trial-number order. Each trial is asked with a sampler seeded from (seed, its index), so a study's trials depend
only on the seed, the sampler, the data, the trial count and the batch size, and a study resumed after an
interruption asks the same trials an uninterrupted one would (the interrupted batch is re-run with its params).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, NSGAIISampler, RandomSampler, TPESampler
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from jesse_mcp.backtesting.plans import BacktestError, Progress, RunPlan
from jesse_mcp.backtesting.service import BacktestService
from jesse_mcp.optimization.models import OBJECTIVES
from jesse_mcp.optimization.trials import Judge, Outcome, Window, failed, invalid, resolved, spec_for
from shared.errors import TradingMcpError

optuna.logging.set_verbosity(optuna.logging.WARNING)  # Optuna logs every trial at INFO; progress says it instead
log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"  # user attr of a trial that was running when its server stopped; re-run on resume
INVALID = "invalid"  # user attr of a proposal the strategy refuses (e.g. fast_period >= slow_period): not a trial
MAX_INVALID_PER_TRIAL = 20  # proposals refused in a row before the study stops: the space is mostly invalid


def storage_at(home: Path) -> RDBStorage:
    folder = home / "optimization"
    folder.mkdir(parents=True, exist_ok=True)
    return RDBStorage(f"sqlite:///{folder / 'studies.db'}")


def _constraints(trial: FrozenTrial) -> list[float]:
    return list(trial.user_attrs.get("constraints", [0.0]))


def make_sampler(kind: str, seed: int) -> BaseSampler:
    with warnings.catch_warnings():  # constraints_func is marked experimental in Optuna 4.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if kind == "random":
            return RandomSampler(seed=seed)
        if kind == "nsga2":
            return NSGAIISampler(seed=seed, constraints_func=_constraints)
        return TPESampler(seed=seed, constraints_func=_constraints)


def trial_seed(seed: int, index: int) -> int:
    return (seed * 1_000_003 + index * 7_919) % (2**32)


@dataclass(frozen=True)
class Fold:
    """One optimization: trials on `in_sample` windows (one per market), the choice then run on `out_of_sample`."""

    index: int
    in_sample: list[Window]
    out_of_sample: list[Window]


@dataclass
class Setup:
    """Everything a study needs, planned and checked before any trial runs."""

    id: str
    plans: list[RunPlan]
    markets: list[str]
    space: dict[str, BaseDistribution]
    folds: list[Fold]
    judge: Judge
    sampler: str
    seed: int
    trials: int  # per fold
    budget_s: float | None  # per fold
    batch_size: int

    def study_name(self, fold: int) -> str:
        return f"{self.id}:fold{fold}"

    @property
    def balance(self) -> float:
        return self.plans[0].request.starting_balance

    @property
    def directions(self) -> list[str]:
        return [OBJECTIVES[o][1] for o in self.judge.objectives]


def open_study(storage: RDBStorage, setup: Setup, fold: int, seed: int) -> optuna.Study:
    return optuna.create_study(
        storage=storage,
        study_name=setup.study_name(fold),
        directions=setup.directions,
        sampler=make_sampler(setup.sampler, seed),
        load_if_exists=True,
    )


def kept(study: optuna.Study) -> list[FrozenTrial]:
    """The study's trials without the interrupted ones (which were run again) and the invalid proposals."""
    return [
        t
        for t in study.get_trials(deepcopy=False)
        if not t.user_attrs.get(INTERRUPTED) and not t.user_attrs.get(INVALID)
    ]


def skipped_invalid(study: optuna.Study) -> int:
    return len([t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(INVALID)])


def _asks(study: optuna.Study) -> int:
    """Proposals made so far, invalid ones included (not the interrupted or queued ones): each new ask is seeded from
    this count, so an invalid proposal is followed by a different one, and a resumed study asks as an uninterrupted
    one would."""
    return len(
        [
            t
            for t in study.get_trials(deepcopy=False)
            if not t.user_attrs.get(INTERRUPTED) and t.state != TrialState.WAITING
        ]
    )


def _ask_valid(storage: RDBStorage, setup: Setup, fold: Fold, study: optuna.Study) -> optuna.Trial:
    """The next proposal the strategy accepts; refused ones are told as failed and marked, costing no backtest."""
    for _ in range(MAX_INVALID_PER_TRIAL):
        asker = open_study(storage, setup, fold.index, trial_seed(setup.seed, _asks(study)))
        trial = asker.ask(setup.space)
        why = invalid(trial.params, setup.plans)
        if why is None:
            return trial
        trial.set_user_attr(INVALID, why)
        study.tell(trial.number, state=TrialState.FAIL)
    raise BacktestError(
        f"{MAX_INVALID_PER_TRIAL} proposals in a row were hyperparameters the strategy refuses (the last: {why}); "
        "narrow the search space (space) so that most combinations are valid."
    )


def recover(storage: RDBStorage, study: optuna.Study) -> int:
    """Trials left RUNNING by a server that stopped: failed and marked, and their params queued to run again in
    the same order. Returns how many."""
    stale = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for t in sorted(stale, key=lambda t: t.number):
        storage.set_trial_user_attr(t._trial_id, INTERRUPTED, True)
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    for t in sorted(stale, key=lambda t: t.number):
        study.enqueue_trial(t.params, skip_if_exists=False)
    return len(stale)


class Runs:
    """Runs a batch of trials (each on every market) at once, at most one run per worker."""

    def __init__(self, service: BacktestService, setup: Setup, fold: Fold):
        self.service, self.setup, self.fold = service, setup, fold

    async def batch(self, batch: list[optuna.Trial]) -> list[Outcome]:
        setup, fold = self.setup, self.fold
        outs: dict[tuple[int, int], dict[str, Any]] = {}
        errors: dict[int, str] = {}
        calls: list[Callable[[], Awaitable[None]]] = []
        for i, trial in enumerate(batch):
            why = invalid(trial.params, setup.plans)
            if why:
                errors[i] = why
                continue
            for m, plan in enumerate(setup.plans):
                hp = resolved(plan, trial.params)
                label = f"trial {trial.number} {setup.markets[m]}"
                calls.append(self._call(i, m, spec_for(plan, fold.in_sample[m], hp, label), outs, errors))
        await self.service.run_all(calls)
        result = []
        for i in range(len(batch)):
            if i in errors:
                result.append(failed(errors[i]))
            else:
                runs = [outs[(i, m)] for m in range(len(setup.plans))]
                result.append(setup.judge.outcome(setup.markets, runs, fold.in_sample, setup.balance))
        return result

    def _call(self, i: int, m: int, spec: dict[str, Any], outs: dict, errors: dict[int, str]):
        async def go() -> None:
            if i in errors:
                return  # another market of this trial failed already
            try:
                outs[(i, m)] = await self.service.execute(spec)
            except TradingMcpError as e:  # this trial failed (timeout, worker error); the batch goes on
                errors[i] = f"{self.setup.markets[m]}: {e}"

        return go


def tell(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> None:
    attrs: dict[str, Any] = {
        "feasible": outcome.feasible,
        "reasons": outcome.reasons,
        "constraints": outcome.constraints(),
        "daily_sharpe": outcome.daily_sharpe,
        "returns": [round(r, 10) for r in outcome.returns],
    }
    if outcome.figures is not None:
        attrs["figures"] = outcome.figures.model_dump()
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    if outcome.failed:  # told by number: the trial was asked through another Study object on the same storage
        study.tell(trial.number, state=TrialState.FAIL)
    else:
        study.tell(trial.number, outcome.values)


def _message(trial: optuna.Trial, outcome: Outcome, objectives: tuple[str, ...], done: int, total: int) -> str:
    head = f"trial {done}/{total} (#{trial.number})"
    if outcome.failed:
        return f"{head} failed: {'; '.join(outcome.reasons)}"
    vals = ", ".join(f"{o} {v:.4g}" for o, v in zip(objectives, outcome.values or [], strict=True))
    return f"{head}: {vals}" + ("" if outcome.feasible else f" (infeasible: {'; '.join(outcome.reasons)})")


@dataclass
class Ticker:
    """Progress over every fold: one notification per told trial."""

    total: int
    report: Progress | None
    done: int = 0

    async def told(self, trial: optuna.Trial, outcome: Outcome, objectives: tuple[str, ...]) -> None:
        self.done += 1
        if self.report is not None:
            await self.report(self.done, self.total, _message(trial, outcome, objectives, self.done, self.total))


async def optimize_fold(
    service: BacktestService, storage: RDBStorage, setup: Setup, fold: Fold, ticker: Ticker
) -> optuna.Study:
    """Run one fold's trials to its count (or its time budget), resuming what a stopped server left."""
    started = time.monotonic()
    study = open_study(storage, setup, fold.index, setup.seed)
    recover(storage, study)
    ticker.done += len([t for t in kept(study) if t.state.is_finished()])
    runs = Runs(service, setup, fold)
    while True:
        index = len([t for t in kept(study) if t.state != TrialState.WAITING])  # queued re-runs are asked first
        left = setup.trials - index
        if left <= 0 or (setup.budget_s is not None and time.monotonic() - started >= setup.budget_s):
            return study
        batch = [_ask_valid(storage, setup, fold, study) for _ in range(min(setup.batch_size, left))]
        outcomes = await runs.batch(batch)
        for trial, outcome in sorted(zip(batch, outcomes, strict=True), key=lambda p: p[0].number):
            tell(study, trial, outcome)
            await ticker.told(trial, outcome, setup.judge.objectives)

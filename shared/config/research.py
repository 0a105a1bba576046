"""The research sections of the configuration: backtests (workers, time limits, the Ray cluster) and optimization
limits. Part of TradingConfig (shared.config.models)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from shared.config.directions import knob

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=True)


class BacktestConfig(BaseModel):
    model_config = _STRICT
    workers: int = knob(
        3,
        "neutral",
        "Jesse worker processes (each imports Jesse once); 3 lets compare_risk_profiles run its three profiles at "
        "once.",
        why="how many backtests run at once (memory and speed, not risk)",
        ge=1,
        le=64,
    )
    timeout_s: float = knob(
        600, "neutral", "Longest single backtest run.", why="a research run's time limit", gt=0, le=86_400
    )
    max_batch_runs: int = knob(
        48,
        "higher",
        "Most backtests one backtest_batch call may run (strategies x markets x timeframes x profiles).",
        ge=1,
        le=1000,
    )
    max_portfolio_markets: int = knob(
        8,
        "neutral",
        "Most markets one portfolio backtest may hold in one account (traded and data-only markets together).",
        why="how much one run computes (memory and speed); the portfolio limits bound the risk",
        ge=2,
        le=50,
    )
    ray_address: str | None = knob(
        None,
        "change",
        "Run backtests on this Ray cluster (a Ray Client address, ray://<head>:10001) instead of local worker "
        "processes; the RAY_ADDRESS environment variable wins. Read at server start. See docs/cluster.md.",
        max_length=300,
    )
    ray_actors: int = knob(
        4,
        "neutral",
        "Jesse actors (one CPU each, each imports Jesse once) the server starts on the Ray cluster, when one is set.",
        why="how many backtests run at once on the cluster (its load, not risk)",
        ge=1,
        le=256,
    )


class OptimizeConfig(BaseModel):
    model_config = _STRICT
    max_trials: int = knob(
        200,
        "higher",
        "Most trials one optimize_strategy study may run (all walk-forward folds together); more trials make a "
        "lucky winner likelier.",
        ge=1,
        le=10_000,
    )
    max_budget_s: float = knob(
        3600, "higher", "Longest time budget (budget_s) one optimize_strategy study may ask for.", gt=0, le=86_400
    )
    max_concurrent_studies: int = knob(
        2,
        "higher",
        "Most optimize_strategy studies running at once in one server (waited for or in the background).",
        ge=1,
        le=16,
    )

"""Which pool runs backtests: local worker processes (the default), or Ray actors when a cluster is configured."""

from __future__ import annotations

import os
from pathlib import Path

from jesse_mcp.backtesting.ray_pool import RayPool  # imports Ray only when it connects
from jesse_mcp.backtesting.workers import DEFAULT_WARMUP, WorkerPool
from shared.config.models import BacktestConfig

RAY_ADDRESS_ENV = "RAY_ADDRESS"


def ray_address(cfg: BacktestConfig, environ: dict[str, str] | None = None) -> str | None:
    """The cluster to use: RAY_ADDRESS wins over backtest_config.ray_address; None runs locally."""
    env = (os.environ if environ is None else environ).get(RAY_ADDRESS_ENV, "").strip()
    return env or cfg.ray_address or None


def make_pool(
    cfg: BacktestConfig,
    warmup: tuple[str, ...] = DEFAULT_WARMUP,
    workdir: Path | None = None,
    environ: dict[str, str] | None = None,
) -> WorkerPool | RayPool:
    """The pool for this configuration. Ray is imported only when a cluster is configured, and only when the pool
    first connects (never at server start)."""
    address = ray_address(cfg, environ)
    if address is None:
        return WorkerPool(cfg.workers, warmup, workdir=workdir)
    return RayPool(address, cfg.ray_actors, warmup)

"""Which pool runs backtests: local worker processes (the default), or Ray actors when a cluster is configured."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from jesse_mcp.backtesting import zygote as zygotes
from jesse_mcp.backtesting.workers import DEFAULT_WARMUP, WorkerPool, chosen_start_method
from shared.config.models import BacktestConfig

if TYPE_CHECKING:
    from jesse_mcp.backtesting.ray_pool import RayPool

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
    from jesse_mcp.backtesting.ray_pool import RayPool  # imports Ray itself only when it connects

    zygotes.discard_early()
    return RayPool(address, cfg.ray_actors, warmup)


def start_zygote_early(workdir: Path) -> None:
    """The server's command calls this before importing the server: with local workers forked from a zygote (the
    default), the zygote's import of Jesse (about 6 s) runs while the server imports itself (about 2 s), and the
    pool adopts it (make_pool discards it when the configuration names a Ray cluster)."""
    if chosen_start_method(None) == "fork" and not os.environ.get(RAY_ADDRESS_ENV, "").strip():
        zygotes.start_early(DEFAULT_WARMUP, str(workdir))

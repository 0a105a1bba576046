"""Configuration reads and guarded updates for jesse_mcp. Plain Python: the confirmation step is injected."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, Field

from shared.config import stage_history
from shared.config.changes import (
    apply_changes,
    keyed,
    leaf_changes,
    loosenings,
    shadowed_changes,
    stage_moves,
)
from shared.config.file import validate_config_data
from shared.config.models import TradingConfig
from shared.config.resolve import effective_stage
from shared.config.store import ConfigStore
from shared.errors import ConfigError, PolicyDenied
from shared.redact import redact, redact_text
from shared.state import trading_state
from shared.state.store import Store

ENV_VARS = (
    "TRADING_MCP_HOME",
    "TRADING_MCP_CONFIG",
    "ZHIPUAI_API_KEY",
    "ZHIPUAI_BASE_URL",
    "ZHIPUAI_MODEL",
    "CRYPTOPANIC_API_KEY",
    "TRADING_MCP_TOKEN",
    "TRADING_MCP_ALLOWED_HOSTS",
    "TRADING_MCP_ALLOWED_ORIGINS",
    "BINANCE_BASE_URL",
    "COINBASE_BASE_URL",
    "KRAKEN_BASE_URL",
    "COINGECKO_BASE_URL",
    "YAHOO_BASE_URL",
    "RAY_ADDRESS",
)
SECRET_VARS = {"ZHIPUAI_API_KEY", "CRYPTOPANIC_API_KEY", "TRADING_MCP_TOKEN"}


class ConfigView(BaseModel):
    path: str = Field(description="The configuration file.")
    config: dict[str, Any] = Field(description="The whole configuration; secrets never live here.")
    environment: dict[str, str] = Field(description="Relevant environment variables; secrets only as set/not set.")
    notes: list[str] = Field(
        default_factory=list,
        description="How the file was read: older key names migrated in memory (the file changes on the next save).",
    )


class ChangeRecord(BaseModel):
    path: str
    old: Any
    new: Any


class ConfigUpdateResult(BaseModel):
    applied: list[ChangeRecord] = Field(description="Every field that changed, old and new value.")
    loosened: list[str] = Field(
        description="Looser risk or portfolio limits, and other changes needing approval (server address, news "
        "source addresses, re-enabled strategies); all of them needed the person's confirmation."
    )
    confirmation: str = Field(description="'not needed' or how the person confirmed.")
    demotions: list[ChangeRecord] = Field(description="Stage demotions, also written to the stage history.")
    notes: list[str] = Field(
        default_factory=list, description="Changes that were written but alter no effective setting, and why."
    )


class StrategyStage(BaseModel):
    name: str
    stage: str
    effective_stage: str
    enabled: bool
    risk_profile: str


class StageView(BaseModel):
    global_stage: str
    strategies: list[StrategyStage]
    history: list[dict[str, Any]] = Field(description="Recent stage changes, newest first, with reasons.")


def config_view(config: ConfigStore) -> ConfigView:
    cfg = config.load()
    env = {}
    for name in ENV_VARS:
        value = os.environ.get(name)
        if name in SECRET_VARS:
            env[name] = "set" if value else "not set"
        else:
            env[name] = redact_text(value) if value else "not set"
    return ConfigView(
        path=str(config.path), config=redact(cfg.model_dump(mode="json")), environment=env, notes=list(config.notes)
    )


def stage_view(cfg: TradingConfig, store: Store, strategy: str | None) -> StageView:
    names = [strategy] if strategy else sorted(cfg.strategies)
    if strategy and strategy not in cfg.strategies:
        raise ConfigError(f"Unknown strategy '{strategy}'. Configured: {', '.join(sorted(cfg.strategies))}.")
    rows = [
        StrategyStage(
            name=n,
            stage=cfg.strategies[n].stage,
            effective_stage=effective_stage(cfg, n),
            enabled=cfg.strategies[n].enabled,
            risk_profile=cfg.strategies[n].risk_profile,
        )
        for n in names
    ]
    return StageView(
        global_stage=cfg.stage,
        strategies=rows,
        history=[c.as_dict() for c in stage_history.history(store, strategy, limit=20)],
    )


Confirm = Callable[[str, str], Awaitable[str]]


def write_stage(
    config: ConfigStore,
    store: Store,
    write: Callable[[dict[str, Any]], dict[str, Any]],
    changes: list[tuple[str | None, str, str, str]],
) -> TradingConfig:
    """Write a stage change to the configuration file and its history rows to the store as one unit: the rows are
    inserted in an open transaction, the file is replaced, then the transaction commits. A failed file write leaves
    no row; only a crash in the instant between the file's rename and the COMMIT could leave a change without one."""
    with store.transaction() as db:
        for strategy, before, after, why in changes:
            stage_history.record_in(db, strategy, before, after, why)
        _, new = config.update(write)
    return new


def _refuse_stage_raises(raises: list[Any]) -> None:
    if raises:
        moved = "; ".join(f"{c.path} {c.old} -> {c.new}" for c in raises)
        raise PolicyDenied(
            "promotion_needs_evidence",
            f"update_config never raises a stage ({moved}).",
            "promotion goes through the evidence-gated request_stage_promotion tool (recorded backtest, stress-test "
            "and paper evidence; get_promotion_gates shows what is missing).",
        )


def _refuse_loosening_while_halted(store: Store, loosened: list[str]) -> None:
    if loosened and not trading_state.read(store).active:
        raise PolicyDenied(
            "trading_halted",
            "trading is halted; while halted the configuration may only be tightened or stages demoted, and this "
            "change loosens: " + "; ".join(loosened) + ".",
            "tighten or demote only, or reset the halt first (with a person's confirmation).",
        )


async def update_config(
    config: ConfigStore, store: Store, changes: dict[str, Any], reason: str, confirm: Confirm
) -> ConfigUpdateResult:
    """Validate the change, refuse stage raises, ask `confirm` for any loosening, then write atomically."""
    old = config.load()
    seen = old.model_dump(mode="json")
    new = validate_config_data(apply_changes(seen, changes), "configuration change")
    raises, demotions = stage_moves(old, new)
    _refuse_stage_raises(raises)
    loosened = loosenings(old, new)
    confirmation = "not needed"
    _refuse_loosening_while_halted(store, loosened)
    if loosened:
        question = (
            "Apply these changes that loosen risk or need your approval? "
            + "; ".join(loosened)
            + f". Reason given: {reason or 'none'}. "
            "Confirm only if you, the person, want this."
        )
        confirmation = await confirm("loosening_needs_confirmation", question)

    def write(current: dict[str, Any]) -> dict[str, Any]:
        if loosened and not trading_state.read(store).active:
            raise PolicyDenied(
                "trading_halted",
                "trading was halted while this change waited for confirmation.",
                "tighten or demote only, or reset the halt first.",
            )
        if current != seen:
            raise ConfigError(
                "The configuration changed while this update waited for confirmation; nothing "
                "was written. Read it again (get_config) and repeat the update."
            )
        return new.model_dump(mode="json")

    history = [
        (
            change.path.split(".")[1] if change.path.startswith("strategies.") else None,
            change.old,
            change.new,
            f"demoted via update_config: {reason or '-'}",
        )
        for change in demotions
    ]
    write_stage(config, store, write, history)
    applied = leaf_changes(keyed(seen), keyed(new.model_dump(mode="json")))
    return ConfigUpdateResult(
        applied=[ChangeRecord(path=c.path, old=c.old, new=c.new) for c in applied],
        loosened=loosened,
        confirmation=confirmation,
        demotions=[ChangeRecord(path=c.path, old=c.old, new=c.new) for c in demotions],
        notes=shadowed_changes(old, new, [c.path for c in applied]),
    )

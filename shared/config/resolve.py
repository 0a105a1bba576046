"""Effective settings for a strategy: global -> profile -> strategy overrides -> per-call (tighten-only outside
backtests), and the effective stage (the lower of the global and the strategy's own)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from shared.config.file import problems_from
from shared.config.models import (
    STAGE_RANK,
    STAGES,
    RiskSettings,
    Stage,
    TradingConfig,
)
from shared.config.profiles import PROFILE_RANK, PROFILE_TEMPLATES, ProfileName, is_looser
from shared.config.risk_fields import RISK_FIELD_NAMES, RISK_LOOSER_DIRECTION
from shared.errors import InvalidArgumentsError, PolicyDenied

Mode = Literal["backtest", "paper", "live"]


class EffectiveRisk(BaseModel):
    strategy: str | None = Field(description="Strategy name, or None for the global settings.")
    configured: bool = Field(description="False when the strategy is not in the configuration.")
    risk_profile: ProfileName
    settings: RiskSettings
    sources: dict[str, str] = Field(
        description="Which layer set each field: global, profile:<name>, override, per-call."
    )


def effective_stage(cfg: TradingConfig, strategy: str | None) -> Stage:
    """The lower of the global stage and the strategy's stage; unconfigured strategies are at exploration."""
    if strategy is None:
        return cfg.stage
    own = cfg.strategies[strategy].stage if strategy in cfg.strategies else "exploration"
    return STAGES[min(STAGE_RANK[cfg.stage], STAGE_RANK[own])]


def _layers(cfg: TradingConfig, strategy: str | None, profile: str) -> tuple[dict[str, float], dict[str, str]]:
    values: dict[str, float] = cfg.global_risk_settings.model_dump()
    sources = dict.fromkeys(values, "global")
    for field, value in PROFILE_TEMPLATES[profile].items():
        values[field], sources[field] = value, f"profile:{profile}"
    if strategy is not None and strategy in cfg.strategies:
        for field, value in cfg.strategies[strategy].risk_overrides.model_dump(exclude_none=True).items():
            values[field], sources[field] = value, "override"
    return values, sources


def resolve_risk(
    cfg: TradingConfig,
    strategy: str | None = None,
    *,
    risk_profile: ProfileName | None = None,
    per_call: dict[str, Any] | None = None,
    mode: Mode = "paper",
) -> EffectiveRisk:
    """Resolve the effective risk settings.

    `risk_profile` and `per_call` are what a tool caller asked for. In a backtest anything goes (it is hypothetical);
    in paper or live, a request that loosens any field beyond the configured effective value raises PolicyDenied.
    """
    own = cfg.strategies.get(strategy) if strategy is not None else None
    configured = own is not None
    base_profile = own.risk_profile if own is not None else cfg.global_risk_profile
    base_values, base_sources = _layers(cfg, strategy, base_profile)
    profile = risk_profile or base_profile
    values, sources = _layers(cfg, strategy, profile) if profile != base_profile else (base_values, base_sources)
    values, sources = dict(values), dict(sources)
    for field, value in (per_call or {}).items():
        if field not in RISK_FIELD_NAMES:
            raise InvalidArgumentsError(f"Unknown risk field {field!r}; known: {', '.join(RISK_FIELD_NAMES)}.")
        if value is not None:
            values[field], sources[field] = value, "per-call"
    try:
        settings = RiskSettings.model_validate(values, strict=True)
    except ValidationError as e:
        bad = "; ".join(str(p) for p in problems_from(e, RiskSettings))
        raise InvalidArgumentsError(f"Invalid risk settings: {bad}.") from None
    if mode != "backtest":
        configured_risk = _ProfiledValues(base_profile, base_values)
        _refuse_loosening(strategy, configured_risk, _ProfiledValues(profile, settings.model_dump()), mode)
    return EffectiveRisk(
        strategy=strategy, configured=configured, risk_profile=profile, settings=settings, sources=sources
    )


@dataclass(frozen=True, slots=True)
class _ProfiledValues:
    """A risk profile and the risk values it resolves to (the configured ones, or what a call asked for)."""

    profile: str
    values: dict[str, float]


def _refuse_loosening(strategy: str | None, configured: _ProfiledValues, asked: _ProfiledValues, mode: Mode) -> None:
    base, wanted = configured.values, asked.values
    looser = [
        f"{field} {wanted[field]:g} (configured {base[field]:g})"
        for field in RISK_FIELD_NAMES
        if is_looser(RISK_LOOSER_DIRECTION[field], base[field], wanted[field])
    ]
    if PROFILE_RANK[asked.profile] > PROFILE_RANK[configured.profile]:
        looser.insert(0, f"risk_profile {asked.profile} (configured {configured.profile})")
    if looser:
        who = f"strategy '{strategy}'" if strategy else "the global settings"
        raise PolicyDenied(
            rule="tighten_only_outside_backtests",
            reason=f"In {mode} mode a call may only tighten the risk of {who}; it asked to loosen: "
            + "; ".join(looser)
            + ".",
            remedy="Use values at or inside the configured limits, run it as a backtest (any profile is allowed "
            "there), or change the configuration with update_config, which asks a person to confirm loosening.",
        )

"""Read models of the policy and the journal, shared by the three servers. Plain Python: no `mcp` import."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from shared.config.models import TradingConfig
from shared.config.resolve import effective_stage, resolve_risk
from shared.policy.checks import CAPABILITIES
from shared.policy.guard import CallRecord, decide
from shared.state import trading_state
from shared.state.journal import JournalRow
from shared.state.store import Store

Decision = Literal["allow", "deny", "invalid", "system"]


class PolicyView(BaseModel):
    strategy: str | None = Field(description="The strategy asked about, or None for the global policy.")
    configured: bool = Field(description="Whether the strategy is in the configuration.")
    global_stage: str
    strategy_stage: str | None = Field(description="The strategy's own stage (None for the global view).")
    effective_stage: str = Field(description="The lower of global and strategy stage: this one counts.")
    enabled: bool
    trading_state: str = Field(description="ACTIVE or HALTED.")
    trading_state_reason: str
    trading_state_since: str
    risk_profile: str
    risk_settings: dict[str, float] = Field(description="Effective risk settings, fractions (0.02 = 2 %).")
    risk_sources: dict[str, str] = Field(description="Layer that set each risk field.")
    portfolio_limits: dict[str, int | float]
    allowed_capabilities: list[str] = Field(description="Capabilities a call for this strategy would get now.")
    configured_strategies: list[str]


def policy_view(cfg: TradingConfig, store: Store, strategy: str | None) -> PolicyView:
    risk = resolve_risk(cfg, strategy, mode="backtest")
    state = trading_state.read(store)
    allowed: list[str] = [
        cap for cap in CAPABILITIES if decide(CallRecord("policy", "probe", cap, strategy), cfg, state.state).allowed
    ]
    own = cfg.strategies.get(strategy) if strategy is not None else None
    return PolicyView(
        strategy=strategy,
        configured=risk.configured,
        global_stage=cfg.stage,
        strategy_stage=(own.stage if own else ("exploration" if strategy else None)),
        effective_stage=effective_stage(cfg, strategy),
        enabled=own.enabled if own else True,
        trading_state=state.state,
        trading_state_reason=state.reason,
        trading_state_since=state.since,
        risk_profile=risk.risk_profile,
        risk_settings=risk.settings.model_dump(),
        risk_sources=risk.sources,
        portfolio_limits=cfg.portfolio_limits.model_dump(),
        allowed_capabilities=allowed,
        configured_strategies=sorted(cfg.strategies),
    )


class JournalPage(BaseModel):
    entries: list[JournalRow] = Field(description="Newest first.")
    count: int


def journal_page(
    store: Store,
    *,
    limit: int,
    tool: str | None,
    decision: Decision | None,
    since: datetime | None,
    server: str | None,
) -> JournalPage:
    since_ms = None
    if since is not None:
        aware = since if since.tzinfo else since.replace(tzinfo=UTC)
        since_ms = int(aware.timestamp() * 1000)
    rows = store.journal_query(limit=limit, tool=tool, decision=decision, since_ms=since_ms, server=server)
    return JournalPage(entries=rows, count=len(rows))

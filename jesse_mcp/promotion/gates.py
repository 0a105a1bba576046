"""Stage transitions. Promotion is gated by evidence read from the store (stored backtests, stress tests, the paper
ledger) and, for live trading and for the global stage, by a person's confirmation. No tool argument can satisfy a
gate. Demotion needs no evidence and works at any time, also while trading is halted.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from jesse_mcp.promotion.evidence import CurrentCode, Gate, gate, judge_backtests
from jesse_mcp.trading.paper import PaperService
from shared.config.models import STAGE_RANK, STAGES, TradingConfig
from shared.config.resolve import effective_stage, resolve_risk
from shared.config.store import ConfigStore
from shared.config.updates import write_stage
from shared.errors import ConfigError, ConfirmationRequired, PolicyDenied
from shared.state.store import Store

DAY_S = 86_400.0
Confirm = Callable[[str, str], Awaitable[str]]


class PromotionReport(BaseModel):
    strategy: str | None = Field(description="None: the global stage.")
    from_stage: str
    to_stage: str
    promoted: bool
    gates: list[Gate] = Field(description="Every gate, with the measured value and its threshold.")
    evidence: dict[str, str] = Field(description="Ids of the stored results the gates were measured on.")
    candidates_considered: int = Field(description="Stored backtests of the strategy that were examined.")
    confirmation: str = Field(description="'not needed', or how the person confirmed.")
    effective_stage: str | None = Field(None, description="The strategy's effective stage after the change.")
    notes: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class PromotionAsk:
    """A promotion asked for: of a strategy (None: the global stage) to `to_stage`, and why."""

    strategy: str | None
    to_stage: str
    reason: str = ""


@dataclass(frozen=True)
class PromotionDeps:
    """Where a promotion reads its evidence and writes the stage. `code_of` reads the strategy's current code and
    configured hyperparameters (again after the person answers, so a file edited meanwhile is judged as it is now)."""

    config: ConfigStore
    store: Store
    paper: PaperService
    now: Callable[[], float] = time.time
    code_of: Callable[[], Awaitable[CurrentCode | None]] | None = None

    async def code(self) -> CurrentCode | None:
        return await self.code_of() if self.code_of is not None else None


class StageChange(BaseModel):
    strategy: str | None
    from_stage: str
    to_stage: str
    effective_stage: str
    reason: str


_g = gate


def gates_text(gates: list[Gate]) -> str:
    return " ".join(f"[{'pass' if g.passed else 'FAIL'}] {g.name}: {g.detail} (needs {g.threshold})." for g in gates)


def _paper_gates(cfg: TradingConfig, paper: PaperService, strategy: str) -> tuple[list[Gate], dict[str, str]]:
    g = cfg.promotion
    perf = paper.performance(strategy)
    max_position_pct = resolve_risk(cfg, strategy, mode="paper").settings.max_position_size * 100
    min_pct = g.paper_min_position_share * max_position_pct
    size = perf.median_position_pct
    return [
        _g(
            "paper_days",
            perf.days >= g.paper_min_days,
            perf.days,
            f">= {g.paper_min_days:g} days since the first paper fill",
            f"first paper fill {perf.first_fill_at or 'never'}; {perf.days:.2f} days",
        ),
        _g(
            "paper_trades",
            perf.trades >= g.paper_min_trades,
            perf.trades,
            f">= {g.paper_min_trades} closed paper trades",
            f"{perf.trades} closed paper trades",
        ),
        _g(
            "paper_sharpe",
            perf.sharpe is not None and perf.sharpe > g.paper_min_sharpe,
            perf.sharpe,
            f"> {g.paper_min_sharpe:g}",
            f"Sharpe of daily paper equity {perf.sharpe:.2f}"
            if perf.sharpe is not None
            else "Sharpe of daily paper equity undefined (under 2 days)",
        ),
        _g(
            "paper_max_drawdown",
            perf.first_fill_at is not None and perf.max_drawdown < g.paper_max_drawdown,
            perf.max_drawdown,
            f"< {g.paper_max_drawdown * 100:g} %",
            f"largest paper drawdown {perf.max_drawdown * 100:.2f} %",
        ),
        _g(
            "paper_position_size",
            size is not None and size >= min_pct - 1e-9,
            size,
            f">= {min_pct:g} % of the starting balance (paper_min_position_share {g.paper_min_position_share:g} x "
            f"max_position_size {max_position_pct:g} %)",
            f"median position {size:.2f} % of the starting balance" if size is not None else "no paper position",
        ),
        _g(
            "paper_market_prices",
            perf.replay_fills == 0 and perf.first_fill_at is not None,
            perf.replay_fills,
            "every fill priced by live providers (none by replay of stored candles)",
            f"{perf.replay_fills} fill(s) priced by replay" if perf.replay_fills else "all fills at live prices",
        ),
    ], {"paper_track_record": f"{perf.trades} trades since {perf.first_fill_at or '-'}"}


def _target(cfg: TradingConfig, strategy: str | None, to_stage: str) -> str:
    if strategy is not None:
        if strategy not in cfg.strategies:
            raise ConfigError(
                f"Unknown strategy '{strategy}'. Configured: {', '.join(sorted(cfg.strategies)) or 'none'}; add it "
                "with update_config first."
            )
        if not cfg.strategies[strategy].enabled:
            raise PolicyDenied(
                "strategy_disabled",
                f"strategy '{strategy}' is disabled, so it cannot be promoted.",
                f"enable it first (update_config strategies.{strategy}.enabled = true, which a person confirms).",
            )
    current = cfg.strategies[strategy].stage if strategy else cfg.stage
    if to_stage not in STAGES or STAGE_RANK[to_stage] != STAGE_RANK[current] + 1:
        who = f"strategy '{strategy}'" if strategy else "the global stage"
        raise PolicyDenied(
            "promotion_one_step",
            f"{who} is at {current}; a promotion goes one stage up at a time (exploration -> paper -> live), so "
            f"{to_stage} is not a valid target.",
            f"ask for {STAGES[STAGE_RANK[current] + 1]}" if current != "live" else "it is already at the top stage.",
        )
    return current


def evaluate(
    cfg: TradingConfig,
    store: Store,
    paper: PaperService,
    ask: PromotionAsk,
    now_s: float,
    code: CurrentCode | None = None,
) -> PromotionReport:
    """Every gate of a promotion, measured on the store. Changes nothing. `code`: the strategy as it would trade
    now (needed for exploration -> paper; without it no backtest counts)."""
    strategy, to_stage = ask.strategy, ask.to_stage
    current = _target(cfg, strategy, to_stage)
    notes: list[str] = []
    considered = 0
    evidence: dict[str, str] = {}
    if strategy is None:
        affected = sorted(n for n, s in cfg.strategies.items() if STAGE_RANK[s.stage] >= STAGE_RANK[to_stage])
        gates = [
            _g(
                "person_confirmation",
                False,
                None,
                "the person confirms through MCP elicitation",
                "the global stage is a ceiling set by a person; raising it lets strategies already at "
                f"{to_stage} ({', '.join(affected) or 'none'}) act at that stage",
            )
        ]
    elif to_stage == "paper":
        judged = judge_backtests(cfg, store, strategy, code or CurrentCode(None, None, "not read"), now_s)
        gates, evidence, considered = judged.gates, judged.evidence, judged.considered
        notes.extend(judged.notes)
    else:
        gates, evidence = _paper_gates(cfg, paper, strategy)
        gates.append(
            _g(
                "person_confirmation",
                False,
                None,
                "the person confirms through MCP elicitation",
                "live trading is asked of the person once every other gate passes",
            )
        )
    if strategy is not None and STAGE_RANK[cfg.stage] < STAGE_RANK[to_stage]:
        notes.append(
            f"the global stage is {cfg.stage}: after this promotion '{strategy}' stays effectively at {cfg.stage} "
            f"until the global stage is raised too (request_stage_promotion without a strategy)."
        )
    return PromotionReport(
        strategy=strategy,
        from_stage=current,
        to_stage=to_stage,
        promoted=False,
        gates=gates,
        evidence=evidence,
        candidates_considered=considered,
        confirmation="not asked",
        notes=notes,
    )


async def request_promotion(deps: PromotionDeps, ask: PromotionAsk, confirm: Confirm) -> PromotionReport:
    """Promote on the evidence the gates measure, with the person's confirmation where a gate asks for it."""
    cfg = deps.config.load()
    if ask.strategy is not None and ask.to_stage == "live":
        await deps.paper.reconcile()  # the track record at today's prices, not at the monitor's last marks
    report = evaluate(cfg, deps.store, deps.paper, ask, deps.now(), await deps.code())
    evidence_gates = [g for g in report.gates if g.name != "person_confirmation"]
    failed = [g for g in evidence_gates if not g.passed]
    if failed:
        raise PolicyDenied(
            "promotion_gates",
            f"promotion of {_who(ask)} {report.from_stage} -> {ask.to_stage} refused: {len(failed)} of "
            f"{len(evidence_gates)} gates failed. " + gates_text(report.gates),
            "produce the missing evidence (stored backtests and stress tests for paper, a paper track record for "
            "live); tool arguments cannot stand in for it.",
        )
    confirmation = "not needed"
    if any(g.name == "person_confirmation" for g in report.gates):
        report, confirmation = await _confirmed(deps, ask, report, confirm)
    return _promote(deps, ask, report, confirmation)


def _who(ask: PromotionAsk) -> str:
    return f"'{ask.strategy}'" if ask.strategy else "the global stage"


async def _confirmed(
    deps: PromotionDeps, ask: PromotionAsk, report: PromotionReport, confirm: Confirm
) -> tuple[PromotionReport, str]:
    """Ask the person; then measure the gates again (time passed) and mark the confirmation gate passed."""
    evidence_gates = [g for g in report.gates if g.name != "person_confirmation"]
    asked = next(g for g in report.gates if g.name == "person_confirmation")
    question = (
        f"Promote {_who(ask)} from {report.from_stage} to {ask.to_stage}? "
        + (f"Evidence: {gates_text(evidence_gates)} " if evidence_gates else f"Note: {asked.detail}. ")
        + f"Reason given: {ask.reason or 'none'}. Confirm only if you, the person, want this."
    )
    try:
        confirmation = await confirm("promotion_needs_confirmation", question)
    except ConfirmationRequired as e:
        raise ConfirmationRequired(e.rule, f"{e.reason} Gates: {gates_text(report.gates)}", e.remedy) from None
    cfg = deps.config.load()
    report = evaluate(cfg, deps.store, deps.paper, ask, deps.now(), await deps.code())  # again: time passed
    if any(not g.passed for g in report.gates if g.name != "person_confirmation"):
        raise PolicyDenied(
            "promotion_gates",
            "the evidence changed while the person was asked; nothing was changed. " + gates_text(report.gates),
            "ask again.",
        )
    report.gates = [
        g if g.name != "person_confirmation" else g.model_copy(update={"passed": True, "value": True})
        for g in report.gates
    ]
    return report, confirmation


def _promote(deps: PromotionDeps, ask: PromotionAsk, report: PromotionReport, confirmation: str) -> PromotionReport:
    """Write the new stage, unless it changed since the gates were measured."""
    strategy, to_stage = ask.strategy, ask.to_stage

    def write(data: dict[str, Any]) -> dict[str, Any]:
        node = _node(data, strategy)
        if node.get("stage") != report.from_stage:
            raise ConfigError(
                f"the stage of {_who(ask)} changed while this promotion was checked (now {node.get('stage')}); "
                "nothing was written. Ask again."
            )
        node["stage"] = to_stage
        return data

    why = (
        f"promoted by request_stage_promotion; evidence {report.evidence or '-'}; {confirmation}; reason: "
        f"{ask.reason or '-'}"
    )
    new = write_stage(deps.config, deps.store, write, [(strategy, report.from_stage, to_stage, why)])
    return report.model_copy(
        update={
            "promoted": True,
            "confirmation": confirmation,
            "effective_stage": effective_stage(new, strategy) if strategy else new.stage,
        }
    )


def demote(config: ConfigStore, store: Store, strategy: str | None, to_stage: str | None, reason: str) -> StageChange:
    """Lower a stage at once, without evidence (also while halted)."""
    cfg = config.load()
    if strategy is not None and strategy not in cfg.strategies:
        raise ConfigError(f"Unknown strategy '{strategy}'. Configured: {', '.join(sorted(cfg.strategies)) or 'none'}.")
    current = cfg.strategies[strategy].stage if strategy else cfg.stage
    who = f"strategy '{strategy}'" if strategy else "the global stage"
    if current == "exploration":
        raise PolicyDenied(
            "already_lowest_stage",
            f"{who} is already at exploration, the lowest stage.",
            "nothing to demote.",
        )
    target = to_stage or STAGES[STAGE_RANK[current] - 1]
    if STAGE_RANK[target] >= STAGE_RANK[current]:
        raise PolicyDenied(
            "not_a_demotion",
            f"{who} is at {current}; {target} is not lower.",
            "use request_stage_promotion to go up (with evidence), or pick a lower stage.",
        )

    def write(data: dict[str, Any]) -> dict[str, Any]:
        node = _node(data, strategy)
        if node["stage"] != current:
            raise ConfigError(f"the stage of {who} changed meanwhile (now {node['stage']}); nothing was written.")
        node["stage"] = target
        return data

    why = f"demoted by demote_stage: {reason or '-'}"
    new = write_stage(config, store, write, [(strategy, current, target, why)])
    return StageChange(
        strategy=strategy,
        from_stage=current,
        to_stage=target,
        effective_stage=effective_stage(new, strategy) if strategy else new.stage,
        reason=why,
    )


def _node(data: dict[str, Any], strategy: str | None) -> dict[str, Any]:
    """The configuration node whose stage changes; a strategy removed from the file meanwhile is a clear error."""
    if strategy is None:
        return data
    node = data.get("strategies", {}).get(strategy)
    if node is None:
        raise ConfigError(f"strategy '{strategy}' was removed from the configuration meanwhile; nothing was written.")
    return node

"""Run plans: a backtest request checked against the strategy, the stored market and its range, then turned into
the plain spec a worker runs, and the worker's output turned into a typed result.

Planning is pure and strict: everything is checked here, in the server, with messages that list what is valid,
before any worker is used.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jesse_mcp.backtesting.catalog import (
    TIMEFRAME_MINUTES,
    TIMEFRAMES,
    StrategySpec,
    fingerprint,
)
from jesse_mcp.backtesting.markets import (
    BacktestError,
    common_range,
    gap_minutes_in,
    history_closes,
    pick_market,
    pick_markets,
    plan_range,
)
from jesse_mcp.backtesting.portfolio_report import PortfolioReport, report_of
from jesse_mcp.backtesting.results import (
    BacktestResult,
    DataProvenance,
    ProtectionLock,
    RunDrawdown,
    RunInfo,
    RunRequest,
    performance,
    risk_adherence,
)
from jesse_mcp.backtesting.tail_report import daily_returns, tail_risk_of
from jesse_mcp.candles import ops as candle_ops
from shared.config.models import TradingConfig
from shared.config.resolve import EffectiveRisk, resolve_risk
from shared.errors import InvalidArgumentsError
from shared.market.candles import MINUTE_MS, CandleStore, MarketInfo, iso
from shared.state.store import utc_now_iso

Progress = Callable[[float, float, str], Awaitable[None]]
ENGINE = "jesse 3.5.3 research.backtest"
DEFAULT_FEE = 0.001
DEFAULT_BALANCE = 10_000.0


# --- plans ----------------------------------------------------------------------------------------------------
@dataclass
class RunPlan:
    spec: dict[str, Any]  # what engine.run_backtest receives
    request: RunRequest
    risk: EffectiveRisk
    market: MarketInfo
    strategy: StrategySpec
    notes: list[str] = field(default_factory=list)
    markets: list[MarketInfo] = field(default_factory=list)  # a portfolio's: traded, then data-only


def quote_of(symbol: str) -> str:
    return symbol.split("-", 1)[1] if "-" in symbol else "quote"


@dataclass(frozen=True)
class PlanRequest:
    """A backtest as asked for; None means the default (stored data, configured profile and hyperparameters)."""

    symbol: str | None = None
    exchange: str | None = None
    timeframe: str = "1h"
    start: candle_ops.When | None = None
    end: candle_ops.When | None = None
    days: int | None = None
    risk_profile: str | None = None
    hyperparameters: dict[str, Any] | None = None
    fee: float | None = None
    leverage: float | None = None
    starting_balance: float | None = None
    warmup_candles: int | None = None
    label: str = "backtest"
    markets: tuple[str, ...] | None = None  # a portfolio: these markets traded in one account (symbol is then None)
    data_markets: tuple[str, ...] | None = None  # a portfolio's markets whose candles only inform the strategy
    sizing: str = "risk"  # "cvar": positions also no larger than keeps the one-day CVaR within max_cvar


def build_plan(*, cfg: TradingConfig, candles: CandleStore, strategy: StrategySpec, req: PlanRequest) -> RunPlan:
    timeframe = req.timeframe
    if timeframe not in TIMEFRAME_MINUTES:
        raise BacktestError(f"Unknown timeframe {timeframe!r}; valid: {', '.join(TIMEFRAMES)}.")
    configured = cfg.strategies[strategy.name].custom_params if strategy.name in cfg.strategies else {}
    hp = strategy.resolve_hyperparameters({**configured, **(req.hyperparameters or {})})
    risk = resolve_risk(
        cfg, strategy.name if strategy.name in cfg.strategies else None, risk_profile=req.risk_profile, mode="backtest"
    )
    settings = risk.settings.model_dump()
    lev = _leverage(req.leverage, risk)
    warm = req.warmup_candles if req.warmup_candles is not None else strategy.warmup_candles(hp)
    traded, data, (lo, hi, notes) = _markets(cfg, candles, req, warm)
    market, tail_rules = traded[0], len(traded) > 1 or _sizing(req, strategy) == "cvar"
    request = RunRequest(
        strategy=strategy.name,
        exchange=market.exchange,
        symbol=market.symbol,
        timeframe=timeframe,
        start=iso(lo),
        end=iso(hi),
        start_ms=lo,
        end_ms=hi,
        risk_profile=risk.risk_profile,
        hyperparameters=hp,
        fee_rate=DEFAULT_FEE if req.fee is None else req.fee,
        leverage=lev,
        starting_balance=DEFAULT_BALANCE if req.starting_balance is None else req.starting_balance,
        quote_currency=quote_of(market.symbol),
        warmup_candles=warm,
        strategy_sha256=fingerprint(strategy),
        markets=[m.symbol for m in traded] if len(traded) > 1 else [],
        data_markets=[m.symbol for m in data],
        portfolio_rules=portfolio_rules(cfg) if tail_rules else None,
        sizing=_sizing(req, strategy),
    )
    if any(m.synthetic for m in [*traded, *data]):
        notes.insert(0, "SYNTHETIC DATA: these candles were generated, not recorded from a market.")
    if not strategy.risk_managed:
        notes.append(
            f"{strategy.name} sizes its own positions (it does not subclass RiskManagedStrategy): the risk profile "
            "is reported against, not enforced."
        )
    tf_ms = TIMEFRAME_MINUTES[timeframe] * MINUTE_MS
    spec = spec_of(candles.root, request, strategy, settings if strategy.risk_managed else None, req.label, tf_ms)
    return RunPlan(spec, request, risk, market, strategy, notes, [*traded, *data] if len(traded) > 1 else [])


def _markets(
    cfg: TradingConfig, candles: CandleStore, req: PlanRequest, warm: int
) -> tuple[list[MarketInfo], list[MarketInfo], tuple[int, int, list[str]]]:
    """The traded and data-only markets, and the range they share."""
    if req.markets is None:
        if req.data_markets:
            raise BacktestError("data_markets inform a portfolio backtest: pass them with markets (at least 2).")
        market = pick_market(candles, req.exchange, req.symbol)
        return [market], [], plan_range(market, req.timeframe, warm, req.start, req.end, req.days)
    if req.symbol is not None:
        raise BacktestError(
            f"Pass either symbol (one market) or markets (a portfolio), not both; to include {req.symbol} in the "
            "portfolio, list it in markets."
        )
    most = cfg.backtest_config.max_portfolio_markets
    traded, data = pick_markets(candles, req.exchange, list(req.markets), list(req.data_markets or ()), most)
    return traded, data, common_range([*traded, *data], req.timeframe, warm, req.start, req.end, req.days)


def _sizing(req: PlanRequest, strategy: StrategySpec) -> str:
    if req.sizing not in ("risk", "cvar"):
        raise BacktestError(f"Unknown sizing {req.sizing!r}; valid: risk, cvar.")
    if req.sizing == "cvar" and not strategy.risk_managed:
        raise BacktestError(
            f"sizing 'cvar' is a mode of RiskManagedStrategy; {strategy.name} sizes its own positions. Use sizing "
            "'risk', or subclass RiskManagedStrategy."
        )
    return req.sizing


def portfolio_rules(cfg: TradingConfig) -> dict[str, Any]:
    """What a portfolio backtest's entries meet: the paper account's limits and its return windows."""
    return {
        "limits": cfg.portfolio_limits.model_dump(),
        "correlation_days": cfg.paper.correlation_days,
        "cvar_days": cfg.paper.cvar_days,
    }


def _leverage(asked: float | None, risk: EffectiveRisk) -> float:
    """The asked leverage, at most the profile's max_leverage (its default)."""
    max_lev = risk.settings.model_dump()["max_leverage"]
    if asked is not None and asked > max_lev:
        raise InvalidArgumentsError(
            f"leverage {asked:g} is above the {risk.risk_profile} profile's max_leverage {max_lev:g}; use at most "
            f"{max_lev:g}, or the aggressive profile for more."
        )
    return float(asked if asked is not None else max_lev)


def spec_of(
    store_root: Path,
    request: RunRequest,
    strategy: StrategySpec,
    risk: dict[str, float] | None,
    label: str,
    tf_ms: int,
) -> dict[str, Any]:
    lev = request.leverage
    warmup_ms = request.warmup_candles * tf_ms
    portfolio = _portfolio_spec(store_root, request, request.start_ms - warmup_ms) if request.portfolio_rules else {}
    return {
        **portfolio,
        "store_root": str(store_root),
        "exchange": request.exchange,
        "symbol": request.symbol,
        "timeframe": request.timeframe,
        "start_ms": request.start_ms,
        "end_ms": request.end_ms,
        "warmup_candles": request.warmup_candles,
        "warmup_minutes": request.warmup_candles * tf_ms // MINUTE_MS,
        "strategy": {
            "name": strategy.name,
            "builtin": strategy.builtin,
            "module": strategy.module,
            "class_name": strategy.class_name,
            "path": strategy.path,
        },
        "hyperparameters": dict(request.hyperparameters),
        "risk": risk,
        "starting_balance": request.starting_balance,
        "fee": request.fee_rate,
        "leverage": int(lev) if float(lev).is_integer() else lev,
        "label": label,
        "fast_mode": True,  # Jesse's fast mode, normal mode's daily metrics rebuilt; False forces the normal mode
        "sizing": request.sizing,
    }


def window_spec(plan: RunPlan, lo: int, hi: int, hp: dict[str, float], label: str) -> dict[str, Any]:
    """The plan's spec over another range of it (a walk-forward or hold-out window, an optimizer trial); a
    portfolio's stored daily closes are read again up to the window's warm-up."""
    spec = {**plan.spec, "start_ms": lo, "end_ms": hi, "hyperparameters": hp, "label": label}
    if plan.request.portfolio_rules:
        before = lo - int(spec["warmup_minutes"]) * MINUTE_MS
        spec.update(_portfolio_spec(Path(spec["store_root"]), plan.request, before))
    return spec


def _portfolio_spec(store_root: Path, request: RunRequest, before: int) -> dict[str, Any]:
    """A portfolio's markets and entry rules (or a CVaR-sized run's return windows), with the stored daily closes
    before `before` (its warm-up)."""
    rules = dict(request.portfolio_rules or {})
    symbols = [*request.markets, *request.data_markets] or [request.symbol]
    days = max(rules["correlation_days"], rules["cvar_days"]) + 1
    rules["history"] = history_closes(CandleStore(store_root), request.exchange, symbols, before, days)
    if not request.markets:
        return {"portfolio": rules}
    return {"markets": list(request.markets), "data_markets": list(request.data_markets), "portfolio": rules}


def replan_of(candles: CandleStore, result: BacktestResult, strategy: StrategySpec, most: int, label: str) -> RunPlan:
    """The plan of a stored backtest, checked again against today's store: the same markets covering the same range
    the same way (else an error that says to run the backtest again)."""
    req = result.request
    if req.markets:
        traded, data = pick_markets(candles, req.exchange, list(req.markets), list(req.data_markets), most)
        markets = [*traded, *data]
    else:
        markets = [pick_market(candles, req.exchange, req.symbol)]
    start, end = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (req.start, req.end))
    lo, hi, _ = common_range(markets, req.timeframe, req.warmup_candles, start, end, None)
    if (lo, hi) != (req.start_ms, req.end_ms):
        where = "+".join(req.markets) if req.markets else req.symbol
        raise BacktestError(
            f"The candles of {req.exchange}:{where} no longer cover {req.start} .. {req.end} the same way; "
            "run the backtest again."
        )
    risk = EffectiveRisk(
        strategy=req.strategy,
        configured=False,
        risk_profile=req.risk_profile,
        settings=result.risk_settings,
        sources=result.risk_sources,
    )
    tf_ms = TIMEFRAME_MINUTES[req.timeframe] * MINUTE_MS
    settings = result.risk_settings if strategy.risk_managed else None
    return RunPlan(
        spec=spec_of(candles.root, req, strategy, settings, label, tf_ms),
        request=req,
        risk=risk,
        market=markets[0],
        strategy=strategy,
        notes=[n for n in result.notes if n.startswith(("SYNTHETIC", "Start moved", "End moved"))],
        markets=markets if req.markets else [],
    )


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def result_from(plan: RunPlan, out: dict[str, Any], result_id: str | None = None) -> BacktestResult:
    req, settings = plan.request, plan.risk.settings.model_dump()
    perf = performance(out["metrics"], out["trades"], req.start_ms, req.end_ms, req.starting_balance)
    drawdown = RunDrawdown(perf.max_drawdown_pct, out.get("intraday_drawdown_pct"), out.get("entries_halted_at"))
    adherence = risk_adherence(out["trades"], req.starting_balance, settings, plan.strategy.risk_managed, drawdown)
    locks = [
        ProtectionLock(
            rule=k["rule"], market=k["symbol"], start=iso(k["from_ms"]), end=iso(k["until_ms"]), reason=k["reason"]
        )
        for k in out.get("protection_locks") or []
    ]
    refused = dict(out.get("refused_by_lock") or {})
    adherence = adherence.model_copy(
        update={
            "protection_locks": locks,
            "entries_refused_by_protection": refused,
            "entries_sized_down_by_cvar": int(out.get("cvar_sized_entries") or 0),
        }
    )
    portfolio = None
    if out.get("portfolio"):
        span = req.end_ms - req.start_ms
        portfolio = report_of(out["portfolio"], out["trades"], out.get("equity") or [], req.starting_balance, span)
    synthetic = any(m.synthetic for m in plan.markets or [plan.market])
    return BacktestResult(
        id=result_id or new_id("bt"),
        created_at=utc_now_iso(),
        synthetic=synthetic,
        request=req,
        risk_settings=settings,
        risk_sources=plan.risk.sources,
        performance=perf,
        risk_adherence=adherence,
        data=_provenance(plan, synthetic),
        run=RunInfo(engine=ENGINE, fast_mode=bool(out.get("fast_mode")), duration_s=out["duration_s"]),
        tail_risk=tail_risk_of(daily_returns(out.get("equity") or []), settings["var_confidence"]),
        portfolio=portfolio,
        notes=_notes(plan, perf.trades, adherence, portfolio),
        jesse_metrics=out["metrics"],
    )


def _notes(plan: RunPlan, trades: int, adherence: Any, portfolio: PortfolioReport | None) -> list[str]:
    notes, settings = list(plan.notes), plan.risk.settings.model_dump()
    refused = adherence.entries_refused_by_protection
    if refused:
        counts = ", ".join(f"{n} by {rule}" for rule, n in sorted(refused.items()))
        notes.append(f"Protections refused entry signals ({counts}); see risk_adherence.protection_locks.")
    if portfolio is not None and portfolio.refused_entries:
        counts = ", ".join(f"{n} by {rule}" for rule, n in portfolio.refused_entries.items())
        notes.append(
            f"The portfolio's pre-trade checks (the paper account's) refused entry signals ({counts}); see "
            "portfolio.refused_entries and portfolio.limits."
        )
    if adherence.entries_sized_down_by_cvar:
        notes.append(
            f"Sizing 'cvar': {adherence.entries_sized_down_by_cvar} entries were made smaller (or skipped) to keep "
            f"the account's one-day CVaR within max_cvar {settings['max_cvar'] * 100:g} % of equity."
        )
    if trades == 0:
        notes.append(
            "No trades: the strategy's entry conditions never held in this range. Try a longer range, another "
            "timeframe, or other hyperparameters."
        )
    if adherence.entries_halted_at:
        notes.append(
            f"Entries stopped at {adherence.entries_halted_at}: drawdown reached the profile's max_drawdown "
            f"{settings['max_drawdown'] * 100:g} %."
        )
    return notes


def _provenance(plan: RunPlan, synthetic: bool) -> DataProvenance:
    req, markets = plan.request, plan.markets or [plan.market]
    warm_start = req.start_ms - plan.spec["warmup_minutes"] * MINUTE_MS
    return DataProvenance(
        exchange=req.exchange,
        symbol=req.symbol,
        timeframe=req.timeframe,
        start=req.start,
        end=req.end,
        candles_1m=(req.end_ms - req.start_ms) // MINUTE_MS,
        warmup_start=iso(warm_start),
        synthetic=synthetic,
        sources=list(dict.fromkeys(s for m in markets for s in m.sources)),
        gaps_in_range=0,
        filled_gaps_in_range=sum(gap_minutes_in(m.filled, warm_start, req.end_ms) for m in markets),
        markets=[m.symbol for m in plan.markets],
    )


def title_of(plan: RunPlan) -> str:
    r = plan.request
    tag = "  [SYNTHETIC DATA]" if any(m.synthetic for m in plan.markets or [plan.market]) else ""
    where = f"{r.exchange}:{'+'.join(r.markets) if r.markets else r.symbol}"
    return f"{r.strategy} {where} {r.timeframe} ({r.risk_profile}) {r.start[:10]} .. {r.end[:10]}{tag}"

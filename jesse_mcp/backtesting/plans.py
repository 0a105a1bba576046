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
from shared.errors import InvalidArgumentsError, TradingMcpError
from shared.market.candles import MINUTE_MS, CandleError, CandleStore, MarketInfo, iso
from shared.market.exchanges import store_key
from shared.state.store import utc_now_iso

Progress = Callable[[float, float, str], Awaitable[None]]
ENGINE = "jesse 3.5.3 research.backtest"
DEFAULT_FEE = 0.001
DEFAULT_BALANCE = 10_000.0


class BacktestError(TradingMcpError):
    """A backtest could not be planned or run."""


# --- plans ----------------------------------------------------------------------------------------------------
@dataclass
class RunPlan:
    spec: dict[str, Any]  # what engine.run_backtest receives
    request: RunRequest
    risk: EffectiveRisk
    market: MarketInfo
    strategy: StrategySpec
    notes: list[str] = field(default_factory=list)


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _overlapping(gaps: list[Any], start_ms: int, end_ms: int) -> list[Any]:
    return [g for g in gaps if _ms(g.first_missing) < end_ms and _ms(g.last_missing) >= start_ms]


def _gap_minutes_in(gaps: list[Any], start_ms: int, end_ms: int) -> int:
    total = 0
    for g in gaps:
        lo, hi = max(_ms(g.first_missing), start_ms), min(_ms(g.last_missing) + MINUTE_MS, end_ms)
        total += max(0, (hi - lo) // MINUTE_MS)
    return total


def pick_market(candles: CandleStore, exchange: str | None, symbol: str | None) -> MarketInfo:
    markets = candles.markets()
    if not markets:
        raise BacktestError(
            "No candles are stored yet. Import some with import_candles (e.g. symbol='BTC-USDT', days=90), "
            "import_candles_csv, or generate_synthetic_candles for an offline try."
        )
    stored = ", ".join(f"{m.exchange}:{m.symbol}" for m in markets)
    key = None if exchange is None else store_key(exchange, (m.exchange for m in markets))
    found = [
        m for m in markets if (key is None or m.exchange == key) and (symbol is None or m.symbol == symbol.upper())
    ]
    if not found:
        what = ":".join(x for x in (key, symbol and symbol.upper()) if x)
        raise BacktestError(
            f"No candles stored for {what}. Stored markets: {stored}. Import it with import_candles "
            f"(symbol='{(symbol or 'BTC-USDT').upper()}') or import_candles_csv, or pick a stored market."
        )
    if len(found) > 1:
        raise BacktestError(f"Several stored markets match; give exchange and symbol. Stored markets: {stored}.")
    market = found[0]
    if "-" not in market.symbol:
        raise BacktestError(
            f"Jesse needs symbols written BASE-QUOTE (e.g. BTC-USDT); {market.symbol} has no dash. Import the data "
            "again under a symbol like BTC-USDT."
        )
    return market


def plan_range(
    market: MarketInfo,
    timeframe: str,
    warmup_candles: int,
    start: candle_ops.When | None,
    end: candle_ops.When | None,
    days: int | None,
) -> tuple[int, int, list[str]]:
    """The traded range [start, end): whole candles of the timeframe, with room for warm-up before it."""
    if market.first is None or market.last is None:
        raise BacktestError(f"{market.exchange}:{market.symbol} has no candles stored.")
    first, last_end = _ms(market.first), _ms(market.last) + MINUTE_MS
    tf = TIMEFRAME_MINUTES[timeframe] * MINUTE_MS
    warm = warmup_candles * tf
    notes: list[str] = []
    stored = f"stored: {market.first} to {iso(last_end)}"
    if start is None and days is None:  # from the start of the data (after the warm-up) up to end, or all of it
        req_start, req_end = first + warm, (candle_ops.to_ms(end) if end is not None else last_end)
    else:
        try:
            req_start, req_end = candle_ops.resolve_range(
                start, end, days, now_ms=last_end if end is None and start is not None else None
            )
        except CandleError as e:
            raise BacktestError(str(e)) from None
        if days is not None and start is None and end is None:  # "the last N days" means of the stored data
            req_start, req_end = last_end - days * 1440 * MINUTE_MS, last_end
    lo = -(-max(req_start, first + warm) // tf) * tf  # first whole candle with warm-up before it
    hi = min(req_end, last_end) // tf * tf
    explicit = start is not None or end is not None or days is not None
    if explicit and (req_end <= first or req_start >= last_end):
        raise BacktestError(
            f"No {market.exchange}:{market.symbol} candles between {iso(req_start)} and {iso(req_end)} ({stored}). "
            f"Import that range with import_candles(symbol='{market.symbol}', start='{iso(req_start)[:10]}', "
            f"end='{iso(req_end)[:10]}') or import_candles_csv, or choose dates inside the stored range."
        )
    if hi - lo < 2 * tf:
        need_days = (warm + 2 * tf) / 86_400_000
        raise BacktestError(
            f"Not enough {market.exchange}:{market.symbol} data for a {timeframe} run with {warmup_candles} warm-up "
            f"candles: it needs about {need_days:.1f} days before the end of the range ({stored}). Import more data "
            "(import_candles with an earlier start), use a smaller timeframe, or pass a smaller warmup_candles."
        )
    if lo > req_start and (start is not None or days is not None):
        notes.append(
            f"Start moved from {iso(req_start)} to {iso(lo)}: {warmup_candles} warm-up candles of {timeframe} must "
            f"come before it and the data begins at {market.first}."
        )
    if hi < req_end and (end is not None or start is not None):
        notes.append(f"End moved from {iso(req_end)} to {iso(hi)}: the data ends at {iso(last_end)}.")
    gaps = _overlapping(market.gaps, lo - warm, hi)
    if gaps:
        shown = "; ".join(f"{g.first_missing} .. {g.last_missing} ({g.missing_minutes} min)" for g in gaps[:5])
        more = f" and {len(gaps) - 5} more" if len(gaps) > 5 else ""
        raise BacktestError(
            f"{market.exchange}:{market.symbol} has missing minutes inside the run (with warm-up): {shown}{more}. "
            "Jesse needs contiguous minutes. Choose a range without gaps, or fill them explicitly with "
            "fill_candle_gaps (flat candles at the previous close, recorded as filled)."
        )
    return lo, hi, notes


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
    market = pick_market(candles, req.exchange, req.symbol)
    lo, hi, notes = plan_range(market, timeframe, warm, req.start, req.end, req.days)
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
    )
    if market.synthetic:
        notes.insert(0, "SYNTHETIC DATA: these candles were generated, not recorded from a market.")
    if not strategy.risk_managed:
        notes.append(
            f"{strategy.name} sizes its own positions (it does not subclass RiskManagedStrategy): the risk profile "
            "is reported against, not enforced."
        )
    tf_ms = TIMEFRAME_MINUTES[timeframe] * MINUTE_MS
    spec = spec_of(candles.root, request, strategy, settings if strategy.risk_managed else None, req.label, tf_ms)
    return RunPlan(spec=spec, request=request, risk=risk, market=market, strategy=strategy, notes=notes)


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
    return {
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
    }


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
    adherence = adherence.model_copy(update={"protection_locks": locks, "entries_refused_by_protection": refused})
    notes = list(plan.notes)
    if refused:
        counts = ", ".join(f"{n} by {rule}" for rule, n in sorted(refused.items()))
        notes.append(f"Protections refused entry signals ({counts}); see risk_adherence.protection_locks.")
    if perf.trades == 0:
        notes.append(
            "No trades: the strategy's entry conditions never held in this range. Try a longer range, another "
            "timeframe, or other hyperparameters."
        )
    if adherence.entries_halted_at:
        notes.append(
            f"Entries stopped at {adherence.entries_halted_at}: drawdown reached the profile's max_drawdown "
            f"{settings['max_drawdown'] * 100:g} %."
        )
    warm_start = req.start_ms - plan.spec["warmup_minutes"] * MINUTE_MS
    return BacktestResult(
        id=result_id or new_id("bt"),
        created_at=utc_now_iso(),
        synthetic=plan.market.synthetic,
        request=req,
        risk_settings=settings,
        risk_sources=plan.risk.sources,
        performance=perf,
        risk_adherence=adherence,
        data=DataProvenance(
            exchange=req.exchange,
            symbol=req.symbol,
            timeframe=req.timeframe,
            start=req.start,
            end=req.end,
            candles_1m=(req.end_ms - req.start_ms) // MINUTE_MS,
            warmup_start=iso(warm_start),
            synthetic=plan.market.synthetic,
            sources=plan.market.sources,
            gaps_in_range=0,
            filled_gaps_in_range=_gap_minutes_in(plan.market.filled, warm_start, req.end_ms),
        ),
        run=RunInfo(engine=ENGINE, fast_mode=bool(out.get("fast_mode")), duration_s=out["duration_s"]),
        tail_risk=tail_risk_of(daily_returns(out.get("equity") or []), settings["var_confidence"]),
        notes=notes,
        jesse_metrics=out["metrics"],
    )


def title_of(plan: RunPlan) -> str:
    r = plan.request
    tag = "  [SYNTHETIC DATA]" if plan.market.synthetic else ""
    return f"{r.strategy} {r.exchange}:{r.symbol} {r.timeframe} ({r.risk_profile}) {r.start[:10]} .. {r.end[:10]}{tag}"

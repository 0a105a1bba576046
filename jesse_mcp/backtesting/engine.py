"""What runs inside a Jesse worker: load candles, build the strategy, call `jesse.research.backtest`, return plain data.

Everything here is called through `WorkerPool.run("jesse_mcp.backtesting.engine", <function>, spec)`: arguments and
results are plain picklable values. Candles are read from the store in the worker (memory-mapped), so they never cross
the pipe. Jesse is imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from jesse_mcp.backtesting import daily_equity
from jesse_mcp.backtesting.pictures import equity_png
from jesse_mcp.backtesting.results import intraday_drawdown_pct
from jesse_mcp.backtesting.strategy_loader import StrategyLoadError, describe_user_strategies, strategy_class
from jesse_mcp.backtesting.trade_rows import TRADE_FIELDS
from jesse_mcp.backtesting.workers import report_progress
from shared.market.candles import MINUTE_MS, CandleStore
from shared.market.exchanges import jesse_exchange

# Jesse is handed the data's exchange under Jesse's name (shared.market.exchanges; synthetic data: Binance Perpetual
# Futures) and always simulates futures (type "futures") at the fee and leverage asked for, also for spot data.
PROGRESS_EVERY_S = 0.5
log = logging.getLogger(__name__)
__all__ = ["StrategyLoadError", "describe_user_strategies", "strategy_class"]  # the pool calls them by this module


# --- one run --------------------------------------------------------------------------------------------------
def _clean(value: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def traded(spec: dict[str, Any]) -> list[str]:
    """The symbols the run trades, in route order: spec["markets"] for a portfolio, else spec["symbol"]."""
    return list(spec.get("markets") or [spec["symbol"]])


def informing(spec: dict[str, Any]) -> list[str]:
    """The symbols whose candles only inform the strategy (Jesse data routes)."""
    return list(spec.get("data_markets") or [])


Rows = daily_equity.Rows  # one market's 1-minute rows, or symbol -> rows for a portfolio (traded, then data)


def _by_symbol(spec: dict[str, Any], rows: Rows) -> dict[str, np.ndarray]:
    return rows if isinstance(rows, dict) else {spec["symbol"]: rows}


def jesse_inputs(spec: dict[str, Any], rows: Rows) -> dict[str, Any]:
    """The exact arguments for jesse.research.backtest (also used by tests for the golden comparison)."""
    warm_rows = int(spec["warmup_minutes"])
    venue = jesse_exchange(spec["exchange"])
    config = {
        "starting_balance": spec["starting_balance"],
        "fee": spec["fee"],
        "type": "futures",
        "futures_leverage": spec["leverage"],
        "futures_leverage_mode": "cross",
        "exchange": venue,
        "warm_up_candles": spec["warmup_candles"],
    }
    hp = dict(spec["hyperparameters"])
    if spec.get("risk") is not None:
        hp["_risk"] = dict(spec["risk"])
    by_symbol = _by_symbol(spec, rows)
    candles, warmup = {}, {}
    for symbol, r in by_symbol.items():
        candles[f"{venue}-{symbol}"] = {"exchange": venue, "symbol": symbol, "candles": r[warm_rows:]}
        warmup[f"{venue}-{symbol}"] = {"exchange": venue, "symbol": symbol, "candles": r[:warm_rows]}
    tf = spec["timeframe"]
    return {
        "config": config,
        "routes": [{"exchange": venue, "strategy": None, "symbol": s, "timeframe": tf} for s in traded(spec)],
        "data_routes": [{"exchange": venue, "symbol": s, "timeframe": tf} for s in informing(spec)],
        "candles": candles,
        "warmup_candles": warmup if warm_rows else None,
        "hyperparameters": hp,
    }


# Candles a worker has read, reused by its next runs on the same market and range (optimizer trials, batch runs):
# keyed by the store file's identity (inode, size, mtime: the store replaces files atomically, so a changed market is
# a new key and is re-read), least recently used first out, at most a few entries and bytes.
ROWS_CACHE_ENTRIES = 8  # a portfolio's markets fit
ROWS_CACHE_BYTES = 256 * 1024 * 1024
_rows_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()


def _cached_rows(key: tuple, read: Any) -> np.ndarray:
    rows = _rows_cache.pop(key, None)
    if rows is None:
        rows = np.array(read())  # out of the memory map: the store may replace the file meanwhile
        rows.flags.writeable = False
    _rows_cache[key] = rows
    while len(_rows_cache) > ROWS_CACHE_ENTRIES or sum(r.nbytes for r in _rows_cache.values()) > ROWS_CACHE_BYTES:
        _rows_cache.popitem(last=False)
    return rows


def load_rows(spec: dict[str, Any]) -> Rows:
    """The spec's 1-minute rows, warm-up first: one array, or symbol -> array for a portfolio (traded, then data)."""
    if not spec.get("markets"):
        return _load_market(spec, spec["symbol"])
    return {symbol: _load_market(spec, symbol) for symbol in [*traded(spec), *informing(spec)]}


def _load_market(spec: dict[str, Any], symbol: str) -> np.ndarray:
    store = CandleStore(Path(spec["store_root"]))
    start = spec["start_ms"] - spec["warmup_minutes"] * MINUTE_MS
    data_path = store.data_file(spec["exchange"], symbol)
    try:  # stat before reading: a file replaced in between is cached under its old identity, never served for the new
        st = data_path.stat()
        identity = (st.st_ino, st.st_size, st.st_mtime_ns)
    except FileNotFoundError:
        identity = None  # store.load says what is stored instead
    key = (str(data_path), identity, start, spec["end_ms"])
    rows = _cached_rows(key, lambda: store.load(spec["exchange"], symbol, start, spec["end_ms"]))
    expected = (spec["end_ms"] - start) // MINUTE_MS
    if len(rows) != expected:
        _rows_cache.pop(key, None)
        raise ValueError(
            f"expected {expected} contiguous minutes for {spec['exchange']}:{symbol} from "
            f"{start} to {spec['end_ms']}, found {len(rows)}; the store changed since the request was checked"
        )
    return np.array(rows)  # a private copy: transforms and Jesse may write to it


def transform_rows(rows: Rows, spec: dict[str, Any]) -> tuple[Rows, dict[str, Any] | None]:
    """The spec's transform (a stress scenario, a bootstrap path) applied to its rows; for a portfolio to every
    market alike (the same shock at the same minute, the same bootstrap blocks: the markets stay aligned)."""
    if isinstance(rows, dict):
        out = {s: _transform_market(r, spec) for s, r in rows.items()}
        return {s: r for s, (r, _) in out.items()}, next(iter(out.values()))[1]
    return _transform_market(rows, spec)


def _transform_market(rows: np.ndarray, spec: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any] | None]:
    t = spec.get("transform")
    if not t:
        return rows, None
    from jesse_mcp.backtesting.analysis import resampling, scenarios

    warm = int(spec["warmup_minutes"])
    if t["kind"] == "bootstrap":
        trading = resampling.block_bootstrap_candles(rows[warm:], seed=t["seed"], block_minutes=t["block_minutes"])
        # continue from the last warm-up close so the series has no artificial jump at the start
        if warm:
            scale = rows[warm - 1, 2] / trading[0, 1]
            trading[:, 1:5] *= scale
        return np.concatenate([rows[:warm], trading]), {"kind": "bootstrap", "seed": t["seed"]}
    scenario = getattr(scenarios, t["scenario"])
    at_index = warm + int(t["offset_minutes"])
    out, info = scenario(rows, at_index, **t.get("params", {}))
    return out, info


class _ProgressSampler:
    """Reports how far the simulation clock has moved, from a side thread: works for any strategy."""

    def __init__(self, start_ms: int, end_ms: int, label: str):
        self.start_ms, self.end_ms, self.label = start_ms, end_ms, label
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> _ProgressSampler:
        self._thread.start()
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        if exc_type is None:
            report_progress(self.end_ms - self.start_ms, self.end_ms - self.start_ms, f"{self.label}: done")

    def _loop(self) -> None:
        from jesse.store import store

        total, last = self.end_ms - self.start_ms, self.start_ms
        while not self._stop.wait(PROGRESS_EVERY_S):
            now = getattr(store.app, "time", None)
            # only forward (MCP progress must increase), and short of the end: the end is the "done" report
            if now and last < now < self.end_ms:
                last = now
                report_progress(now - self.start_ms, total, self.label)


def _simulate(inputs: dict[str, Any], fast: bool, gate: Any) -> tuple[dict[str, Any], list[list[float]], Any]:
    """One Jesse run; `gate` makes the run's portfolio gate (a fresh one each run: it keeps state) or None."""
    from jesse.research import backtest

    from jesse_mcp.backtesting.strategies import base, portfolio

    base.RUN_STATE.clear()
    run = gate() if gate else None
    portfolio.begin(run)
    try:
        result = backtest(**inputs, fast_mode=fast, generate_equity_curve=True, generate_logs=False)
    finally:
        portfolio.end()
    return result, _portfolio_series(result.get("equity_curve")), run


def _run_jesse(inputs: dict[str, Any], spec: dict[str, Any], trading: Rows, gate: Any) -> tuple[dict, list, bool, Any]:
    """Jesse's result, the daily equity, whether fast mode ran, and the run's gate. Fast mode unless spec["fast_mode"]
    is False, with normal mode's daily equity and ten daily metrics rebuilt (daily_equity.py); normal mode when the
    rebuild fails."""
    fast = bool(spec.get("fast_mode", True))
    with _ProgressSampler(spec["start_ms"], spec["end_ms"], spec.get("label", "backtest")):
        result, equity, run = _simulate(inputs, fast, gate)
        if not fast or not result.get("trades"):  # no closed trade: no daily metrics and no curve in either mode
            return result, equity, fast, run
        wallet = daily_equity.Wallet(float(spec["starting_balance"]), float(spec["fee"]), _minutes(spec["timeframe"]))
        annualization = int(result["metrics"]["annualization"])
        rebuilt = daily_equity.normal_mode_daily(result["trades"], equity, trading, wallet, annualization)
        if rebuilt is None:
            log.warning("the daily equity of a fast-mode run could not be rebuilt from its orders; running normal mode")
            result, equity, run = _simulate(inputs, False, gate)
            return result, equity, False, run
    equity, daily = rebuilt
    result["metrics"].update(daily)
    return result, equity, True, run


def _minutes(timeframe: str) -> int:
    from jesse.constants import TIMEFRAME_TO_ONE_MINUTES  # the table Jesse's simulator steps by

    return int(TIMEFRAME_TO_ONE_MINUTES[timeframe])


def run_backtest(spec: dict[str, Any], rows: Rows | None = None) -> dict[str, Any]:
    """One backtest. Returns metrics (Jesse's, cleaned), compact trades, the daily equity, optional PNG bytes, and
    whether Jesse's fast mode ran (with normal mode's daily equity and metrics rebuilt) or its normal mode; for a
    portfolio (spec["markets"]) also what portfolio_report needs. `rows` are the spec's candles (what load_rows
    returns) when the caller loaded them (a Ray actor)."""
    from jesse_mcp.backtesting.strategies import base

    started = time.perf_counter()
    cls = strategy_class(spec["strategy"])
    rows, transform_info = transform_rows(load_rows(spec) if rows is None else rows, spec)
    inputs = jesse_inputs(spec, rows)
    for route in inputs["routes"]:
        route["strategy"] = cls
    if not issubclass(cls, base.RiskManagedStrategy):
        inputs["hyperparameters"].pop("_risk", None)
    warm = int(spec["warmup_minutes"])
    by_symbol = _by_symbol(spec, rows)
    trading = {s: by_symbol[s][warm:] for s in traded(spec)}
    several = bool(spec.get("markets"))
    shared = several or spec.get("sizing") == "cvar"  # what the routes share: the gate, the CVaR of the account
    make_gate = (lambda: _portfolio_run(spec, by_symbol)) if shared else None
    result, equity, fast, gate = _run_jesse(inputs, spec, trading if several else trading[spec["symbol"]], make_gate)
    duration = time.perf_counter() - started
    trades = [_compact_trade(t) for t in result.get("trades") or []]
    balance = float(spec["starting_balance"])
    out = {
        "metrics": _clean(result["metrics"]),
        "trades": trades,
        "intraday_drawdown_pct": intraday_drawdown_pct(trading, trades, balance),
        "equity": equity,
        "entries_halted_at": base.RUN_STATE.get("entries_halted_at"),
        "protection_locks": sorted(base.RUN_STATE.get("protection_locks", []), key=lambda k: k["from_ms"]),
        "refused_by_lock": base.RUN_STATE.get("refused_by_lock", {}),
        "duration_s": duration,
        "fast_mode": fast,
        "transform": _clean(transform_info),
        "portfolio": _portfolio_out(spec, gate, by_symbol, trades, equity) if several else None,
        "cvar_sized_entries": len(gate.cvar_sized) if gate else 0,
        "png": None,
    }
    if spec.get("png"):
        lines = out["portfolio"]["lines"] if several else None
        out["png"] = equity_png(equity, spec.get("title", ""), lines)
    return out


def _portfolio_run(spec: dict[str, Any], by_symbol: dict[str, np.ndarray]) -> Any:
    """What the routes share (strategies/portfolio.py), on the daily closes of every market: the gate every entry of
    a portfolio meets, and the account's CVaR that sizing 'cvar' keeps within max_cvar."""
    from jesse_mcp.backtesting.strategies import portfolio

    p = spec["portfolio"]
    return portfolio.PortfolioRun(
        risk=dict(spec["risk"] or {}),
        limits=dict(p["limits"]),
        closes={s: _closes(p["history"].get(s, []), r) for s, r in by_symbol.items()},
        correlation_days=int(p["correlation_days"]),
        cvar_days=int(p["cvar_days"]),
        fee_rate=float(spec["fee"]),
        leverage=float(spec["leverage"]),
        admit=bool(spec.get("markets")),
        cvar_sizing=spec.get("sizing") == "cvar",
    )


def _closes(history: list[list[float]], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stored daily closes before the run's rows, then the rows' own."""
    from jesse_mcp.backtesting.markets import daily_closes

    days, close = daily_closes(rows)
    before = np.array([d for d, _ in history], dtype=np.int64), np.array([c for _, c in history], dtype=float)
    return np.concatenate([before[0], days]), np.concatenate([before[1], close])


def _portfolio_out(spec: dict[str, Any], gate: Any, by_symbol: dict[str, np.ndarray], trades: list, equity: list):
    from jesse_mcp.backtesting import portfolio_report
    from jesse_mcp.backtesting.markets import daily_closes

    warm, start = int(spec["warmup_minutes"]), int(spec["start_ms"])
    closes = {}
    for s, r in by_symbol.items():
        days, values = daily_closes(r[warm:])
        closes[s] = [[int(d), float(c)] for d, c in zip(days, values, strict=True) if d >= start]
    trading = {s: by_symbol[s][warm:] for s in traded(spec)}
    times = [round(t * 1000) for t, _ in equity]
    return {
        "markets": traded(spec),
        "data_markets": informing(spec),
        "refused": dict(gate.refused),
        "limits": {**gate.limits, **{k: gate.risk[k] for k in ("max_correlation", "max_cvar") if k in gate.risk}},
        "closes": closes,
        **portfolio_report.sampled(trades, trading, times),
    }


def run_many(specs: list[dict[str, Any]], rows: list[Rows] | None = None) -> list[dict[str, Any]]:
    """Several short runs in one task (walk-forward windows): one round trip, errors per run. `rows`: see
    run_backtest, one array per spec."""
    results = []
    for i, spec in enumerate(specs):
        report_progress(i, len(specs), spec.get("label", "run"))
        try:
            r = run_backtest({**spec, "png": False}, None if rows is None else rows[i])
            r["trades_count"] = len(r["trades"])
            results.append(r)
        except Exception as e:
            results.append({"error": f"{type(e).__name__}: {e}"})
    return results


def _compact_trade(t: dict[str, Any]) -> list[Any]:
    return [_clean(t.get(f)) for f in TRADE_FIELDS]


def _portfolio_series(curve: Any) -> list[list[float]]:
    if not curve:
        return []
    series = next((s for s in curve if s.get("name") == "Portfolio"), curve[0])
    return [[float(p["time"]), float(p["value"])] for p in series.get("data", [])]

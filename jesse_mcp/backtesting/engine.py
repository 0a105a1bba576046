"""What runs inside a Jesse worker: load candles, build the strategy, call `jesse.research.backtest`, return plain data.

Everything here is called through `WorkerPool.run("jesse_mcp.backtesting.engine", <function>, spec)`: arguments and
results are plain picklable values. Candles are read from the store in the worker (memory-mapped), so they never cross
the pipe. Jesse is imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import math
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from jesse_mcp.backtesting import daily_equity
from jesse_mcp.backtesting.pictures import equity_png
from jesse_mcp.backtesting.results import intraday_drawdown_pct
from jesse_mcp.backtesting.workers import report_progress
from shared.market.candles import MINUTE_MS, CandleStore
from shared.market.exchanges import jesse_exchange

# Jesse is handed the data's exchange under Jesse's name (shared.market.exchanges; synthetic data: Binance Perpetual
# Futures) and always simulates futures (type "futures") at the fee and leverage asked for, also for spot data.
PROGRESS_EVERY_S = 0.5
log = logging.getLogger(__name__)


class StrategyLoadError(Exception):
    """A user's strategy file could not be loaded or does not define a Jesse Strategy."""


# --- strategy classes -----------------------------------------------------------------------------------------
_user_modules: dict[str, tuple[float, Any]] = {}


def _load_user_module(path: Path) -> Any:
    mtime = path.stat().st_mtime
    cached = _user_modules.get(str(path))
    if cached and cached[0] == mtime:
        return cached[1]
    digest = hashlib.sha1(f"{path}:{mtime}".encode()).hexdigest()[:12]
    module_name = (
        f"trading_mcp_user_strategies.{path.stem if path.name != '__init__.py' else path.parent.name}_{digest}"
    )
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise StrategyLoadError(f"{path} is not a Python file that can be imported.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise StrategyLoadError(f"{path} failed to import: {type(e).__name__}: {e}") from None
    _user_modules[str(path)] = (mtime, module)
    return module


def _strategy_class_in(module: Any, path: Path, name: str) -> type:
    from jesse.strategies import Strategy

    from jesse_mcp.backtesting.strategies.base import RiskManagedStrategy

    candidates = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Strategy)
        and obj not in (Strategy, RiskManagedStrategy)
        and obj.__module__ == module.__name__
    ]
    if not candidates:
        raise StrategyLoadError(
            f"{path} does not define a Jesse Strategy: add a class that subclasses jesse.strategies.Strategy "
            "(or jesse_mcp.backtesting.strategies.base.RiskManagedStrategy to get risk-profile sizing)."
        )
    if len(candidates) == 1:
        return candidates[0]
    wanted = name.replace("_", "").lower()
    for cls in candidates:
        if cls.__name__.lower() == wanted:
            return cls
    names = ", ".join(c.__name__ for c in candidates)
    raise StrategyLoadError(
        f"{path} defines several Strategy classes ({names}); keep one, or name one after the file ({name})."
    )


def strategy_class(strategy: dict[str, Any]) -> type:
    if strategy.get("builtin"):
        return getattr(importlib.import_module(strategy["module"]), strategy["class_name"])
    path = Path(strategy["path"])
    return _strategy_class_in(_load_user_module(path), path, strategy["name"])


def _param_type(value: Any) -> str:
    return "int" if value is int or (isinstance(value, int) and not isinstance(value, bool)) else "float"


def describe_user_strategies(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """name -> description of each user strategy file, or {"error": ...} for a file that cannot be used."""
    from jesse_mcp.backtesting.strategies.base import RiskManagedStrategy

    out: dict[str, dict[str, Any]] = {}
    for name, file in files.items():
        path = Path(file)
        try:
            cls = strategy_class({"name": name, "builtin": False, "path": file})
            raw = cls.hyperparameters(cls.__new__(cls))  # Jesse defines it as an instance method
            params = []
            for p in raw or []:
                if not isinstance(p, dict) or "name" not in p or "default" not in p:
                    raise StrategyLoadError(f"{path}: each hyperparameter needs at least 'name' and 'default'.")
                numeric = (int, float)
                if (
                    p.get("type", type(p["default"])) not in numeric
                    or isinstance(p["default"], bool)
                    or not all(isinstance(p.get(k, 0), numeric) for k in ("default", "min", "max"))
                ):
                    raise StrategyLoadError(
                        f"{path}: hyperparameter {p['name']!r} is not a number (type {p.get('type')!r}, default "
                        f"{p['default']!r}); only int and float hyperparameters are supported."
                    )
                params.append(
                    {
                        "name": str(p["name"]),
                        "type": _param_type(p.get("type", type(p["default"]))),
                        "default": p["default"],
                        "min": p.get("min", -math.inf),
                        "max": p.get("max", math.inf),
                        "description": str(p.get("description", "")),
                    }
                )
            doc = inspect.getdoc(cls) or inspect.getdoc(sys.modules[cls.__module__]) or ""
            out[name] = {
                "class_name": cls.__name__,
                "summary": doc.strip().split("\n\n")[0].replace("\n", " ") if doc else "",
                "hyperparameters": params,
                "risk_managed": issubclass(cls, RiskManagedStrategy),
            }
        except StrategyLoadError as e:
            out[name] = {"error": str(e)}
        except Exception as e:
            out[name] = {"error": f"{path}: {type(e).__name__}: {e}"}
    return out


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


def jesse_inputs(spec: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """The exact arguments for jesse.research.backtest (also used by tests for the golden comparison)."""
    warm_rows = int(spec["warmup_minutes"])
    warmup, trading = rows[:warm_rows], rows[warm_rows:]
    symbol, venue = spec["symbol"], jesse_exchange(spec["exchange"])
    key = f"{venue}-{symbol}"
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
    return {
        "config": config,
        "routes": [{"exchange": venue, "strategy": None, "symbol": symbol, "timeframe": spec["timeframe"]}],
        "data_routes": [],
        "candles": {key: {"exchange": venue, "symbol": symbol, "candles": trading}},
        "warmup_candles": {key: {"exchange": venue, "symbol": symbol, "candles": warmup}} if warm_rows else None,
        "hyperparameters": hp,
    }


# Candles a worker has read, reused by its next runs on the same market and range (optimizer trials, batch runs):
# keyed by the store file's identity (inode, size, mtime: the store replaces files atomically, so a changed market is
# a new key and is re-read), least recently used first out, at most a few entries and bytes.
ROWS_CACHE_ENTRIES = 4
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


def load_rows(spec: dict[str, Any]) -> np.ndarray:
    store = CandleStore(Path(spec["store_root"]))
    start = spec["start_ms"] - spec["warmup_minutes"] * MINUTE_MS
    data_path = store.data_file(spec["exchange"], spec["symbol"])
    try:  # stat before reading: a file replaced in between is cached under its old identity, never served for the new
        st = data_path.stat()
        identity = (st.st_ino, st.st_size, st.st_mtime_ns)
    except FileNotFoundError:
        identity = None  # store.load says what is stored instead
    key = (str(data_path), identity, start, spec["end_ms"])
    rows = _cached_rows(key, lambda: store.load(spec["exchange"], spec["symbol"], start, spec["end_ms"]))
    expected = (spec["end_ms"] - start) // MINUTE_MS
    if len(rows) != expected:
        _rows_cache.pop(key, None)
        raise ValueError(
            f"expected {expected} contiguous minutes for {spec['exchange']}:{spec['symbol']} from "
            f"{start} to {spec['end_ms']}, found {len(rows)}; the store changed since the request was checked"
        )
    return np.array(rows)  # a private copy: transforms and Jesse may write to it


def transform_rows(rows: np.ndarray, spec: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any] | None]:
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


def _simulate(inputs: dict[str, Any], fast: bool) -> tuple[dict[str, Any], list[list[float]]]:
    from jesse.research import backtest

    result = backtest(**inputs, fast_mode=fast, generate_equity_curve=True, generate_logs=False)
    return result, _portfolio_series(result.get("equity_curve"))


def _run_jesse(inputs: dict[str, Any], spec: dict[str, Any], trading: np.ndarray) -> tuple[dict, list, bool]:
    """Jesse's result, the daily equity, and whether fast mode ran. Fast mode unless spec["fast_mode"] is False, with
    normal mode's daily equity and ten daily metrics rebuilt (daily_equity.py); normal mode when the rebuild fails."""
    fast = bool(spec.get("fast_mode", True))
    with _ProgressSampler(spec["start_ms"], spec["end_ms"], spec.get("label", "backtest")):
        result, equity = _simulate(inputs, fast)
        if not fast or not result.get("trades"):  # no closed trade: no daily metrics and no curve in either mode
            return result, equity, fast
        balance, fee = float(spec["starting_balance"]), float(spec["fee"])
        annualization = int(result["metrics"]["annualization"])
        rebuilt = daily_equity.normal_mode_daily(result["trades"], equity, trading, balance, fee, annualization)
        if rebuilt is None:
            log.warning("the daily equity of a fast-mode run could not be rebuilt from its orders; running normal mode")
            result, equity = _simulate(inputs, False)
            return result, equity, False
    equity, daily = rebuilt
    result["metrics"].update(daily)
    return result, equity, True


def run_backtest(spec: dict[str, Any], rows: np.ndarray | None = None) -> dict[str, Any]:
    """One backtest. Returns metrics (Jesse's, cleaned), compact trades, the daily equity, optional PNG bytes, and
    whether Jesse's fast mode ran (with normal mode's daily equity and metrics rebuilt) or its normal mode. `rows`
    are the spec's candles (what load_rows returns) when the caller loaded them (a Ray actor)."""
    from jesse_mcp.backtesting.strategies import base

    started = time.perf_counter()
    cls = strategy_class(spec["strategy"])
    if rows is None:
        rows = load_rows(spec)
    rows, transform_info = transform_rows(rows, spec)
    inputs = jesse_inputs(spec, rows)
    inputs["routes"][0]["strategy"] = cls
    if not issubclass(cls, base.RiskManagedStrategy):
        inputs["hyperparameters"].pop("_risk", None)
    base.RUN_STATE.clear()
    trading = rows[int(spec["warmup_minutes"]) :]
    result, equity, fast = _run_jesse(inputs, spec, trading)
    duration = time.perf_counter() - started
    trades = [_compact_trade(t) for t in result.get("trades") or []]
    out = {
        "metrics": _clean(result["metrics"]),
        "trades": trades,
        "intraday_drawdown_pct": intraday_drawdown_pct(trading, trades, float(spec["starting_balance"])),
        "equity": equity,
        "entries_halted_at": base.RUN_STATE.get("entries_halted_at"),
        "protection_locks": base.RUN_STATE.get("protection_locks", []),
        "refused_by_lock": base.RUN_STATE.get("refused_by_lock", {}),
        "duration_s": duration,
        "fast_mode": fast,
        "transform": _clean(transform_info),
        "png": None,
    }
    if spec.get("png"):
        out["png"] = equity_png(equity, spec.get("title", ""))
    return out


def run_many(specs: list[dict[str, Any]], rows: list[np.ndarray] | None = None) -> list[dict[str, Any]]:
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


TRADE_FIELDS = ("type", "opened_at", "closed_at", "entry_price", "exit_price", "qty", "size", "fee", "PNL")


def _compact_trade(t: dict[str, Any]) -> list[Any]:
    return [_clean(t.get(f)) for f in TRADE_FIELDS]


def _portfolio_series(curve: Any) -> list[list[float]]:
    if not curve:
        return []
    series = next((s for s in curve if s.get("name") == "Portfolio"), curve[0])
    return [[float(p["time"]), float(p["value"])] for p in series.get("data", [])]

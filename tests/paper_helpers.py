"""Test doubles for paper trading: a price table the test moves, daily closes it controls, a pool that never starts
Jesse, and stored backtest / stress-test evidence in the exact shapes the backtest tools write."""

from __future__ import annotations

import json
import math
import random
import time
import zlib
from pathlib import Path
from typing import Any

from jesse_mcp.trading.prices import DAY_MS, NoPrice, PaperQuote
from shared.config.models import TradingConfig
from shared.config.store import ConfigStore
from shared.state import results as result_store
from shared.state.results import NewResult
from shared.state.store import Store, utc_now_iso


class TablePrices:
    """Prices from a dict (or a JSON file another process may rewrite): symbol -> price."""

    def __init__(self, prices: dict[str, float] | None = None, path: Path | None = None, clock=None):
        self.prices = dict(prices or {})
        self.path = path
        self.clock = clock
        self.daily: dict[str, list[tuple[int, float]]] = {}
        self.no_daily: set[str] = set()  # symbols with a price but no daily candles
        self.quotes_asked = 0
        self.source = "consensus of 2 provider(s)"

    def set(self, symbol: str, price: float) -> None:
        self.prices[symbol] = price
        if self.path is not None:
            self.path.write_text(json.dumps(self.prices))

    async def quote(self, symbol: str) -> PaperQuote:
        self.quotes_asked += 1
        table = json.loads(self.path.read_text()) if self.path is not None else self.prices
        if symbol not in table:
            raise NoPrice(f"no price for {symbol}: not in the test table")
        now = int((self.clock() if self.clock else 1_790_000_000) * 1000)
        return PaperQuote(symbol, float(table[symbol]), now, self.source)

    async def daily_closes(self, symbol: str, days: int, now_ms: int) -> list[tuple[int, float]]:
        if symbol in self.daily:
            return self.daily[symbol]
        table = json.loads(self.path.read_text()) if self.path is not None else self.prices
        if symbol in self.no_daily or symbol not in table:
            raise NoPrice(f"no daily candles for {symbol}")
        return quiet_series(symbol, days, float(table[symbol]))

    def set_series(self, symbol: str, returns: list[float], start: float = 100.0) -> None:
        day0 = 1_780_000_000_000 - 1_780_000_000_000 % DAY_MS
        closes, price = [], start
        for i, r in enumerate([0.0, *returns]):
            price *= math.exp(r)
            closes.append((day0 + i * DAY_MS, price))
        self.daily[symbol] = closes


def quiet_series(symbol: str, days: int, last: float) -> list[tuple[int, float]]:
    """`days` daily closes ending at `last`, moving under 1 % a day in a pattern of the symbol's own: a market
    calm enough that no CVaR limit binds on it unless a test says otherwise."""
    rng = random.Random(zlib.crc32(symbol.encode()))
    moves = [rng.uniform(-0.008, 0.008) for _ in range(days)]
    day0 = 1_780_000_000_000 - 1_780_000_000_000 % DAY_MS
    price, closes = last, [(day0 + days * DAY_MS, last)]
    for i, m in enumerate(reversed(moves)):
        price /= math.exp(m)
        closes.append((day0 + (days - 1 - i) * DAY_MS, price))
    return closes[::-1]


class NoPool:
    """Stands in for the Jesse worker pool in tests that run no backtest."""

    def attach(self) -> None:
        pass

    def detach(self) -> None:
        pass


class Clock:
    def __init__(self, t: float = 1_790_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def configure(home: Path, **changes: Any) -> TradingConfig:
    """Write a configuration (defaults + dotted-path changes), as a person editing the file would."""
    from shared.config.changes import apply_changes
    from shared.config.file import validate_config_data

    data = TradingConfig().model_dump(mode="json")
    if changes:
        data = apply_changes(data, {k.replace("__", "."): v for k, v in changes.items()})
    cfg = validate_config_data(data)
    ConfigStore(home / "config.json").save(cfg)
    return cfg


def store_backtest(
    store: Store,
    strategy: str,
    *,
    profile: str = "moderate",
    settings: dict[str, float] | None = None,
    sharpe: float | None = 1.6,
    trades: int = 45,
    max_drawdown_pct: float = 6.0,
    intraday_pct: float = 7.0,
    synthetic: bool = False,
    created_ms: int | None = None,
    result_id: str = "bt_good",
    request: dict | None = None,
    data: dict | None = None,
    days: float = 92.0,
    behind_days: float = 1.0,
) -> str:
    """A stored backtest record in BacktestResult's shape (what the backtest tool writes), of the strategy's current
    code with its default hyperparameters; `request` and `data` entries replace the defaults."""
    from jesse_mcp.backtesting.catalog import BUILTIN, fingerprint
    from jesse_mcp.backtesting.results import BacktestResult

    spec = BUILTIN[strategy]
    day_ms = 86_400_000
    ran_ms = created_ms if created_ms is not None else int(time.time() * 1000)
    end_ms = int(ran_ms - ran_ms % day_ms - behind_days * day_ms)
    start_ms = int(end_ms - days * day_ms)

    record = {
        "id": result_id,
        "created_at": utc_now_iso(created_ms),
        "synthetic": synthetic,
        "request": {
            "strategy": strategy,
            "exchange": "binance",
            "symbol": "BTC-USDT",
            "timeframe": "1h",
            "start": utc_now_iso(start_ms),
            "end": utc_now_iso(end_ms),
            "start_ms": start_ms,
            "end_ms": end_ms,
            "risk_profile": profile,
            "hyperparameters": spec.resolve_hyperparameters(None),
            "fee_rate": 0.001,
            "leverage": (settings or {}).get("max_leverage", 1.0),
            "starting_balance": 10_000,
            "quote_currency": "USDT",
            "warmup_candles": 200,
            "strategy_sha256": fingerprint(spec),
            **(request or {}),
        },
        "risk_settings": settings or {},
        "risk_sources": {},
        "performance": {
            "net_profit_pct": 12.0,
            "net_profit_quote": 1200.0,
            "annual_return_pct": 50.0,
            "sharpe": sharpe,
            "sortino": 2.0,
            "calmar": 3.0,
            "max_drawdown_pct": max_drawdown_pct,
            "win_rate_pct": 55.0,
            "profit_factor": 1.5,
            "expectancy_quote": 20.0,
            "expectancy_pct": 0.2,
            "trades": trades,
            "winning_trades": trades // 2,
            "losing_trades": trades - trades // 2,
            "longs": trades,
            "shorts": 0,
            "average_holding_hours": 10.0,
            "exposure_pct": 40.0,
            "fees_quote": 30.0,
            "starting_balance_quote": 10_000,
            "finishing_balance_quote": 11_200,
            "largest_winning_trade_quote": 300.0,
            "largest_losing_trade_quote": -150.0,
        },
        "risk_adherence": {
            "largest_position_pct_of_equity": 10.0,
            "largest_leverage_used_x": 0.1,
            "largest_planned_risk_pct_of_equity": 0.2,
            "largest_loss_pct_of_equity": 1.5,
            "max_drawdown_intraday_pct": intraday_pct,
            "drawdown_within_profile": True,
            "emergency_stop_breached": False,
            "limits": {},
            "entries_halted_at": None,
            "violations": [],
        },
        "data": {
            "exchange": "synthetic" if synthetic else "binance",
            "symbol": "BTC-USDT",
            "timeframe": "1h",
            "start": "2026-06-01T00:00:00Z",
            "end": "2026-09-01T00:00:00Z",
            "candles_1m": 132_480,
            "warmup_start": "2026-05-23T00:00:00Z",
            "synthetic": synthetic,
            "sources": ["binance:/api/v3/klines"],
            "gaps_in_range": 0,
            "filled_gaps_in_range": 0,
            **(data or {}),
        },
        "run": {"engine": "jesse", "fast_mode": True, "duration_s": 1.0},
        "notes": [],
        "jesse_metrics": {},
    }
    BacktestResult.model_validate(record)  # the same shape the backtest tool stores
    summary = {"strategy": strategy, "risk_profile": profile, "sharpe": sharpe, "trades": trades}
    result_store.save(store, NewResult(result_id, "backtest", strategy, summary, record))
    if created_ms is not None:
        with store.transaction() as db:
            db.execute(
                "UPDATE results SET ts = ?, ts_ms = ? WHERE id = ?", (utc_now_iso(created_ms), created_ms, result_id)
            )
    return result_id


def store_stress(
    store: Store,
    strategy: str,
    backtest_id: str,
    *,
    emergency: bool = False,
    result_id: str = "st_good",
    scenarios: dict[str, dict] | None = None,
    requested_at: str | None = None,
) -> str:
    """A stored stress test of every scenario; `scenarios` replaces fields of named scenarios."""
    from jesse_mcp.research.stress import SCENARIOS, StressReport

    outcome = {
        "description": "a scenario",
        "max_drawdown_pct": 9.0,
        "emergency_stop_breached": False,
        "max_drawdown_breached": False,
    }
    rows = [{**outcome, "scenario": name, **(scenarios or {}).get(name, {})} for name in SCENARIOS]
    rows[0]["emergency_stop_breached"] = emergency or rows[0]["emergency_stop_breached"]
    rows = [r for r in rows if r.get("scenario") is not None]
    record = {
        "id": result_id,
        "created_at": utc_now_iso(),
        "backtest_id": backtest_id,
        "strategy": strategy,
        "market": "binance:BTC-USDT",
        "synthetic": False,
        "risk_profile": "moderate",
        "limits": {"max_drawdown_pct": 15.0, "emergency_stop_pct": 25.0},
        "requested_at": requested_at,
        "baseline": {**outcome, "scenario": "baseline"},
        "scenarios": rows,
        "table": "",
        "verdict": "",
        "notes": [],
    }
    StressReport.model_validate(record)
    summary = {"backtest_id": backtest_id, "verdict": ""}
    result_store.save(store, NewResult(result_id, "stress_test", strategy, summary, record))
    return result_id

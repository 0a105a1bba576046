"""The candle store: 1-minute candles per exchange and symbol, in Jesse's column order, under $TRADING_MCP_HOME.

Rows are `[timestamp_ms, open, close, high, low, volume]` (Jesse's order, not OHLC), sorted and unique, saved as
one float64 `.npy` per market (a year of minutes, 525,600 rows, loads in milliseconds with a memory map) with a
JSON sidecar for provenance and gaps. Gaps are never filled silently: `fill_gaps` is an explicit, recorded choice.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from shared.errors import TradingMcpError
from shared.state.files import atomic_write

MINUTE_MS = 60_000
TS, OPEN, CLOSE, HIGH, LOW, VOLUME = range(6)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


class CandleError(TradingMcpError):
    """Bad candle data, or data that is not in the store."""


def iso(ms: int | float) -> str:
    return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(text: object) -> int:
    """Epoch milliseconds of a UTC ISO-8601 time as the servers write it ('...Z'); the inverse of `iso`."""
    return int(datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp() * 1000)


class Gap(BaseModel):
    first_missing: str = Field(description="UTC time of the first missing minute.")
    last_missing: str = Field(description="UTC time of the last missing minute.")
    missing_minutes: int


class MarketInfo(BaseModel):
    exchange: str
    symbol: str
    rows: int
    first: str | None = Field(description="UTC time of the first candle (open time).")
    last: str | None = Field(description="UTC time of the last candle (open time).")
    synthetic: bool = Field(description="True when any part of the data was generated, not recorded.")
    sources: list[str] = Field(description="Where the rows came from, oldest import first.")
    gaps: list[Gap] = Field(description="Missing minutes inside the stored range.")
    filled: list[Gap] = Field(default_factory=list, description="Gaps filled on request (flat candles, volume 0).")


def find_gaps(ts: np.ndarray) -> list[Gap]:
    """Exact ranges of missing minutes in sorted, unique timestamps (ms)."""
    if len(ts) < 2:
        return []
    steps = np.diff(ts)
    idx = np.nonzero(steps != MINUTE_MS)[0]
    return [
        Gap(
            first_missing=iso(ts[i] + MINUTE_MS),
            last_missing=iso(ts[i + 1] - MINUTE_MS),
            missing_minutes=int(steps[i] // MINUTE_MS) - 1,
        )
        for i in idx
    ]


def check_rows(rows: np.ndarray, where: str = "data") -> np.ndarray:
    """Validate Jesse-ordered rows: finite, positive prices, low <= open/close <= high, whole minutes."""
    if rows.ndim != 2 or rows.shape[1] != 6:
        raise CandleError(f"{where}: candles must have 6 columns [timestamp, open, close, high, low, volume].")
    if not np.isfinite(rows).all():
        bad = int(np.nonzero(~np.isfinite(rows).all(axis=1))[0][0])
        raise CandleError(f"{where}: row {bad} has a missing or non-numeric value.")
    prices = rows[:, OPEN:VOLUME]
    problems = (
        (prices <= 0).any(axis=1)
        | (rows[:, VOLUME] < 0)
        | (rows[:, LOW] > np.minimum(rows[:, OPEN], rows[:, CLOSE]) + 1e-9)
        | (rows[:, HIGH] < np.maximum(rows[:, OPEN], rows[:, CLOSE]) - 1e-9)
        | (rows[:, TS] % MINUTE_MS != 0)
    )
    if problems.any():
        i = int(np.nonzero(problems)[0][0])
        raise CandleError(
            f"{where}: row {i} at {iso(rows[i, TS])} is not a valid 1-minute candle (needs prices > 0, volume >= 0, "
            f"low <= open/close <= high, a timestamp on a whole minute): {rows[i].tolist()}"
        )
    return rows


class CandleStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def data_file(self, exchange: str, symbol: str) -> Path:
        """The market's candle file (replaced atomically on every write: its identity says when it changed)."""
        return self._paths(exchange, symbol)[0]

    def _paths(self, exchange: str, symbol: str) -> tuple[Path, Path]:
        for label, value, example in (("exchange", exchange, "binance"), ("symbol", symbol, "BTC-USDT")):
            if not _NAME.match(value):
                raise CandleError(f"Invalid {label} {value!r}: use letters, digits, '-', '_' or '.', e.g. {example}.")
        folder = self.root / exchange.lower()
        return folder / f"{symbol.upper()}.npy", folder / f"{symbol.upper()}.json"

    def markets(self) -> list[MarketInfo]:
        if not self.root.exists():
            return []
        return [
            MarketInfo(**json.loads(meta.read_text()))
            for meta in sorted(self.root.glob("*/*.json"))
            if meta.with_suffix(".npy").exists()
        ]

    def info(self, exchange: str, symbol: str) -> MarketInfo | None:
        _, meta = self._paths(exchange, symbol)
        return MarketInfo(**json.loads(meta.read_text())) if meta.exists() else None

    def load(self, exchange: str, symbol: str, start_ms: int | None = None, end_ms: int | None = None) -> np.ndarray:
        """Rows with start_ms <= timestamp < end_ms (a read-only memory map slice when possible)."""
        data_path, _ = self._paths(exchange, symbol)
        if not data_path.exists():
            known = ", ".join(f"{m.exchange}:{m.symbol}" for m in self.markets()) or "none"
            raise CandleError(
                f"No candles stored for {exchange}:{symbol.upper()}. Stored markets: {known}. "
                "Import some with import_candles (exchange), import_candles_csv (a file) or the synthetic generator."
            )
        rows = np.load(data_path, mmap_mode="r")
        lo = 0 if start_ms is None else int(np.searchsorted(rows[:, TS], start_ms, side="left"))
        hi = len(rows) if end_ms is None else int(np.searchsorted(rows[:, TS], end_ms, side="left"))
        return rows[lo:hi]

    def save(self, exchange: str, symbol: str, rows: np.ndarray, source: str, synthetic: bool) -> MarketInfo:
        """Merge `rows` into the stored market (new rows replace old ones at the same minute) atomically."""
        rows = check_rows(np.asarray(rows, dtype=np.float64), f"{exchange}:{symbol}")
        data_path, meta_path = self._paths(exchange, symbol)
        old_info = self.info(exchange, symbol)
        if data_path.exists():
            merged = np.concatenate([np.load(data_path), rows])
            # keep the last occurrence of each timestamp: new data wins
            _, last_idx = np.unique(merged[::-1, TS], return_index=True)
            rows = merged[::-1][last_idx]
        else:
            rows = rows[np.argsort(rows[:, TS], kind="stable")]
            _, keep = np.unique(rows[::-1, TS], return_index=True)
            rows = rows[::-1][keep]
        info = MarketInfo(
            exchange=exchange.lower(),
            symbol=symbol.upper(),
            rows=len(rows),
            first=iso(rows[0, TS]) if len(rows) else None,
            last=iso(rows[-1, TS]) if len(rows) else None,
            synthetic=synthetic or bool(old_info and old_info.synthetic),
            sources=[*(old_info.sources if old_info else []), source],
            gaps=find_gaps(rows[:, TS]),
            filled=old_info.filled if old_info else [],
        )
        atomic_write(data_path, lambda f: np.save(f, np.ascontiguousarray(rows)))
        atomic_write(meta_path, lambda f: f.write(info.model_dump_json(indent=2).encode()))
        return info

    def fill_gaps(self, exchange: str, symbol: str) -> MarketInfo:
        """Fill every gap with flat candles at the previous close and zero volume, and record it."""
        rows = np.array(self.load(exchange, symbol))
        info = self.info(exchange, symbol)
        assert info is not None
        if not info.gaps:
            return info
        full_ts = np.arange(rows[0, TS], rows[-1, TS] + MINUTE_MS, MINUTE_MS, dtype=np.float64)
        pos = np.searchsorted(rows[:, TS], full_ts, side="right") - 1  # index of the last real candle at or before
        filled = np.empty((len(full_ts), 6))
        filled[:, TS] = full_ts
        present = rows[pos, TS] == full_ts
        filled[present] = rows[pos[present]]
        prev_close = rows[pos[~present], CLOSE]
        for col in (OPEN, CLOSE, HIGH, LOW):
            filled[~present, col] = prev_close
        filled[~present, VOLUME] = 0.0
        data_path, meta_path = self._paths(exchange, symbol)
        new_info = info.model_copy(update={"rows": len(filled), "gaps": [], "filled": [*info.filled, *info.gaps]})
        atomic_write(data_path, lambda f: np.save(f, filled))
        atomic_write(meta_path, lambda f: f.write(new_info.model_dump_json(indent=2).encode()))
        return new_info

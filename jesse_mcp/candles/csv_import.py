"""Candle importers: CSV files (layout detected), and a deterministic synthetic generator.

Every importer returns Jesse-ordered 1-minute rows `[timestamp_ms, open, close, high, low, volume]`; the store
merges them. The exchange REST importer lives in `jesse_mcp.candles.binance`.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from shared.market.candles import CLOSE, HIGH, LOW, MINUTE_MS, OPEN, TS, VOLUME, CandleError, iso
from shared.policy.readable import open_regular

_TIME_NAMES = ("timestamp", "open_time", "opentime", "time", "date", "datetime", "unix", "ts", "")
_BINANCE_KLINE_COLUMNS = 12
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_FIRST_LINE = 8192
_SYMBOL_SHAPE = re.compile(r"^[A-Z0-9]{2,10}([-/_]?[A-Z0-9]{2,10})?$")


@dataclass(frozen=True)
class CsvLayout:
    description: str
    has_header: bool
    columns: dict[str, int]  # time/open/high/low/close/volume -> column index
    symbol_column: int | None = None


def detect_layout(first_row: list[str]) -> CsvLayout:
    """Recognise a header row (names in any order, case-insensitive) or a headerless Binance kline row.

    Errors never quote the row: it may be the first line of any file, and only names this importer recognises
    (column names of a candle header) are ever shown.
    """
    cells = [c.strip().lower() for c in first_row]
    if all(_is_number(c) for c in cells if c):
        if len(cells) == _BINANCE_KLINE_COLUMNS or len(cells) == 6:
            kind = "Binance kline CSV (no header)" if len(cells) == _BINANCE_KLINE_COLUMNS else "headerless OHLCV"
            return CsvLayout(kind, False, {"time": 0, "open": 1, "high": 2, "low": 3, "close": 4, "volume": 5})
        raise CandleError(
            f"Cannot tell the columns of a headerless row with {len(cells)} fields. Supported: a header naming "
            "timestamp,open,high,low,close,volume (any order), or Binance's 12-column kline CSV."
        )
    columns: dict[str, int] = {}
    for i, name in enumerate(cells):
        for field in ("open", "high", "low", "close", "volume"):
            if name in (field, field[0], f"{field}_price") and field not in columns:
                columns[field] = i
        if name in _TIME_NAMES and "time" not in columns:
            columns["time"] = i
    named = [cells[i] for i in sorted(columns.values()) if cells[i]]
    missing = [f for f in ("time", "open", "high", "low", "close", "volume") if f not in columns]
    if missing and len(named) < 2:
        raise CandleError(
            "The first line is not a candle CSV header (it is not shown: it may come from any file). Expected a "
            "header naming timestamp (or time/date), open, high, low, close, volume in any order, or Binance's "
            "headerless 12-column kline rows."
        )
    if missing:
        raise CandleError(
            f"The header names {', '.join(named)} but lacks column(s) {missing}. Name them timestamp (or "
            "time/date), open, high, low, close, volume; order does not matter."
        )
    symbol_col = cells.index("symbol") if "symbol" in cells else None
    shown = named + (["symbol"] if symbol_col is not None else [])
    ignored = len([c for c in cells if c]) - len(shown)
    extra = f" (+{ignored} other column(s) ignored)" if ignored > 0 else ""
    return CsvLayout("header: " + ",".join(shown) + extra, True, columns, symbol_col)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_times(values: Any) -> np.ndarray:
    """Epoch seconds, milliseconds, microseconds or nanoseconds (by magnitude), or ISO-8601 text -> ms."""
    import pandas as pd  # imported when used: pandas costs 0.5 s, and servers must start fast

    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().any() and numeric.isna().any():
        first = int(np.nonzero(numeric.isna().to_numpy())[0][0])
        raise _RowError(first, "the time is neither epoch time nor an ISO-8601 date")
    if numeric.notna().all():
        x = numeric.to_numpy(dtype=np.float64)
        scale = np.where(x < 1e11, 1000.0, np.where(x < 1e14, 1.0, np.where(x < 1e17, 1e-3, 1e-6)))
        return np.round(x * scale)
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    if parsed.isna().any():
        first = int(np.nonzero(parsed.isna().to_numpy())[0][0])
        raise _RowError(first, "the time is neither epoch time nor an ISO-8601 date")
    return (parsed.astype("int64") // 1_000_000).to_numpy(dtype=np.float64)


class _RowError(Exception):
    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index


def read_csv_candles(path: Path, symbol: str | None = None) -> tuple[np.ndarray, CsvLayout]:
    """Read a candle CSV (optionally gzip) into Jesse-ordered 1-minute rows; errors name the file line.

    `path` must already be allowed (`shared.policy.readable.ReadableFolders.resolve`); errors quote no file content.
    """
    path = Path(path)
    with open_regular(path) as raw:
        gz = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        layout = detect_layout(_first_row(raw, gz, path))
        header_lines = 1 if layout.has_header else 0
        raw.seek(0)
        frame = _read_frame(raw, gz, header_lines, path)
    if layout.symbol_column is not None:
        frame = _rows_of_symbol(frame, layout.symbol_column, symbol, path)
    try:
        rows = _to_rows(frame, layout)
    except _RowError as e:
        line = int(frame.index[e.index]) + header_lines + 1
        raise CandleError(f"{path} line {line}: {e}. Fix or remove that row and import again.") from None
    _require_one_minute(rows, path)
    return rows, layout


def _first_row(raw: BinaryIO, gz: bool, path: Path) -> list[str]:
    try:
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        line = stream.readline(_MAX_FIRST_LINE)
    except (OSError, EOFError, zlib.error):
        raise CandleError(f"{path} is not a readable gzip file. Give a .csv, or a .csv.gz made with gzip.") from None
    if not line.strip():
        raise CandleError(f"{path} is empty (or its first line is blank). Give a CSV with a header line first.")
    if len(line) >= _MAX_FIRST_LINE and not line.endswith(b"\n"):
        raise CandleError(f"{path}: the first line is longer than {_MAX_FIRST_LINE} bytes; not a candle CSV.")
    try:
        text = line.decode("utf-8-sig")
        return next(csv.reader([text]), [])
    except (UnicodeDecodeError, csv.Error):
        raise CandleError(f"{path} is not UTF-8 CSV text. Save the candles as a UTF-8 CSV file.") from None


def _read_frame(raw: BinaryIO, gz: bool, header_lines: int, path: Path) -> Any:
    import pandas as pd  # imported when used: pandas costs 0.5 s, and servers must start fast

    try:
        return pd.read_csv(
            raw,
            header=None,
            skiprows=header_lines,
            dtype=str,
            keep_default_na=False,
            compression="gzip" if gz else None,
            encoding="utf-8",
        )
    except pd.errors.ParserError as e:
        where = re.search(r"line (\d+)", str(e))  # pandas' message names the line; nothing of its content is shown
        at = f" (line {where.group(1)})" if where else ""
        raise CandleError(
            f"{path}: a row has a different number of fields than the first line{at}. Every row needs the same "
            "number of fields as the header."
        ) from None
    except (UnicodeDecodeError, OSError, EOFError, zlib.error):
        raise CandleError(f"{path} is not UTF-8 CSV text throughout. Save the candles as a UTF-8 CSV.") from None
    except pd.errors.EmptyDataError:
        raise CandleError(f"{path} has a header but no candle rows.") from None


def _rows_of_symbol(frame: Any, column: int, symbol: str | None, path: Path) -> Any:
    symbols = frame[column].str.upper()
    # only symbol-shaped values are listed: the message must not carry arbitrary text from the file
    known = sorted(s for s in symbols.unique() if _SYMBOL_SHAPE.match(s))[:10]
    listed = f" ({', '.join(known)})" if known else ""
    if symbol is None:
        raise CandleError(f"{path} holds several symbols{listed}; say which one to import.")
    wanted = symbol.upper().replace("-", "").replace("/", "")
    frame = frame[symbols.str.replace("-", "").str.replace("/", "") == wanted]
    if frame.empty:
        raise CandleError(f"{path} has no rows for {symbol}{listed and '; it has' + listed}. Pass one of its symbols.")
    return frame


def _to_rows(frame: Any, layout: CsvLayout) -> np.ndarray:
    import pandas as pd

    c = layout.columns
    rows = np.empty((len(frame), 6))
    rows[:, TS] = parse_times(frame[c["time"]])
    for field, col in (("open", OPEN), ("close", CLOSE), ("high", HIGH), ("low", LOW), ("volume", VOLUME)):
        values = pd.to_numeric(frame[c[field]], errors="coerce")
        bad = values.isna().to_numpy()
        if bad.any():
            i = int(np.nonzero(bad)[0][0])
            raise _RowError(i, f"the {field} value is not a number")
        rows[:, col] = values.to_numpy(dtype=np.float64)
    problems = (
        (rows[:, OPEN:VOLUME] <= 0).any(axis=1)
        | (rows[:, VOLUME] < 0)
        | (rows[:, LOW] > np.minimum(rows[:, OPEN], rows[:, CLOSE]))
        | (rows[:, HIGH] < np.maximum(rows[:, OPEN], rows[:, CLOSE]))
    )
    if problems.any():
        i = int(np.nonzero(problems)[0][0])
        raise _RowError(i, "prices must be > 0, volume >= 0 and low <= open/close <= high")
    order = np.argsort(rows[:, TS], kind="stable")
    rows = rows[order]
    dupes = np.nonzero(np.diff(rows[:, TS]) == 0)[0]
    if len(dupes):
        raise _RowError(int(order[dupes[0] + 1]), "the same minute appears twice")
    return rows


def _require_one_minute(rows: np.ndarray, path: Path) -> None:
    if len(rows) < 2:
        return
    step = float(np.median(np.diff(rows[:, TS])))
    if step != MINUTE_MS:
        raise CandleError(
            f"{path} has {step / MINUTE_MS:g}-minute candles; the store holds 1-minute candles (Jesse builds every "
            "higher timeframe from them). Import a 1-minute file, or use import_candles to fetch 1-minute data."
        )
    off = np.nonzero(rows[:, TS] % MINUTE_MS != 0)[0]
    if len(off):
        raise CandleError(f"{path}: the candle at index {int(off[0])} does not start on a whole minute.")


# --- synthetic data -------------------------------------------------------------------------------------------
# name: (log drift per minute, volatility per minute). Over a 7-day block: trend_up about +15 %, trend_down -10 %,
# crash -35 % with triple volatility, recovery +25 %; daily volatility 2-10 %, like large crypto assets.
REGIMES = {
    "trend_up": (1.4e-5, 0.0009),
    "range": (0.0, 0.0006),
    "trend_down": (-1.0e-5, 0.0010),
    "crash": (-4.3e-5, 0.0027),
    "recovery": (2.2e-5, 0.0015),
}
DEFAULT_SCHEDULE = ("trend_up", "range", "crash", "recovery", "range", "trend_down", "trend_up")


def synthetic_candles(
    start_ms: int, minutes: int, seed: int = 7, start_price: float = 30_000.0, regime_minutes: int = 7 * 1440
) -> tuple[np.ndarray, list[tuple[str, str, str]]]:
    """Deterministic 1-minute candles cycling through trending, ranging and crash regimes.

    Returns the rows and the regime schedule [(regime, first UTC minute, last UTC minute)]. Same seed, same data.
    """
    if minutes < 1:
        raise CandleError("minutes must be at least 1.")
    if start_ms % MINUTE_MS:
        raise CandleError("start must be on a whole minute.")
    rng = np.random.default_rng(seed)
    regime_idx = (np.arange(minutes) // regime_minutes) % len(DEFAULT_SCHEDULE)
    drift = np.array([REGIMES[DEFAULT_SCHEDULE[i]][0] for i in range(len(DEFAULT_SCHEDULE))])[regime_idx]
    vol = np.array([REGIMES[DEFAULT_SCHEDULE[i]][1] for i in range(len(DEFAULT_SCHEDULE))])[regime_idx]
    log_ret = drift + vol * rng.standard_t(df=4, size=minutes) / np.sqrt(2.0)
    close = start_price * np.exp(np.cumsum(log_ret))
    open_ = np.concatenate([[start_price], close[:-1]])
    wick = np.abs(rng.normal(0, 1, size=(2, minutes))) * vol * 0.6
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    volume = rng.lognormal(mean=1.0, sigma=0.6, size=minutes) * (1 + 40 * vol)
    rows = np.column_stack(
        [start_ms + MINUTE_MS * np.arange(minutes, dtype=np.float64), open_, close, high, low, volume]
    )
    schedule = []
    for block in range(0, minutes, regime_minutes):
        last = min(block + regime_minutes, minutes) - 1
        name = DEFAULT_SCHEDULE[(block // regime_minutes) % len(DEFAULT_SCHEDULE)]
        schedule.append((name, iso(rows[block, TS]), iso(rows[last, TS])))
    return rows, schedule

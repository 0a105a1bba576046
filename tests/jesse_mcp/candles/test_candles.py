from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from jesse_mcp.candles.csv_import import read_csv_candles, synthetic_candles
from shared.market.candles import MINUTE_MS, CandleError, CandleStore

T0 = 1_747_699_200_000  # 2025-05-20T00:00:00Z


def _ohlcv(i: int) -> tuple[float, float, float, float, float]:
    o = 100.0 + i
    return o, o + 2, o - 1, o + 1, 10.0 + i  # open, high, low, close, volume


def _write(path: Path, lines: list[str]) -> Path:
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _expected(n: int, skip: tuple[int, ...] = ()) -> np.ndarray:
    rows = []
    for i in range(n):
        if i in skip:
            continue
        o, h, lo, c, v = _ohlcv(i)
        rows.append([T0 + i * MINUTE_MS, o, c, h, lo, v])  # Jesse order
    return np.array(rows)


@pytest.mark.parametrize(
    ("name", "header", "fmt"),
    [
        ("ms.csv", "timestamp,open,high,low,close,volume", lambda i, t, o, h, lo, c, v: f"{t},{o},{h},{lo},{c},{v}"),
        ("s.csv", "time,open,high,low,close,volume", lambda i, t, o, h, lo, c, v: f"{t // 1000},{o},{h},{lo},{c},{v}"),
        (
            "iso.csv",
            "date,open,high,low,close,volume",
            lambda i, t, o, h, lo, c, v: f"2025-05-20T00:{i:02d}:00Z,{o},{h},{lo},{c},{v}",
        ),
        (
            "reordered.csv",
            "Close,Volume,Open,Low,High,Timestamp",
            lambda i, t, o, h, lo, c, v: f"{c},{v},{o},{lo},{h},{t}",
        ),
        (
            "binance.csv",
            None,
            lambda i, t, o, h, lo, c, v: f"{t},{o},{h},{lo},{c},{v},{t + 59999},1000.0,12,1.0,100.0,0",
        ),
        (
            "binance_us.csv.gz",
            None,
            lambda i, t, o, h, lo, c, v: f"{t * 1000},{o},{h},{lo},{c},{v},{t * 1000 + 59999999},1.0,12,1.0,1.0,0",
        ),
        (
            "long.csv",
            "symbol,timestamp,open,high,low,close,volume",
            lambda i, t, o, h, lo, c, v: f"BTCUSDT,{t},{o},{h},{lo},{c},{v}\nETHUSDT,{t},1,1,1,1,1",
        ),
    ],
)
def test_csv_import_detects_each_layout_and_reorders_to_jesse_columns(tmp_path: Path, name, header, fmt):
    lines = [header] if header else []
    for i in range(5):
        lines.append(fmt(i, T0 + i * MINUTE_MS, *_ohlcv(i)))
    rows, _ = read_csv_candles(_write(tmp_path / name, lines), symbol="BTC-USDT")
    np.testing.assert_array_equal(rows, _expected(5))


def test_a_file_with_a_gap_is_stored_and_the_gap_reported_exactly(tmp_path: Path):
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"{T0 + i * MINUTE_MS},{','.join(map(str, _ohlcv(i)))}" for i in range(10) if i not in (4, 5, 6)]
    rows, _ = read_csv_candles(_write(tmp_path / "gap.csv", lines))
    info = CandleStore(tmp_path / "candles").save("binance", "BTC-USDT", rows, "csv:gap.csv", synthetic=False)
    assert [(g.first_missing, g.last_missing, g.missing_minutes) for g in info.gaps] == [
        ("2025-05-20T00:04:00Z", "2025-05-20T00:06:00Z", 3)
    ]


def test_filling_gaps_is_explicit_flat_and_recorded(tmp_path: Path):
    store = CandleStore(tmp_path)
    store.save("binance", "BTC-USDT", _expected(6, skip=(2, 3)), "test", synthetic=False)
    info = store.fill_gaps("binance", "BTC-USDT")
    rows = store.load("binance", "BTC-USDT")
    assert info.gaps == [] and info.filled[0].missing_minutes == 2 and len(rows) == 6
    prev_close = _expected(2)[1, 2]
    np.testing.assert_array_equal(rows[2, 1:5], [prev_close] * 4)
    assert rows[2, 5] == 0.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"{T0 + 2 * MINUTE_MS},102,104,101,abc,12", "line 4: the close value is not a number"),
        (f"{T0 + 2 * MINUTE_MS},102,104,105,103,12", "line 4: prices must be > 0"),
        (f"{T0 + MINUTE_MS},102,104,101,103,12", "the same minute appears twice"),
        ("yesterday,102,104,101,103,12", "line 4: the time is neither epoch time nor an ISO-8601 date"),
    ],
)
def test_a_malformed_row_names_its_line_without_quoting_it(tmp_path: Path, line, message):
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"{T0 + i * MINUTE_MS},{','.join(map(str, _ohlcv(i)))}" for i in range(2)]
    lines += [line]
    with pytest.raises(CandleError, match=re.escape(message)) as caught:
        read_csv_candles(_write(tmp_path / "bad.csv", lines))
    assert "abc" not in str(caught.value) and "yesterday" not in str(caught.value)


def test_a_file_of_hourly_candles_is_refused_with_the_reason(tmp_path: Path):
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"{T0 + i * 60 * MINUTE_MS},{','.join(map(str, _ohlcv(i)))}" for i in range(5)]
    with pytest.raises(CandleError, match="has 60-minute candles; the store holds 1-minute candles"):
        read_csv_candles(_write(tmp_path / "hourly.csv", lines))


def test_a_header_without_the_needed_columns_says_what_is_missing(tmp_path: Path):
    with pytest.raises(CandleError, match=r"lacks column\(s\) \['volume'\]"):
        read_csv_candles(_write(tmp_path / "x.csv", ["timestamp,open,high,low,close", f"{T0},1,1,1,1"]))


def test_new_rows_merge_with_stored_ones_and_win_at_the_same_minute(tmp_path: Path):
    store = CandleStore(tmp_path)
    store.save("binance", "ETH-USDT", _expected(4), "first", synthetic=False)
    newer = _expected(6)[3:]
    newer[0, 2] = 104.5
    info = store.save("binance", "ETH-USDT", newer, "second", synthetic=False)
    rows = store.load("binance", "ETH-USDT")
    assert info.rows == 6 and info.sources == ["first", "second"] and rows[3, 2] == 104.5
    assert len(store.load("binance", "ETH-USDT", T0 + MINUTE_MS, T0 + 3 * MINUTE_MS)) == 2


def test_loading_an_unknown_market_lists_what_is_stored_and_how_to_import(tmp_path: Path):
    store = CandleStore(tmp_path)
    store.save("binance", "BTC-USDT", _expected(3), "t", synthetic=False)
    with pytest.raises(CandleError, match=r"Stored markets: binance:BTC-USDT\. Import some with import_candles"):
        store.load("binance", "DOGE-USDT")


def test_synthetic_candles_are_deterministic_valid_and_flagged(tmp_path: Path):
    a, schedule = synthetic_candles(T0, 3 * 7 * 1440, seed=3)
    b, _ = synthetic_candles(T0, 3 * 7 * 1440, seed=3)
    c, _ = synthetic_candles(T0, 3 * 7 * 1440, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert [s[0] for s in schedule] == ["trend_up", "range", "crash"]
    info = CandleStore(tmp_path).save("synthetic", "BTC-USDT", a, "synthetic(seed=3)", synthetic=True)
    assert info.synthetic and info.gaps == []
    crash = a[14 * 1440 : 21 * 1440]
    assert crash[-1, 2] < crash[0, 1] * 0.85  # the crash regime really falls

"""Candle store figures on a year of 1-minute candles (525,600 rows).

Measures: CSV import of a year (target <= 10 s) and loading a year from the store (target <= 0.3 s). The CSV is
written from the synthetic generator in Binance's header layout; when the team's real 90-day Binance file is
beside the repo (../shared/data/candles), its import time is printed too.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from jesse_mcp.candles.csv_import import read_csv_candles, synthetic_candles
from shared.market.candles import CandleStore

YEAR = 525_600
REAL = Path(__file__).resolve().parents[2] / "shared/data/candles/binance_spot_BTCUSDT_1m_20250520_20250818.csv.gz"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows, _ = synthetic_candles(1_704_067_200_000, YEAR, seed=1)
        csv = Path(tmp) / "year.csv"
        ohlcv = rows[:, [0, 1, 3, 4, 2, 5]]  # Jesse order -> timestamp, open, high, low, close, volume
        np.savetxt(
            csv,
            ohlcv,
            delimiter=",",
            fmt=["%d", "%.2f", "%.2f", "%.2f", "%.2f", "%.5f"],
            header="timestamp,open,high,low,close,volume",
            comments="",
        )
        store = CandleStore(Path(tmp) / "candles")
        t = time.perf_counter()
        parsed, _ = read_csv_candles(csv)
        store.save("binance", "BTC-USDT", parsed, "csv", synthetic=False)
        import_s = time.perf_counter() - t
        loads = []
        for _ in range(5):
            t = time.perf_counter()
            loaded = np.array(store.load("binance", "BTC-USDT"))
            loads.append(time.perf_counter() - t)
        print(
            f"CSV import of a year ({len(parsed):,} rows, {csv.stat().st_size / 1e6:.0f} MB): {import_s:.2f} s "
            "(target <= 10 s)"
        )
        print(
            f"load a year from the store into memory: median {sorted(loads)[2] * 1000:.1f} ms, "
            f"max {max(loads) * 1000:.1f} ms (target <= 300 ms); rows {len(loaded):,}"
        )
        if REAL.exists():
            t = time.perf_counter()
            real, _ = read_csv_candles(REAL)
            print(f"real Binance file, {len(real):,} rows: {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()

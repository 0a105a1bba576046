"""A worker reads a market's candles once and reuses them across runs, never serving a changed store stale."""

from __future__ import annotations

import numpy as np
import pytest

from jesse_mcp.backtesting import engine
from jesse_mcp.candles.ops import generate_synthetic
from shared.market.candles import CandleStore

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DAY_MS = 86_400_000


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "_rows_cache", type(engine._rows_cache)())  # each test starts with an empty cache
    s = CandleStore(tmp_path / "candles")
    generate_synthetic(s, "BTC-USDT", START_MS, START_MS + 3 * DAY_MS, seed=1)
    return s


@pytest.fixture
def reads(monkeypatch):
    """Counts the reads of the store."""
    count = {"n": 0}
    original = CandleStore.load

    def counting(self, *args, **kwargs):
        count["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CandleStore, "load", counting)
    return count


def _spec(store: CandleStore) -> dict:
    return {
        "store_root": str(store.root),
        "exchange": "synthetic",
        "symbol": "BTC-USDT",
        "start_ms": START_MS + DAY_MS,
        "end_ms": START_MS + 2 * DAY_MS,
        "warmup_minutes": 60,
    }


def test_a_second_run_on_the_same_market_does_not_read_the_store_again(store, reads):
    first = engine.load_rows(_spec(store))
    second = engine.load_rows(_spec(store))
    assert reads["n"] == 1
    assert np.array_equal(first, second) and len(first) == 24 * 60 + 60


def test_each_run_gets_a_private_writable_copy(store, reads):
    first = engine.load_rows(_spec(store))
    first[:, 2] = -1.0  # a transform or Jesse writing to its candles
    second = engine.load_rows(_spec(store))
    assert (second[:, 2] > 0).all() and second.flags.writeable


def test_a_changed_store_file_is_read_again(store, reads):
    before = engine.load_rows(_spec(store))
    changed = np.array(store.load("synthetic", "BTC-USDT"))
    changed[:, 1:5] *= 2.0  # every price doubled: still valid candles
    store.save("synthetic", "BTC-USDT", changed, source="test", synthetic=True)
    reads["n"] = 0
    after = engine.load_rows(_spec(store))
    assert reads["n"] == 1
    assert np.allclose(after[:, 2], before[:, 2] * 2.0)


def test_the_cache_keeps_only_a_few_ranges(store, reads):
    spec = _spec(store)
    for hours in range(engine.ROWS_CACHE_ENTRIES + 1):
        engine.load_rows({**spec, "end_ms": spec["end_ms"] + hours * 3_600_000 - DAY_MS // 2})
    assert len(engine._rows_cache) == engine.ROWS_CACHE_ENTRIES
    engine.load_rows({**spec, "end_ms": spec["end_ms"] - DAY_MS // 2})  # the oldest: evicted, read again
    assert reads["n"] == engine.ROWS_CACHE_ENTRIES + 2

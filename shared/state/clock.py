"""UTC timestamps as stored in `state.db` and shown in outputs."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utc_now_iso(ms: int | None = None) -> str:
    t = datetime.fromtimestamp((ms if ms is not None else time.time_ns() // 1_000_000) / 1000, UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")

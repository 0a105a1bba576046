"""Latency of the pure guard decision, `shared.policy.guard.decide`, alone (no MCP, no journal, no I/O).

A round-robin mix of calls against the default configuration: read, research and admin (allowed), paper for
mean_reversion (own stage paper, global stage exploration -> stage_too_low denial), and research while HALTED
(trading_halted denial). Each decision is timed with perf_counter_ns; prints p50, p99 and p99.9 in milliseconds.
Target: p99 < 0.2 ms.

Run: uv run python bench/bench_guard.py
"""

from __future__ import annotations

import os
import tempfile
import time

from shared.config.models import TradingConfig
from shared.policy.guard import CallRecord, decide

DECISIONS = 200_000
WARMUP = 5_000
TIME_LIMIT_S = 120

MIX = [
    ("read", CallRecord("bench", "get_policy", "read"), "ACTIVE", "allow"),
    ("research", CallRecord("bench", "scan", "research"), "ACTIVE", "allow"),
    ("admin", CallRecord("bench", "update_config", "admin"), "ACTIVE", "allow"),
    ("paper@paper/global exploration", CallRecord("bench", "order", "paper", "mean_reversion"), "ACTIVE", "deny"),
    ("research while HALTED", CallRecord("bench", "scan", "research"), "HALTED", "deny"),
]


def percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    index = min(len(sorted_ns) - 1, max(0, round(q / 100 * len(sorted_ns)) - 1))
    return sorted_ns[index] / 1e6


def main() -> None:
    cfg = TradingConfig()
    print(f"global stage {cfg.stage}; mean_reversion stage {cfg.strategies['mean_reversion'].stage}")
    for label, call, state, expected in MIX:
        d = decide(call, cfg, state)
        print(f"  {label:<32} -> {d.label:<5} {d.rule or '-':<16} (expected {expected})")
        if d.label != expected:
            raise SystemExit(f"unexpected decision for {label}: {d}")
    for i in range(WARMUP):
        _, call, state, _ = MIX[i % len(MIX)]
        decide(call, cfg, state)
    samples: list[int] = []
    deadline = time.monotonic() + TIME_LIMIT_S
    clock = time.perf_counter_ns
    for i in range(DECISIONS):
        _, call, state, _ = MIX[i % len(MIX)]
        t0 = clock()
        decide(call, cfg, state)
        samples.append(clock() - t0)
        if i % 10_000 == 0 and time.monotonic() > deadline:
            print(f"time limit reached after {i} decisions")
            break
    samples.sort()
    mean_ms = sum(samples) / len(samples) / 1e6
    print(f"{len(samples)} decisions (mix of {len(MIX)}), after {WARMUP} warm-up")
    print(f"mean {mean_ms:.5f} ms  max {samples[-1] / 1e6:.4f} ms")
    p50, p99, p999 = (percentile(samples, q) for q in (50, 99, 99.9))
    print(f"p50 {p50:.5f} ms  p99 {p99:.5f} ms  p99.9 {p999:.5f} ms (target p99 < 0.2 ms)")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="bench-guard-") as tmp:
        os.environ["TRADING_MCP_HOME"] = tmp  # decide() does no I/O; set anyway so nothing touches ~/.trading-mcp
        main()

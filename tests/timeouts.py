"""Hang guards: bounds that only stop a test that would otherwise never end, never what a test checks.

Each is many times what its wait takes on a 2-core machine shared with five other builds (the longest, the demo,
about 35 s there), so load cannot trip one. A test whose bound IS the requirement (workers gone within 5 s of their
server, a GLM timeout of 0.3 s falling back within 3 s) keeps its own number and says so. TRADING_MCP_TEST_SLACK, a
factor (default 1), stretches every guard on a slower machine still."""

from __future__ import annotations

import os

SLACK = max(1.0, float(os.environ.get("TRADING_MCP_TEST_SLACK") or 1))


def hang_guard(seconds: float) -> float:
    """`seconds` (chosen generous) times the slack."""
    return seconds * SLACK

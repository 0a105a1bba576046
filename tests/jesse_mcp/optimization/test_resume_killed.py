"""A study whose server is killed (SIGKILL, a real stdio server process) reads as interrupted in the next server and
resumes there to the trials it asked for."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import anyio
import pytest

from jesse_mcp.candles.ops import generate_synthetic
from shared.market.candles import CandleStore
from tests.mcp_helpers import payload
from tests.timeouts import hang_guard
from trading_cli.client import open_session

START = 1_704_067_200_000  # 2024-01-01
DAY = 86_400_000
pytestmark = [pytest.mark.anyio, pytest.mark.slow]
ARGS = {
    "strategy": "trend_following",
    "timeframe": "1h",
    "trials": 8,
    "seed": 3,
    "sampler": "random",
    "min_trades": 1,
    "space": {"fast_period": {"min": 5, "max": 15}, "slow_period": {"min": 20, "max": 40}},
    "wait": False,
}


def _server_pids() -> list[int]:
    """The jesse-mcp server processes this test started (children of this process)."""
    me, found = os.getpid(), []
    for p in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{p}/stat").read_text()
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if int(stat.rsplit(")", 1)[1].split()[1]) == me and "jesse-mcp" in cmd:
                found.append(int(p))
    return found


async def test_a_study_whose_server_was_killed_resumes_in_the_next_server(tmp_path):
    home = tmp_path / "home"
    generate_synthetic(CandleStore(home / "candles"), "BTC-USDT", START, START + 20 * DAY, seed=11)
    env = {"TRADING_MCP_HOME": str(home), "TRADING_MCP_CONFIG": str(home / "config.json")}
    with open(tmp_path / "stderr.log", "w") as err, anyio.fail_after(hang_guard(300)):
        with contextlib.suppress(Exception):  # the session dies with its server
            async with open_session("jesse-mcp", env, interactive=False, errlog=err) as session:
                study = payload(await session.call_tool("optimize_strategy", ARGS))["id"]
                while payload(await session.call_tool("get_optimization", {"id": study}))["trials_done"] < 2:
                    await anyio.sleep(0.2)
                [pid] = _server_pids()
                os.kill(pid, signal.SIGKILL)
                await session.call_tool("get_optimization", {"id": study})
        async with open_session("jesse-mcp", env, interactive=False, errlog=err) as session:
            seen = payload(await session.call_tool("get_optimization", {"id": study}))
            assert seen["status"] == "interrupted" and 2 <= seen["trials_done"] < 8
            listed = payload(await session.call_tool("list_optimizations", {}))["studies"]
            assert [s["status"] for s in listed if s["id"] == study] == ["interrupted"]
            done = payload(await session.call_tool("resume_optimization", {"id": study, "wait": True}))
    assert done["status"] == "finished" and done["trials_done"] == 8
    assert len({tuple(sorted(t["params"].items())) for t in done["trials"]}) == 8
    assert done["report"]["trials"]["total"] == 8

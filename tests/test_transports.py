"""Each console script over stdio (nothing but protocol on stdout) and one streamable-HTTP session."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.timeouts import hang_guard

pytestmark = pytest.mark.slow  # every test starts a console script

BIN = Path(sys.executable).parent
HTTP_VARS = ("TRADING_MCP_TOKEN", "TRADING_MCP_ALLOWED_HOSTS", "TRADING_MCP_ALLOWED_ORIGINS")


def _env(home: Path) -> dict[str, str]:
    """The test's own home; no token or allowlist from the developer's shell (loopback then needs no token)."""
    env = {k: v for k, v in os.environ.items() if k not in HTTP_VARS}
    return {**env, "TRADING_MCP_HOME": str(home), "TRADING_MCP_CONFIG": str(home / "config.json")}


def _rpc(id_: int | None, method: str, params: dict | None = None) -> str:
    msg: dict = {"jsonrpc": "2.0", "method": method}
    if id_ is not None:
        msg["id"] = id_
    if params is not None:
        msg["params"] = params
    return json.dumps(msg) + "\n"


@pytest.mark.parametrize("script", ["jesse-mcp", "asset-price-mcp", "discovery-mcp"])
def test_console_script_speaks_only_protocol_on_stdout(tmp_path: Path, script: str):
    requests = (
        _rpc(
            1,
            "initialize",
            {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "smoke", "version": "1"}},
        )
        + _rpc(None, "notifications/initialized")
        + _rpc(2, "tools/list")
        + _rpc(3, "tools/call", {"name": "get_policy", "arguments": {"strategy": "trend_following"}})
    )
    with subprocess.Popen(
        [str(BIN / script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(tmp_path),
        text=True,
    ) as proc:
        answers, rest = _exchange(proc, script, requests)
    assert rest.strip() == "", f"unexpected stdout after the session: {rest[:200]!r}"
    assert answers[1]["result"]["serverInfo"]["name"] == script
    names = {t["name"] for t in answers[2]["result"]["tools"]}
    assert {"get_policy", "get_journal"} <= names
    result = answers[3]["result"]
    assert not result["isError"] and result["structuredContent"]["risk_profile"] == "moderate"


@pytest.mark.parametrize("script", ["jesse-mcp", "asset-price-mcp", "discovery-mcp"])
def test_a_server_starts_with_a_binary_config_file_and_refuses_calls_with_config_invalid(tmp_path: Path, script: str):
    path = tmp_path / "config.json"
    path.write_bytes(b"\xff\xfe\x00garbage\x80")
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "smoke", "version": "1"}}
    requests = (
        _rpc(1, "initialize", hello)
        + _rpc(None, "notifications/initialized")
        + _rpc(2, "tools/list")
        + _rpc(3, "tools/call", {"name": "get_policy", "arguments": {}})
    )
    with subprocess.Popen(
        [str(BIN / script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(tmp_path),
        text=True,
    ) as proc:
        answers, _ = _exchange(proc, script, requests)
        log = proc.stderr.read()
    result = answers[3]["result"]
    text = result["content"][0]["text"]
    assert result["isError"] and "config_invalid" in text and str(path) in text and "not UTF-8" in text
    assert "Traceback" not in log and path.read_bytes() == b"\xff\xfe\x00garbage\x80"


def _exchange(proc: subprocess.Popen, script: str, requests: str) -> tuple[dict, str]:
    """Send the requests, read until three answers came, close stdin: the server must then exit by itself."""
    answers: dict = {}
    proc.stdin.write(requests)
    proc.stdin.flush()
    lines = []
    try:
        while len(answers) < 3:
            line = proc.stdout.readline()
            assert line, f"{script} closed stdout early; stderr: {proc.stderr.read()[-2000:]}"
            lines.append(line)
            message = json.loads(line)  # any non-JSON line on stdout fails here
            assert message["jsonrpc"] == "2.0"
            if "id" in message:
                answers[message["id"]] = message
        proc.stdin.close()
        assert proc.wait(timeout=hang_guard(120)) == 0
        rest = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    return answers, rest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.anyio
async def test_streamable_http_serves_a_session_on_loopback_without_a_token(tmp_path: Path):
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "discovery-mcp"), "--transport", "streamable-http", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=_env(tmp_path),
    )
    try:
        with anyio.fail_after(hang_guard(120)):
            async with httpx.AsyncClient(timeout=1) as probe:
                while True:  # poll the health endpoint until the server answers, within the deadline
                    try:
                        health = await probe.get(f"http://127.0.0.1:{port}/health")
                        break
                    except httpx.TransportError:
                        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
                        await anyio.sleep(0.05)
            async with (
                streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write, _),
                ClientSession(read, write) as session,
            ):
                info = await session.initialize()
                tools = (await session.list_tools()).tools
                result = await session.call_tool("get_policy", {})
        assert health.json() == {"status": "ok", "server": "discovery-mcp"}
        assert info.serverInfo.name == "discovery-mcp"
        assert "get_journal" in {t.name for t in tools}
        assert result.structuredContent["global_stage"] == "exploration"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=hang_guard(60))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=hang_guard(60))
        log.close()

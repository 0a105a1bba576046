"""The streamable-HTTP edge: start refusal, Host/Origin/token checks, /health, the journal over HTTP, `--url`."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from starlette.responses import PlainTextResponse

from shared.server import common as server_common
from shared.server.http_edge import HttpGuard, HttpSecurityError, http_policy
from tests.timeouts import hang_guard

pytestmark = pytest.mark.xdist_group("http-served")  # one xdist worker starts the served server once

BIN = Path(sys.executable).parent
OWN_VARS = (
    "TRADING_MCP_TOKEN",
    "TRADING_MCP_ALLOWED_HOSTS",
    "TRADING_MCP_ALLOWED_ORIGINS",
    "TRADING_MCP_MAX_BODY_BYTES",
)
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
REQUEST_S = hang_guard(60)  # a hang guard for one request to the local server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OWN_VARS}
    return {**env, "TRADING_MCP_LOG_LEVEL": "INFO", **extra}


@dataclass
class Served:
    url: str
    base: str
    port: int
    token: str
    log: Path
    home: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """discovery-mcp on 127.0.0.1 with a token, bounded by `timeout` and stopped in the finally."""
    home = tmp_path_factory.mktemp("http-home")
    port, token = _free_port(), secrets.token_urlsafe(32)
    env = _clean_env(TRADING_MCP_HOME=str(home), TRADING_MCP_CONFIG=str(home / "config.json"), TRADING_MCP_TOKEN=token)
    command = [str(BIN / "discovery-mcp"), "--transport", "streamable-http", "--host", "127.0.0.1", "--port", str(port)]
    if shutil.which("timeout"):  # the server stops by itself even if this process dies
        command = ["timeout", "--kill-after=5", f"{hang_guard(900):.0f}", *command]
    log_path = home / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=log, env=env, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_healthy(proc, base, log_path)
            yield Served(f"{base}/mcp", base, port, token, log_path, home)
        finally:
            _stop(proc)


def _wait_healthy(proc: subprocess.Popen, base: str, log_path: Path) -> None:
    deadline = time.monotonic() + hang_guard(300)
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        try:  # the pause between polls, and a server that died is seen at once
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"the server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
    pytest.fail(f"the server was not healthy within {hang_guard(300):g} s: {log_path.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # `timeout` passes SIGTERM on to the server
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the process group this fixture started
        proc.wait(timeout=15)


def _cli(*args: str, token: str | None, home: Path) -> subprocess.CompletedProcess:
    env = _clean_env(TRADING_MCP_HOME=str(home), TRADING_MCP_CONFIG=str(home / "config.json"))
    if token is not None:
        env["TRADING_MCP_TOKEN"] = token
    return subprocess.run(
        [str(BIN / "trading-mcp"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=hang_guard(300),
        stdin=subprocess.DEVNULL,
    )


# --- starting up ---------------------------------------------------------------------------------------------------


def test_non_loopback_bind_without_a_token_is_refused_with_the_remedy():
    with pytest.raises(HttpSecurityError) as err:
        http_policy("discovery-mcp", "0.0.0.0", 8002, env={})
    assert "TRADING_MCP_TOKEN" in str(err.value) and "at least 16" in str(err.value)


def test_run_server_exits_2_before_building_when_a_non_loopback_host_has_no_token(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    for name in OWN_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(server_common, "setup_logging", lambda: None)  # keep the test process's logging as it is

    def build(deps):
        raise AssertionError("the server must not be built")

    argv = ["--transport", "streamable-http", "--host", "0.0.0.0", "--port", "8002"]
    with pytest.raises(SystemExit) as exit_:
        server_common.run_server("discovery-mcp", "discovery", build, argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "refusing to serve on 0.0.0.0" in err and "set TRADING_MCP_TOKEN" in err


def test_short_token_is_refused_even_on_loopback_without_echoing_it():
    with pytest.raises(HttpSecurityError) as err:
        http_policy("discovery-mcp", "127.0.0.1", 8002, env={"TRADING_MCP_TOKEN": "sesame-42"})
    assert "9 characters" in str(err.value) and "sesame-42" not in str(err.value)


def test_non_loopback_bind_with_a_token_allows_its_own_and_configured_hosts():
    env = {
        "TRADING_MCP_TOKEN": "t" * 32,
        "TRADING_MCP_ALLOWED_HOSTS": "mcp.example.lan:8002, Proxy.Example",
        "TRADING_MCP_ALLOWED_ORIGINS": "https://app.example.lan/",
    }
    policy = http_policy("discovery-mcp", "10.0.0.5", 8002, env=env)
    assert policy.allowed_hosts == {"10.0.0.5:8002", "mcp.example.lan:8002", "proxy.example"}
    assert policy.allowed_origins == {"http://10.0.0.5:8002", "https://app.example.lan"}
    assert "t" * 32 not in repr(policy)
    assert policy.sdk_settings().enable_dns_rebinding_protection


def test_loopback_bind_allows_every_loopback_name_on_its_port():
    policy = http_policy("discovery-mcp", "localhost", 8002, env={})
    assert policy.allowed_hosts == {"localhost:8002", "127.0.0.1:8002", "[::1]:8002"}
    assert policy.token is None


def test_an_allowed_origin_with_a_path_is_refused_with_the_expected_form():
    with pytest.raises(HttpSecurityError, match=r"scheme://host\[:port\]"):
        http_policy("x", "127.0.0.1", 8002, env={"TRADING_MCP_ALLOWED_ORIGINS": "http://ok.lan/app"})


# --- the guard in front of the app --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_refused_requests_never_reach_the_inner_app():
    reached: list[str] = []

    async def inner(scope, receive, send):
        reached.append(scope["path"])
        await PlainTextResponse("inner")(scope, receive, send)

    policy = http_policy("x", "127.0.0.1", 8002, env={"TRADING_MCP_TOKEN": "k" * 20})
    transport = httpx.ASGITransport(app=HttpGuard(inner, policy))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8002") as client:
        assert (await client.post("/mcp")).status_code == 401
        assert (await client.post("/mcp", headers={"Authorization": "Bearer " + "j" * 20})).status_code == 401
        assert (await client.post("/mcp", headers={"Host": "evil.example"})).status_code == 421
        assert (await client.get("/health")).status_code == 200
        assert reached == []
        assert (await client.post("/mcp", headers={"Authorization": "Bearer " + "k" * 20})).text == "inner"
    assert reached == ["/mcp"]


# --- a real server over HTTP ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_health_answers_without_a_token_and_says_nothing_more(served: Served):
    response = httpx.get(f"{served.base}/health", timeout=REQUEST_S)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "server": "discovery-mcp"}


@pytest.mark.slow
def test_missing_token_gets_401_with_a_bearer_challenge(served: Served):
    response = httpx.post(served.url, json=INITIALIZE, headers=MCP_HEADERS, timeout=REQUEST_S)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in response.json()["error_description"]


@pytest.mark.slow
def test_wrong_token_gets_401_and_the_answer_never_shows_the_real_one(served: Served):
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {served.token[:-1]}x"}
    response = httpx.post(served.url, json=INITIALIZE, headers=headers, timeout=REQUEST_S)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert served.token not in response.text and "Traceback" not in response.text


@pytest.mark.slow
def test_wrong_host_gets_421_even_with_the_right_token(served: Served):
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {served.token}", "Host": f"evil.example:{served.port}"}
    assert httpx.post(served.url, json=INITIALIZE, headers=headers, timeout=REQUEST_S).status_code == 421
    assert httpx.get(f"{served.base}/health", headers={"Host": "evil.example"}, timeout=REQUEST_S).status_code == 421


@pytest.mark.slow
def test_wrong_origin_gets_403_even_with_the_right_token(served: Served):
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {served.token}", "Origin": "http://evil.example"}
    assert httpx.post(served.url, json=INITIALIZE, headers=headers, timeout=REQUEST_S).status_code == 403


@pytest.mark.slow
@pytest.mark.anyio
async def test_tool_calls_over_http_with_the_token_are_guarded_and_journaled(served: Served):
    auth = {"Authorization": f"Bearer {served.token}"}
    async with (
        httpx.AsyncClient(headers=auth, timeout=httpx.Timeout(REQUEST_S)) as client,
        streamable_http_client(served.url, http_client=client) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        info = await session.initialize()
        allowed = await session.call_tool("get_policy", {"strategy": "http_probe"})
        invalid = await session.call_tool("get_policy", {"strategy": "http_probe", "bogus": 1})
        journal = await session.call_tool("get_journal", {"tool": "get_policy", "limit": 10})
    assert info.serverInfo.name == "discovery-mcp"
    assert not allowed.isError and invalid.isError and "unknown argument 'bogus'" in invalid.content[0].text
    entries = [e for e in journal.structuredContent["entries"] if e["strategy"] == "http_probe"]
    assert [(e["server"], e["decision"], e["outcome"]) for e in entries] == [
        ("discovery-mcp", "invalid", "invalid_arguments"),
        ("discovery-mcp", "allow", "ok"),
    ]


@pytest.mark.slow
def test_the_server_log_never_contains_the_token(served: Served):
    httpx.post(served.url, json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": "Bearer nope"}, timeout=REQUEST_S)
    httpx.post(
        served.url,
        json=INITIALIZE,
        headers={**MCP_HEADERS, "Authorization": f"Bearer {served.token}"},
        timeout=REQUEST_S,
    )
    log = served.log.read_text()
    assert "refused POST '/mcp': wrong bearer token" in log
    assert served.token not in log


# --- the client's --url --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_call_over_url_uses_the_running_server(served: Served, tmp_path: Path):
    done = _cli(
        "--url", served.url, "call", "discovery", "get_policy", "--output-json", token=served.token, home=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["global_stage"] == "exploration"
    assert not (tmp_path / "state.db").exists()  # no stdio server was started in the client's own home


@pytest.mark.slow
def test_cli_tools_over_url_lists_the_server_that_answers(served: Served, tmp_path: Path):
    done = _cli("--url", served.url, "tools", "--json", token=served.token, home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert list(json.loads(done.stdout)) == ["discovery-mcp"]


@pytest.mark.slow
def test_cli_over_url_with_a_wrong_token_exits_2_without_a_traceback(served: Served, tmp_path: Path):
    done = _cli("--url", served.url, "call", "discovery", "get_policy", token="w" * 32, home=tmp_path)
    assert done.returncode == 2
    assert "refused the bearer token (HTTP 401)" in done.stderr and "Traceback" not in done.stderr
    assert "w" * 32 not in done.stderr


@pytest.mark.slow
def test_cli_over_url_without_a_token_says_to_set_one(served: Served, tmp_path: Path):
    done = _cli("--url", served.url, "tools", token=None, home=tmp_path)
    assert done.returncode == 2
    assert "set TRADING_MCP_TOKEN" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_cli_over_url_refuses_a_server_name_that_is_not_the_one_there(served: Served, tmp_path: Path):
    done = _cli("--url", served.url, "call", "jesse", "get_policy", token=served.token, home=tmp_path)
    assert done.returncode == 2
    assert "serves discovery-mcp, not jesse-mcp" in done.stderr


@pytest.mark.slow
def test_cli_over_url_that_nothing_answers_exits_2_with_the_remedy(tmp_path: Path):
    url = f"http://127.0.0.1:{_free_port()}/mcp"
    done = _cli("--url", url, "call", "discovery", "get_policy", token=None, home=tmp_path)
    assert done.returncode == 2
    assert f"cannot reach {url}" in done.stderr and "Traceback" not in done.stderr


# --- body size ---------------------------------------------------------------------------------------------------


def test_a_body_declared_above_the_limit_gets_413_before_parsing(served: Served):
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "pad": "' + b"x" * 1_100_000 + b'"}'
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {served.token}"}
    response = httpx.post(served.url, content=body, headers=headers, timeout=30)
    assert response.status_code == 413
    assert "1,048,576 bytes" in response.text and "TRADING_MCP_MAX_BODY_BYTES" in response.text


def test_a_streamed_body_is_counted_and_refused_once_it_crosses_the_limit(served: Served):
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked; the last chunk crosses the limit
        yield b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "pad": "'
        for _ in range(16):
            yield b"x" * 65_536
        yield b'"}'

    headers = {**MCP_HEADERS, "Authorization": f"Bearer {served.token}"}
    response = httpx.post(served.url, content=chunks(), headers=headers, timeout=30)
    assert response.status_code == 413 and "too large" in response.text


def test_the_body_limit_comes_from_the_environment_and_a_bad_value_is_refused():
    assert http_policy("x", "127.0.0.1", 1, env={"TRADING_MCP_MAX_BODY_BYTES": "4096"}).max_body_bytes == 4096
    with pytest.raises(HttpSecurityError, match="TRADING_MCP_MAX_BODY_BYTES"):
        http_policy("x", "127.0.0.1", 1, env={"TRADING_MCP_MAX_BODY_BYTES": "lots"})

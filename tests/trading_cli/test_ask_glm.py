"""`trading-mcp ask` with GLM as the fallback for text the parser does not understand, through the real zhipuai SDK
against a local fake of Zhipu's chat-completions API, and end to end over stdio against the real servers."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import types

from shared.config.models import GlmConfig, TradingConfig
from shared.config.store import ConfigStore
from shared.state.journal import JournalRow
from shared.state.store import Store
from tests.fake_zhipu_server import FakeZhipu
from tests.timeouts import hang_guard
from tests.trading_cli.test_cli import CLI
from trading_cli.ask.glm import ToolInfo, glm_fallback, server_tools, tool_info
from trading_cli.ask.parse import NotUnderstood, parse

KEY = "a1b2c3d4e5f6.s3cr3tPartOfTheKey"  # shaped like a Zhipu "id.secret" key
READ_ONLY_TEXT = "how risky may mean reversion get"
CHANGING_TEXT = "move trend following up a level"
PROMOTE = ("jesse_mcp__request_stage_promotion", {"strategy": "trend_following", "to_stage": "paper"})


def _env(home: Path, **extra: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZHIPUAI_")}
    env |= {
        "TRADING_MCP_HOME": str(home),
        "TRADING_MCP_CONFIG": str(home / "config.json"),
        "TRADING_MCP_LOG_LEVEL": "WARNING",
    }
    env |= {k: v for k, v in extra.items() if v is not None}
    return env


def ask(home: Path, fake: FakeZhipu, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess:
    env = _env(home, ZHIPUAI_API_KEY=key, ZHIPUAI_BASE_URL=fake.base_url)
    return subprocess.run(
        [CLI, "ask", *args], capture_output=True, text=True, env=env, timeout=hang_guard(300), stdin=subprocess.DEVNULL
    )


@pytest.fixture
def fake() -> Iterator[FakeZhipu]:
    with FakeZhipu(lifetime_s=120) as server:
        yield server


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> list[ToolInfo]:
    """The real tool lists of the three servers, asked once over stdio."""
    env = _env(tmp_path_factory.mktemp("catalogue-home"))
    return anyio.run(server_tools, env)


def unparsed(text: str) -> NotUnderstood:
    with pytest.raises(NotUnderstood) as caught:
        parse(text)
    return caught.value


def journaled(home: Path, tool: str) -> list[JournalRow]:
    store = Store(home / "state.db")
    try:
        return store.journal_query(tool=tool)
    finally:
        store.close()


# --- end to end over stdio -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_unparsed_text_goes_to_glm_whose_read_only_choice_is_shown_first_then_run(tmp_path: Path, fake: FakeZhipu):
    fake.tool_choice = ("jesse_mcp__get_policy", {"strategy": "mean_reversion"})
    done = ask(tmp_path, fake, READ_ONLY_TEXT)
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    assert first == 'GLM chose: jesse-mcp.get_policy {"strategy": "mean_reversion"}'
    assert any("conservative" in line for line in rest)
    assert "asking GLM (glm-4-flash at 127.0.0.1)" in done.stderr
    assert KEY not in done.stdout + done.stderr


@pytest.mark.slow
def test_a_state_changing_choice_without_yes_or_a_terminal_is_shown_not_run_and_exits_2(
    tmp_path: Path, fake: FakeZhipu
):
    fake.tool_choice = PROMOTE
    done = ask(tmp_path, fake, CHANGING_TEXT)
    assert done.returncode == 2, done.stderr
    assert done.stdout.splitlines()[0].startswith("GLM chose: jesse-mcp.request_stage_promotion {")
    assert "not run: jesse-mcp.request_stage_promotion is not read-only" in done.stderr
    assert "rerun with --yes" in done.stderr and "Traceback" not in done.stderr
    assert journaled(tmp_path, "request_stage_promotion") == []


@pytest.mark.slow
def test_with_yes_a_state_changing_choice_runs_and_the_guards_denial_exits_1(tmp_path: Path, fake: FakeZhipu):
    fake.tool_choice = PROMOTE
    done = ask(tmp_path, fake, CHANGING_TEXT, "--yes")
    assert done.returncode == 1
    assert "promotion_gates" in done.stderr
    assert [row.decision for row in journaled(tmp_path, "request_stage_promotion")] == ["deny"]


@pytest.mark.slow
def test_an_http_error_from_glm_exits_2_without_a_traceback_or_the_key(tmp_path: Path, fake: FakeZhipu):
    fake.behaviour = "http_401"  # the fake echoes the Authorization header in its error body
    done = ask(tmp_path, fake, READ_ONLY_TEXT)
    assert done.returncode == 2
    assert "GLM could not choose a call: glm http 401: authentication failed, check ZHIPUAI_API_KEY" in done.stderr
    assert "Commands look like" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == "" and KEY not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("key", [None, "   "], ids=["unset", "blank"])
def test_without_a_key_unparsed_text_gets_the_closest_commands_and_nothing_is_sent(tmp_path, fake, key):
    done = ask(tmp_path, fake, "backtst trend_following", key=key)
    assert done.returncode == 2
    assert "Did you mean: 'backtest trend_following conservatively'" in done.stderr
    assert "GLM" not in done.stderr and fake.requests == []


@pytest.mark.slow
def test_a_command_the_parser_understands_never_goes_to_glm(tmp_path: Path, fake: FakeZhipu):
    done = ask(tmp_path, fake, "policy for mean_reversion")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == '-> jesse-mcp.get_policy {"strategy": "mean_reversion"}'
    assert fake.requests == []


@pytest.mark.slow
@pytest.mark.parametrize("text", ["backtest", "price of $%^", "backtest x 1h 4h"])
def test_a_known_command_with_a_missing_or_bad_part_is_answered_by_the_parser_not_glm(tmp_path, fake, text):
    done = ask(tmp_path, fake, text)
    assert done.returncode == 2 and "GLM" not in done.stderr
    assert fake.requests == []


# --- the fallback in process, with the real tool lists -----------------------------------------------------------
async def fallback(text: str, catalogue: list[ToolInfo], **kwargs) -> int:
    async def load() -> list[ToolInfo]:
        return catalogue

    with anyio.fail_after(10):  # also the bound of the slow-GLM test: 30 times its 0.3 s timeout
        return await glm_fallback(text, unparsed(text), False, False, load_tools=load, **kwargs)


@pytest.fixture
def glm_env(home: Path, fake: FakeZhipu, monkeypatch: pytest.MonkeyPatch) -> FakeZhipu:
    monkeypatch.setenv("ZHIPUAI_API_KEY", KEY)
    monkeypatch.setenv("ZHIPUAI_BASE_URL", fake.base_url)
    monkeypatch.delenv("ZHIPUAI_MODEL", raising=False)
    return fake


BAD_CHOICES = [
    (("jesse_mcp__transfer_funds", {}), "ok", "GLM chose 'jesse_mcp__transfer_funds', which is not a tool of"),
    (("get_policy", {}), "ok", "GLM chose 'get_policy', which is not a tool of"),
    (("jesse_mcp__get_policy", '{"strategy": '), "ok", "arguments for jesse-mcp.get_policy are not JSON"),
    (("jesse_mcp__get_policy", '["mean_reversion"]'), "ok", "must be a JSON object, got list"),
    (("jesse_mcp__request_stage_promotion", {"strategy": "x"}), "ok", "request_stage_promotion lacks to_stage"),
    (("jesse_mcp__get_policy", {"strat": "x"}), "ok", "has unknown 'strat' (it takes: strategy)"),
    (("jesse_mcp__get_policy", {}), "two_calls", "GLM chose 2 calls; ask for one thing at a time"),
    (("jesse_mcp__get_policy", {}), "text_reply", "GLM chose no tool; it answered: 'Which strategy do you mean?'"),
    (("jesse_mcp__get_policy", {}), "truncated", "glm reply cut at max_tokens"),
    (("jesse_mcp__get_policy", {}), "http_500", "glm http 500: server error"),
    (("jesse_mcp__get_policy", {}), "http_429", "glm http 429: rate limited or out of quota"),
]


@pytest.mark.xdist_group("glm-catalogue")
@pytest.mark.anyio
async def test_glm_is_offered_every_tool_of_the_three_servers_and_the_text_as_data(catalogue, glm_env):
    glm_env.behaviour = "text_reply"  # nothing to run
    await fallback(READ_ONLY_TEXT, catalogue, interactive=False)
    (request,) = glm_env.requests
    names = {t["function"]["name"] for t in request.body["tools"]}
    assert len(names) == len(catalogue)
    assert {"jesse_mcp__backtest", "asset_price_mcp__get_prices", "discovery_mcp__fetch_news"} <= names
    assert all("$schema" not in t["function"]["parameters"] for t in request.body["tools"])
    assert request.body["model"] == "glm-4-flash" and request.body["tool_choice"] == "auto"
    assert f'"{READ_ONLY_TEXT}"' in request.body["messages"][-1]["content"]
    assert request.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.xdist_group("glm-catalogue")
@pytest.mark.anyio
@pytest.mark.parametrize(("choice", "behaviour", "message"), BAD_CHOICES, ids=[m for *_, m in BAD_CHOICES])
async def test_an_invalid_glm_reply_exits_2_saying_why_with_the_closest_commands(
    catalogue, glm_env, capsys, choice, behaviour, message
):
    glm_env.tool_choice, glm_env.behaviour = choice, behaviour
    assert await fallback("make me rich", catalogue, interactive=False) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err
    assert "not understood: 'make me rich'. Commands look like:" in err
    assert KEY not in err


@pytest.mark.xdist_group("glm-catalogue")
@pytest.mark.anyio
async def test_a_slow_glm_times_out_within_the_configured_bound(catalogue, glm_env, home, capsys):
    ConfigStore(home / "config.json").save(TradingConfig(zai_glm_config=GlmConfig(timeout_s=0.3)))
    glm_env.delay_s = 10
    assert await fallback("make me rich", catalogue, interactive=False) == 2
    assert "GLM could not choose a call: glm timeout after 0.3 s." in capsys.readouterr().err


@pytest.mark.xdist_group("glm-catalogue")
@pytest.mark.anyio
async def test_zhipuai_model_and_a_bad_base_url_are_read_from_the_environment(catalogue, glm_env, monkeypatch, capsys):
    monkeypatch.setenv("ZHIPUAI_MODEL", "glm-4-plus")
    glm_env.behaviour = "text_reply"  # nothing to run
    await fallback("make me rich", catalogue, interactive=False)
    assert glm_env.requests[-1].body["model"] == "glm-4-plus"
    monkeypatch.setenv("ZHIPUAI_BASE_URL", "open.bigmodel.cn/api")
    assert await fallback("make me rich", catalogue, interactive=False) == 2
    assert "is not an http(s) URL" in capsys.readouterr().err
    assert len(glm_env.requests) == 1


@pytest.mark.xdist_group("glm-catalogue")
@pytest.mark.anyio
@pytest.mark.parametrize("answer", ["\n", "n\n", ""], ids=["enter", "n", "eof"])
async def test_at_a_terminal_a_state_changing_choice_runs_only_after_y(catalogue, glm_env, monkeypatch, capsys, answer):
    glm_env.tool_choice = PROMOTE
    monkeypatch.setattr("sys.stdin", io.StringIO(answer))
    assert await fallback(CHANGING_TEXT, catalogue, interactive=True) == 2
    out, err = capsys.readouterr()
    assert out.startswith("GLM chose: jesse-mcp.request_stage_promotion")
    assert "Run this call that GLM chose? [y/N]" in err and "not run." in err


# --- what may run without asking ---------------------------------------------------------------------------------
@pytest.mark.xdist_group("glm-catalogue")
def test_only_read_only_non_destructive_read_or_research_tools_run_without_asking(catalogue):
    unasked = {f"{t.server}.{t.name}" for t in catalogue if t.why_confirm() is None}
    assert {"jesse-mcp.get_policy", "asset-price-mcp.get_prices", "discovery-mcp.discover_opportunities"} <= unasked
    asked = {f"{t.server}.{t.name}" for t in catalogue} - unasked
    assert {"jesse-mcp.backtest", "jesse-mcp.update_config", "jesse-mcp.place_paper_order"} <= asked
    assert {"jesse-mcp.demote_stage", "discovery-mcp.update_source_priority"} <= asked


def test_a_tool_without_annotations_or_capability_needs_a_yes():
    bare = tool_info("jesse-mcp", types.Tool(name="mystery", inputSchema={"type": "object"}))
    assert bare.why_confirm() == (
        "jesse-mcp.mystery is not read-only and is marked destructive and needs capability unknown"
    )
    hinted = types.Tool(
        name="peek", inputSchema={"type": "object"}, annotations=types.ToolAnnotations(readOnlyHint=True)
    )
    assert tool_info("jesse-mcp", hinted).why_confirm() == "jesse-mcp.peek needs capability unknown"

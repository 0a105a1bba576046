"""Every file in examples/ works, offline: configurations load through the servers' own loader and give the
profiles they promise, the Claude Desktop file names real console scripts, the workflow parses and runs the CI gate
with flags it has, and the gate itself runs end to end against a real jesse-mcp over stdio on synthetic candles."""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import json
import os
import shlex
import shutil
import string
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE
from types import ModuleType
from typing import Any

import pytest
from mcp.shared.memory import create_connected_server_and_client_session as connect

from jesse_mcp.server import build_server as build_jesse
from shared.config.changes import loosenings
from shared.config.models import TradingConfig
from shared.config.profiles import PROFILE_TEMPLATES
from shared.config.store import load_config
from shared.server.common import make_deps
from shared.state import trading_state
from shared.state.store import Store
from tests.mcp_helpers import payload
from tests.timeouts import hang_guard

pytestmark = pytest.mark.xdist_group("ci-gate")  # one xdist worker runs the gate processes once

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GATE = EXAMPLES / "ci_backtest_gate.py"
WORKFLOW = EXAMPLES / "github-actions-backtest.yml"
CAUTIOUS = EXAMPLES / "config.cautious.json"
AGGRESSIVE = EXAMPLES / "config.aggressive.json"
SERVER_SCRIPTS = {"jesse-mcp", "asset-price-mcp", "discovery-mcp"}

# Every file in examples/ and the tests that exercise it: a new example without a test fails the suite.
COVERED: dict[str, tuple[str, ...]] = {
    "README.md": ("test_examples_readme_lists_every_example_and_the_commands_it_shows_exist",),
    "claude_desktop_config.json": ("test_claude_desktop_config_starts_every_server_by_its_console_script",),
    "config.cautious.json": (
        "test_example_configurations_load_through_the_servers_loader",
        "test_cautious_configuration_gives_the_conservative_policy_over_mcp",
        "test_cautious_takes_no_more_risk_than_the_defaults_and_aggressive_no_less",
        "test_gate_passes_when_the_workflow_runs_it_on_synthetic_candles",
    ),
    "config.aggressive.json": (
        "test_example_configurations_load_through_the_servers_loader",
        "test_aggressive_configuration_gives_the_aggressive_policy_over_mcp",
        "test_cautious_takes_no_more_risk_than_the_defaults_and_aggressive_no_less",
    ),
    "ci_backtest_gate.py": (
        "test_gate_imports_nothing_but_mcp_and_the_standard_library",
        "test_gate_knows_the_same_timeframes_and_profiles_as_the_backtest_tool",
        "test_gate_names_every_threshold_the_result_misses",
        "test_gate_refuses_an_unbounded_synthetic_range_as_a_usage_error",
        "test_gate_passes_when_the_workflow_runs_it_on_synthetic_candles",
        "test_gate_fails_with_exit_1_naming_sharpe_when_the_threshold_is_impossible",
        "test_gate_fails_with_exit_1_when_the_guard_denies_the_call",
        "test_gate_fails_with_exit_1_when_the_backtest_errors",
    ),
    "github-actions-backtest.yml": (
        "test_workflow_installs_with_uv_and_runs_the_gate_with_existing_flags",
        "test_gate_passes_when_the_workflow_runs_it_on_synthetic_candles",
    ),
}


def test_every_file_in_examples_is_covered_by_a_test():
    files = {p.name for p in EXAMPLES.iterdir() if p.name != "__pycache__"}
    assert files == set(COVERED), "add a test for each new example to COVERED (and remove gone ones)"
    missing = {name for tests in COVERED.values() for name in tests if not callable(globals().get(name))}
    assert not missing


# --- the configurations ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [CAUTIOUS, AGGRESSIVE], ids=["cautious", "aggressive"])
def test_example_configurations_load_through_the_servers_loader(path: Path):
    before = path.read_bytes()
    cfg = load_config(path)
    assert isinstance(cfg, TradingConfig)
    assert path.read_bytes() == before  # loading never rewrites the example
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.suffix == ".lock") == []  # nor locks it


async def _policy(config: Path, home: Path, strategy: str | None) -> dict[str, Any]:
    shutil.copy(config, home / "config.json")
    deps = make_deps("jesse-mcp", home)
    try:
        async with connect(build_jesse(deps, warmup=())) as client:
            args = {"strategy": strategy} if strategy else {}
            return payload(await client.call_tool("get_policy", args))
    finally:
        deps.store.close()


@pytest.mark.anyio
async def test_cautious_configuration_gives_the_conservative_policy_over_mcp(tmp_path: Path):
    glob = await _policy(CAUTIOUS, tmp_path, None)
    assert glob["risk_profile"] == "conservative" and glob["effective_stage"] == "exploration"
    assert glob["risk_settings"] == {
        **PROFILE_TEMPLATES["conservative"],
        "max_correlation": 0.5,
        "emergency_stop": 0.15,
    }
    assert glob["risk_sources"]["max_leverage"] == "profile:conservative"
    assert glob["risk_sources"]["emergency_stop"] == "global"
    assert glob["portfolio_limits"]["max_open_positions"] == 2 and glob["portfolio_limits"]["max_account_usage"] == 0.5

    mean_reversion = await _policy(CAUTIOUS, tmp_path, "mean_reversion")
    assert mean_reversion["risk_settings"]["max_position_size"] == 0.03
    assert mean_reversion["risk_settings"]["max_portfolio_risk"] == 0.005
    assert mean_reversion["risk_sources"]["max_position_size"] == "override"

    momentum = await _policy(CAUTIOUS, tmp_path, "momentum")
    assert momentum["enabled"] is False
    assert "research" in momentum["allowed_capabilities"]  # a disabled strategy can still be backtested


@pytest.mark.anyio
async def test_aggressive_configuration_gives_the_aggressive_policy_over_mcp(tmp_path: Path):
    glob = await _policy(AGGRESSIVE, tmp_path, None)
    assert glob["risk_profile"] == "aggressive" and glob["effective_stage"] == "exploration"
    assert glob["risk_settings"] == {**PROFILE_TEMPLATES["aggressive"], "max_correlation": 0.85, "emergency_stop": 0.35}
    assert glob["portfolio_limits"]["max_total_positions"] == 25

    breakout = await _policy(AGGRESSIVE, tmp_path, "breakout")
    assert breakout["risk_profile"] == "aggressive"
    assert breakout["risk_settings"]["max_leverage"] == 3.0 and breakout["risk_sources"]["max_leverage"] == "override"
    assert (await _policy(AGGRESSIVE, tmp_path, "momentum"))["risk_settings"]["max_leverage"] == 5.0


def test_cautious_takes_no_more_risk_than_the_defaults_and_aggressive_no_less():
    default, cautious, aggressive = TradingConfig(), load_config(CAUTIOUS), load_config(AGGRESSIVE)
    assert loosenings(default, cautious) == []
    assert loosenings(aggressive, default) == []
    assert loosenings(aggressive, cautious) == []
    # what update_config would ask the person to confirm when switching from the defaults to aggressive
    assert "global_risk_profile moderate -> aggressive" in loosenings(default, aggressive)


# --- Claude Desktop and the README ------------------------------------------------------------------------------
def _console_scripts() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_claude_desktop_config_starts_every_server_by_its_console_script():
    servers = json.loads((EXAMPLES / "claude_desktop_config.json").read_text())["mcpServers"]
    scripts = _console_scripts()
    assert set(servers) == SERVER_SCRIPTS
    for name, entry in servers.items():
        assert entry["command"] == "uv" and entry["args"][:2] == ["run", "--directory"]
        assert entry["args"][-1] == name and name in scripts
        assert "TRADING_MCP_HOME" in entry["env"]
        module, _, function = scripts[name].partition(":")
        assert callable(getattr(importlib.import_module(module), function))
    assert len({e["env"]["TRADING_MCP_HOME"] for e in servers.values()}) == 1  # one shared home


def test_examples_readme_lists_every_example_and_the_commands_it_shows_exist():
    text = (EXAMPLES / "README.md").read_text()
    for name in COVERED:
        if name != "README.md":
            assert f"[`{name}`]({name})" in text
    assert "TRADING_MCP_CONFIG=examples/config.cautious.json uv run jesse-mcp" in text
    command = text.split("uv run python examples/ci_backtest_gate.py", 1)[1].split("```", 1)[0]
    _gate().parse_args(shlex.split(command.replace("\\\n", " ")))  # exits 2 on any unknown flag


# --- the CI gate, directly --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gate_module() -> ModuleType:
    return _gate()


@functools.cache
def _gate() -> ModuleType:
    """The gate script as a module (registered, as dataclasses need), without writing __pycache__ into examples/."""
    spec = importlib.util.spec_from_file_location("ci_backtest_gate", GATE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write
    return module


def test_gate_imports_nothing_but_mcp_and_the_standard_library():
    tree = ast.parse(GATE.read_text())
    roots = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    roots |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    roots.discard("__future__")
    assert roots - sys.stdlib_module_names == {"mcp"}


def _result(sharpe: float | None, daily_dd: float | None, intraday_dd: float | None, trades: int) -> dict[str, Any]:
    return {
        "performance": {"sharpe": sharpe, "max_drawdown_pct": daily_dd, "trades": trades},
        "risk_adherence": {"max_drawdown_intraday_pct": intraday_dd},
    }


def test_gate_knows_the_same_timeframes_and_profiles_as_the_backtest_tool(gate_module: ModuleType):
    from jesse_mcp.backtesting.catalog import TIMEFRAME_MINUTES
    from shared.config.profiles import PROFILE_TEMPLATES

    assert gate_module.TIMEFRAME_MINUTES == TIMEFRAME_MINUTES  # the example stays standalone, and in step
    assert set(gate_module.PROFILES) == set(PROFILE_TEMPLATES)


def test_gate_names_every_threshold_the_result_misses(gate_module: ModuleType):
    args = gate_module.parse_args(
        ["--strategy", "x", "--min-sharpe", "1", "--max-drawdown-pct", "5", "--min-trades", "10"]
    )
    assert gate_module.judge(_result(1.2, 3.0, 4.9, 10), args) == []
    assert gate_module.judge(_result(0.4, 3.0, 6.5, 7), args) == [
        "Sharpe 0.40 is below --min-sharpe 1",
        "max drawdown 6.50 % (intraday) is above --max-drawdown-pct 5",  # the worse of daily and intraday
        "7 trades is below --min-trades 10",
    ]
    assert gate_module.judge(_result(None, None, None, 0), args)[0].startswith("Sharpe is undefined")


def test_gate_refuses_an_unbounded_synthetic_range_as_a_usage_error(gate_module: ModuleType, capsys):
    with pytest.raises(SystemExit) as exited:
        gate_module.parse_args(["--strategy", "x", "--synthetic", "--start", "2024-02-01"])
    assert exited.value.code == 2
    assert "--synthetic needs a bounded range" in capsys.readouterr().err


# --- the workflow ------------------------------------------------------------------------------------------------
def _workflow() -> dict[Any, Any]:
    yaml = pytest.importorskip("yaml")  # PyYAML comes with jesse (optuna, ray)
    return yaml.safe_load(WORKFLOW.read_text())


def _gate_step(workflow: dict[Any, Any], runner_temp: str) -> list[str]:
    """The gate's arguments in the workflow, with the job's variables and RUNNER_TEMP substituted."""
    (job,) = workflow["jobs"].values()
    (run,) = [s["run"] for s in job["steps"] if "ci_backtest_gate.py" in s.get("run", "")]
    variables = {**{k: str(v) for k, v in job.get("env", {}).items()}, "RUNNER_TEMP": runner_temp}
    command = [string.Template(token).substitute(variables) for token in shlex.split(run)]
    assert command[:4] == ["uv", "run", "python", "examples/ci_backtest_gate.py"]
    return command[4:]


def test_workflow_installs_with_uv_and_runs_the_gate_with_existing_flags(gate_module: ModuleType):
    workflow = _workflow()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as true
    assert "pull_request" in triggers
    (job,) = workflow["jobs"].values()
    uses = [s["uses"].split("@")[0] for s in job["steps"] if "uses" in s]
    assert uses[:2] == ["actions/checkout", "astral-sh/setup-uv"]
    assert any(s.get("run", "").startswith("uv sync") for s in job["steps"])
    args = _gate_step(workflow, "/runner-temp")
    assert (ROOT / args[args.index("--config") + 1]).is_file()
    parsed = gate_module.parse_args(args)  # exits 2 on an unknown flag
    assert parsed.synthetic and parsed.json_out is not None and parsed.home == "/runner-temp/trading-mcp"
    assert parsed.min_sharpe == float(job["env"]["MIN_SHARPE"])
    assert parsed.max_drawdown_pct == float(job["env"]["MAX_DRAWDOWN_PCT"])


# --- the CI gate end to end, against the real jesse-mcp over stdio --------------------------------------------
@dataclass
class GateRun:
    returncode: int
    stdout: str
    stderr: str
    cwd: Path


def _fast_config(source: Path, home: Path) -> Path:
    """A copy of an example configuration with one Jesse worker, so a run pays for one Jesse import only."""
    data = json.loads(source.read_text())
    data["backtest_config"] = {"workers": 1}
    path = home / "config.json"
    path.write_text(json.dumps(data))
    return path


def _standard_args(home: Path, *extra: str) -> list[str]:
    config = str(_fast_config(CAUTIOUS, home))
    common = ["--home", str(home), "--config", config, "--strategy", "trend_following", "--start", "2024-02-01"]
    return [*common, "--days", "20", "--synthetic", "--quiet", *extra]


def _workflow_args(home: Path) -> list[str]:
    args = _gate_step(_workflow(), str(home))
    args[args.index("--config") + 1] = str(_fast_config(ROOT / args[args.index("--config") + 1], home))
    return args


def _denied_args(home: Path) -> list[str]:
    store = Store(home / "state.db")  # the kill switch has halted trading: research calls are denied
    try:
        trading_state.write(store, "HALTED", "kill switch (emergency_stop): test")
    finally:
        store.close()
    return _standard_args(home, "--json-out", "out.json")


def _error_args(home: Path) -> list[str]:
    args = _standard_args(home)
    args[args.index("--strategy") + 1] = "no_such_strategy"
    args.remove("--synthetic")  # no candles needed to learn that the strategy does not exist
    return args


GATE_CASES = {
    "workflow": _workflow_args,
    "impossible_sharpe": lambda home: _standard_args(home, "--min-sharpe", "100", "--json-out", "out.json"),
    "denied": _denied_args,
    "error": _error_args,
}


@pytest.fixture(scope="module")
def gate_runs(tmp_path_factory) -> dict[str, GateRun]:
    """Every end-to-end case, each a gate process with its own jesse-mcp and home, run at once to save time."""
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),  # jesse-mcp is there
        "TRADING_MCP_LOG_LEVEL": "WARNING",
    }
    started = {}
    for name, make_args in GATE_CASES.items():
        cwd = tmp_path_factory.mktemp(f"gate-{name}")
        env["TRADING_MCP_HOME"] = str(cwd / "unused-home")  # never ~/.trading-mcp, even without --home
        command = [sys.executable, str(GATE), *make_args(cwd)]
        process = subprocess.Popen(
            command, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=PIPE, stderr=PIPE, text=True
        )
        started[name] = (process, cwd)
    runs = {}
    try:
        for name, (process, cwd) in started.items():
            stdout, stderr = process.communicate(timeout=hang_guard(900))
            runs[name] = GateRun(process.returncode, stdout, stderr, cwd)
    finally:
        for process, _ in started.values():
            if process.poll() is None:  # only after a timeout: stop the gates this fixture started
                process.kill()
                process.communicate()
    return runs


@pytest.mark.slow
def test_gate_passes_when_the_workflow_runs_it_on_synthetic_candles(gate_runs: dict[str, GateRun]):
    run = gate_runs["workflow"]
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("PASS: trend_following (conservative) on synthetic:BTC-USDT 1h")
    assert "SYNTHETIC data" in run.stdout and "  backtest: " in run.stderr  # progress notifications shown
    report = json.loads((run.cwd / "backtest-gate.json").read_text())
    assert report["passed"] is True and report["failures"] == [] and report["error"] is None
    assert report["result"]["synthetic"] is True and report["result"]["performance"]["trades"] >= 10
    assert (run.cwd / "trading-mcp" / "state.db").is_file()  # the state went to the --home it was given


@pytest.mark.slow
def test_gate_fails_with_exit_1_naming_sharpe_when_the_threshold_is_impossible(gate_runs: dict[str, GateRun]):
    run = gate_runs["impossible_sharpe"]
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stdout.startswith("FAIL: trend_following")
    assert "FAIL: Sharpe" in run.stderr and "is below --min-sharpe 100" in run.stderr
    report = json.loads((run.cwd / "out.json").read_text())
    assert report["passed"] is False and report["failures"][0].startswith("Sharpe ")
    assert report["result"]["id"].startswith("bt_")


@pytest.mark.slow
def test_gate_fails_with_exit_1_when_the_guard_denies_the_call(gate_runs: dict[str, GateRun]):
    run = gate_runs["denied"]
    assert run.returncode == 1, run.stdout + run.stderr
    assert "ERROR: generate_synthetic_candles denied by the server's guard: Denied (trading_halted)" in run.stderr
    report = json.loads((run.cwd / "out.json").read_text())
    assert report["passed"] is False and report["result"] is None
    assert "reset_kill_switch" in report["error"]  # the server's remedy reaches the CI log


@pytest.mark.slow
def test_gate_fails_with_exit_1_when_the_backtest_errors(gate_runs: dict[str, GateRun]):
    run = gate_runs["error"]
    assert run.returncode == 1, run.stdout + run.stderr
    assert "ERROR: backtest failed: Unknown strategy 'no_such_strategy'" in run.stderr
    assert "Valid strategies: trend_following" in run.stderr

#!/usr/bin/env python3
"""A CI gate: run one backtest on jesse-mcp and fail the build when it misses the thresholds.

An example of an external MCP client. It uses only the `mcp` package and the standard library (no import of the
trading-mcp code), starts the `jesse-mcp` server as a child process over stdio, and talks to it with tools/call:

1. `list_candles` to find stored 1-minute candles for the symbol;
2. with --synthetic and no real candles stored, `generate_synthetic_candles` (deterministic, offline, labelled
   synthetic in every result);
3. `backtest`, with progress shown on stderr;
4. the thresholds are checked on the structured result.

Exit status: 0 when every threshold passes; 1 when one fails, or the server refused (guard denial) or failed the
call, or could not be started; 2 for a usage error. `--json-out` writes the verdict and the full result for CI
artefacts, whatever the outcome.

With real candles imported (import_candles) into the server's TRADING_MCP_HOME:

    uv run python examples/ci_backtest_gate.py --strategy trend_following --risk-profile conservative \\
        --symbol BTC-USDT --timeframe 1h --start 2024-02-01 --end 2024-03-01 \\
        --min-sharpe 1.0 --max-drawdown-pct 5 --min-trades 10 --json-out backtest-gate.json

Offline, add --synthetic; synthetic candles carry no edge, so keep the Sharpe floor a sanity bound there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import McpError

PROFILES = ("conservative", "moderate", "aggressive")
TIMEFRAME_MINUTES = {  # the backtest tool's timeframes
    "1m": 1,
    "3m": 3,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "45m": 45,
    "1h": 60,
    "2h": 120,
    "3h": 180,
    "4h": 240,
    "6h": 360,
    "8h": 480,
    "12h": 720,
    "1D": 1440,
}
WARMUP_CANDLES = 250  # room for the built-in strategies' warm-up (4 x their longest period) before the start


class GateError(Exception):
    """The gate could not reach a verdict: the server refused or failed a call, or could not be started."""


@dataclass
class Verdict:
    passed: bool
    failures: list[str] = field(default_factory=list)
    error: str | None = None
    result: dict[str, Any] | None = None


# --- arguments -----------------------------------------------------------------------------------------------
def utc_time(text: str) -> datetime:
    """A date or ISO-8601 time; without a zone it is UTC (as on the server)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write 2024-02-01 or 2024-02-01T12:00") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Run a backtest on jesse-mcp over MCP stdio; exit 1 when it misses the thresholds.",
        epilog="Exit status: 0 pass, 1 a threshold failed or the call was denied or failed, 2 usage error.",
    )
    run = p.add_argument_group("backtest")
    run.add_argument("--strategy", required=True, help="strategy name, e.g. trend_following (list_strategies)")
    run.add_argument("--risk-profile", choices=PROFILES, help="default: the strategy's configured profile")
    run.add_argument("--symbol", default="BTC-USDT", help="market symbol, BASE-QUOTE (default BTC-USDT)")
    run.add_argument(
        "--exchange",
        help="exchange of the stored candles, a store key or Jesse's name, e.g. binance or 'Binance Spot' "
        "(default: the only one stored); skips --synthetic",
    )
    run.add_argument("--timeframe", choices=TIMEFRAME_MINUTES, default="1h", help="candle timeframe (default 1h)")
    run.add_argument("--start", type=utc_time, help="UTC start, e.g. 2024-02-01")
    run.add_argument("--end", type=utc_time, help="UTC end (exclusive), e.g. 2024-03-01")
    run.add_argument("--days", type=int, help="N days after --start, or the last N days of the stored data")
    run.add_argument(
        "--synthetic",
        action="store_true",
        help="when no real candles are stored for the symbol, generate deterministic synthetic ones (offline)",
    )
    run.add_argument("--seed", type=int, default=7, help="seed of the synthetic candles (default 7)")

    gate = p.add_argument_group("thresholds")
    gate.add_argument("--min-sharpe", type=float, help="fail when the annualised Sharpe ratio is below this")
    gate.add_argument(
        "--max-drawdown-pct", type=float, help="fail when the max drawdown (daily or intraday, the worse) is above"
    )
    gate.add_argument("--min-trades", type=int, help="fail when the backtest closed fewer trades")

    server = p.add_argument_group("server")
    server.add_argument(
        "--server-command",
        help="command that starts jesse-mcp over stdio (default: the jesse-mcp script on PATH, else "
        "'python -m jesse_mcp' with this interpreter)",
    )
    server.add_argument("--home", help="TRADING_MCP_HOME for the server (state, candles, results)")
    server.add_argument("--config", help="TRADING_MCP_CONFIG for the server (a configuration file)")
    server.add_argument("--timeout", type=float, default=900, help="seconds to wait for each call (default 900)")
    p.add_argument("--json-out", type=Path, help="write the verdict and the result to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    args = p.parse_args(argv)
    if args.days is not None and args.days < 1:
        p.error("--days must be at least 1")
    if args.start and args.end and args.days:
        p.error("give --start with either --end or --days, not both")
    if args.start and args.end and args.end <= args.start:
        p.error("--end must be after --start")
    if args.synthetic and synthetic_range(args) is None:
        p.error("--synthetic needs a bounded range: --days N, or --start with --end or --days")
    return args


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S")  # naive ISO is read as UTC by the server


def backtest_arguments(args: argparse.Namespace, exchange: str | None) -> dict[str, Any]:
    call: dict[str, Any] = {"strategy": args.strategy, "symbol": args.symbol, "timeframe": args.timeframe}
    optional = {
        "exchange": exchange,
        "risk_profile": args.risk_profile,
        "start": iso(args.start) if args.start else None,
        "end": iso(args.end) if args.end else None,
        "days": args.days,
    }
    call.update({k: v for k, v in optional.items() if v is not None})
    return call


def synthetic_range(args: argparse.Namespace) -> dict[str, Any] | None:
    """Arguments of generate_synthetic_candles covering the run plus its warm-up; None when unbounded."""
    warmup = timedelta(minutes=WARMUP_CANDLES * TIMEFRAME_MINUTES[args.timeframe])
    warmup_days = math.ceil(warmup / timedelta(days=1))
    if args.start and (args.end or args.days):
        end = args.end or args.start + timedelta(days=args.days)
        return {"start": iso(args.start - warmup), "end": iso(end)}
    if args.days and args.end:
        return {"start": iso(args.end - timedelta(days=args.days) - warmup), "end": iso(args.end)}
    if args.days and not args.start:
        return {"days": args.days + warmup_days}  # up to now; the backtest takes the last N days of it
    return None


# --- the MCP session -----------------------------------------------------------------------------------------
def server_parameters(args: argparse.Namespace) -> StdioServerParameters:
    if args.server_command:
        command = shlex.split(args.server_command)
    elif found := shutil.which("jesse-mcp"):
        command = [found]
    else:
        command = [sys.executable, "-m", "jesse_mcp"]
    env = dict(os.environ)  # the server needs TRADING_MCP_* and any base URLs; the SDK passes only a few by default
    if args.home:
        env["TRADING_MCP_HOME"] = str(Path(args.home).resolve())
    if args.config:
        env["TRADING_MCP_CONFIG"] = str(Path(args.config).resolve())
    return StdioServerParameters(command=command[0], args=command[1:], env=env)


def say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def tool_text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent)).strip()


async def call(session: ClientSession, args: argparse.Namespace, tool: str, arguments: dict[str, Any]) -> Any:
    async def progress(done: float, total: float | None, message: str | None) -> None:
        share = f"{done / total:.0%}" if total else f"{done:g}"
        say(args, f"  {tool}: {share} {message or ''}".rstrip())

    result = await session.call_tool(
        tool, arguments, read_timeout_seconds=timedelta(seconds=args.timeout), progress_callback=progress
    )
    if result.isError:
        text = tool_text(result) or "(no message)"
        kind = "denied by the server's guard" if "Denied (" in text else "failed"
        raise GateError(f"{tool} {kind}: {text}")
    if result.structuredContent is not None:
        return result.structuredContent
    return json.loads(tool_text(result))


async def choose_market(session: ClientSession, args: argparse.Namespace) -> str | None:
    """The exchange to backtest on: the one given, real stored candles, or freshly generated synthetic ones."""
    if args.exchange:
        return args.exchange
    listing = await call(session, args, "list_candles", {"symbol": args.symbol})
    real = [m["exchange"] for m in listing["markets"] if not m["synthetic"]]
    if len(real) == 1:
        return real[0]
    if real or not args.synthetic:
        return None  # the server picks the market, or says what is stored and how to import it
    say(args, f"No real {args.symbol} candles stored: generating synthetic ones (seed {args.seed}), offline.")
    made = await call(
        session, args, "generate_synthetic_candles", {"symbol": args.symbol, "seed": args.seed, **synthetic_range(args)}
    )
    say(args, f"  {made['rows']} synthetic 1-minute candles, {made['market']['first']} .. {made['market']['last']}")
    return "synthetic"


async def run_backtest(args: argparse.Namespace) -> dict[str, Any]:
    failure: GateError | None = None
    try:
        async with (
            stdio_client(server_parameters(args), errlog=sys.stderr) as (read, write),
            ClientSession(read, write, read_timeout_seconds=timedelta(seconds=args.timeout)) as session,
        ):
            try:  # caught in here: raised through the SDK's task groups it would arrive as an ExceptionGroup
                await session.initialize()
                exchange = await choose_market(session, args)
                arguments = backtest_arguments(args, exchange)
                say(args, f"backtest {json.dumps(arguments)}")
                return await call(session, args, "backtest", arguments)
            except GateError as e:
                failure = e
            except McpError as e:  # the server closed the connection, or a call timed out
                failure = GateError(f"the jesse-mcp session failed: {e.error.message}")
    except OSError as e:
        raise GateError(f"cannot start the jesse-mcp server: {e}") from None
    raise failure or GateError("the session ended without a result")


# --- the verdict ---------------------------------------------------------------------------------------------
def judge(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Every threshold the result misses, as a sentence; empty when it passes."""
    perf = result["performance"]
    failures = []
    if args.min_sharpe is not None:
        sharpe = perf["sharpe"]
        if sharpe is None:
            failures.append(f"Sharpe is undefined ({perf['trades']} trades): too few trades or days to measure it")
        elif sharpe < args.min_sharpe:
            failures.append(f"Sharpe {sharpe:.2f} is below --min-sharpe {args.min_sharpe:g}")
    if args.max_drawdown_pct is not None:
        drawdown, which = worst_drawdown(result)
        if drawdown is None:
            failures.append("max drawdown is undefined")
        elif drawdown > args.max_drawdown_pct:
            failures.append(
                f"max drawdown {drawdown:.2f} % ({which}) is above --max-drawdown-pct {args.max_drawdown_pct:g}"
            )
    if args.min_trades is not None and perf["trades"] < args.min_trades:
        failures.append(f"{perf['trades']} trades is below --min-trades {args.min_trades}")
    return failures


def worst_drawdown(result: dict[str, Any]) -> tuple[float | None, str]:
    daily = result["performance"]["max_drawdown_pct"]
    intraday = result["risk_adherence"]["max_drawdown_intraday_pct"]
    known = [(v, name) for v, name in ((daily, "daily equity"), (intraday, "intraday")) if v is not None]
    return max(known) if known else (None, "")


def summary(result: dict[str, Any]) -> str:
    perf, data = result["performance"], result["data"]

    def num(value: float | None, unit: str = "") -> str:
        return "n/a" if value is None else f"{value:.2f}{unit}"

    drawdown, which = worst_drawdown(result)
    lines = [
        f"{result['request']['strategy']} ({result['request']['risk_profile']}) on {data['exchange']}:{data['symbol']} "
        f"{data['timeframe']}, {data['start'][:16]} .. {data['end'][:16]}"
        + ("  [SYNTHETIC data: hypothetical results]" if result["synthetic"] else ""),
        f"  Sharpe {num(perf['sharpe'])}, max drawdown {num(drawdown, ' %')} ({which}), "
        f"net profit {num(perf['net_profit_pct'], ' %')}, trades {perf['trades']}, result id {result['id']}",
    ]
    lines += [f"  note: {note}" for note in result["notes"]]
    lines += [f"  limit violation: {v}" for v in result["risk_adherence"]["violations"]]
    return "\n".join(lines)


def write_json(path: Path, args: argparse.Namespace, verdict: Verdict) -> None:
    body = {
        "passed": verdict.passed,
        "failures": verdict.failures,
        "error": verdict.error,
        "thresholds": {
            "min_sharpe": args.min_sharpe,
            "max_drawdown_pct": args.max_drawdown_pct,
            "min_trades": args.min_trades,
        },
        "result": verdict.result,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = asyncio.run(run_backtest(args))
    except GateError as e:
        verdict = Verdict(False, error=str(e))
        print(f"ERROR: {e}", file=sys.stderr)
    else:
        failures = judge(result, args)
        verdict = Verdict(not failures, failures, result=result)
        print(("PASS: " if verdict.passed else "FAIL: ") + summary(result))
        for failure in verdict.failures:
            print(f"FAIL: {failure}", file=sys.stderr)
    if args.json_out:
        write_json(args.json_out, args, verdict)
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())

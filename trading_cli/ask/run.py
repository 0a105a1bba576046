"""Running an `ask` plan over real MCP sessions: print the call, show progress, print a table, exit by the result."""

from __future__ import annotations

import json
import sys
from typing import Any

from mcp import types

from trading_cli.ask.parse import Plan
from trading_cli.client import env_for, error_text, open_session, result_payload
from trading_cli.render import render


async def _progress(progress: float, total: float | None, message: str | None) -> None:
    of = f"/{total:g}" if total else ""
    print(f"   ... {progress:g}{of} {message or ''}", file=sys.stderr)


async def run_plan(plan: Plan, as_json: bool, env: dict[str, str] | None = None, *, announce: bool = True) -> int:
    """0: the tool answered; 1: it returned an error or a denial; 2: nothing to run (e.g. no stored backtest).
    `announce=False`: the caller has printed the call already."""
    call = plan.call
    async with open_session(call.server, env_for(call.server, call.tool, env)) as session:
        arguments = dict(call.arguments)
        if plan.latest_backtest_of is not None:
            lookup = {"strategy": plan.latest_backtest_of, "kind": "backtest", "limit": 1}
            print(f"-> {call.server}.list_backtests {json.dumps(lookup)}")
            found = await session.call_tool("list_backtests", lookup)
            if found.isError:
                print(f"error: {error_text(found)}", file=sys.stderr)
                return 1
            results = (result_payload(found) or {}).get("results", [])
            if not results:
                print(
                    f"trading-mcp: no stored backtest of '{plan.latest_backtest_of}' to stress-test; run "
                    f'`trading-mcp ask "backtest {plan.latest_backtest_of}"` first.',
                    file=sys.stderr,
                )
                return 2
            arguments["backtest_id"] = results[0]["id"]
        if announce:
            print(f"-> {call.server}.{call.tool} {json.dumps(arguments)}")
        for note in plan.notes:  # how the parser read the command (e.g. BTC as BTC-USDT)
            print(f"   note: {note}", file=sys.stderr)
        result = await session.call_tool(call.tool, arguments, progress_callback=_progress)
    return show(result, as_json)


def show(result: types.CallToolResult, as_json: bool) -> int:
    if result.isError:
        print(f"error: {error_text(result)}", file=sys.stderr)
        return 1
    payload = result_payload(result)
    print(json.dumps(payload, indent=2) if as_json else table(payload))
    return 0


def table(payload: Any) -> str:
    """A readable summary for the usual answers; anything else is rendered field by field."""
    if isinstance(payload, dict):
        if "performance" in payload and "request" in payload:  # a backtest
            p, r = payload["performance"], payload["request"]
            where = "+".join(r.get("markets") or []) or r["symbol"]
            head = f"{r['strategy']} {where} {r['timeframe']} {r['risk_profile']} {r['start']} .. {r['end']}"
            synthetic = "  (SYNTHETIC data: hypothetical)" if payload.get("synthetic") else ""
            rows = [
                ("net profit %", p.get("net_profit_pct")),
                ("max drawdown %", p.get("max_drawdown_pct")),
                ("Sharpe", p.get("sharpe")),
                ("trades", p.get("trades")),
                ("win rate %", p.get("win_rate_pct")),
                ("result id", payload.get("id")),
            ]
            for c in (payload.get("portfolio") or {}).get("contributions", []):  # a portfolio: each market's part
                rows.insert(-1, (f"  {c['market']} %", c["contribution_pct"]))
            refused = (payload.get("portfolio") or {}).get("refused_entries") or {}
            if refused:
                rows.insert(-1, ("refused entries", ", ".join(f"{n} {rule}" for rule, n in refused.items())))
            return head + synthetic + "\n" + "\n".join(f"  {k:<16} {_fmt(v)}" for k, v in rows)
        if "table" in payload and isinstance(payload["table"], str):  # comparisons, stress tests
            extra = f"\n{payload['verdict']}" if payload.get("verdict") else ""
            if "sort_by" in payload:  # a batch: its notes say whether data was synthetic and what failed
                extra += "".join(f"\nnote: {n}" for n in payload.get("notes", []))
            return payload["table"] + extra
        if "gates" in payload:
            lines = [f"{payload.get('strategy') or 'global'}: {payload['from_stage']} -> {payload['to_stage']}"]
            for g in payload["gates"]:
                lines.append(f"  {'pass' if g['passed'] else 'FAIL':<5} {g['name']:<24} {g['detail']}")
            return "\n".join(lines)
        if "prices" in payload or ("price" in payload and "symbol" in payload):
            answers = payload.get("prices") or [payload]
            return "\n".join(
                f"  {a.get('symbol', '?'):<12} {_fmt(a.get('price')):>14} "
                f"({a.get('sources_used', '?')} sources, spread {_fmt(a.get('spread_bps'))} bps)"
                if "price" in a
                else f"  {a.get('symbol', '?'):<12} error: {a.get('error')}"
                for a in answers
            )
    return render(payload, indent="")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return "n/a" if value is None else str(value)

"""Readable text for results: short JSON per field, long lists cut, so a person can follow along; and the summary
lines and tables the demo prints for the usual answers (backtests, gates, fills, the journal)."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_LIST = 8


def _short(value: Any, width: int = 100) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def render(payload: Any, indent: str = "    ") -> str:
    if not isinstance(payload, dict):
        return indent + str(payload).replace("\n", "\n" + indent)
    lines = []
    for key, value in payload.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"{indent}{key}: ({len(value)})")
            for item in value[:MAX_LIST]:
                lines.append(f"{indent}  - {_short(item, 140)}")
            if len(value) > MAX_LIST:
                lines.append(f"{indent}  ... {len(value) - MAX_LIST} more")
        else:
            lines.append(f"{indent}{key}: {_short(value)}")
    return "\n".join(lines)


def num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def value_text(value: Any) -> str:
    return f"{round(value, 2):g}" if isinstance(value, float) else str(value)


def markdown_table(header: list[str], rows: list[list[Any]], indent: str = "   ", numeric: bool = True) -> str:
    """A markdown table; the first column left-aligned, the others right-aligned when `numeric`."""
    rule = "|---|" + ("---:|" if numeric else "---|") * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(indent + line for line in lines)


GATE_MARK = re.compile(r"\[(pass|FAIL)\] (\w+): ")


def gates_in_text(text: str) -> list[tuple[str, bool, str, str]]:
    """(gate, passed, measured, needs) from a promotion refusal, which lists every gate as
    '[pass] name: measured (needs threshold).' Split at the markers, then cut with string methods: linear in the
    text, whatever a server sends (one pattern with two lazy groups and a lookahead was quadratic)."""
    marks = list(GATE_MARK.finditer(text))
    gates = []
    for i, mark in enumerate(marks):
        body = text[mark.end() : marks[i + 1].start() if i + 1 < len(marks) else len(text)].rstrip()
        if i + 1 == len(marks) and " Remedy: " in body:
            body = body[: body.index(" Remedy: ")]
        cut = body.find(" (needs ")
        if cut >= 0 and body.endswith(")."):
            gates.append((mark[2], mark[1] == "pass", body[:cut], body[cut + len(" (needs ") : -2]))
    return gates


def gate_table(gates: list[dict[str, Any]]) -> str:
    rows = [[g["name"], "pass" if g["passed"] else "FAIL", value_text(g["value"]), g["threshold"]] for g in gates]
    return markdown_table(["Gate", "Result", "Value", "Needs"], rows, numeric=False)


def backtest_lines(bt: dict[str, Any]) -> list[str]:
    p, a = bt["performance"], bt["risk_adherence"]
    span = f"{bt['data']['start'][:10]} .. {bt['data']['end'][:10]}"
    return [
        f"   {bt['id']}  {bt['request']['risk_profile']}  {span}  net {num(p['net_profit_pct'])} %  max drawdown "
        f"{num(p['max_drawdown_pct'])} %  Sharpe {num(p['sharpe'])}  trades {p['trades']}"
        + ("  SYNTHETIC DATA" if bt["synthetic"] else ""),
        f"   largest position {num(a['largest_position_pct_of_equity'])} % of equity (limit "
        f"{a['limits']['max_position_pct_of_equity']:g} %), leverage {bt['request']['leverage']:g}x, "
        f"violations: {a['violations'] or 'none'}",
        *(f"   note: {note}" for note in bt["notes"]),
    ]


def profiles_table(runs: dict[str, dict[str, Any]], charts: dict[str, str]) -> str:
    """Backtests of the same strategy under several profiles, one column each."""
    perf = [r["performance"] for r in runs.values()]
    risk = [r["risk_adherence"] for r in runs.values()]
    rows = [
        ["Net profit (%)", *(num(p["net_profit_pct"]) for p in perf)],
        ["Max drawdown (%)", *(num(p["max_drawdown_pct"]) for p in perf)],
        ["Sharpe", *(num(p["sharpe"]) for p in perf)],
        ["Trades", *(p["trades"] for p in perf)],
        ["Largest position (% equity)", *(num(a["largest_position_pct_of_equity"]) for a in risk)],
        ["Leverage (x)", *(f"{r['request']['leverage']:g}" for r in runs.values())],
        ["Limit violations", *(len(a["violations"]) for a in risk)],
        ["Result id", *(r["id"] for r in runs.values())],
        ["Equity curve (PNG)", *(charts.get(name, "none") for name in runs)],
    ]
    return markdown_table(["Metric", *runs], rows)


def monte_carlo_lines(mc: dict[str, Any]) -> list[str]:
    lines = []
    for part in mc["parts"]:
        r, d = part["return_pct"], part["max_drawdown_pct"]
        lines.append(
            f"   {part['method']:<12} return % p5 {r['p5']:.2f} / p50 {r['p50']:.2f} / p95 {r['p95']:.2f}   "
            f"max drawdown % p50 {d['p50']:.2f} / p95 {d['p95']:.2f}   P(loss) {part['probability_of_loss']:.2f}"
        )
    return lines


def validation_lines(wf: dict[str, Any]) -> list[str]:
    lines = [
        f"   fold {f['fold']}: in-sample Sharpe {num(f['in_sample_sharpe'])}, out-of-sample Sharpe "
        f"{num(f['out_of_sample_sharpe'])} ({', '.join(f['out_of_sample_regimes'])})"
        for f in wf["folds"]
    ]
    return [*lines, f"   verdict: {wf['verdict']}"]


def optimization_lines(report: dict[str, Any]) -> list[str]:
    """Out of sample first, then in-sample, the deflated Sharpe over every trial, the counts and the verdict."""

    def figures(f: dict[str, Any] | None) -> str:
        if not f:
            return "none (no feasible trial)"
        return (
            f"net profit {num(f['net_profit_pct'])} %, Sharpe {num(f['sharpe'])}, max drawdown "
            f"{num(f['max_drawdown_pct'])} %, {f['trades']} trades"
        )

    dsr, counts = report.get("deflated_sharpe") or {}, report["trials"]
    chosen = ", ".join(f"{k}={v:g}" for k, v in (report.get("chosen_hyperparameters") or {}).items())
    return [
        f"   out of sample: {figures(report['out_of_sample'])}",
        f"   in sample:     {figures(report['in_sample'])}",
        f"   deflated Sharpe {num(dsr.get('deflated_sharpe'))} over {dsr.get('n_trials', 0)} trials "
        f"({counts['feasible']} feasible, {counts['infeasible']} infeasible, {counts['failed']} failed)",
        f"   chosen: {chosen or 'nothing'} (proposed only: the configuration is unchanged)",
        f"   verdict: {report['verdict']}",
    ]


def fill_lines(placed: dict[str, Any], price_label: str) -> list[str]:
    f = placed["fill"]
    passed = sum(c["passed"] for c in placed["checks"])
    return [
        f"   {placed['order']['status']}: {f['side']} {f['qty']:.6f} {f['symbol']} at {f['price']:,.2f} "
        f"(reference {f['reference_price']:,.2f}, {price_label}; slippage included), fee {f['fee']:.4f} USD",
        f"   pre-trade checks: {passed} of {len(placed['checks'])} passed",
        *(f"     {'pass' if c['passed'] else 'FAIL'}  {c['rule']:<22} {c['detail']}" for c in placed["checks"]),
        *(f"   note: {note}" for note in placed["notes"]),
    ]


def portfolio_lines(book: dict[str, Any]) -> list[str]:
    a = book["account"]
    head = (
        f"   equity {a['equity']:,.2f} USD, cash {a['cash']:,.2f}, margin {a['margin_used']:,.2f}, "
        f"fees {a['fees_paid']:,.2f}, state {book['trading_state']}"
    )
    return (
        [head]
        + [
            f"   {p['strategy']} {p['side']} {p['qty']:.6f} {p['symbol']} entry {p['entry_price']:,.2f} "
            f"mark {p['mark_price']:,.2f} stop {p['stop_loss_price']:,.2f} "
            f"take profit {p['take_profit_price']:,.2f} unrealised {p['unrealised_pnl']:,.2f} USD"
            for p in book["positions"]
        ]
        + tail_lines(book)
    )


def tail_lines(book: dict[str, Any]) -> list[str]:
    """The open book's one-day VaR/CVaR (historical first), or why it could not be measured."""
    tail = book.get("tail_risk")
    if tail is None:
        why = book.get("tail_risk_unmeasured")
        return [f"   one-day VaR/CVaR not measured: {why}"] if why else []
    parts = [f"{e['method']} VaR {num(e['var_pct'])} % / CVaR {num(e['cvar_pct'])} %" for e in tail["estimates"]]
    days, limit = tail["daily_returns"], tail["max_cvar"] * 100
    head = f"   one-day at {tail['confidence']:.0%} ({days} days; max_cvar {limit:g} %): "
    return [head + "; ".join(parts)]


def journal_lines(entries: list[dict[str, Any]]) -> list[str]:
    return [
        f"   {row['ts']}  {row['server']:<16} {row['tool']:<23} {row['decision']:<8} {row['outcome']:<18} "
        f"{row['rule'] or ''}".rstrip()
        for row in reversed(entries)
    ]


def opportunity_line(o: dict[str, Any]) -> str:
    volatility = "assumed" if o["volatility_assumed"] else "measured"
    return (
        f"   #{o['rank']} {o['symbol']} {o['direction']}: score {o['score']:.3f}, expected move {o['mu_pct']:+.2f} % "
        f"vs {o['sigma_pct']:.2f} % over {o['horizon_hours']:g} h, price confirmation {o['price_confirmation']}, "
        f"volatility {volatility}"
    )

"""`trading-mcp ask "<command>"`: plain-English commands to tool calls, by a deterministic parser (no LLM).

The parser is pure: text in, a `Plan` out (which server, which tool, which arguments), or an `AskError` that names
the closest known commands and gives examples. Strategy, symbol and profile names are checked by the servers.
Text that matches no known command at all (`NotUnderstood`) may go to GLM when ZHIPUAI_API_KEY is set
(`trading_cli.ask.glm`); everything the parser understands never does.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from trading_cli.ask.words import (
    BUILTIN_STRATEGIES,
    FILLER,
    NOT_TICKERS,
    PROFILE_WORDS,
    RISK_LEVELS,
    STAGES,
    TIMEFRAMES,
    UNITS_DAYS,
)

EXAMPLES: dict[str, str] = {
    "backtest": "backtest trend_following conservatively",
    "backtest_range": "backtest breakout 4h from 2025-06-01 to 2025-08-01 with the moderate profile",
    "backtest_days": "backtest mean_reversion on ETH-USDT over the last 90 days aggressively",
    "compare": "compare risk profiles for momentum",
    "batch": "backtest all strategies on BTC and ETH",
    "optimize": "optimize trend_following on ETH",
    "stress": "stress test trend_following",
    "price": "price of BTC, ETH and AAPL",
    "news": "news on SOL",
    "opportunities": "opportunities today",
    "promote": "promote trend_following to paper",
    "gates": "gates for trend_following to paper",
    "demote": "demote mean_reversion",
    "portfolio": "portfolio",
    "var": "what is my VaR",
    "performance": "performance of trend_following",
    "history": "stage history",
    "policy": "policy for trend_following",
    "strategies": "strategies",
    "candles": "candles",
    "journal": "journal",
}
VERBS = (
    "backtest", "compare", "optimize", "stress", "price", "prices", "quote", "news", "headlines", "opportunities",
    "ideas", "promote", "demote", "portfolio", "positions", "performance", "gates", "history", "policy", "strategies",
    "candles", "journal",
)  # fmt: skip


class AskError(Exception):
    """The command could not be turned into a tool call; the message says why and what would work."""


class NotUnderstood(AskError):
    """No known command matched at all (as opposed to a known command with a missing or conflicting part): only
    this kind of text may go to GLM (`trading_cli.ask.glm`)."""


@dataclass(frozen=True)
class Call:
    server: str
    tool: str
    arguments: dict[str, Any]

    def show(self) -> str:
        import json

        return f"{self.server}.{self.tool} {json.dumps(self.arguments)}"


@dataclass(frozen=True)
class Plan:
    """What to call. `latest_backtest_of`: first look up that strategy's newest stored backtest (its id becomes
    `backtest_id` of the call)."""

    command: str
    call: Call
    latest_backtest_of: str | None = None
    notes: list[str] = field(default_factory=list)


# --- tokens ------------------------------------------------------------------------------------------------------
_DATE = r"\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2})?)?"


def _clean(text: str) -> str:
    text = text.strip().lower().replace("’", "'")
    text = re.sub(r"[!?;\"]", " ", text)
    text = re.sub(r"\bback[\s-]?test(ed|ing|s)?\b", "backtest", text)
    text = re.sub(r"\bstress[\s-]?test(ed|ing|s)?\b", "stress", text)
    text = re.sub(r"(\w)'s\b", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s,]+", text) if w]


def _profile(words: list[str], text: str) -> str | None:
    found = {PROFILE_WORDS[w] for w in words if w in PROFILE_WORDS}
    for level, name in RISK_LEVELS.items():
        if re.search(rf"\b{level}[\s-]risk\b", text):
            found.add(name)
    if len(found) > 1:
        raise AskError(
            f"the command names more than one risk profile ({', '.join(sorted(found))}); name one, e.g. "
            f"'{EXAMPLES['backtest']}', or compare them: '{EXAMPLES['compare']}'."
        )
    return found.pop() if found else None


def _timeframe(words: list[str]) -> str | None:
    found = [w for w in words if w in TIMEFRAMES]
    if len(found) > 1:
        raise AskError(f"more than one timeframe ({', '.join(found)}); give one, e.g. 4h.")
    return ("1D" if found[0] == "1d" else found[0]) if found else None


def _range(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    span = re.search(rf"\bfrom ({_DATE}) (?:to|until|till|-) ({_DATE})\b", text)
    if span:
        out["start"], out["end"] = span.group(1).upper(), span.group(2).upper()
    else:
        since = re.search(rf"\b(?:from|since|starting) ({_DATE})\b", text)
        if since:
            out["start"] = since.group(1).upper()
        until = re.search(rf"\b(?:to|until|till) ({_DATE})\b", text)
        if until:
            out["end"] = until.group(1).upper()
    last = re.search(r"\b(?:last|past|previous) (\d+) ?(days?|weeks?|months?|years?)\b", text) or re.search(
        r"\b(\d+) ?(days?|weeks?|months?|years?)\b", text
    )
    single = re.search(r"\b(?:last|past|previous) (day|week|month|year)\b", text)
    if last:
        out["days"] = int(last.group(1)) * UNITS_DAYS[last.group(2)]
    elif single:
        out["days"] = UNITS_DAYS[single.group(1)]
    if "days" in out and "start" in out and "end" in out:
        raise AskError("give either a date range (from ... to ...) or a number of days, not both.")
    if "days" in out and not 1 <= out["days"] <= 3650:
        raise AskError(f"{out['days']} days is outside 1..3650.")
    for key in ("start", "end"):
        if key in out:
            out[key] = out[key].replace(" ", "T")
    return out


_SYMBOL = re.compile(r"^\$?[a-z0-9]{1,10}(?:[-/][a-z0-9]{2,10})?(?:\.[a-z])?$")


def _market(words: list[str]) -> str | None:
    """A market after 'on' or 'for' in a backtest: ETH-USDT, eth/usdt."""
    for i, w in enumerate(words[:-1]):
        nxt = words[i + 1]
        if w in ("on", "for") and ("-" in nxt or "/" in nxt) and _SYMBOL.match(nxt):
            return nxt.upper().replace("/", "-")
    return None


def _strategy(words: list[str], skip: set[str]) -> str | None:
    """The first word that can be a strategy name (two words joined when they make a built-in one)."""
    for i, w in enumerate(words):
        if i + 1 < len(words) and f"{w}_{words[i + 1]}" in BUILTIN_STRATEGIES:
            return f"{w}_{words[i + 1]}"
        if w in skip or w in FILLER or w in PROFILE_WORDS or w in TIMEFRAMES or w in STAGES:
            continue
        if w in RISK_LEVELS or w in UNITS_DAYS or w.isdigit() or re.fullmatch(_DATE, w):
            continue
        if "-" in w or "/" in w:
            continue
        if re.fullmatch(r"[a-z][a-z0-9_]{0,63}", w):
            return w
    return None


def _symbols(text: str, after: tuple[str, ...]) -> list[str]:
    """Symbols named after a keyword: 'price of BTC, ETH and AAPL' -> [BTC, ETH, AAPL]."""
    pattern = r"^.*\b(?:" + "|".join(after) + r")\b(.*)$"  # the last keyword: 'what is the price of X
    m = re.search(pattern, text)
    tail = m.group(1) if m else ""
    out = []
    for w in re.split(r"[\s,]+|\band\b|&", tail):
        w = w.strip(" .$")
        if not w or w in FILLER or w in ("today", "now", "latest", "recent", "please"):
            continue
        if not _SYMBOL.match(w):
            raise AskError(f"{w!r} does not look like a symbol; use tickers such as BTC, ETH-USDT or AAPL.")
        out.append(w.upper().replace("/", "-"))
    return list(dict.fromkeys(out))


# --- commands ----------------------------------------------------------------------------------------------------
def _need_strategy(command: str, strategy: str | None) -> str:
    if strategy is None:
        raise AskError(f"which strategy? e.g. '{EXAMPLES[command]}' (trading-mcp ask 'strategies' lists them).")
    return strategy


def _backtest(text: str, words: list[str]) -> Plan:
    strategy = _need_strategy("backtest", _strategy(words, {"backtest"}))
    args: dict[str, Any] = {"strategy": strategy}
    market = _market(words)
    if market:
        args["symbol"] = market
    timeframe = _timeframe(words)
    if timeframe:
        args["timeframe"] = timeframe
    args.update(_range(text))
    profile = _profile(words, text)
    if profile:
        args["risk_profile"] = profile
    return Plan("backtest", Call("jesse-mcp", "backtest", args))


def _compare(text: str, words: list[str]) -> Plan:
    strategy = _need_strategy("compare", _strategy(words, {"compare", "profiles", "profile", "risk"}))
    args: dict[str, Any] = {"strategy": strategy}
    market = _market(words)
    if market:
        args["symbol"] = market
    timeframe = _timeframe(words)
    if timeframe:
        args["timeframe"] = timeframe
    args.update(_range(text))
    return Plan("compare", Call("jesse-mcp", "compare_risk_profiles", args))


def _tickers(words: list[str]) -> list[str]:
    """The markets after 'on' or 'for': 'on BTC and ETH' -> BTC-USDT, ETH-USDT (a bare ticker: its USDT market)."""
    out, collecting = [], False
    for w in words:
        if w in ("on", "for"):
            collecting = True
        elif collecting and w not in ("and", "both"):
            collecting = w not in NOT_TICKERS and bool(re.fullmatch(r"\$?[a-z][a-z0-9]{0,9}(?:[-/][a-z0-9]{2,10})?", w))
            ticker = w.lstrip("$").upper().replace("/", "-")
            out += [ticker if "-" in ticker else f"{ticker}-USDT"] if collecting else []
    return list(dict.fromkeys(out))


def _batch(text: str, words: list[str]) -> Plan:
    """'backtest all strategies on BTC and ETH': every built-in strategy on each market, one ranked table."""
    args: dict[str, Any] = {"strategies": list(BUILTIN_STRATEGIES)}
    symbols = _tickers(words)
    if symbols:
        args["symbols"] = symbols
    timeframe = _timeframe(words)
    if timeframe:
        args["timeframes"] = [timeframe]
    if re.search(r"\b(?:all|every|each|three|compare) (?:the )?(?:risk )?profiles?\b", text):
        args["risk_profiles"] = ["conservative", "moderate", "aggressive"]
    elif profile := _profile(words, text):
        args["risk_profiles"] = [profile]
    args.update(_range(text))
    bare = [s for s in symbols if s.split("-")[0].lower() in words]
    notes = [f"{', '.join(s.split('-')[0] for s in bare)} read as {', '.join(bare)}."] if bare else []
    return Plan("batch", Call("jesse-mcp", "backtest_batch", args), notes=notes)


OBJECTIVES = {
    "sharpe": "sharpe",
    "sortino": "sortino",
    "calmar": "calmar",
    "profit": "net_profit",
    "return": "net_profit",
}


def _objective(text: str) -> str | list[str] | None:
    """'return vs drawdown' -> a Pareto front of two; else the first objective word named."""
    if re.search(r"\b(?:profit|return)s?\b.*\b(?:vs|versus|against|and)\b.*\bdrawdown\b", text):
        return ["net_profit", "max_drawdown"]
    found = [
        (m.start(), OBJECTIVES[m.group(1)]) for m in re.finditer(r"\b(sharpe|sortino|calmar|profit|return)\b", text)
    ]
    return min(found)[1] if found else None


def _optimize(text: str, words: list[str]) -> Plan:
    """'optimize trend_following on ETH [with 50 trials] [for sortino] [1h] [over the last 90 days] [safely]'."""
    symbols = _tickers(words)
    named = {s.split("-")[0].lower() for s in symbols}
    strategy = _need_strategy("optimize", _strategy(words, {"optimize", "optimise", "tune", *OBJECTIVES, *named}))
    args: dict[str, Any] = {"strategy": strategy}
    if symbols:
        args["symbols"] = symbols
    if timeframe := _timeframe(words):
        args["timeframe"] = timeframe
    if trials := re.search(r"\b(\d{1,5}) trials?\b", text):
        args["trials"] = int(trials.group(1))
    if objective := _objective(text):
        args["objective"] = objective
        if isinstance(objective, list):
            args["sampler"] = "nsga2"
    if re.search(r"\bwalk[- ]?forward\b", text):
        args["validation"] = "walk_forward"
    args.update(_range(text))
    if profile := _profile(words, text):
        args["risk_profile"] = profile
    bare = [s for s in symbols if s.split("-")[0].lower() in words]
    notes = [f"{', '.join(s.split('-')[0] for s in bare)} read as {', '.join(bare)}."] if bare else []
    return Plan("optimize", Call("jesse-mcp", "optimize_strategy", args), notes=notes)


def _stress(text: str, words: list[str]) -> Plan:
    strategy = _need_strategy("stress", _strategy(words, {"stress", "test"}))
    return Plan("stress", Call("jesse-mcp", "stress_test", {}), latest_backtest_of=strategy)


def _price(text: str, words: list[str]) -> Plan:
    symbols = _symbols(text, ("of", "for", "prices", "price", "quote", "quotes", "is"))
    if not symbols:
        raise AskError(f"price of what? e.g. '{EXAMPLES['price']}'.")
    if len(symbols) == 1:
        return Plan("price", Call("asset-price-mcp", "get_price", {"symbol": symbols[0]}))
    return Plan("price", Call("asset-price-mcp", "get_prices", {"symbols": symbols}))


def _news(text: str, words: list[str]) -> Plan:
    symbols = _symbols(text, ("on", "about", "for", "news", "headlines"))
    args: dict[str, Any] = {"symbols": symbols} if symbols else {}
    return Plan("news", Call("discovery-mcp", "fetch_news", args))


def _opportunities(text: str, words: list[str]) -> Plan:
    args: dict[str, Any] = {}
    top = re.search(r"\b(?:top|best) (\d+)\b", text)
    if top:
        args["top_k"] = max(1, min(20, int(top.group(1))))
    m = re.search(r"\b(?:in|for|on) (.+)$", text)
    if m and not re.fullmatch(r"(?:today|now|the market|markets?)", m.group(1).strip()):
        args["symbols"] = _symbols(text, ("in", "for", "on"))
    return Plan("opportunities", Call("discovery-mcp", "discover_opportunities", args))


def _stage_target(text: str, command: str) -> str | None:
    m = re.search(r"\bto (exploration|paper|live)\b", text) or re.search(r"\b(exploration|paper|live)\b", text)
    return m.group(1) if m else None


def _promote(text: str, words: list[str]) -> Plan:
    strategy = _strategy(words, {"promote", "stage", "global"})
    target = _stage_target(text, "promote")
    if target is None or target == "exploration":
        raise AskError(f"promote to which stage, paper or live? e.g. '{EXAMPLES['promote']}'.")
    if strategy is None and "global" not in words:
        raise AskError(
            f"promote which strategy? e.g. '{EXAMPLES['promote']}' (or 'promote the global stage to paper')."
        )
    return Plan("promote", Call("jesse-mcp", "request_stage_promotion", {"strategy": strategy, "to_stage": target}))


def _gates(text: str, words: list[str]) -> Plan:
    strategy = _need_strategy("gates", _strategy(words, {"gates", "gate", "promotion", "ready", "stage"}))
    target = _stage_target(text, "gates") or "paper"
    return Plan("gates", Call("jesse-mcp", "get_promotion_gates", {"strategy": strategy, "to_stage": target}))


def _demote(text: str, words: list[str]) -> Plan:
    strategy = _strategy(words, {"demote", "stage", "global"})
    if strategy is None and "global" not in words:
        raise AskError(f"demote which strategy? e.g. '{EXAMPLES['demote']}' (or 'demote the global stage').")
    args: dict[str, Any] = {"strategy": strategy}
    m = re.search(r"\bto (exploration|paper)\b", text)
    if m:
        args["to_stage"] = m.group(1)
    return Plan("demote", Call("jesse-mcp", "demote_stage", args))


def _simple(command: str, server: str, tool: str, strategy_from: set[str] | None = None):
    def parse(text: str, words: list[str]) -> Plan:
        args: dict[str, Any] = {}
        if strategy_from is not None:
            strategy = _strategy(words, strategy_from)
            if strategy:
                args["strategy"] = strategy
        return Plan(command, Call(server, tool, args))

    return parse


# keyword -> parser; the first keyword found in the command decides (order matters: 'compare' before 'backtest').
COMMANDS: tuple[tuple[str, Any], ...] = (
    (r"\b(?:backtest|compare)\b.*\b(?:all|every|each) (?:the )?(?:built-?in )?strateg(?:y|ies)\b", _batch),
    (r"\b(?:optimi[sz]e|tune)\b", _optimize),
    (r"\bcompare\b", _compare),
    (r"\bstress\b", _stress),
    (r"\bbacktest\b", _backtest),
    (r"\bpromot(e|ion)\b(?!.*\bgates?\b)", _promote),
    (r"\bgates?\b|\bready for\b", _gates),
    (r"\bdemote\b", _demote),
    (r"\b(prices?|quotes?|how much is|trading at)\b", _price),
    (r"\b(news|headlines|stories)\b", _news),
    (r"\b(opportunit(y|ies)|ideas|what to (buy|trade))\b", _opportunities),
    (r"\b(performance|track record)\b", _simple("performance", "jesse-mcp", "get_paper_performance", {"performance"})),
    (
        r"\b(c?var|value at risk|tail risk|expected shortfall)\b",
        _simple("var", "jesse-mcp", "get_paper_portfolio"),
    ),
    (r"\b(portfolio|positions|account|balance|equity)\b", _simple("portfolio", "jesse-mcp", "get_paper_portfolio")),
    (r"\bstage history\b|\bhistory\b", _simple("history", "jesse-mcp", "get_stage_history", {"stage", "history"})),
    (r"\bpolicy\b|\blimits\b", _simple("policy", "jesse-mcp", "get_policy", {"policy", "limits"})),
    (r"\bstrateg(y|ies)\b", _simple("strategies", "jesse-mcp", "list_strategies")),
    (r"\bcandles?\b|\bdata\b", _simple("candles", "jesse-mcp", "list_candles")),
    (r"\bjournal\b|\baudit\b", _simple("journal", "jesse-mcp", "get_journal")),
)


def parse(command: str) -> Plan:
    """The tool call for a plain-English command; AskError with the closest commands when there is none."""
    if not isinstance(command, str) or not command.strip():
        raise AskError("empty command. " + examples_text())
    if len(command) > 500:
        raise AskError("the command is longer than 500 characters; say it in one short sentence.")
    text = _clean(command)
    words = _words(text)
    for pattern, handler in COMMANDS:
        if re.search(pattern, text):
            return handler(text, words)
    raise NotUnderstood(f"not understood: {command.strip()!r}. " + suggestions(words))


def suggestions(words: list[str]) -> str:
    close: list[str] = []
    for w in words:
        for verb in difflib.get_close_matches(w, VERBS, n=2, cutoff=0.75):
            key = {"prices": "price", "quote": "price", "headlines": "news", "ideas": "opportunities"}.get(verb, verb)
            example = EXAMPLES.get({"positions": "portfolio"}.get(key, key))
            if example and example not in close:
                close.append(example)
    head = ("Did you mean: " + " | ".join(f"'{c}'" for c in close) + ". ") if close else ""
    return head + examples_text()


def examples_text() -> str:
    picks = ("backtest", "backtest_days", "compare", "stress", "price", "news", "opportunities", "promote", "portfolio")
    return "Commands look like: " + "; ".join(f"'{EXAMPLES[k]}'" for k in picks) + "."

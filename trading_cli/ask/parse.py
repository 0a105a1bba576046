"""`trading-mcp ask "<command>"`: plain-English commands to tool calls, by a deterministic parser (no LLM).

The parser is pure: text in, a `Plan` out (which server, which tool, which arguments), or an `AskError` that names
the closest known commands and gives examples. Strategy, symbol and profile names are checked by the servers.
Text that matches no known command at all (`NotUnderstood`) may go to GLM when ZHIPUAI_API_KEY is set
(`trading_cli.ask.glm`); everything the parser understands never does.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from trading_cli.ask.parts import (
    EXAMPLES,
    AskError,
    Call,
    NotUnderstood,
    Plan,
    clean,
    market_in,
    profile_in,
    range_in,
    strategy_in,
    symbols_in,
    tickers_in,
    timeframe_in,
    words_of,
)
from trading_cli.ask.words import (
    BUILTIN_STRATEGIES,
)

VERBS = (
    "backtest", "compare", "optimize", "stress", "price", "prices", "quote", "news", "headlines", "opportunities",
    "ideas", "promote", "demote", "portfolio", "positions", "performance", "gates", "history", "policy", "strategies",
    "candles", "journal",
)  # fmt: skip


def _need_strategy(command: str, strategy: str | None) -> str:
    if strategy is None:
        raise AskError(f"which strategy? e.g. '{EXAMPLES[command]}' (trading-mcp ask 'strategies' lists them).")
    return strategy


PORTFOLIO = re.compile(r"\b(?:as a portfolio|portfolio|together|combined|in one account)\b")


def _where(text: str, words: list[str], strategy: str, example: str) -> tuple[dict[str, Any], list[str]]:
    """The market ('on ETH-USDT', 'on ETH') or a portfolio's ('on BTC, ETH and SOL as a portfolio') of a run, with
    a note when bare tickers were read as USDT markets; {} when none is named; {"symbols": [...]} for several
    markets without a word that makes them one portfolio (separate runs)."""
    market = market_in(words)
    named = [t for t in tickers_in(words) if t.split("-")[0].lower() not in {strategy, *BUILTIN_STRATEGIES}]
    if PORTFOLIO.search(text):
        if len(named) < 2:
            raise AskError(
                f"a portfolio trades at least two markets, e.g. '{example} on BTC, ETH and SOL as a portfolio'."
            )
        return {"markets": named}, _read_as(named, words)
    if market:
        return {"symbol": market}, []
    if len(named) > 1:
        alone = f"each market on its own; for one account say '{example} on {' and '.join(named)} as a portfolio'."
        return {"symbols": named}, [*_read_as(named, words), alone]
    return ({"symbol": named[0]}, _read_as(named, words)) if named else ({}, [])


def _read_as(symbols: list[str], words: list[str]) -> list[str]:
    bare = [s for s in symbols if s.split("-")[0].lower() in words]
    return [f"{', '.join(s.split('-')[0] for s in bare)} read as {', '.join(bare)}."] if bare else []


def _backtest(text: str, words: list[str]) -> Plan:
    strategy = _need_strategy("backtest", strategy_in(words, {"backtest"}))
    args: dict[str, Any] = {"strategy": strategy}
    where, notes = _where(text, words, strategy, f"backtest {strategy}")
    args.update(where)
    timeframe = timeframe_in(words)
    if timeframe:
        args["timeframe"] = timeframe
    args.update(range_in(text))
    profile = profile_in(words, text)
    if profile:
        args["risk_profile"] = profile
    if re.search(r"\bcvar[- ](?:aware |based )?siz|\bsiz\w* by cvar\b", text):
        args["sizing"] = "cvar"
    if "symbols" in args:  # several markets, each on its own: one batch of this strategy
        batch = {"strategies": [args.pop("strategy")], **args}
        for one, many in (("timeframe", "timeframes"), ("risk_profile", "risk_profiles")):
            if one in batch:
                batch[many] = [batch.pop(one)]
        return Plan("batch", Call("jesse-mcp", "backtest_batch", batch), notes=notes)
    return Plan("backtest", Call("jesse-mcp", "backtest", args), notes=notes)


def _compare(text: str, words: list[str]) -> Plan:
    strategy = _need_strategy("compare", strategy_in(words, {"compare", "profiles", "profile", "risk"}))
    args: dict[str, Any] = {"strategy": strategy}
    where, notes = _where(text, words, strategy, f"compare {strategy}")
    if "symbols" in where:
        raise AskError(
            f"compare runs one market or one portfolio; say 'compare {strategy} on {where['symbols'][0]}' or "
            f"'compare {strategy} on {' and '.join(where['symbols'])} as a portfolio'."
        )
    args.update(where)
    timeframe = timeframe_in(words)
    if timeframe:
        args["timeframe"] = timeframe
    args.update(range_in(text))
    return Plan("compare", Call("jesse-mcp", "compare_risk_profiles", args), notes=notes)


def _batch(text: str, words: list[str]) -> Plan:
    """'backtest all strategies on BTC and ETH': every built-in strategy on each market, one ranked table."""
    args: dict[str, Any] = {"strategies": list(BUILTIN_STRATEGIES)}
    symbols = tickers_in(words)
    if symbols:
        args["symbols"] = symbols
    timeframe = timeframe_in(words)
    if timeframe:
        args["timeframes"] = [timeframe]
    if re.search(r"\b(?:all|every|each|three|compare) (?:the )?(?:risk )?profiles?\b", text):
        args["risk_profiles"] = ["conservative", "moderate", "aggressive"]
    elif profile := profile_in(words, text):
        args["risk_profiles"] = [profile]
    args.update(range_in(text))
    return Plan("batch", Call("jesse-mcp", "backtest_batch", args), notes=_read_as(symbols, words))


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
    symbols = tickers_in(words)
    named = {s.split("-")[0].lower() for s in symbols}
    strategy = _need_strategy("optimize", strategy_in(words, {"optimize", "optimise", "tune", *OBJECTIVES, *named}))
    args: dict[str, Any] = {"strategy": strategy}
    if symbols:
        args["symbols"] = symbols
    if timeframe := timeframe_in(words):
        args["timeframe"] = timeframe
    if trials := re.search(r"\b(\d{1,5}) trials?\b", text):
        args["trials"] = int(trials.group(1))
    if objective := _objective(text):
        args["objective"] = objective
        if isinstance(objective, list):
            args["sampler"] = "nsga2"
    if re.search(r"\bwalk[- ]?forward\b", text):
        args["validation"] = "walk_forward"
    args.update(range_in(text))
    if profile := profile_in(words, text):
        args["risk_profile"] = profile
    bare = [s for s in symbols if s.split("-")[0].lower() in words]
    notes = [f"{', '.join(s.split('-')[0] for s in bare)} read as {', '.join(bare)}."] if bare else []
    return Plan("optimize", Call("jesse-mcp", "optimize_strategy", args), notes=notes)


def _stress(text: str, words: list[str]) -> Plan:
    strategy = _need_strategy("stress", strategy_in(words, {"stress", "test"}))
    return Plan("stress", Call("jesse-mcp", "stress_test", {}), latest_backtest_of=strategy)


def _price(text: str, words: list[str]) -> Plan:
    symbols = symbols_in(text, ("of", "for", "prices", "price", "quote", "quotes", "is"))
    if not symbols:
        raise AskError(f"price of what? e.g. '{EXAMPLES['price']}'.")
    if len(symbols) == 1:
        return Plan("price", Call("asset-price-mcp", "get_price", {"symbol": symbols[0]}))
    return Plan("price", Call("asset-price-mcp", "get_prices", {"symbols": symbols}))


def _news(text: str, words: list[str]) -> Plan:
    symbols = symbols_in(text, ("on", "about", "for", "news", "headlines"))
    args: dict[str, Any] = {"symbols": symbols} if symbols else {}
    return Plan("news", Call("discovery-mcp", "fetch_news", args))


def _opportunities(text: str, words: list[str]) -> Plan:
    args: dict[str, Any] = {}
    top = re.search(r"\b(?:top|best) (\d+)\b", text)
    if top:
        args["top_k"] = max(1, min(20, int(top.group(1))))
    m = re.search(r"\b(?:in|for|on) (.+)$", text)
    if m and not re.fullmatch(r"(?:today|now|the market|markets?)", m.group(1).strip()):
        args["symbols"] = symbols_in(text, ("in", "for", "on"))
    return Plan("opportunities", Call("discovery-mcp", "discover_opportunities", args))


def _stage_target(text: str, command: str) -> str | None:
    m = re.search(r"\bto (exploration|paper|live)\b", text) or re.search(r"\b(exploration|paper|live)\b", text)
    return m.group(1) if m else None


def _promote(text: str, words: list[str]) -> Plan:
    strategy = strategy_in(words, {"promote", "stage", "global"})
    target = _stage_target(text, "promote")
    if target is None or target == "exploration":
        raise AskError(f"promote to which stage, paper or live? e.g. '{EXAMPLES['promote']}'.")
    if strategy is None and "global" not in words:
        raise AskError(
            f"promote which strategy? e.g. '{EXAMPLES['promote']}' (or 'promote the global stage to paper')."
        )
    return Plan("promote", Call("jesse-mcp", "request_stage_promotion", {"strategy": strategy, "to_stage": target}))


def _gates(text: str, words: list[str]) -> Plan:
    strategy = _need_strategy("gates", strategy_in(words, {"gates", "gate", "promotion", "ready", "stage"}))
    target = _stage_target(text, "gates") or "paper"
    return Plan("gates", Call("jesse-mcp", "get_promotion_gates", {"strategy": strategy, "to_stage": target}))


def _demote(text: str, words: list[str]) -> Plan:
    strategy = strategy_in(words, {"demote", "stage", "global"})
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
            strategy = strategy_in(words, strategy_from)
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
    text = clean(command)
    words = words_of(text)
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

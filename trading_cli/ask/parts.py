"""The pieces of a plain-English command the parser reads: the plan it makes (`Call`, `Plan`), the errors, and
the parts of the text (strategy, markets, timeframe, range, risk profile). Pure."""

from __future__ import annotations

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
DATE = r"\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2})?)?"


def clean(text: str) -> str:
    text = text.strip().lower().replace("’", "'")
    text = re.sub(r"[!?;\"]", " ", text)
    text = re.sub(r"\bback[\s-]?test(ed|ing|s)?\b", "backtest", text)
    text = re.sub(r"\bstress[\s-]?test(ed|ing|s)?\b", "stress", text)
    text = re.sub(r"(\w)'s\b", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def words_of(text: str) -> list[str]:
    return [w for w in re.split(r"[\s,]+", text) if w]


def profile_in(words: list[str], text: str) -> str | None:
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


def timeframe_in(words: list[str]) -> str | None:
    found = [w for w in words if w in TIMEFRAMES]
    if len(found) > 1:
        raise AskError(f"more than one timeframe ({', '.join(found)}); give one, e.g. 4h.")
    return ("1D" if found[0] == "1d" else found[0]) if found else None


def range_in(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    span = re.search(rf"\bfrom ({DATE}) (?:to|until|till|-) ({DATE})\b", text)
    if span:
        out["start"], out["end"] = span.group(1).upper(), span.group(2).upper()
    else:
        since = re.search(rf"\b(?:from|since|starting) ({DATE})\b", text)
        if since:
            out["start"] = since.group(1).upper()
        until = re.search(rf"\b(?:to|until|till) ({DATE})\b", text)
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


SYMBOL = re.compile(r"^\$?[a-z0-9]{1,10}(?:[-/][a-z0-9]{2,10})?(?:\.[a-z])?$")


def market_in(words: list[str]) -> str | None:
    """A market after 'on' or 'for' in a backtest: ETH-USDT, eth/usdt."""
    for i, w in enumerate(words[:-1]):
        nxt = words[i + 1]
        if w in ("on", "for") and ("-" in nxt or "/" in nxt) and SYMBOL.match(nxt):
            return nxt.upper().replace("/", "-")
    return None


def strategy_in(words: list[str], skip: set[str]) -> str | None:
    """The first word that can be a strategy name (two words joined when they make a built-in one)."""
    for i, w in enumerate(words):
        if i + 1 < len(words) and f"{w}_{words[i + 1]}" in BUILTIN_STRATEGIES:
            return f"{w}_{words[i + 1]}"
        if w in skip or w in FILLER or w in PROFILE_WORDS or w in TIMEFRAMES or w in STAGES:
            continue
        if w in RISK_LEVELS or w in UNITS_DAYS or w.isdigit() or re.fullmatch(DATE, w):
            continue
        if "-" in w or "/" in w:
            continue
        if re.fullmatch(r"[a-z][a-z0-9_]{0,63}", w):
            return w
    return None


def symbols_in(text: str, after: tuple[str, ...]) -> list[str]:
    """Symbols named after a keyword: 'price of BTC, ETH and AAPL' -> [BTC, ETH, AAPL]."""
    pattern = r"^.*\b(?:" + "|".join(after) + r")\b(.*)$"  # the last keyword: 'what is the price of X
    m = re.search(pattern, text)
    tail = m.group(1) if m else ""
    out = []
    for w in re.split(r"[\s,]+|\band\b|&", tail):
        w = w.strip(" .$")
        if not w or w in FILLER or w in ("today", "now", "latest", "recent", "please"):
            continue
        if not SYMBOL.match(w):
            raise AskError(f"{w!r} does not look like a symbol; use tickers such as BTC, ETH-USDT or AAPL.")
        out.append(w.upper().replace("/", "-"))
    return list(dict.fromkeys(out))


# --- commands ----------------------------------------------------------------------------------------------------


def tickers_in(words: list[str]) -> list[str]:
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

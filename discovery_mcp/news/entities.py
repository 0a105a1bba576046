"""Which assets a news headline or summary is about: a fast extractor over the table of well-known assets.

The table itself and the lookups by ticker or name live in `assets` (re-exported here). Written by hand: no library
in the environment recognises tickers and company names in finance headlines.

Rules of `extract_symbols` (symbols in order of first mention, each once):
- cashtags and hashtags (`$ETH`, `$brk.b`, `#BTC`) and exchange-prefixed tickers (`NYSE: T`) always count;
- crypto pairs count (`BTC/USDT`, `ETH-USD`, `SOLUSDT`); a crypto quote counts too (`ETH/BTC`), a stablecoin one not;
- other tickers count in upper case as whole words (`WBTC` is not `BTC`, `ETHICS` not `ETH`); one-letter tickers (`T`,
  `C`, `V`) only as cashtags. Tickers that are also words or abbreviations (`AMBIGUOUS`: SOL, LINK, DOT, ONE, DOGE,
  MA, HD ...) count only when the text is not written in capitals, has market context of the asset's kind (a market
  word or another asset of that kind) and local evidence: a market word or a percentage right after (`SOL rallies 8%`,
  `DOT token`, `HD shares`), an amount or a trade before (`10,000 SOL`, `staked SOL`), the asset's name elsewhere, or
  a list with another asset (`BTC, ETH and SOL`);
- names count as whole words, possessives included. A lowercase spelling matches in any case (`bitcoin`: `Bitcoin's`,
  `BITCOIN`); a capitalised one as written or in capitals (`Apple`, not `apple`). Marks on names that are also common
  words: `~` as written only, and after an article only before a network word (`Ripple`, `the Stellar network`; not
  `a ripple`, `the Amazon`); `?` like `~` and with market context of the asset's kind (`Visa`, `Oracle`, `Polygon`,
  `Cosmos`, `Pepe`); `!` like `?` with any market context, and only in a company's position: possessive, start of a
  sentence or clause, or after `firm`/`giant`/`Saylor's` (`Strategy`). A `-` spelling blocks a phrase that is no asset
  (`ripple effect`, `price oracle`, `travel visa`). `Block`, `Target`, `Near` and `Optimism` are too common even so:
  only phrases count (`Block Inc`, `NEAR Protocol`). Subsidiaries (YouTube, AWS) do not count.
"""

from __future__ import annotations

import re

from discovery_mcp.news.assets import (
    AMBIGUOUS,
    ASSETS,
    BY_TICKER,
    STABLECOINS,
    Asset,
    asset,
    marked_spellings,
    normalise_symbol,
    suggest_symbols,
)

__all__ = ["ASSETS", "Asset", "asset", "extract_symbols", "normalise_symbol", "suggest_symbols"]

_QUOTES = ("USDT", "USDC", "FDUSD", "USD", "EUR", "BTC", "ETH", "PERP")
_ARTICLES = ("a", "an", "the")


def _name_tables() -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str | None, str]]]:
    """Spellings -> (symbol, mark): case-sensitive ones as written, the others in lower case (None for a blocker)."""
    exact: dict[str, tuple[str, str]] = {}
    folded: dict[str, tuple[str | None, str]] = {}
    for symbol, spelling in marked_spellings():
        mark, text = (spelling[0], spelling[1:]) if spelling[0] in "~?!-" else ("", spelling)
        if mark == "-":
            folded[text] = (None, mark)
        elif text == text.lower():
            folded[text] = (symbol, mark)
        elif not mark:
            exact |= {text: (symbol, mark), text.upper(): (symbol, mark)}
        else:  # an article makes a common word of it: "a ripple", "the Amazon", "the Oracle"
            exact[text] = (symbol, mark)
            folded |= {f"{article} {text.lower()}": (symbol, "a") for article in _ARTICLES}
    return exact, folded


_EXACT, _FOLDED = _name_tables()


def _trie(words: set[str]) -> str:
    """One regex alternation for many words, factored by common prefixes (much faster than a flat alternation)."""
    root: dict = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        branches = [_char(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body

    return build(root)


def _char(ch: str) -> str:
    return {"'": "['’]", " ": r"[^\S\n]"}.get(ch, re.escape(ch))  # no newline: a title and its summary stay apart


_NAMES = re.compile(rf"(?<![\w$@])({_trie({k.lower() for k in (*_EXACT, *_FOLDED)})})(['’]s?)?(?!\w)", re.IGNORECASE)
_TICKERS = re.compile(
    r"(?:(?P<tag>[$#]|\b(?:NYSE|NASDAQ|Nasdaq|NYSE\sArca|Cboe|CBOE|AMEX)\s?:\s?)(?P<ct>(?i:"
    + _trie({t.lower() for t in BY_TICKER})
    + r"))|(?<![\w$#./-])(?P<t>"
    + _trie({t for t in BY_TICKER if len(t) > 1})
    + rf")(?:[-/_]?(?P<q>{'|'.join(_QUOTES)}))?)(?:['’]s)?(?!\w|\.\w)"
)
_GENERIC = (
    r"prices?|rall\w*|surg\w*|soar\w*|jump\w*|climb\w*|gain\w*|rebound\w*|drop\w*|dips?|fall(?:s|ing)?|fell|plung\w*"
    r"|tumbl\w*|slid\w*|sink\w*|sank|bull(?:s|ish)?|bear(?:s|ish)|markets?|trad(?:e|es|ing|ers?)|etfs?|investors?"
)
_CONTEXT = {
    "crypto": re.compile(
        rf"\b(?:{_GENERIC}|crypto\w*|tokens?|tokeni[sz]\w*|\w*coins?|blockchains?|defi|web3|on-?chain|stak\w*|wallets?"
        r"|exchanges?|airdrops?|mainnet|dex|futures|perps?|liquidat\w*|whales?|holders|miners?|mining|hodl\w*)\b|\d\s?%",
        re.IGNORECASE,
    ),
    "stock": re.compile(
        rf"\b(?:{_GENERIC}|shares?|stocks?|equit(?:y|ies)|earnings|revenue|profits?|quarter\w*|guidance|nasdaq|nyse"
        r"|s&p|dow|wall street|analysts?|dividends?|buybacks?|ipo|valuation|market cap\w*|ceo|acqui\w*|deal"
        r"|payments?|settlement|partnership)\b|\d\s?%",
        re.IGNORECASE,
    ),
}
_MOVE = (
    r"tokens?|coins?|price[sd]?|holders|whales|stakers|staking|etfs?|futures|perps?|shares|stock|earnings|rall(?:y|ies"
    r"|ied)|surge[sd]?|soar(?:s|ed)?|jump(?:s|ed)?|climb(?:s|ed)?|gain(?:s|ed)?|rises|rose|rebound(?:s|ed)?|spike[sd]?"
    r"|pump(?:s|ed)?|falls|fell|drop(?:s|ped)?|sinks|sank|slides|slid|slump(?:s|ed)?|tumble[sd]?|plunge[sd]?|dump(?:s"
    r"|ed)?|crash(?:es|ed)?|dip(?:s|ped)?|breakout|bulls|bears|outperform\w*|underperform\w*"
)
_CUE_AFTER = re.compile(
    rf"\s*(?:(?:{_MOVE})\b|(?:[\w'’-]+\s+){{0,2}}\(?[+-]?\d[\d.,]*\s?%|(?:at|to|above|below|near|hits?|tops?)\s+\$\d)",
    re.IGNORECASE,
)
_CUE_BEFORE = re.compile(
    r"\b(?:\d[\d.,]*\s?(?:[kmb]|mn|bn|million|billion|thousand)?|staked|buys?|buying|bought|sells?|selling|sold|longs?"
    r"|shorts?|holds)\s+$",
    re.IGNORECASE,
)
_LIST_GAP = re.compile(r"\s*(?:,|&|/|,?\s*and|or|vs\.?)\s*", re.IGNORECASE)
_COMPANY_BEFORE = re.compile(r"(?:[.:;,!?\"“‘(|–—]|\b(?:saylor['’]s|firm|giant|company|treasury))\s*$", re.IGNORECASE)
_NETWORK_AFTER = re.compile(
    r"['’]?s?\s(?:network|blockchain|ecosystem|chain|mainnet|protocol|foundation|token)\b", re.I
)


def extract_symbols(text: str) -> list[str]:
    """The assets `text` mentions, in order of first mention, each once (rules in the module docstring)."""
    if not text:
        return []
    found: list[tuple[int, int, str]] = []  # (start, end, symbol) of accepted mentions
    pending: list[tuple[int, int, str, str]] = []  # (start, end, symbol, why) of mentions that need context
    for m in _NAMES.finditer(text):
        _name(text, m, found, pending)
    for m in _TICKERS.finditer(text):
        _ticker(text, m, found, pending)
    if pending:
        _resolve(text, found, pending)
    return list(dict.fromkeys(symbol for _, _, symbol in sorted(found)))


def _name(text: str, m: re.Match[str], found: list, pending: list) -> None:
    spelled = " ".join(m[1].split()).replace("’", "'")
    symbol, mark = _EXACT.get(spelled) or _FOLDED.get(spelled.lower()) or (None, "-")
    if symbol is None:
        return
    if mark == "a":  # "the Stellar network" is the asset, "the Amazon" and "a Ripple" are not
        if spelled.split(" ", 1)[1] not in _EXACT or not _NETWORK_AFTER.match(text, m.end()):
            return
        mark = ""
    if mark == "!" and not (m[2] or text.startswith((" Inc", " (MSTR)"), m.end(1)) or _company_before(text, m.start())):
        return
    if mark in ("?", "!"):
        pending.append((m.start(), m.end(1), symbol, mark))
    else:
        found.append((m.start(), m.end(1), symbol))


def _company_before(text: str, start: int) -> bool:
    return _COMPANY_BEFORE.search(text, max(0, start - 20), start) is not None or not text[:start].strip()


def _ticker(text: str, m: re.Match[str], found: list, pending: list) -> None:
    if m["ct"] is not None:
        found.append((m.start(), m.end(), BY_TICKER[m["ct"].upper()]))
        return
    symbol = BY_TICKER[m["t"]]
    if m["q"] is not None and ASSETS[symbol].kind == "crypto":
        found.append((m.start(), m.end(), symbol))
        quote = BY_TICKER.get(m["q"])
        if quote is not None and quote not in STABLECOINS:
            found.append((m.start("q"), m.end("q"), quote))
    elif m["t"] not in AMBIGUOUS:
        found.append((m.start(), m.end("t"), symbol))
    elif _CUE_AFTER.match(text, m.end()) or _CUE_BEFORE.search(text, max(0, m.start() - 24), m.start()):
        pending.append((m.start(), m.end("t"), symbol, "cue"))
    else:
        pending.append((m.start(), m.end("t"), symbol, "ticker"))


def _resolve(text: str, found: list, pending: list) -> None:
    """Accept conditional mentions until nothing changes: each acceptance can give context to the others."""
    context = {kind: None for kind in _CONTEXT}
    shouting = _shouting(text)
    while pending:
        accepted = [p for p in pending if _accepted(text, p, found, context, shouting)]
        if not accepted:
            return
        for p in accepted:
            pending.remove(p)
            found.append(p[:3])


def _accepted(text: str, mention: tuple, found: list, context: dict, shouting: bool) -> bool:
    start, end, symbol, why = mention
    group = "crypto" if ASSETS[symbol].kind == "crypto" else "stock"
    if why in ("cue", "ticker"):
        if shouting:
            return False
        if why == "ticker" and not _listed_or_named(text, start, end, symbol, found):
            return False
    others = {ASSETS[s].kind == "crypto" for _, _, s in found if s != symbol}
    if why == "!":
        return bool(others) or any(_has_context(text, g, context) for g in _CONTEXT)
    return (group == "crypto") in others or _has_context(text, group, context)


def _has_context(text: str, group: str, cache: dict) -> bool:
    if cache[group] is None:
        cache[group] = _CONTEXT[group].search(text) is not None
    return cache[group]


def _listed_or_named(text: str, start: int, end: int, symbol: str, found: list) -> bool:
    """The asset is also named elsewhere, or this ticker sits in a list next to another accepted mention."""
    for s, e, other in found:
        if other == symbol:
            return True
        gap = text[e:start] if e <= start else text[end:s]
        if len(gap) < 8 and _LIST_GAP.fullmatch(gap):
            return True
    return False


def _shouting(text: str) -> bool:
    """Mostly capitals: an all-caps headline, where an upper-case word says nothing about being a ticker."""
    letters = sum(map(str.isalpha, text))
    return letters >= 12 and sum(map(str.isupper, text)) > 0.6 * letters

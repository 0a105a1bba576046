"""Which assets a news headline or summary is about: a table of well-known assets and a fast extractor.

A symbol is discovery's key for an asset: the crypto ticker (`BTC`) or the stock/ETF ticker (`AAPL`, `BRK.B`);
`price_symbol` is the asset_price_mcp spelling of the same asset (`BTC-USD`, `AAPL`). Written by hand: no library in
the environment recognises tickers and company names in finance headlines.

Rules of `extract_symbols` (symbols in order of first mention, each once):
- cashtags and hashtags (`$ETH`, `$brk.b`, `#BTC`) and exchange-prefixed tickers (`NYSE: T`) always count;
- crypto pairs count (`BTC/USDT`, `ETH-USD`, `SOLUSDT`); a crypto quote counts too (`ETH/BTC`), a stablecoin one not;
- other tickers count in upper case as whole words (`WBTC` is not `BTC`, `ETHICS` not `ETH`); one-letter tickers (`T`,
  `C`, `V`) only as cashtags. Tickers that are also words or abbreviations (`_AMBIGUOUS`: SOL, LINK, DOT, ONE, DOGE,
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

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from asset_price_mcp.library import COINGECKO_IDS, UnknownSymbol, parse_symbol
from discovery_mcp.models import DiscoveryError

Kind = Literal["crypto", "stock", "etf"]


@dataclass(frozen=True)
class Asset:
    symbol: str  # discovery's key: BTC, AAPL, BRK.B
    kind: Kind
    name: str
    price_symbol: str  # asset_price_mcp canonical: BTC-USD, HYPE-USDT, AAPL
    tickers: tuple[str, ...]  # the symbol first, then other tickers (XBT, GOOG, BRK-B)
    names: tuple[str, ...]  # spellings recognised in text, marks removed


# symbol, display name, other tickers (space-separated), spellings ("|"-separated, marks as in the module docstring).
# A ticker marked `?` is also a word or an abbreviation (DOGE: the US agency; HD: video; MA: Massachusetts).
# Crypto: roughly the top 60 by market cap in 2025 plus every coin of asset_price_mcp.symbols.COINGECKO_IDS.
_CRYPTO = (
    ("BTC", "Bitcoin", "XBT", "bitcoin|bitcoins"),
    ("ETH", "Ethereum", "", "ethereum|ether|-into the ether"),
    ("USDT", "Tether", "", "Tether"),
    ("XRP", "XRP", "", "~Ripple|-ripple effect|-ripple effects"),
    ("BNB", "BNB", "", "binance coin"),
    ("?SOL", "Solana", "", "solana"),
    ("USDC", "USD Coin", "", "usd coin"),
    ("TRX", "Tron", "", "~Tron|TRON"),
    ("?DOGE", "Dogecoin", "XDG", "dogecoin"),
    ("?ADA", "Cardano", "", "cardano"),
    ("?HYPE", "Hyperliquid", "", "hyperliquid"),
    ("?LINK", "Chainlink", "", "~Chainlink"),
    ("BCH", "Bitcoin Cash", "", "bitcoin cash"),
    ("XLM", "Stellar", "", "stellar lumens|?Stellar|-stellar year|-stellar quarter|-stellar run|-stellar results"),
    ("?SUI", "Sui", "", "sui network|?Sui"),
    ("AVAX", "Avalanche", "", "?Avalanche"),
    ("?LEO", "UNUS SED LEO", "", "unus sed leo"),
    ("HBAR", "Hedera", "", "hedera|hedera hashgraph"),
    ("LTC", "Litecoin", "", "litecoin"),
    ("?TON", "Toncoin", "", "toncoin|the open network"),
    ("SHIB", "Shiba Inu", "", "shiba inu"),
    ("XMR", "Monero", "", "monero"),
    ("?DOT", "Polkadot", "", "polkadot"),
    ("USDE", "Ethena USDe", "", "USDe|ethena usde"),
    ("DAI", "Dai", "", ""),
    ("?CRO", "Cronos", "", "?Cronos"),
    ("?MNT", "Mantle", "", "?Mantle"),
    ("?UNI", "Uniswap", "", "uniswap"),
    ("AAVE", "Aave", "", "aave"),
    ("?NEAR", "NEAR Protocol", "", "near protocol"),
    ("PEPE", "Pepe", "", "?Pepe"),
    ("?TAO", "Bittensor", "", "bittensor"),
    ("?APT", "Aptos", "", "Aptos"),
    ("ICP", "Internet Computer", "", "internet computer"),
    ("?ETC", "Ethereum Classic", "", "ethereum classic"),
    ("ONDO", "Ondo", "", "ondo finance|Ondo|-ondo state"),
    ("OKB", "OKB", "", ""),
    ("?ENA", "Ethena", "", "ethena"),
    ("?POL", "Polygon", "MATIC", "?Polygon|polygon network"),
    ("?ARB", "Arbitrum", "", "arbitrum"),
    ("KAS", "Kaspa", "", "kaspa"),
    ("?ALGO", "Algorand", "", "algorand"),
    ("?ATOM", "Cosmos", "", "?Cosmos|cosmos hub"),
    ("?FIL", "Filecoin", "", "filecoin"),
    ("?VET", "VeChain", "", "vechain"),
    ("WLD", "Worldcoin", "", "worldcoin"),
    ("WLFI", "World Liberty Financial", "", "world liberty financial"),
    ("?RENDER", "Render", "RNDR", "render network"),
    ("MKR", "Maker", "", "makerdao"),
    ("?OP", "Optimism", "", "optimism network|op mainnet|optimism foundation|optimism collective"),
    ("INJ", "Injective", "", "injective"),
    ("?TIA", "Celestia", "", "Celestia"),
    ("?SEI", "Sei", "", "sei network"),
    ("BONK", "Bonk", "", "?Bonk"),
    ("FET", "Artificial Superintelligence Alliance", "", "fetch.ai"),
    ("?JUP", "Jupiter", "", "jupiter exchange"),
    ("IMX", "Immutable", "", "immutable x"),
    ("QNT", "Quant", "", "quant network"),
    ("XDC", "XDC Network", "", "xdc network"),
    ("ZEC", "Zcash", "", "zcash"),
    ("PENGU", "Pudgy Penguins", "", "pudgy penguins"),
    ("?TRUMP", "Official Trump", "", "official trump|trump memecoin|trump coin"),
    ("WIF", "dogwifhat", "", "dogwifhat"),
    ("?PUMP", "Pump.fun", "", "pump.fun"),
    ("WBTC", "Wrapped Bitcoin", "", "wrapped bitcoin"),
    ("PYUSD", "PayPal USD", "", "paypal usd"),
    ("FDUSD", "First Digital USD", "", "first digital usd"),
    ("BUSD", "Binance USD", "", "binance usd"),
    ("USD1", "World Liberty USD1", "", ""),
    ("XTZ", "Tezos", "", "tezos"),
    ("?EOS", "EOS", "", ""),
    ("FLR", "Flare", "", "flare network"),
    ("BGB", "Bitget Token", "", "bitget token"),
    ("?ONE", "Harmony", "", "?Harmony"),
    ("?MON", "Monad", "", "?Monad"),
)
# Stocks: about the 60 largest S&P 500 names plus the listed companies crypto news names most.
_STOCKS = (
    ("AAPL", "Apple", "", "Apple|apple inc|-big apple"),
    ("MSFT", "Microsoft", "", "microsoft"),
    ("NVDA", "Nvidia", "", "nvidia"),
    ("AMZN", "Amazon", "", "~Amazon|amazon.com|-amazon rainforest|-amazon river|-amazon basin|-amazon jungle"),
    ("GOOGL", "Alphabet", "GOOG", "~Alphabet|Google"),
    ("META", "Meta Platforms", "", "~Meta|meta platforms|Facebook|-meta-analysis|-meta-analyses"),
    ("TSLA", "Tesla", "", "Tesla"),
    ("BRK.B", "Berkshire Hathaway", "BRK-B", "berkshire hathaway|?Berkshire"),
    ("AVGO", "Broadcom", "", "broadcom"),
    ("JPM", "JPMorgan Chase", "", "jpmorgan|jp morgan|j.p. morgan|jpmorgan chase"),
    ("LLY", "Eli Lilly", "", "eli lilly"),
    ("V", "Visa", "", "?Visa|visa inc|-travel visa|-golden visa|-student visa|-work visa|-tourist visa|-visa-free"),
    ("?MA", "Mastercard", "", "mastercard"),
    ("UNH", "UnitedHealth", "", "unitedhealth|unitedhealthcare|unitedhealth group"),
    ("XOM", "Exxon Mobil", "", "exxon|exxonmobil|exxon mobil"),
    ("WMT", "Walmart", "", "walmart"),
    ("JNJ", "Johnson & Johnson", "", "johnson & johnson|J&J"),
    ("?PG", "Procter & Gamble", "", "procter & gamble|P&G"),
    ("?HD", "Home Depot", "", "home depot"),
    ("?COST", "Costco", "", "costco"),
    ("ORCL", "Oracle", "", "?Oracle|oracle corp|-oracle of omaha|-price oracle|-oracle manipulation|-oracle network"),
    ("NFLX", "Netflix", "", "netflix"),
    ("ABBV", "AbbVie", "", "abbvie"),
    ("BAC", "Bank of America", "", "bank of america|bofa"),
    ("?KO", "Coca-Cola", "", "coca-cola|coca cola"),
    ("CVX", "Chevron", "", "?Chevron|-chevron doctrine|-chevron deference"),
    ("MRK", "Merck", "", "Merck"),
    ("AMD", "AMD", "", "advanced micro devices"),
    ("?PEP", "PepsiCo", "", "pepsico|Pepsi"),
    ("CRM", "Salesforce", "", "salesforce"),
    ("ADBE", "Adobe", "", "Adobe"),
    ("CSCO", "Cisco", "", "Cisco"),
    ("TMO", "Thermo Fisher", "", "thermo fisher"),
    ("ACN", "Accenture", "", "accenture"),
    ("MCD", "McDonald's", "", "mcdonald's|mcdonalds"),
    ("ABT", "Abbott", "", "abbott laboratories|abbott labs"),
    ("IBM", "IBM", "", ""),
    ("INTC", "Intel", "", "?Intel|intel corp|-arkham intel"),
    ("QCOM", "Qualcomm", "", "qualcomm"),
    ("?DIS", "Disney", "", "disney|walt disney"),
    ("?GE", "GE Aerospace", "", "ge aerospace|general electric"),
    ("?CAT", "Caterpillar", "", "Caterpillar"),
    ("TXN", "Texas Instruments", "", "texas instruments"),
    ("VZ", "Verizon", "", "verizon"),
    ("T", "AT&T", "", "AT&T"),
    ("PFE", "Pfizer", "", "pfizer"),
    ("INTU", "Intuit", "", "intuit"),
    ("AMGN", "Amgen", "", "amgen"),
    ("?GS", "Goldman Sachs", "", "goldman sachs|Goldman"),
    ("?MS", "Morgan Stanley", "", "morgan stanley"),
    ("C", "Citigroup", "", "citigroup|Citi|Citibank"),
    ("?NOW", "ServiceNow", "", "servicenow"),
    ("ISRG", "Intuitive Surgical", "", "intuitive surgical"),
    ("SPGI", "S&P Global", "", "s&p global"),
    ("UBER", "Uber", "", "Uber"),
    ("PLTR", "Palantir", "", "palantir"),
    ("?BA", "Boeing", "", "boeing"),
    ("NKE", "Nike", "", "Nike"),
    ("AXP", "American Express", "", "american express"),
    ("BLK", "BlackRock", "", "blackrock"),
    ("SCHW", "Charles Schwab", "", "charles schwab|Schwab"),
    ("PYPL", "PayPal", "", "paypal"),
    ("SBUX", "Starbucks", "", "starbucks"),
    ("TGT", "Target", "", "target corp|target corporation"),
    ("SHEL", "Shell", "", "shell plc|?Shell|-shell company|-shell companies|-shell firm|-shell firms|-shell game"),
    ("IBKR", "Interactive Brokers", "", "interactive brokers"),
    ("?MU", "Micron", "", "micron technology|Micron"),
    ("?COIN", "Coinbase", "", "coinbase"),
    ("MSTR", "Strategy", "", "microstrategy|strategy inc|!Strategy"),
    ("?HOOD", "Robinhood", "", "robinhood"),
    ("?XYZ", "Block", "?SQ", "block inc|Block, Inc.|Dorsey's Block"),
    ("CRCL", "Circle", "", "circle internet|~Circle|-full circle|-inner circle|-vicious circle|-circle back|-circle k"),
    ("MARA", "MARA Holdings", "", "marathon digital|mara holdings"),
    ("?RIOT", "Riot Platforms", "", "riot platforms"),
    ("BMNR", "BitMine", "", "bitmine|bitmine immersion"),
)
_ETFS = (
    ("SPY", "SPDR S&P 500 ETF", "", "spdr s&p 500"),
    ("QQQ", "Invesco QQQ", "", ""),
    ("IWM", "iShares Russell 2000 ETF", "", ""),
    ("?DIA", "SPDR Dow Jones ETF", "", ""),
    ("VOO", "Vanguard S&P 500 ETF", "", "vanguard s&p 500"),
    ("GLD", "SPDR Gold Shares", "", "spdr gold"),
    ("TLT", "iShares 20+ Year Treasury Bond ETF", "", ""),
    ("ARKK", "ARK Innovation ETF", "", "ark innovation"),
    ("IBIT", "iShares Bitcoin Trust", "", "ishares bitcoin trust"),
    ("FBTC", "Fidelity Wise Origin Bitcoin Fund", "", "fidelity wise origin bitcoin"),
    ("GBTC", "Grayscale Bitcoin Trust", "", "grayscale bitcoin trust"),
    ("ETHA", "iShares Ethereum Trust", "", "ishares ethereum trust"),
    ("BITO", "ProShares Bitcoin Strategy ETF", "", "proshares bitcoin strategy"),
)
_STABLECOINS = frozenset({"USDT", "USDC", "USDE", "DAI", "PYUSD", "FDUSD", "BUSD", "USD1"})
_QUOTES = ("USDT", "USDC", "FDUSD", "USD", "EUR", "BTC", "ETH", "PERP")
_ARTICLES = ("a", "an", "the")


def _assets() -> Iterator[Asset]:
    for kind, rows in (("crypto", _CRYPTO), ("stock", _STOCKS), ("etf", _ETFS)):
        for marked, name, others, spellings in rows:
            symbol = marked.lstrip("?")
            # Coins the price library knows by CoinGecko id price in USD; others through exchanges' USDT pairs.
            price = symbol if kind != "crypto" else f"{symbol}-{'USD' if symbol in COINGECKO_IDS else 'USDT'}"
            names = tuple(s.lstrip("~?!") for s in spellings.split("|") if s and not s.startswith("-"))
            tickers = tuple(t.lstrip("?") for t in (marked, *others.split()))
            yield Asset(symbol, kind, name, price, tickers, names)


ASSETS: Mapping[str, Asset] = MappingProxyType({a.symbol: a for a in _assets()})
_BY_TICKER = {t: a.symbol for a in ASSETS.values() for t in a.tickers}
_AMBIGUOUS = frozenset(t[1:] for row in (*_CRYPTO, *_STOCKS, *_ETFS) for t in (row[0], *row[2].split()) if t[0] == "?")
_BY_NAME = {n.lower(): a.symbol for a in ASSETS.values() for n in (*a.names, a.name)}
_SPELLINGS = {n.upper(): symbol for n, symbol in _BY_NAME.items()} | _BY_TICKER


def _name_tables() -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str | None, str]]]:
    """Spellings -> (symbol, mark): case-sensitive ones as written, the others in lower case (None for a blocker)."""
    exact: dict[str, tuple[str, str]] = {}
    folded: dict[str, tuple[str | None, str]] = {}
    for marked, _, _, spellings in (*_CRYPTO, *_STOCKS, *_ETFS):
        symbol = marked.lstrip("?")
        for spelling in filter(None, spellings.split("|")):
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
    + _trie({t.lower() for t in _BY_TICKER})
    + r"))|(?<![\w$#./-])(?P<t>"
    + _trie({t for t in _BY_TICKER if len(t) > 1})
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
        found.append((m.start(), m.end(), _BY_TICKER[m["ct"].upper()]))
        return
    symbol = _BY_TICKER[m["t"]]
    if m["q"] is not None and ASSETS[symbol].kind == "crypto":
        found.append((m.start(), m.end(), symbol))
        quote = _BY_TICKER.get(m["q"])
        if quote is not None and quote not in _STABLECOINS:
            found.append((m.start("q"), m.end("q"), quote))
    elif m["t"] not in _AMBIGUOUS:
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


def normalise_symbol(text: str) -> str:
    """Discovery's symbol for a user's spelling: `btc`, `$BTC`, `bitcoin`, `BTC-USD`, `SOLUSDT`, `aapl`, `Apple`.

    Raises DiscoveryError with close suggestions when the text names no asset of the table."""
    s = " ".join(str(text).split()).replace("’", "'")
    symbol = _BY_TICKER.get(s.lstrip("$#").upper()) or _BY_NAME.get(s.lower())
    if symbol is not None:
        return symbol
    try:
        instrument = parse_symbol(s)
    except UnknownSymbol:
        instrument = None
    if instrument is not None:
        symbol = _BY_TICKER.get(instrument.base if instrument.kind == "crypto" else instrument.symbol)
        if symbol is not None:
            return symbol
    hint = ", ".join(f"{x} ({ASSETS[x].name})" for x in suggest_symbols(s))
    raise DiscoveryError(
        f"Unknown asset {text!r}: discovery knows {len(ASSETS)} assets by ticker or name (BTC, ETH, SOL, AAPL, NVDA, "
        f"SPY ...). " + (f"Did you mean: {hint}?" if hint else "Pass a ticker such as BTC or AAPL, or a name.")
    )


def suggest_symbols(text: str, limit: int = 5) -> list[str]:
    """Symbols whose tickers or names are closest to `text` (difflib), best first."""
    close = difflib.get_close_matches(str(text).lstrip("$#").strip().upper(), list(_SPELLINGS), n=limit * 2, cutoff=0.6)
    return list(dict.fromkeys(_SPELLINGS[c] for c in close))[:limit]


def asset(symbol: str) -> Asset:
    """The asset for a symbol or any spelling `normalise_symbol` accepts; raises DiscoveryError when unknown."""
    return ASSETS[normalise_symbol(symbol)]

"""One canonical spelling for every instrument, parsed from the spellings people and exchanges use.

Canonical forms: crypto and FX pairs are `BASE-QUOTE` in upper case (`BTC-USDT`, `BTC-USD`, `ETH-EUR`, `EUR-USD`),
metals likewise (`XAU-USD`), stocks and ETFs are their ticker (`AAPL`, `SPY`, `BRK.B`). USD and USDT are different
quotes and stay apart. A bare crypto base, metal or fiat code gets the default quote USD (`BTC` -> `BTC-USD`).

Accepted: `BTC`, `btcusdt`, `BTC/USDT`, `btc_usdt`, `XBT/USD` (Kraken's XBT is BTC), coin names (`bitcoin`,
`ethereum`, CoinGecko ids), `$AAPL`, `aapl`, `BRK.B`, `EUR/USD`, `EURUSD`, `EURUSD=X`, `XAUUSD`, `gold`, `GC=F`.
Concatenated pairs are split with a known list of quote currencies, longest first, and only when the rest is a known
base; a pair written with a separator may name any plausible base (new coins) as long as its quote is known.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Kind = Literal["crypto", "stock", "etf", "fx", "metal"]

DEFAULT_QUOTE = "USD"

# Major crypto bases and their CoinGecko coin ids (CoinGecko's API speaks ids, not tickers).
COINGECKO_IDS: dict[str, str] = {
    "BTC": "bitcoin",
    "ETH": "ethereum",
    "USDT": "tether",
    "BNB": "binancecoin",
    "SOL": "solana",
    "XRP": "ripple",
    "USDC": "usd-coin",
    "ADA": "cardano",
    "DOGE": "dogecoin",
    "TRX": "tron",
    "TON": "the-open-network",
    "AVAX": "avalanche-2",
    "SHIB": "shiba-inu",
    "DOT": "polkadot",
    "LINK": "chainlink",
    "BCH": "bitcoin-cash",
    "LTC": "litecoin",
    "MATIC": "matic-network",
    "UNI": "uniswap",
    "XLM": "stellar",
    "ATOM": "cosmos",
    "XMR": "monero",
    "ETC": "ethereum-classic",
    "FIL": "filecoin",
    "APT": "aptos",
    "ARB": "arbitrum",
    "OP": "optimism",
    "NEAR": "near",
    "ICP": "internet-computer",
    "HBAR": "hedera-hashgraph",
    "VET": "vechain",
    "AAVE": "aave",
    "MKR": "maker",
    "ALGO": "algorand",
    "SUI": "sui",
    "PEPE": "pepe",
    "DAI": "dai",
    "WBTC": "wrapped-bitcoin",
    "BUSD": "binance-usd",
    "FDUSD": "first-digital-usd",
    "EOS": "eos",
    "XTZ": "tezos",
}
CRYPTO_BASES = frozenset(COINGECKO_IDS)

# Other spellings of a crypto base: exchange codes and the common names (matched case-insensitively).
_ALIASES: dict[str, str] = {
    "XBT": "BTC",
    "XDG": "DOGE",
    "ETHER": "ETH",
    "BINANCE COIN": "BNB",
    "USD COIN": "USDC",
    "SHIBA INU": "SHIB",
    "AVALANCHE": "AVAX",
    "TONCOIN": "TON",
    "POLYGON": "MATIC",
    "BITCOIN CASH": "BCH",
    "ETHEREUM CLASSIC": "ETC",
    "INTERNET COMPUTER": "ICP",
    "HEDERA": "HBAR",
    "WRAPPED BITCOIN": "WBTC",
    "TEZOS": "XTZ",
} | {cg_id.upper(): base for base, cg_id in COINGECKO_IDS.items()}

FIAT = frozenset(
    {"USD", "EUR", "GBP", "JPY", "CHF", "AUD", "CAD", "NZD", "SEK", "NOK", "DKK", "CNY", "HKD", "SGD", "INR", "KRW"}
    | {"MXN", "BRL", "ZAR", "TRY", "PLN"}
)
METALS = frozenset({"XAU", "XAG", "XPT", "XPD"})
_METAL_NAMES = {"GOLD": "XAU", "SILVER": "XAG", "PLATINUM": "XPT", "PALLADIUM": "XPD"}
_YAHOO_CODES = {"GC=F": "XAU-USD", "SI=F": "XAG-USD", "PL=F": "XPT-USD", "PA=F": "XPD-USD"}

# Quote currencies recognised when splitting a concatenated pair, tried longest first (BUSD before USD).
QUOTES: tuple[str, ...] = tuple(
    sorted(
        {"USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "BTC", "ETH", "BNB"} | FIAT,
        key=lambda q: (-len(q), q),
    )
)

ETFS = frozenset(
    {"SPY", "QQQ", "IWM", "DIA", "GLD", "SLV", "VTI", "VOO", "TLT", "IVV", "EEM", "EFA", "AGG", "BND", "HYG", "LQD"}
    | {"XLF", "XLE", "XLK", "XLV", "SMH", "ARKK", "USO", "VNQ", "TQQQ", "SQQQ", "SCHD", "IBIT", "FBTC", "GBTC", "BITO"}
)

_MAX_LEN = 24
_SEPARATED = re.compile(r"([A-Z0-9]+)\s*[-/_:\s]\s*([A-Z0-9]+)")
_TOKEN = re.compile(r"[A-Z0-9]+")
_TICKER = re.compile(r"[A-Z]{1,5}")
_TICKER_CLASS = re.compile(r"([A-Z]{1,5})[.-]([A-Z])")
_PLAUSIBLE_BASE = re.compile(r"[A-Z0-9]{2,10}")
_EXAMPLES = "BTC, BTC-USDT, btcusdt, XBT/USD, bitcoin, $AAPL, SPY, EUR/USD, EURUSD, XAUUSD, gold"


@dataclass(frozen=True)
class Instrument:
    symbol: str  # canonical: BTC-USDT, BTC-USD, AAPL, BRK.B, EUR-USD, XAU-USD
    kind: Kind
    base: str
    quote: str | None  # None for stocks and ETFs (their currency is the listing's)


class UnknownSymbol(ValueError):
    """The text names no instrument this server understands; `suggestions` holds close canonical symbols."""

    def __init__(self, text: str, reason: str, suggestions: list[str]):
        self.text, self.reason, self.suggestions = text, reason, suggestions
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else " No close match is known."
        super().__init__(f"Symbol {text!r} not understood: {reason}.{hint} Accepted spellings look like: {_EXAMPLES}.")


def parse_symbol(text: str) -> Instrument:
    """The canonical instrument for one of the usual spellings; raises UnknownSymbol with suggestions otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise UnknownSymbol(str(text), "it is empty", [])
    if len(text.strip()) > _MAX_LEN:
        raise UnknownSymbol(text, f"it is longer than {_MAX_LEN} characters", suggest(text))
    found = _parse(text.strip())
    if isinstance(found, str):
        raise UnknownSymbol(text, found, suggest(text))
    return found


@lru_cache(maxsize=4096)
def _parse(text: str) -> Instrument | str:
    """The instrument, or the reason it is not one (cached: providers ask for every symbol of every batch)."""
    s = " ".join(text.upper().lstrip("$").split())
    named = _named(s)
    if named is not None:
        return named
    if s in _YAHOO_CODES:
        return _parse(_YAHOO_CODES[s])
    if s.endswith("=X") and _TOKEN.fullmatch(s[:-2]):
        pair = _split(s[:-2])
        return pair if pair is not None and pair.kind == "fx" else f"{s} is not a currency pair"
    m = _SEPARATED.fullmatch(s)
    if m is not None:
        pair = _pair(_base_code(m[1]), _base_code(m[2]), known_base_only=False)
        if pair is not None:
            return pair
        cls = _TICKER_CLASS.fullmatch(s)
        if cls is not None:
            return _equity(f"{cls[1]}.{cls[2]}")
        if m[1] == m[2]:
            return "its base and quote are the same"
        return f"{m[2]} is not a known quote currency" if m[2] not in QUOTES else f"{m[1]} is not a known base"
    if _TOKEN.fullmatch(s):
        return _single(s)
    cls = _TICKER_CLASS.fullmatch(s)
    if cls is not None:
        return _equity(f"{cls[1]}.{cls[2]}")
    return "it is neither a pair (BASE-QUOTE), a coin name nor a ticker"


def _single(s: str) -> Instrument | str:
    if s in CRYPTO_BASES:
        return Instrument(f"{s}-{DEFAULT_QUOTE}", "crypto", s, DEFAULT_QUOTE)
    if s in METALS or (s in FIAT and s != DEFAULT_QUOTE):
        return Instrument(f"{s}-{DEFAULT_QUOTE}", "metal" if s in METALS else "fx", s, DEFAULT_QUOTE)
    if s == DEFAULT_QUOTE:
        return "USD alone is not an instrument; name a pair such as EUR/USD or USD/JPY"
    pair = _split(s)
    if pair is not None:
        return pair
    if _TICKER.fullmatch(s):
        return _equity(s)
    return "it is not a known coin, a known pair, nor a 1-5 letter stock ticker"


def _named(s: str) -> Instrument | None:
    if s in _METAL_NAMES:
        return _pair(_METAL_NAMES[s], DEFAULT_QUOTE)
    base = _ALIASES.get(s)  # coin names, CoinGecko ids, exchange codes (XBT)
    return _pair(base, DEFAULT_QUOTE) if base is not None else None


def _base_code(code: str) -> str:
    return _ALIASES.get(code, code)


def _split(s: str) -> Instrument | None:
    """A concatenated pair (BTCUSDT, EURUSD, XAUUSD): the longest known quote suffix whose rest is a known base."""
    for quote in QUOTES:
        if s.endswith(quote) and len(s) > len(quote):
            pair = _pair(_base_code(s[: -len(quote)]), quote)
            if pair is not None:
                return pair
    return None


def _pair(base: str, quote: str, known_base_only: bool = True) -> Instrument | None:
    """A pair, or None. An unknown base is accepted only when asked (a separated pair) and only against a coin quote
    (`WIF/USDT`): against a fiat quote (`AAPL/USD`) it is more likely a misread stock than a new coin."""
    if base == quote or quote not in QUOTES:
        return None
    if base in METALS:
        kind: Kind = "metal"
    elif base in FIAT and quote in FIAT:
        kind = "fx"
    elif base in CRYPTO_BASES or base in FIAT:
        kind = "crypto"  # a fiat base against a coin quote (EUR-USDT) trades on crypto exchanges
    elif known_base_only or quote in FIAT or not _PLAUSIBLE_BASE.fullmatch(base) or base.isdigit():
        return None
    else:
        kind = "crypto"
    return Instrument(f"{base}-{quote}", kind, base, quote)


def _equity(ticker: str) -> Instrument:
    return Instrument(ticker, "etf" if ticker in ETFS else "stock", ticker, None)


def _candidates() -> dict[str, str]:
    """Known spellings (upper case) -> canonical symbol, for suggestions."""
    out = {base: f"{base}-{DEFAULT_QUOTE}" for base in CRYPTO_BASES}
    out |= {alias: f"{base}-{DEFAULT_QUOTE}" for alias, base in _ALIASES.items()}
    out |= {name: f"{code}-{DEFAULT_QUOTE}" for name, code in _METAL_NAMES.items()}
    out |= {code: f"{code}-{DEFAULT_QUOTE}" for code in METALS}
    out |= {etf: etf for etf in ETFS}
    return out


_CANDIDATES = _candidates()


def suggest(text: str, limit: int = 5) -> list[str]:
    """Close canonical symbols for a mistyped or unknown input (difflib over coin bases, names, metals and ETFs).

    When the input ends in a known quote (`BTCC/USDT`, `ETHHUSDT`), the suggestions keep that quote (`BTC-USDT`)."""
    s = " ".join(str(text).upper().lstrip("$").split())[:_MAX_LEN]
    if not s:
        return []
    base, quote = s, None
    m = _SEPARATED.fullmatch(s)
    if m is not None and m[2] in QUOTES:
        base, quote = m[1], m[2]
    elif m is None:
        quote = next((q for q in QUOTES if s.endswith(q) and len(s) > len(q) + 1), None)
        base = s[: -len(quote)] if quote else s
    out: list[str] = []
    for match in difflib.get_close_matches(base, list(_CANDIDATES), n=limit * 3, cutoff=0.6):
        symbol = _CANDIDATES[match]
        if quote is not None and "-" in symbol:
            if symbol.split("-")[0] == quote:
                continue
            symbol = f"{symbol.split('-')[0]}-{quote}"
        if symbol not in out:
            out.append(symbol)
    return out[:limit]

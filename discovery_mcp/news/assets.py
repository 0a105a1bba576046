"""The assets discovery knows: a table of well-known crypto coins, stocks and ETFs, and lookups by ticker or name.

A symbol is discovery's key for an asset: the crypto ticker (`BTC`) or the stock/ETF ticker (`AAPL`, `BRK.B`);
`price_symbol` is the asset_price_mcp spelling of the same asset (`BTC-USD`, `AAPL`). Written by hand: no library in
the environment lists tickers with the names finance headlines use. Finding them in text is `entities`' job.
"""

from __future__ import annotations

import difflib
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


# symbol, display name, other tickers (space-separated), spellings ("|"-separated, marks as in `entities`' docstring).
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
STABLECOINS = frozenset({"USDT", "USDC", "USDE", "DAI", "PYUSD", "FDUSD", "BUSD", "USD1"})


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
BY_TICKER: Mapping[str, str] = MappingProxyType({t: a.symbol for a in ASSETS.values() for t in a.tickers})
# Tickers that are also words or abbreviations: they need context in text (rules in `entities`).
AMBIGUOUS = frozenset(t[1:] for row in (*_CRYPTO, *_STOCKS, *_ETFS) for t in (row[0], *row[2].split()) if t[0] == "?")
_BY_NAME = {n.lower(): a.symbol for a in ASSETS.values() for n in (*a.names, a.name)}
_SPELLINGS = {n.upper(): symbol for n, symbol in _BY_NAME.items()} | dict(BY_TICKER)


def marked_spellings() -> Iterator[tuple[str, str]]:
    """(symbol, spelling) for every spelling of the table, marks kept (`~Ripple`, `-ripple effect`)."""
    for marked, _, _, spellings in (*_CRYPTO, *_STOCKS, *_ETFS):
        for spelling in filter(None, spellings.split("|")):
            yield marked.lstrip("?"), spelling


def normalise_symbol(text: str) -> str:
    """Discovery's symbol for a user's spelling: `btc`, `$BTC`, `bitcoin`, `BTC-USD`, `SOLUSDT`, `aapl`, `Apple`.

    Raises DiscoveryError with close suggestions when the text names no asset of the table."""
    s = " ".join(str(text).split()).replace("’", "'")
    symbol = BY_TICKER.get(s.lstrip("$#").upper()) or _BY_NAME.get(s.lower())
    if symbol is not None:
        return symbol
    try:
        instrument = parse_symbol(s)
    except UnknownSymbol:
        instrument = None
    if instrument is not None:
        symbol = BY_TICKER.get(instrument.base if instrument.kind == "crypto" else instrument.symbol)
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

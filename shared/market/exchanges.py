"""Exchange names in both spellings: the candle store's keys (`binance`, `bybit-usdt-perp`, ...) and Jesse's names
(`Binance Spot`, `Bybit USDT Perpetual`, ... from `jesse.enums.exchanges`).

Either spelling is accepted wherever a tool names an exchange: case-insensitive, with '-', '_' and extra spaces
read as one space. The store keeps the short key; a backtest hands Jesse the Jesse name. Jesse's sandbox,
custom-data, stock-data (Massive), FTX and testnet venues are left out: no market data of theirs is stored here.
Written as a table (not read from Jesse at run time) because store keys are on disk and must not move when Jesse
renames a venue; a test checks every name against `jesse.enums.exchanges`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shared.errors import TradingMcpError

SYNTHETIC = "synthetic"
# The venue Jesse simulates for data of no Jesse exchange (synthetic candles, labels stored before this table).
DEFAULT_JESSE_EXCHANGE = "Binance Perpetual Futures"

# store key -> Jesse's name. "binance" is Binance Spot: import_candles fetches Binance's spot klines.
JESSE_NAMES: dict[str, str] = {
    "binance": "Binance Spot",
    "binance-us": "Binance US Spot",
    "binance-perp": "Binance Perpetual Futures",
    "bybit": "Bybit Spot",
    "bybit-usdt-perp": "Bybit USDT Perpetual",
    "bybit-usdc-perp": "Bybit USDC Perpetual",
    "coinbase": "Coinbase Spot",
    "bitfinex": "Bitfinex Spot",
    "bitget": "Bitget Spot",
    "bitget-usdt-perp": "Bitget USDT Perpetual",
    "gate": "Gate Spot",
    "gate-usdt-perp": "Gate USDT Perpetual",
    "kucoin": "KuCoin Spot",
    "kucoin-usdt-perp": "KuCoin USDT Perpetual",
    "kraken": "Kraken Pro Spot",
    "kraken-perp": "Kraken Pro Futures",
    "dydx-perp": "Dydx Perpetual",
    "apex-omni-perp": "Apex Omni Perpetual",
    "hyperliquid-perp": "Hyperliquid Perpetual",
    "lighter-perp": "Lighter Perpetual",
}


class ExchangeError(TradingMcpError):
    """An exchange name that is neither a store key nor one of Jesse's exchange names."""


def _fold(name: str) -> str:
    return re.sub(r"[\s_-]+", " ", name).strip().lower()


_BY_FOLDED: dict[str, str] = {
    **{_fold(key): key for key in JESSE_NAMES},
    **{_fold(jesse): key for key, jesse in JESSE_NAMES.items()},
    SYNTHETIC: SYNTHETIC,
}


def valid_exchanges() -> str:
    """Every accepted exchange, both spellings, for error messages."""
    pairs = [f"{key} ({jesse})" for key, jesse in JESSE_NAMES.items()]
    return ", ".join([*pairs, f"{SYNTHETIC} (generated candles)"])


def store_key(name: str, stored: Iterable[str] = ()) -> str:
    """The store key for a store key or Jesse name in any case/spacing; `stored` adds labels already in the store."""
    key = _BY_FOLDED.get(_fold(name))
    if key is not None:
        return key
    legacy = {_fold(s): s for s in stored}.get(_fold(name))
    if legacy is not None:
        return legacy
    raise ExchangeError(
        f"Unknown exchange {name!r}. Give a store key or Jesse's exchange name (any case), one of: {valid_exchanges()}."
    )


def jesse_name(key: str) -> str | None:
    """Jesse's name of a store key (None for synthetic data and labels not in the table)."""
    return JESSE_NAMES.get(key)


def jesse_exchange(key: str) -> str:
    """The exchange name a backtest on data stored under `key` hands to Jesse."""
    return JESSE_NAMES.get(key, DEFAULT_JESSE_EXCHANGE)

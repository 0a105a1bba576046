"""The price library: the one entry point through which the other servers (jesse_mcp for paper fills and marks,
discovery_mcp for price confirmation and volatility) use asset_price_mcp's cross-checked quotes and candles.

They import from here only, never from the modules behind it, so those can change without touching them."""

from __future__ import annotations

from asset_price_mcp.ohlcv import OhlcvService
from asset_price_mcp.quotes import PriceError, QuoteService
from asset_price_mcp.service import build_quote_service
from asset_price_mcp.symbols import COINGECKO_IDS, UnknownSymbol, parse_symbol

__all__ = [
    "COINGECKO_IDS",
    "OhlcvService",
    "PriceError",
    "QuoteService",
    "UnknownSymbol",
    "build_quote_service",
    "parse_symbol",
]

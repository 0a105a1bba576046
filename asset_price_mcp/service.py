"""The price service as configured: which providers, at which addresses, with which limits.

Also the library surface the other servers use directly (paper fills, opportunity confirmation), not through MCP:
`open_price_service(home)` gives a QuoteService configured exactly like the asset-price-mcp server's.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import httpx

from asset_price_mcp.providers import binance, coinbase, coingecko, kraken, replay, yahoo
from asset_price_mcp.quotes import Provider, QuoteService, QuoteSettings
from shared.config.models import PriceConfig, TradingConfig
from shared.net.http import make_client

MODULES: dict[str, ModuleType] = {
    "binance": binance,
    "coinbase": coinbase,
    "kraken": kraken,
    "coingecko": coingecko,
    "yahoo": yahoo,
    "replay": replay,
}


def base_url_of(name: str, cfg: PriceConfig, home: Path) -> str:
    """<NAME>_BASE_URL from the environment, else the configuration, else the provider's public address. The
    replay provider's "address" is the candle store folder."""
    if name == "replay":
        return str(home / "candles")
    module = MODULES[name]
    return (os.environ.get(module.BASE_URL_ENV) or cfg.providers[name].base_url or module.DEFAULT_BASE_URL).rstrip("/")


def providers_from(cfg: PriceConfig, home: Path) -> list[Provider]:
    return [
        Provider(
            MODULES[name],
            base_url_of(name, cfg, home),
            timeout_s=settings.timeout_s,
            concurrency=settings.concurrency,
        )
        for name, settings in cfg.providers.items()
        if settings.enabled
    ]


def build_quote_service(
    cfg: TradingConfig, home: Path, transport: httpx.AsyncBaseTransport | None = None
) -> QuoteService:
    prices = cfg.price_config
    return QuoteService(
        providers_from(prices, home),
        make_client(transport=transport),
        QuoteSettings(quote_ttl_s=prices.quote_ttl_s, outlier_bps=prices.outlier_bps, max_age_s=prices.max_age_s),
    )


def open_price_service(home: Path | None = None) -> QuoteService:
    """For other servers: a QuoteService from the user's configuration (library use, no MCP)."""
    from shared.config.store import ConfigStore, config_path, trading_home

    root = home or trading_home()
    cfg = ConfigStore(config_path() if home is None else root / "config.json").load()
    return build_quote_service(cfg, root)

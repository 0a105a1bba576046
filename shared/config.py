"""The whole configuration as pydantic models: defaults, strict validation, and field-path error messages.

Loading, atomic saving and caching live in `shared.config_store`; resolution of effective settings in
`shared.resolve`. Every model forbids unknown keys and validates in strict JSON mode (no "7" -> 7, no true -> 1).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model, field_validator

from shared.errors import ConfigError, ConfigProblem
from shared.profiles import PROFILE_TEMPLATES, ProfileName
from shared.readable import check_folder

Stage = Literal["exploration", "paper", "live"]
STAGES: tuple[Stage, ...] = ("exploration", "paper", "live")
STAGE_RANK: dict[str, int] = {name: rank for rank, name in enumerate(STAGES)}

StrategyName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
SourceName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]  # no dots: paths use them

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=True)

# One definition of each risk field: type bounds and description, shared by RiskSettings and RiskOverrides.
_RISK_FIELDS: dict[str, tuple[dict[str, float], str]] = {
    "max_portfolio_risk": (
        {"gt": 0, "le": 0.5},
        "Capital risked per trade, fraction of equity (0.02 = 2 %).",
    ),
    "max_position_size": ({"gt": 0, "le": 1}, "Largest position notional, fraction of equity."),
    "max_leverage": ({"ge": 1, "le": 125}, "Largest leverage, a multiple (1.0 = no leverage)."),
    "max_drawdown": ({"gt": 0, "lt": 1}, "Drawdown from peak at which no new entries are made, fraction."),
    "stop_loss": ({"gt": 0, "lt": 1}, "Stop-loss distance from entry, fraction of price."),
    "take_profit": ({"gt": 0, "le": 10}, "Take-profit distance from entry, fraction of price."),
    "var_confidence": ({"gt": 0.5, "lt": 1}, "Confidence level of Value-at-Risk estimates (0.95 = 95 %)."),
    "max_correlation": ({"ge": 0, "le": 1}, "Largest return correlation allowed with any open position."),
    "emergency_stop": ({"gt": 0, "lt": 1}, "Fall of equity from its peak that halts all trading, fraction."),
}
RISK_FIELD_NAMES: tuple[str, ...] = tuple(_RISK_FIELDS)


def _risk_model(name: str, optional: bool) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for field, (bounds, description) in _RISK_FIELDS.items():
        if optional:
            fields[field] = (float | None, Field(None, description=description, **bounds))
        else:
            fields[field] = (float, Field(..., description=description, **bounds))
    return create_model(name, __config__=_STRICT, **fields)


RiskSettings = _risk_model("RiskSettings", optional=False)
RiskOverrides = _risk_model("RiskOverrides", optional=True)

GLOBAL_RISK_DEFAULTS: dict[str, float] = {
    **PROFILE_TEMPLATES["moderate"],
    "max_correlation": 0.7,
    "emergency_stop": 0.25,
}


class NewsSource(BaseModel):
    model_config = _STRICT
    priority: int = Field(..., ge=1, le=100, description="1 is the most trusted source; duplicates keep its copy.")
    weight: float = Field(..., ge=0, le=1, description="Relative weight of this source in aggregated sentiment.")
    enabled: bool = True
    url: str | None = Field(
        None,
        description="Feed or API address (RSS/Atom URL, API base URL). '{symbols}' in an RSS address is replaced by "
        "the stock tickers asked for (per-ticker feeds). Changing it needs the person's confirmation.",
    )
    type: Literal["rss", "cryptopanic", "reddit", "none"] | None = Field(
        None, description="Connector kind; 'none' or unset means no connector is configured."
    )

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError("a news source address must start with http:// or https://")
        return value

    speed: Literal["fast", "normal", "slow"] = Field(
        "normal",
        description="How soon the source carries news (wires and aggregators fast, daily write-ups slow); in "
        "volatile markets fast sources count more (discovery.volatility_weighting).",
    )


NEWS_FEEDS: tuple[tuple[str, str | None, str | None, float, str], ...] = (
    # (name, type, url, weight, speed), most trusted first: the order is the priority. The first seven are the
    # seed configuration's sources and weights; the feeds after them are added with smaller weights.
    ("reuters", "none", None, 0.25, "fast"),  # no public RSS since 2020: a licensed feed URL is needed
    ("bloomberg", "rss", "https://feeds.bloomberg.com/markets/news.rss", 0.20, "fast"),
    ("coindesk", "rss", "https://www.coindesk.com/arc/outboundfeeds/rss/", 0.15, "fast"),
    ("cryptopanic", "cryptopanic", "https://cryptopanic.com/api/developer/v2/posts/", 0.15, "fast"),
    ("twitter", "none", None, 0.10, "fast"),  # the X API needs a paid bearer token: no connector ships
    ("reddit", "reddit", "https://www.reddit.com/r/CryptoCurrency/.rss", 0.10, "fast"),
    ("telegram", "none", None, 0.05, "fast"),  # needs a bot token and channel ids: no connector ships
    ("theblock", "rss", "https://www.theblock.co/rss.xml", 0.12, "normal"),
    ("cointelegraph", "rss", "https://cointelegraph.com/rss", 0.10, "fast"),
    ("decrypt", "rss", "https://decrypt.co/feed", 0.10, "normal"),
    (
        "yahoo_finance",
        "rss",
        "https://feeds.finance.yahoo.com/rss/2.0/headline?s={symbols}&region=US&lang=en-US",
        0.10,
        "normal",
    ),
    ("bitcoinmagazine", "rss", "https://bitcoinmagazine.com/.rss/full/", 0.05, "slow"),
)


def _default_news() -> dict[str, NewsSource]:
    return {
        name: NewsSource(priority=i + 1, weight=w, url=url, type=kind, speed=speed)  # type: ignore[arg-type]
        for i, (name, kind, url, w, speed) in enumerate(NEWS_FEEDS)
    }


class DiscoveryConfig(BaseModel):
    """How news becomes opportunities: every number here is a documented, tunable rule."""

    model_config = _STRICT
    half_life_hours: float = Field(12, gt=0, le=24 * 30, description="An item's weight halves every this many hours.")
    lookback_hours: float = Field(72, gt=0, le=24 * 90, description="Items older than this are not aggregated.")
    fetch_timeout_s: float = Field(10, gt=0, le=120, description="Per-source fetch timeout.")
    max_feed_bytes: int = Field(5_000_000, ge=10_000, le=100_000_000, description="Larger answers are refused.")
    volatility_weighting: bool = Field(True, description="In volatile markets, weight sources by their speed.")
    high_volatility_annual_pct: float = Field(
        80, gt=0, le=1000, description="Annualised volatility (%) above which a market counts as volatile."
    )
    fast_source_boost: float = Field(1.5, ge=1, le=10, description="Weight multiplier of fast sources when volatile.")
    slow_source_factor: float = Field(0.5, gt=0, le=1, description="Weight multiplier of slow sources when volatile.")
    min_items: int = Field(1, ge=1, le=100, description="Fewest items a symbol needs to become an opportunity.")
    correlation_penalty: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Diversified top-k: a candidate's score is multiplied by 1 - this x its largest same-direction "
        "return correlation with the symbols already picked.",
    )
    information_coefficient: float = Field(
        0.05, gt=0, le=0.5, description="Forecast skill of news sentiment: expected move = IC x volatility x 3S."
    )
    price_confirmation: bool = Field(True, description="Check the opportunity's direction against recent prices.")


class PortfolioLimits(BaseModel):
    model_config = _STRICT
    max_total_positions: int = Field(
        10, ge=0, le=10_000, description="Open positions and resting entry orders of all strategies together."
    )
    max_open_positions: int = Field(
        5, ge=0, le=10_000, description="Open positions and resting entry orders of one strategy at any moment."
    )
    max_trades_per_day: int = Field(20, ge=0, le=1_000_000)
    max_trades_per_week: int = Field(50, ge=0, le=1_000_000)
    max_trades_per_month: int = Field(200, ge=0, le=1_000_000)
    position_timeout_hours: float = Field(72, gt=0, le=24 * 365, description="Positions older are closed.")
    min_account_balance: float = Field(1000, ge=0, description="No new orders below this cash balance (USD).")
    max_account_usage: float = Field(0.95, gt=0, le=1, description="Largest fraction of equity in positions.")


class PaperConfig(BaseModel):
    """The paper-trading account: fills at the consensus price of the price library, with costs."""

    model_config = _STRICT
    starting_balance: float = Field(
        10_000, gt=0, le=1e12, description="Cash (USD) the paper account starts with, used when it is first opened."
    )
    fee_bps: float = Field(10, ge=0, le=1000, description="Fee per fill, basis points of notional (10 = 0.1 %).")
    slippage_bps: float = Field(
        5, ge=0, le=1000, description="Market fills (entries, exits, stops) are this much worse than the consensus."
    )
    monitor_interval_s: float = Field(
        15, ge=0.05, le=3600, description="How often the server checks stops, limit orders, timeouts and losses."
    )
    daily_loss_limit: float = Field(
        0.05, gt=0, lt=1, description="A fall of equity from the day's start (UTC) beyond this fraction halts trading."
    )
    correlation_days: int = Field(
        30, ge=10, le=365, description="Daily closes used for the return correlation with open positions."
    )


class PromotionGates(BaseModel):
    """Evidence a strategy needs to move up a stage. Evidence is read from the store, never from a tool argument."""

    model_config = _STRICT
    backtest_max_age_days: float = Field(30, gt=0, le=3650, description="A backtest older than this does not count.")
    backtest_min_sharpe: float = Field(1.0, ge=-10, le=100, description="Annualised Sharpe the backtest must reach.")
    backtest_min_trades: int = Field(30, ge=1, le=1_000_000, description="Closed trades the backtest must have.")
    backtest_min_days: float = Field(30, gt=0, le=3650, description="Days of market data the backtest must span.")
    backtest_max_data_age_days: float = Field(
        14,
        gt=0,
        le=3650,
        description="The backtest's data must end at most this many days before it ran (no window from the past).",
    )
    backtest_allow_synthetic: bool = Field(
        False, description="Whether a backtest on generated (synthetic) candles counts as evidence."
    )
    backtest_allow_csv: bool = Field(
        False,
        description="Whether candles imported from a CSV file count as market data (by default only candles fetched "
        "from an exchange do: a file's origin cannot be checked).",
    )
    require_stress_test: bool = Field(
        True, description="A stress test of the qualifying backtest where no scenario reached the emergency stop."
    )
    paper_min_days: float = Field(7, gt=0, le=3650, description="Days since the strategy's first paper fill.")
    paper_min_sharpe: float = Field(0.8, ge=-10, le=100, description="Annualised Sharpe of daily paper equity (>).")
    paper_max_drawdown: float = Field(0.08, gt=0, lt=1, description="Largest paper drawdown from its peak (<).")
    paper_min_trades: int = Field(5, ge=1, le=1_000_000, description="Closed paper trades of the strategy.")
    paper_min_position_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="The median paper position must be at least this share of the profile's max_position_size x "
        "the starting balance: tiny positions would make the drawdown gate easy.",
    )


class StrategyConfig(BaseModel):
    model_config = _STRICT
    risk_profile: ProfileName = "moderate"
    stage: Stage = "exploration"
    enabled: bool = True
    risk_overrides: RiskOverrides = Field(default_factory=RiskOverrides)  # type: ignore[valid-type]
    hyperparameters: dict[str, float | int | bool | str] = Field(default_factory=dict)


def _default_strategies() -> dict[str, StrategyConfig]:
    return {
        "trend_following": StrategyConfig(risk_profile="moderate", stage="exploration"),
        "mean_reversion": StrategyConfig(
            risk_profile="conservative",
            stage="paper",
            risk_overrides=RiskOverrides(max_position_size=0.05, max_leverage=1.0),
        ),
    }


class GlmConfig(BaseModel):
    """GLM 4.x settings. The API key comes from ZHIPUAI_API_KEY only, never from this file."""

    model_config = _STRICT
    model: str = Field("glm-4-flash", min_length=1, max_length=64)
    max_tokens: int = Field(1024, ge=16, le=32_768)
    temperature: float = Field(0.1, ge=0, le=1)
    timeout_s: float = Field(30, gt=0, le=600)
    batch_size: int = Field(20, ge=1, le=100)


class McpConfig(BaseModel):
    model_config = _STRICT
    host: str = Field("127.0.0.1", min_length=1, description="Bind address for streamable HTTP.")
    jesse_mcp_port: int = Field(8000, ge=1, le=65535)
    asset_price_mcp_port: int = Field(8001, ge=1, le=65535)
    discovery_mcp_port: int = Field(8002, ge=1, le=65535)


class BacktestConfig(BaseModel):
    model_config = _STRICT
    workers: int = Field(
        3,
        ge=1,
        le=64,
        description="Jesse worker processes (each imports Jesse once); 3 lets compare_risk_profiles run its three "
        "profiles at once.",
    )
    timeout_s: float = Field(600, gt=0, le=86_400, description="Longest single backtest run.")


PRICE_PROVIDERS: tuple[str, ...] = ("binance", "coinbase", "kraken", "coingecko", "yahoo", "replay")


class PriceProviderConfig(BaseModel):
    model_config = _STRICT
    enabled: bool = True
    base_url: str | None = Field(
        None,
        description="Override of the provider's public address (the <NAME>_BASE_URL environment variable wins). "
        "Changing it needs the person's confirmation.",
    )
    timeout_s: float = Field(5.0, gt=0, le=120, description="Per-request timeout.")
    concurrency: int = Field(4, ge=1, le=64, description="Requests in flight to this provider at once.")


def _default_providers() -> dict[str, PriceProviderConfig]:
    # replay answers from stored candles: off while live providers are configured, labelled replay when used
    return {name: PriceProviderConfig(enabled=name != "replay") for name in PRICE_PROVIDERS}


class PriceConfig(BaseModel):
    model_config = _STRICT
    providers: dict[Literal[PRICE_PROVIDERS], PriceProviderConfig] = Field(  # type: ignore[valid-type]
        default_factory=_default_providers
    )
    quote_ttl_s: float = Field(5.0, ge=0, le=3600, description="How long a consensus quote is served from cache.")
    candle_ttl_s: float = Field(86_400.0, ge=0, description="How long closed candles are served from cache.")
    max_age_s: float = Field(120.0, gt=0, description="A provider's quote older than this is stale, not used.")
    outlier_bps: float = Field(
        100.0, gt=0, le=10_000, description="Quotes farther than this from the median (basis points) are excluded."
    )


class ImportConfig(BaseModel):
    """Where tools may read files (candle CSVs): $TRADING_MCP_HOME/imports/ always, plus these folders."""

    model_config = _STRICT
    folders: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Extra folders whose files import tools may read (absolute paths, '~' is expanded; not '/' nor "
        "a system tree such as /etc or /proc). Hidden files and .env files are never read. Adding a folder needs "
        "the person's confirmation; removing one does not.",
    )

    @field_validator("folders")
    @classmethod
    def _safe_folders(cls, value: list[str]) -> list[str]:
        return [check_folder(folder) for folder in value]


class TradingConfig(BaseModel):
    model_config = _STRICT
    global_risk_profile: ProfileName = "moderate"
    global_risk_settings: RiskSettings = Field(  # type: ignore[valid-type]
        default_factory=lambda: RiskSettings(**GLOBAL_RISK_DEFAULTS)
    )
    news_priorities: dict[SourceName, NewsSource] = Field(default_factory=_default_news)
    portfolio_limits: PortfolioLimits = Field(default_factory=PortfolioLimits)
    strategies: dict[StrategyName, StrategyConfig] = Field(default_factory=_default_strategies)
    stage: Stage = "exploration"
    zai_glm_config: GlmConfig = Field(default_factory=GlmConfig)
    mcp_config: McpConfig = Field(default_factory=McpConfig)
    backtest_config: BacktestConfig = Field(default_factory=BacktestConfig)
    price_config: PriceConfig = Field(default_factory=PriceConfig)
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig)
    paper: PaperConfig = Field(default_factory=PaperConfig)
    promotion: PromotionGates = Field(default_factory=PromotionGates)
    import_config: ImportConfig = Field(default_factory=ImportConfig)


def format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """Walk `loc` down the model tree and list the keys allowed at its end (None when not a model)."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        else:  # a dict[str, Model]: the key is free, the value is the model
            args = getattr(current, "__args__", ())
            current = args[-1] if args else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def problems_from(error: ValidationError, model: type[BaseModel] = TradingConfig) -> list[ConfigProblem]:
    problems = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            keys = _allowed_keys(model, loc[:-1])
            allowed = "unknown key" + (f"; allowed keys here: {', '.join(keys)}" if keys else "")
        elif err["type"] == "missing":
            allowed = "this field is required"
        elif err["type"] == "string_pattern_mismatch" and loc and loc[-1] == "[key]":
            allowed = "names use lower-case letters, digits and '_' (strategies start with a letter), no dots"
        elif err["type"] == "model_type" and err.get("input") is None:
            allowed = "a section cannot be null; null its fields one by one, or give {} to reset it"
        else:
            allowed = err["msg"]
        problems.append(ConfigProblem(format_loc(loc), err.get("input"), allowed))
    return problems


def validate_config_data(data: Any, source: str = "configuration") -> TradingConfig:
    """Validate plain JSON data strictly; raise ConfigError naming every bad field."""
    try:
        return TradingConfig.model_validate_json(json.dumps(data, allow_nan=True), strict=True)
    except ValidationError as e:
        problems = problems_from(e)
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"Invalid {source} ({len(problems)} problem(s)):\n{lines}", problems) from None


def parse_config_text(text: str, source: str) -> TradingConfig:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        problem = ConfigProblem("(file)", text[max(0, e.pos - 20) : e.pos + 20], "valid JSON is required")
        raise ConfigError(
            f"{source} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}. "
            "Fix the syntax (quotes around keys, no trailing commas) or delete the file to get the defaults.",
            [problem],
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source} must hold a JSON object at the top level, got {type(data).__name__}.",
            [ConfigProblem("(root)", data, "a JSON object is required")],
        )
    return validate_config_data(data, source)


def config_to_json(cfg: TradingConfig) -> str:
    return json.dumps(cfg.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"

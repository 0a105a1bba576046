"""The whole configuration as pydantic models: defaults, strict validation, and field-path error messages.

Loading, atomic saving and caching live in `shared.config.store`; resolution of effective settings in
`shared.config.resolve`. Every model forbids unknown keys and validates in strict JSON mode (no "7" -> 7, no true -> 1).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_serializer,
    field_validator,
)

from shared.config.directions import knob
from shared.config.news import (  # re-exported: the news sections are part of the configuration
    NEWS_FEEDS,
    DiscoveryConfig,
    NewsSource,
    SourceName,
    default_news,
    sources_as_list,
    sources_by_name,
)
from shared.config.profiles import PROFILE_NAMES, PROFILE_TEMPLATES, ProfileName
from shared.config.research import BacktestConfig, OptimizeConfig
from shared.config.risk_fields import RISK_FIELD_NAMES, risk_field
from shared.net.glm import DEFAULT_BASE_URL
from shared.policy.readable import check_folder

__all__ = ["NEWS_FEEDS", "BacktestConfig", "DiscoveryConfig", "NewsSource", "OptimizeConfig", "SourceName"]

Stage = Literal["exploration", "paper", "live"]
STAGES: tuple[Stage, ...] = ("exploration", "paper", "live")
STAGE_RANK: dict[str, int] = {name: rank for rank, name in enumerate(STAGES)}

StrategyName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=True)


# No docstrings on the two risk models: the schema carries no model description (as before).
class RiskSettings(BaseModel):  # every risk setting, each required (the global settings, the profiles)
    model_config = _STRICT
    max_portfolio_risk: float = risk_field("max_portfolio_risk")
    max_position_size: float = risk_field("max_position_size")
    max_leverage: float = risk_field("max_leverage")
    max_drawdown: float = risk_field("max_drawdown")
    stop_loss: float = risk_field("stop_loss")
    take_profit: float = risk_field("take_profit")
    var_confidence: float = risk_field("var_confidence")
    max_correlation: float = risk_field("max_correlation")
    emergency_stop: float = risk_field("emergency_stop")
    cooldown_minutes: float = risk_field("cooldown_minutes")
    stoploss_guard_stops: float = risk_field("stoploss_guard_stops")
    low_profit_max_loss: float = risk_field("low_profit_max_loss")
    window_drawdown: float = risk_field("window_drawdown")
    protection_window_hours: float = risk_field("protection_window_hours")
    protection_pause_hours: float = risk_field("protection_pause_hours")
    max_cvar: float = risk_field("max_cvar")


class RiskOverrides(BaseModel):  # a strategy's own values of some risk settings; None = the profile's
    model_config = _STRICT
    max_portfolio_risk: float | None = risk_field("max_portfolio_risk", optional=True)
    max_position_size: float | None = risk_field("max_position_size", optional=True)
    max_leverage: float | None = risk_field("max_leverage", optional=True)
    max_drawdown: float | None = risk_field("max_drawdown", optional=True)
    stop_loss: float | None = risk_field("stop_loss", optional=True)
    take_profit: float | None = risk_field("take_profit", optional=True)
    var_confidence: float | None = risk_field("var_confidence", optional=True)
    max_correlation: float | None = risk_field("max_correlation", optional=True)
    emergency_stop: float | None = risk_field("emergency_stop", optional=True)
    cooldown_minutes: float | None = risk_field("cooldown_minutes", optional=True)
    stoploss_guard_stops: float | None = risk_field("stoploss_guard_stops", optional=True)
    low_profit_max_loss: float | None = risk_field("low_profit_max_loss", optional=True)
    window_drawdown: float | None = risk_field("window_drawdown", optional=True)
    protection_window_hours: float | None = risk_field("protection_window_hours", optional=True)
    protection_pause_hours: float | None = risk_field("protection_pause_hours", optional=True)
    max_cvar: float | None = risk_field("max_cvar", optional=True)


for _model in (RiskSettings, RiskOverrides):  # the classes name each field of the table, no more, no less
    assert tuple(_model.model_fields) == RISK_FIELD_NAMES, _model

GLOBAL_RISK_DEFAULTS: dict[str, float] = {
    **PROFILE_TEMPLATES["moderate"],
    "max_correlation": 0.7,
    "emergency_stop": 0.25,
}


class PortfolioLimits(BaseModel):
    model_config = _STRICT
    max_total_positions: int = knob(
        10, "higher", "Open positions and resting entry orders of all strategies together.", ge=0, le=10_000
    )
    max_open_positions: int = knob(
        5, "higher", "Open positions and resting entry orders of one strategy at any moment.", ge=0, le=10_000
    )
    max_daily_trades: int = knob(20, "higher", "Orders placed in one UTC day, all processes together.", ge=0, le=10**6)
    max_weekly_trades: int = knob(50, "higher", "Orders placed in one ISO week.", ge=0, le=10**6)
    max_monthly_trades: int = knob(200, "higher", "Orders placed in one calendar month (UTC).", ge=0, le=10**6)
    position_timeout_hours: float = knob(72, "higher", "Positions older are closed.", gt=0, le=24 * 365)
    min_account_balance: float = knob(1000, "lower", "No new orders below this cash balance (USD).", ge=0, le=1e12)
    max_account_usage: float = knob(0.95, "higher", "Largest fraction of equity in positions.", gt=0, le=1)


class PaperConfig(BaseModel):
    """The paper-trading account: fills at the consensus price of the price library, with costs."""

    model_config = _STRICT
    starting_balance: float = knob(
        10_000,
        "higher",
        "Cash (USD) the paper account starts with, used when it is first opened; position limits are fractions of "
        "it, so a larger balance allows larger orders.",
        gt=0,
        le=1e12,
    )
    fee_bps: float = knob(
        10,
        "lower",
        "Fee per fill, basis points of notional (10 = 0.1 %); lower costs flatter the record.",
        ge=0,
        le=1000,
    )
    slippage_bps: float = knob(
        5, "lower", "Market fills (entries, exits, stops) are this much worse than the consensus.", ge=0, le=1000
    )
    monitor_interval_s: float = knob(
        15, "higher", "How often the server checks stops, limit orders, timeouts and losses.", ge=0.05, le=3600
    )
    daily_loss_limit: float = knob(
        0.05, "higher", "A fall of equity from the day's start (UTC) beyond this fraction halts trading.", gt=0, lt=1
    )
    correlation_days: int = knob(
        30, "lower", "Daily closes used for the return correlation with open positions.", ge=10, le=365
    )
    cvar_days: int = knob(
        90,
        "lower",
        "Daily returns the max_cvar check revalues the book on (historical simulation); fewer days can miss the "
        "last crash.",
        ge=20,
        le=1000,
    )


class PromotionGates(BaseModel):
    """Evidence a strategy needs to move up a stage. Evidence is read from the store, never from a tool argument."""

    model_config = _STRICT
    backtest_max_age_days: float = knob(30, "higher", "A backtest older than this does not count.", gt=0, le=3650)
    backtest_min_sharpe: float = knob(1.0, "lower", "Annualised Sharpe the backtest must reach.", ge=-10, le=100)
    backtest_min_trades: int = knob(30, "lower", "Closed trades the backtest must have.", ge=1, le=1_000_000)
    backtest_min_days: float = knob(30, "lower", "Days of market data the backtest must span.", gt=0, le=3650)
    backtest_max_data_age_days: float = knob(
        14,
        "higher",
        "The backtest's data must end at most this many days before it ran (no window from the past).",
        gt=0,
        le=3650,
    )
    backtest_allow_synthetic: bool = knob(
        False, "on", "Whether a backtest on generated (synthetic) candles counts as evidence."
    )
    backtest_allow_csv: bool = knob(
        False,
        "on",
        "Whether candles imported from a CSV file count as market data (by default only candles fetched from an "
        "exchange do: a file's origin cannot be checked).",
    )
    require_stress_test: bool = knob(
        True, "off", "A stress test of the qualifying backtest where no scenario reached the emergency stop."
    )
    paper_min_days: float = knob(7, "lower", "Days since the strategy's first paper fill.", gt=0, le=3650)
    paper_min_sharpe: float = knob(0.8, "lower", "Annualised Sharpe of daily paper equity (>).", ge=-10, le=100)
    paper_max_drawdown: float = knob(0.08, "higher", "Largest paper drawdown from its peak (<).", gt=0, lt=1)
    paper_min_trades: int = knob(5, "lower", "Closed paper trades of the strategy.", ge=1, le=1_000_000)
    paper_min_position_share: float = knob(
        0.5,
        "lower",
        "The median paper position must be at least this share of the profile's max_position_size x the starting "
        "balance: tiny positions would make the drawdown gate easy.",
        ge=0,
        le=1,
    )


class StrategyConfig(BaseModel):
    model_config = _STRICT
    risk_profile: ProfileName = knob("moderate", "higher", order=PROFILE_NAMES, compare="resolved")
    stage: Stage = knob(
        "exploration",
        "higher",
        "Raised only by request_stage_promotion (with evidence); lowered by demote_stage or a configuration change.",
        order=STAGES,
        compare="stage",
    )
    enabled: bool = knob(
        True, "on", "A disabled strategy gets no paper or live orders; switching it on needs the person."
    )
    risk_overrides: RiskOverrides = Field(default_factory=RiskOverrides)
    custom_params: dict[str, float | int | bool | str] = knob(
        None,
        "neutral",
        "The strategy's hyperparameters (name -> value): backtests and paper orders use them unless a call gives "
        "its own. The design's name; `hyperparameters` is read as a synonym.",
        why="promotion evidence counts only for the configured values, so new values need new evidence",
        default_factory=dict,
    )


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
    api_endpoint: str = knob(
        DEFAULT_BASE_URL,
        "change",
        "Base URL of the GLM API (the environment variable ZHIPUAI_BASE_URL wins); the API key is sent there.",
        min_length=1,
        max_length=2048,
    )
    model: str = knob(
        "glm-4-flash",
        "neutral",
        "Model name, passed on as written; if the API refuses it, the error is reported and the offline scorer "
        "answers.",
        why="the model only scores sentiment, and its answers are checked and fall back to the offline model",
        min_length=1,
        max_length=64,
    )
    max_tokens: int = knob(1024, "neutral", why="the length of GLM's answer", ge=16, le=32_768)
    temperature: float = knob(0.1, "higher", "Sampling temperature; higher makes scores less repeatable.", ge=0, le=1)
    timeout_s: float = knob(30, "neutral", why="a timeout falls back to the offline scorer", gt=0, le=600)
    batch_size: int = knob(20, "neutral", why="how many texts go in one request", ge=1, le=100)

    @field_validator("api_endpoint")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("the GLM endpoint must start with https:// (or http://), e.g. " + DEFAULT_BASE_URL)
        return value


def _listen(default: Any, what: str, **bounds: Any) -> Any:
    return knob(default, "change", what, **bounds)


class McpConfig(BaseModel):
    """Where each server listens for streamable HTTP (stdio needs none of this)."""

    model_config = _STRICT
    jesse_host: str = _listen("127.0.0.1", "Bind address of jesse-mcp.", min_length=1, max_length=255)
    jesse_port: int = _listen(8000, "Port of jesse-mcp.", ge=1, le=65535)
    asset_price_host: str = _listen("127.0.0.1", "Bind address of asset-price-mcp.", min_length=1, max_length=255)
    asset_price_port: int = _listen(8001, "Port of asset-price-mcp.", ge=1, le=65535)
    discovery_host: str = _listen("127.0.0.1", "Bind address of discovery-mcp.", min_length=1, max_length=255)
    discovery_port: int = _listen(8002, "Port of discovery-mcp.", ge=1, le=65535)


PriceProvider = Literal["binance", "coinbase", "kraken", "coingecko", "yahoo", "replay"]
PRICE_PROVIDERS: tuple[PriceProvider, ...] = get_args(PriceProvider)


class PriceProviderConfig(BaseModel):
    model_config = _STRICT
    enabled: bool = knob(
        True, "change", "Whether this provider votes on the consensus price that fills, marks and stops positions."
    )
    base_url: str | None = knob(
        None,
        "change",
        "Override of the provider's public address (the <NAME>_BASE_URL environment variable wins). Changing it needs "
        "the person's confirmation.",
    )
    timeout_s: float = knob(5.0, "neutral", "Per-request timeout.", why="a slow provider is skipped", gt=0, le=120)
    concurrency: int = knob(
        4, "neutral", "Requests in flight to this provider at once.", why="load on the provider", ge=1, le=64
    )


def _default_providers() -> dict[PriceProvider, PriceProviderConfig]:
    # replay answers from stored candles: off while live providers are configured, labelled replay when used
    return {name: PriceProviderConfig(enabled=name != "replay") for name in PRICE_PROVIDERS}


class PriceConfig(BaseModel):
    model_config = _STRICT
    providers: dict[PriceProvider, PriceProviderConfig] = Field(default_factory=_default_providers)
    quote_ttl_s: float = knob(5.0, "higher", "How long a consensus quote is served from cache.", ge=0, le=3600)
    candle_ttl_s: float = knob(86_400.0, "higher", "How long closed candles are served from cache.", ge=0, le=10**8)
    max_age_s: float = knob(120.0, "higher", "A provider's quote older than this is stale, not used.", gt=0, le=10**6)
    outlier_bps: float = knob(
        100.0, "higher", "Quotes farther than this from the median (basis points) are excluded.", gt=0, le=10_000
    )


class ImportConfig(BaseModel):
    """Where tools may read files (candle CSVs): $TRADING_MCP_HOME/imports/ always, plus these folders."""

    model_config = _STRICT
    folders: list[str] = knob(
        None,
        "added",
        "Extra folders whose files import tools may read (absolute paths, '~' is expanded; not '/' nor a system "
        "tree such as /etc or /proc). Hidden files and .env files are never read. Adding a folder needs the "
        "person's confirmation; removing one does not.",
        default_factory=list,
        max_length=32,
    )

    @field_validator("folders")
    @classmethod
    def _safe_folders(cls, value: list[str]) -> list[str]:
        return [check_folder(folder) for folder in value]


class TradingConfig(BaseModel):
    model_config = _STRICT
    global_risk_profile: ProfileName = knob("moderate", "higher", order=PROFILE_NAMES, compare="resolved")
    global_risk_settings: RiskSettings = Field(default_factory=lambda: RiskSettings(**GLOBAL_RISK_DEFAULTS))
    news_priorities: dict[SourceName, NewsSource] = Field(
        default_factory=default_news,
        description="The news sources, a list of {source, priority, weight, enabled} plus optional url/type/speed.",
    )
    portfolio_limits: PortfolioLimits = Field(default_factory=PortfolioLimits)
    strategies: dict[StrategyName, StrategyConfig] = Field(default_factory=_default_strategies)
    stage: Stage = knob("exploration", "higher", order=STAGES, compare="stage")
    zai_glm_config: GlmConfig = Field(default_factory=GlmConfig)
    mcp_config: McpConfig = Field(default_factory=McpConfig)
    backtest_config: BacktestConfig = Field(default_factory=BacktestConfig)
    optimize_config: OptimizeConfig = Field(default_factory=OptimizeConfig)
    price_config: PriceConfig = Field(default_factory=PriceConfig)
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig)
    paper: PaperConfig = Field(default_factory=PaperConfig)
    promotion: PromotionGates = Field(default_factory=PromotionGates)
    import_config: ImportConfig = Field(default_factory=ImportConfig)

    @field_validator("news_priorities", mode="before")
    @classmethod
    def _keyed_sources(cls, value: Any) -> Any:
        return sources_by_name(value)

    @field_serializer("news_priorities", when_used="json")
    def _listed_sources(self, value: dict[str, NewsSource]) -> list[dict[str, Any]]:
        return sources_as_list(value)

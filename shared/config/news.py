"""Configuration of news: the weighted sources (`news_priorities`) and the rules that turn news into opportunities.

`news_priorities` is written as the design document shows it, a list of sources, each with its `source` name,
`priority`, `weight` and `enabled`; the connector fields (`url`, `type`, `speed`) are optional additions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from shared.config.directions import knob

SourceName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]  # no dots: paths use them
SPEEDS = ("slow", "normal", "fast")
_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=True)


class NewsSource(BaseModel):
    model_config = _STRICT
    priority: int = knob(
        ...,
        "lower",
        "1 is the most trusted source; duplicates keep its copy. Trusting a source more needs the person.",
        ge=1,
        le=100,
    )
    weight: float = knob(..., "higher", "Relative weight of this source in aggregated sentiment.", ge=0, le=1)
    enabled: bool = knob(True, "on", "Whether the source is fetched and counted.")
    url: str | None = knob(
        None,
        "change",
        "Feed or API address (RSS/Atom URL, API base URL). '{symbols}' in an RSS address is replaced by the stock "
        "tickers asked for (per-ticker feeds). Changing it needs the person's confirmation.",
    )
    type: Literal["rss", "cryptopanic", "reddit", "none"] | None = knob(
        None, "change", "Connector kind; 'none' or unset means no connector is configured."
    )
    speed: Literal["slow", "normal", "fast"] = knob(
        "normal",
        "higher",
        "How soon the source carries news (wires and aggregators fast, daily write-ups slow); in volatile markets "
        "fast sources count more (discovery.volatility_weighting).",
        order=SPEEDS,
    )

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError("a news source address must start with http:// or https://")
        return value


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


def default_news() -> dict[str, NewsSource]:
    return {
        name: NewsSource(priority=i + 1, weight=w, url=url, type=kind, speed=speed)  # type: ignore[arg-type]
        for i, (name, kind, url, w, speed) in enumerate(NEWS_FEEDS)
    }


def sources_by_name(value: Any) -> Any:
    """`news_priorities` as the design writes it (a list of entries naming their `source`) keyed by name; a mapping
    (older files, dotted-path edits) passes through. Raises ValueError naming the entry that cannot be keyed."""
    if isinstance(value, dict):
        return {name: with_known_connector(name, entry) for name, entry in value.items()}
    if not isinstance(value, list):
        return value
    keyed: dict[Any, Any] = {}
    for i, entry in enumerate(value):
        if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
            raise ValueError(f'entry [{i}] needs a "source" name, e.g. {{"source": "coindesk", ...}}')
        name = entry["source"]
        if name in keyed:
            raise ValueError(f"source {name!r} is listed twice (entries [{list(keyed).index(name)}] and [{i}])")
        keyed[name] = {k: v for k, v in entry.items() if k != "source"}
    return {name: with_known_connector(name, entry) for name, entry in keyed.items()}


def with_known_connector(name: str, entry: Any) -> Any:
    """A source the suite knows (coindesk, reddit, ...) given without `url` and `type` gets its public connector, so
    the design's seven sources work as written; `"type": "none"` switches the connector off."""
    known = {feed[0]: feed for feed in NEWS_FEEDS}.get(name)
    if known is None or not isinstance(entry, dict) or "url" in entry or "type" in entry:
        return entry
    _, kind, url, _, speed = known
    return {**entry, "type": kind, **({"url": url} if url else {}), "speed": entry.get("speed", speed)}


def sources_as_list(sources: dict[str, NewsSource]) -> list[dict[str, Any]]:
    """The on-disk form: a list ordered by priority, `source` first, unset connector fields left out."""
    ordered = sorted(sources.items(), key=lambda kv: (kv[1].priority, kv[0]))
    return [{"source": name, **s.model_dump(mode="json", exclude_none=True)} for name, s in ordered]


class DiscoveryConfig(BaseModel):
    """How news becomes opportunities: every number here is a documented, tunable rule."""

    model_config = _STRICT
    half_life_hours: float = knob(
        12, "higher", "An item's weight halves every this many hours (longer: older news counts).", gt=0, le=24 * 30
    )
    lookback_hours: float = knob(72, "higher", "Items older than this are not aggregated.", gt=0, le=24 * 90)
    fetch_timeout_s: float = knob(10, "higher", "Per-source fetch timeout (a slow feed holds the cycle).", gt=0, le=120)
    max_feed_bytes: int = knob(5_000_000, "higher", "Larger answers are refused.", ge=10_000, le=100_000_000)
    volatility_weighting: bool = knob(True, "change", "In volatile markets, weight sources by their speed.")
    high_volatility_annual_pct: float = knob(
        80, "change", "Annualised volatility (%) above which a market counts as volatile.", gt=0, le=1000
    )
    fast_source_boost: float = knob(1.5, "higher", "Weight multiplier of fast sources when volatile.", ge=1, le=10)
    slow_source_factor: float = knob(
        0.5, "lower", "Weight multiplier of slow (more considered) sources when volatile.", gt=0, le=1
    )
    min_items: int = knob(1, "lower", "Fewest items a symbol needs to become an opportunity.", ge=1, le=100)
    correlation_penalty: float = knob(
        0.5,
        "lower",
        "Diversified top-k: a candidate's score is multiplied by 1 - this x its largest same-direction return "
        "correlation with the symbols already picked.",
        ge=0,
        le=1,
    )
    information_coefficient: float = knob(
        0.05,
        "higher",
        "Forecast skill of news sentiment: expected move = IC x volatility x 3S.",
        gt=0,
        le=0.5,
    )
    price_confirmation: bool = knob(True, "off", "Check the opportunity's direction against recent prices.")

"""Opportunities: weighting, expected move and uncertainty, types, confirmation, diversified top-k."""

from __future__ import annotations

import math

import numpy as np
import pytest

from discovery_mcp.models import NewsItem, Sentiment
from discovery_mcp.opportunities.ranking import Market, RankQuery, item_weight, rank, recency
from shared.config.models import DiscoveryConfig, NewsSource

NOW = 1_765_580_000_000
H = 3_600_000
SOURCES = {
    "wire": NewsSource(priority=1, weight=0.25, speed="fast"),
    "weekly": NewsSource(priority=2, weight=0.6, speed="slow"),
    "blog": NewsSource(priority=3, weight=0.5, speed="normal"),
}
CFG = DiscoveryConfig()


def story(symbol: str, score: float, source: str = "blog", age_h: float = 1.0, n: int = 0, **kw) -> NewsItem:
    label = "bullish" if score > 0 else ("bearish" if score < 0 else "neutral")
    return NewsItem(
        id=f"{symbol}-{source}-{n}-{score}",
        source=source,
        url=f"https://x.example/{symbol}/{n}",
        untrusted_title=f"{symbol} story {n}",
        untrusted_summary="",
        published="2025-12-12T00:00:00Z",
        published_ms=NOW - int(age_h * H),
        symbols=kw.pop("symbols", [symbol]),
        sentiment=Sentiment(score=score, label=label, confidence=kw.pop("confidence", 0.8), method="test"),
        **kw,
    )


def market(seed: int, daily_vol: float = 0.02, recent: float | None = 0.0, base: np.ndarray | None = None) -> Market:
    rng = np.random.default_rng(seed)
    r = rng.normal(0, daily_vol, 90) if base is None else base + rng.normal(0, daily_vol * 0.1, 90)
    days = np.arange(90, dtype=np.int64) * 86_400_000
    return Market(days=days, returns=r, recent_return=recent)


def test_expected_move_and_uncertainty_follow_the_documented_formula():
    m = market(1, recent=None)
    (opp,), _ = rank(
        {"BTC": [story("BTC", 0.5)]}, SOURCES, CFG, {"BTC": m}, RankQuery(horizon_h=24, top_k=3, now_ms=NOW)
    )
    vol = float(np.std(m.returns, ddof=1) * math.sqrt(365))
    sigma = vol * math.sqrt(24 / 8760)
    assert opp.sigma_pct == pytest.approx(sigma * 100, rel=1e-3)
    assert opp.mu_pct == pytest.approx(CFG.information_coefficient * sigma * 3 * 0.5 * 100, rel=1e-3)
    assert opp.direction == "long" and opp.sentiment == 0.5 and not opp.volatility_assumed
    assert opp.price_confirmation == "unavailable" and opp.evidence[0].weight_share == 1.0


def test_without_prices_a_stated_default_volatility_is_used_and_flagged():
    (opp,), _ = rank(
        {"ETH": [story("ETH", -0.6)]}, SOURCES, CFG, {"ETH": None}, RankQuery(horizon_h=24, top_k=3, now_ms=NOW)
    )
    assert opp.direction == "short" and opp.mu_pct < 0 and opp.volatility_assumed
    assert opp.volatility_annual_pct == 60.0 and opp.regime == "unknown"


def test_recency_halves_a_story_weight_every_half_life():
    assert recency(12 * H, 12) == pytest.approx(0.5) and recency(0, 12) == 1.0
    fresh, old = story("BTC", 0.5, age_h=0), story("BTC", 0.5, age_h=24)
    ratio = item_weight(old, SOURCES, CFG, False, NOW) / item_weight(fresh, SOURCES, CFG, False, NOW)
    assert ratio == pytest.approx(0.25)


def test_corroboration_and_specificity_change_a_story_weight():
    alone = item_weight(story("BTC", 0.5), SOURCES, CFG, False, NOW)
    backed = item_weight(story("BTC", 0.5, corroborating_sources=["wire"]), SOURCES, CFG, False, NOW)
    shared = item_weight(story("BTC", 0.5, symbols=["BTC", "ETH", "SOL", "XRP"]), SOURCES, CFG, False, NOW)
    assert backed == pytest.approx(alone * 1.25) and shared == pytest.approx(alone / 2)


def test_in_a_volatile_market_fast_sources_outweigh_slow_ones():
    items = [story("SOL", 0.6, "wire", n=1), story("SOL", -0.6, "weekly", n=2)]
    calm, volatile = market(2, daily_vol=0.01), market(3, daily_vol=0.08)
    (c,), _ = rank({"SOL": items}, SOURCES, CFG, {"SOL": calm}, RankQuery(horizon_h=24, top_k=1, now_ms=NOW))
    (v,), _ = rank({"SOL": items}, SOURCES, CFG, {"SOL": volatile}, RankQuery(horizon_h=24, top_k=1, now_ms=NOW))
    assert c.regime == "calm" and c.direction == "short"  # the weekly source weighs 0.6 vs 0.25
    assert v.regime == "volatile" and v.direction == "long"  # 0.25 x 1.5 = 0.375 vs 0.6 x 0.5 = 0.3
    off = CFG.model_copy(update={"volatility_weighting": False})
    (o,), _ = rank({"SOL": items}, SOURCES, off, {"SOL": volatile}, RankQuery(horizon_h=24, top_k=1, now_ms=NOW))
    assert o.direction == "short"


def test_news_against_a_move_larger_than_sigma_is_a_reversal_and_price_agreement_is_reported():
    down = market(4, daily_vol=0.02, recent=-0.09)
    up = market(5, daily_vol=0.02, recent=0.01)
    (rev,), _ = rank(
        {"BTC": [story("BTC", 0.5, age_h=10)]},
        SOURCES,
        CFG,
        {"BTC": down},
        RankQuery(horizon_h=24, top_k=1, now_ms=NOW),
    )
    (mom,), _ = rank(
        {"BTC": [story("BTC", 0.5, age_h=10)]}, SOURCES, CFG, {"BTC": up}, RankQuery(horizon_h=24, top_k=1, now_ms=NOW)
    )
    (evt,), _ = rank(
        {"BTC": [story("BTC", 0.9, age_h=1)]}, SOURCES, CFG, {"BTC": up}, RankQuery(horizon_h=24, top_k=1, now_ms=NOW)
    )
    assert rev.opportunity_type == "reversal" and rev.price_confirmation == "contradicted"
    assert mom.opportunity_type == "momentum" and mom.price_confirmation == "confirmed"
    assert evt.opportunity_type == "event"


def test_diversified_selection_drops_a_near_duplicate_correlated_symbol():
    base = np.random.default_rng(7).normal(0, 0.03, 90)
    markets = {"BTC": market(8, base=base), "ETH": market(9, base=base), "AAPL": market(10, daily_vol=0.03)}
    items = {
        "BTC": [story("BTC", 0.8, n=1), story("BTC", 0.7, "wire", n=2)],
        "ETH": [story("ETH", 0.75, n=1), story("ETH", 0.7, "wire", n=2)],
        "AAPL": [story("AAPL", 0.6, n=1), story("AAPL", 0.6, "wire", n=2)],  # weaker than ETH alone
    }
    picked, skipped = rank(items, SOURCES, CFG, markets, RankQuery(horizon_h=24, top_k=2, now_ms=NOW))
    assert [o.symbol for o in picked] == ["BTC", "AAPL"]
    assert ("ETH", "below the top-k after the diversification penalty") in skipped
    plain, _ = rank(
        items,
        SOURCES,
        CFG.model_copy(update={"correlation_penalty": 0}),
        markets,
        RankQuery(horizon_h=24, top_k=2, now_ms=NOW),
    )
    assert [o.symbol for o in plain] == ["BTC", "ETH"]


def test_a_short_on_a_correlated_asset_is_a_hedge_and_is_not_penalised():
    base = np.random.default_rng(11).normal(0, 0.03, 90)
    markets = {"BTC": market(12, base=base), "ETH": market(13, base=base), "AAPL": market(14, daily_vol=0.03)}
    items = {
        "BTC": [story("BTC", 0.8, n=1)],
        "ETH": [story("ETH", -0.75, n=1)],
        "AAPL": [story("AAPL", 0.5, n=1)],
    }
    picked, _ = rank(items, SOURCES, CFG, markets, RankQuery(horizon_h=24, top_k=2, now_ms=NOW))
    assert [o.symbol for o in picked] == ["BTC", "ETH"] and picked[1].correlation_to_picks < 0


def test_stablecoins_are_never_opportunities():
    picked, skipped = rank(
        {"USDT": [story("USDT", 0.9)]}, SOURCES, CFG, {}, RankQuery(horizon_h=24, top_k=3, now_ms=NOW)
    )
    assert picked == [] and skipped[0][0] == "USDT" and "stablecoin" in skipped[0][1]


@pytest.mark.slow
def test_ranking_is_the_same_in_processes_with_different_hash_seeds():
    import os
    import subprocess
    import sys

    code = (
        "import json, tests.discovery_mcp.test_opportunities as t\n"
        "m = {s: t.market(i) for i, s in enumerate(['BTC', 'ETH', 'SOL', 'AAPL', 'NVDA'])}\n"
        "items = {s: [t.story(s, 0.4, n=1), t.story(s, 0.4, 'wire', n=2)] for s in m}\n"
        "picked, skipped = t.rank(items, t.SOURCES, t.CFG, m, t.RankQuery(horizon_h=24, top_k=3, now_ms=t.NOW))\n"
        "print(json.dumps([[o.model_dump() for o in picked], skipped]))\n"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outs) == 1 and "BTC" in outs.pop()


def test_ranking_is_deterministic_for_the_same_inputs():
    markets = {s: market(i) for i, s in enumerate(["BTC", "ETH", "SOL", "AAPL"])}
    items = {s: [story(s, 0.4, n=1), story(s, 0.4, "wire", n=2)] for s in markets}  # equal scores: ties by symbol
    first, _ = rank(items, SOURCES, CFG, markets, RankQuery(horizon_h=24, top_k=4, now_ms=NOW))
    second, _ = rank(dict(reversed(items.items())), SOURCES, CFG, markets, RankQuery(horizon_h=24, top_k=4, now_ms=NOW))
    assert [o.model_dump() for o in first] == [o.model_dump() for o in second]


def test_neutral_or_thin_evidence_is_skipped_with_a_reason():
    picked, skipped = rank(
        {"DOGE": [story("DOGE", 0.0)]}, SOURCES, CFG, {}, RankQuery(horizon_h=24, top_k=3, now_ms=NOW)
    )
    assert picked == [] and skipped == [("DOGE", "evidence too thin or sentiment neutral")]

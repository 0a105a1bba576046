"""discovery-mcp: one full discovery cycle over the six real feeds in ../shared/data/rss, served on 127.0.0.1.

End to end through an in-memory MCP session: `discover_opportunities` fetches the six feeds concurrently, parses them
with feedparser, normalises, deduplicates across sources, extracts symbols, scores every new story with the offline
sentiment model, stores them, and ranks opportunities. Each round starts from an empty state database (cold: every
story is new). Also shown: a warm cycle (the feeds answer 304 Not Modified to the conditional GET).
Target: <= 1 s end to end.

Run: uv run python bench/bench_discovery.py [path/to/rss/folder]
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp.shared.memory import create_connected_server_and_client_session as connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from discovery_mcp.server import build_server
from shared.config.models import NewsSource, TradingConfig
from shared.server.common import make_deps
from tests.fake_news_server import FakeNews, Route

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 5
LAST: dict = {}
FEEDS_NOW = 1_765_620_000.0  # 2025-12-13 10:00 UTC, just after the newest recorded story
TIME_LIMIT_S = 300
FEEDS = {  # name -> (file prefix, connector, speed)
    "coindesk": ("coindesk_", "rss", "fast"),
    "cointelegraph": ("cointelegraph_", "rss", "fast"),
    "decrypt": ("decrypt_", "rss", "normal"),
    "theblock": ("theblock_", "rss", "normal"),
    "prnewswire": ("prnewswire_", "rss", "fast"),
    "reddit": ("reddit_", "reddit", "fast"),
}


def feed_routes(folder: Path) -> dict[str, Route]:
    routes = {}
    for name, (prefix, _, _) in FEEDS.items():
        (path,) = sorted(folder.glob(f"{prefix}*.xml"))
        kind = "application/atom+xml" if name == "reddit" else "application/rss+xml"
        routes[f"/{name}"] = Route(path.read_bytes(), kind, etag=f'"{name}-1"')
    return routes


def write_config(home: Path, url: str) -> None:
    cfg = TradingConfig()
    cfg.news_priorities = {
        name: NewsSource(priority=i + 1, weight=0.5, url=f"{url}/{name}", type=kind, speed=speed)  # type: ignore[arg-type]
        for i, (name, (_, kind, speed)) in enumerate(FEEDS.items())
    }
    for name, provider in cfg.price_config.providers.items():  # no network: prices from the (empty) candle store
        provider.enabled = name == "replay"
    (home / "config.json").write_text(cfg.model_dump_json(indent=2))


async def one_round(url: str) -> tuple[float, float, int, int]:
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        write_config(home, url)
        deps = make_deps("bench", home)
        deps.extras.clock = lambda: FEEDS_NOW + (time.time() - started)  # the feeds' own time, running
        try:
            async with connect(build_server(deps)) as client:
                t0 = time.perf_counter()
                cold = await client.call_tool("discover_opportunities", {"top_k": 5})
                cold_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                warm = await client.call_tool("discover_opportunities", {"top_k": 5})
                warm_s = time.perf_counter() - t0
        finally:
            deps.store.close()
    assert not cold.isError and not warm.isError, (cold, warm)
    data = cold.structuredContent
    LAST.clear()
    LAST.update(data)
    return cold_s, warm_s, data["cycle"]["new_items"], len(data["opportunities"])


async def main() -> None:
    logging.disable(logging.CRITICAL)
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "rss"
    if not folder.is_dir():
        sys.exit(f"No feed folder at {folder}: pass the folder holding the six real feeds.")
    with FakeNews(feed_routes(folder), lifetime_s=TIME_LIMIT_S) as news, anyio.fail_after(TIME_LIMIT_S):
        await one_round(news.url)  # warm-up: imports, model load
        rounds = [await one_round(news.url) for _ in range(ROUNDS)]
    cold = statistics.median(r[0] for r in rounds)
    warm = statistics.median(r[1] for r in rounds)
    print(f"six real feeds, {rounds[0][2]} stories after deduplication, {rounds[0][3]} opportunities")
    print(f"full discovery cycle, cold store: median {cold * 1000:.0f} ms over {ROUNDS} (target <= 1000 ms)")
    print(f"warm cycle (304 Not Modified): median {warm * 1000:.0f} ms")
    print(f"duplicates folded across sources: {LAST['cycle']['duplicates']}; the picks:")
    for o in LAST["opportunities"]:
        top = o["evidence"][0]
        print(
            f"  {o['rank']}. {o['symbol']:<5} {o['direction']:<5} {o['opportunity_type']:<8} mu {o['mu_pct']:+.2f}% "
            f"sigma {o['sigma_pct']:.2f}% conf {o['confidence']:.2f} items {o['items']}: "
            f"{top['untrusted_title'][:70]!r} ({top['source']}, {top['sentiment']:+.2f})"
        )


if __name__ == "__main__":
    anyio.run(main)

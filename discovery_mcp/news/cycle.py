"""One discovery cycle: fetch every enabled source concurrently, normalise, deduplicate across sources, extract
symbols, score the new stories' sentiment, and store them, so the next cycle only does what is new.

Duplicates (the same canonical URL, or near-identical titles about the same assets within two days) become one
story: the copy of the highest-priority source is kept, the others are counted as corroborating sources.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import httpx
from pydantic import BaseModel, Field

from discovery_mcp.models import SUMMARY_MAX, TITLE_MAX, DiscoveryError, InjectionVerdict, NewsItem, Sentiment
from discovery_mcp.news.assets import ASSETS
from discovery_mcp.news.entities import extract_symbols
from discovery_mcp.news.injection import detect
from discovery_mcp.news.normalise import canonical_url, plain_text, similar_titles, title_words
from discovery_mcp.news.sources import FetchOptions, FetchResult, RawEntry, fetch_source
from discovery_mcp.news.store import NewsStore, StoredItem
from shared.config.models import NewsSource, TradingConfig
from shared.state.store import utc_now_iso

DEDUPE_WINDOW_MS = 48 * 3_600_000
MAX_FUTURE_MS = 10 * 60_000  # a feed's clock may run a little ahead; further ahead is wrong and capped to now
RETENTION_MS = 30 * 86_400_000  # stories older than this are not news: not stored, and pruned from the store


class Scorer(Protocol):
    async def score(self, texts: list[str]) -> list[Sentiment]: ...


class SourceReport(BaseModel):
    source: str
    status: str = Field(description="ok, not_modified, error, no_connector, needs_key, idle or disabled.")
    message: str | None = None
    http_status: int | None = None
    latency_ms: float | None = None
    entries: int = Field(0, description="Entries the source delivered in this cycle.")
    new_items: int = Field(0, description="New stories stored.")
    duplicates: int = Field(0, description="Entries folded into stories already known.")
    warnings: list[str] = Field(default_factory=list)


class CycleReport(BaseModel):
    fetched_at: str
    duration_ms: float
    new_items: int
    duplicates: int
    sources: list[SourceReport]


@dataclass(slots=True)
class _Merge:
    """The stories touched by one cycle and how each source's entries were counted."""

    touched: dict[str, StoredItem] = field(default_factory=dict)
    new_ids: set[str] = field(default_factory=set)
    rescore: set[str] = field(default_factory=set)
    new_by_source: dict[str, int] = field(default_factory=dict)
    dup_by_source: dict[str, int] = field(default_factory=dict)


def story_id(url: str, source: str, title: str) -> str:
    basis = url or f"{source}\n{title.lower()}"
    return hashlib.sha256(basis.encode()).hexdigest()[:20]


def to_item(raw: RawEntry, source: str, now_ms: int) -> NewsItem | None:
    """The entry as a story, or None when it has no title or is older than the retention."""
    title = plain_text(raw.title, TITLE_MAX)
    if not title:
        return None
    published = raw.published_ms if raw.published_ms is not None else now_ms
    if published < now_ms - RETENTION_MS:
        return None
    published = min(published, now_ms + MAX_FUTURE_MS)
    summary = plain_text(raw.summary, SUMMARY_MAX)
    url = canonical_url(raw.url)
    symbols = list(dict.fromkeys([*(t for t in raw.tags if t in ASSETS), *extract_symbols(f"{title}\n{summary}")]))
    return NewsItem(
        id=story_id(url, source, title),
        source=source,
        url=url,
        untrusted_title=title,
        untrusted_summary=summary,
        published=utc_now_iso(published),
        published_ms=published,
        symbols=symbols,
        injection=detect(raw.title, raw.summary),  # on the text as delivered: plain_text erases hidden characters
    )


def merge(
    incoming: list[tuple[NewsItem, int]],
    known: list[StoredItem],
    by_id: dict[str, StoredItem],
    priorities: Mapping[str, int] | None = None,
) -> _Merge:
    """Fold incoming items (with their source priority) into the known stories. Pure: returns what changed.
    `priorities` (the configuration's, when given) override the priorities the stories were stored with."""
    out = _Merge()
    for s in [*known, *by_id.values()]:
        s.priority = (priorities or {}).get(s.item.source, s.priority)
    stories = list(known)
    by_url = {s.item.url: s for s in stories if s.item.url}
    for item, priority in sorted(incoming, key=lambda x: (x[1], -x[0].published_ms)):
        words = title_words(item.untrusted_title)
        match = by_id.get(item.id) or (by_url.get(item.url) if item.url else None) or _same_story(item, words, stories)
        if match is None:
            story = StoredItem(item, priority, words)
            stories.append(story)
            by_id[item.id] = story
            if item.url:
                by_url[item.url] = story
            out.touched[item.id] = story
            out.new_ids.add(item.id)
            out.new_by_source[item.source] = out.new_by_source.get(item.source, 0) + 1
            continue
        if item.source == match.item.source or item.source in match.item.corroborating_sources:
            continue  # the same copy seen again
        _fold(match, item, priority, words, out)
        if item.url:
            by_url[item.url] = match
    return out


def _same_story(item: NewsItem, words: frozenset[str], stories: list[StoredItem]) -> StoredItem | None:
    """A known story another source told about the same assets, at about the same time, in near-identical words."""
    symbols = set(item.symbols)
    return next(
        (
            s
            for s in stories
            if set(s.item.symbols) == symbols
            and s.item.source != item.source  # one source does not publish one story under two URLs
            and abs(s.item.published_ms - item.published_ms) <= DEDUPE_WINDOW_MS
            and s.item.flagged == item.flagged  # a flagged copy neither corroborates nor replaces a clean one
            and similar_titles(s.words, words)
        ),
        None,
    )


def _fold(match: StoredItem, item: NewsItem, priority: int, words: frozenset[str], out: _Merge) -> None:
    """Another source's copy of a known story: it corroborates the story, or replaces its copy when more trusted."""
    out.dup_by_source[item.source] = out.dup_by_source.get(item.source, 0) + 1
    kept = match.item
    if priority < match.priority:  # a more trusted source carries it: keep its copy, the story keeps its id
        others = [kept.source, *kept.corroborating_sources]
        match.item = item.model_copy(
            update={"id": kept.id, "corroborating_sources": others, "symbols": kept.symbols or item.symbols}
        )
        match.priority, match.words = priority, words
        out.rescore.add(kept.id)
    else:
        match.item = kept.model_copy(update={"corroborating_sources": [*kept.corroborating_sources, item.source]})
    out.touched[match.item.id] = match


class NewsService:
    def __init__(
        self,
        store: NewsStore,
        client: httpx.AsyncClient,
        config: Callable[[], TradingConfig],
        scorer: Scorer,
        *,
        clock: Callable[[], float] = time.time,
        env: Mapping[str, str] = os.environ,
    ):
        self.store = store
        self.client = client
        self.config = config
        self.scorer = scorer
        self.clock = clock
        self.env = env
        self._cycle = anyio.Lock()  # one cycle at a time: two sessions must not both insert the same new story

    async def refresh(self, sources: list[str] | None = None, symbols: list[str] | None = None) -> CycleReport:
        """Fetch the chosen (default: every enabled) source once, concurrently, and store what is new."""
        async with self._cycle:
            return await self._refresh(sources, symbols)

    async def _refresh(self, sources: list[str] | None, symbols: list[str] | None) -> CycleReport:
        cfg = self.config()
        configured = cfg.news_priorities
        unknown = [s for s in sources or () if s not in configured]
        if unknown:
            raise DiscoveryError(
                f"Unknown news source(s): {', '.join(unknown)}. Configured: {', '.join(configured)}. "
                "Add one with update_source_priority or in news_priorities."
            )
        chosen = sources or [name for name, s in configured.items() if s.enabled]
        started = time.perf_counter()
        now_ms = int(self.clock() * 1000)
        results = await self._fetch(cfg, chosen, symbols or [])
        incoming = await anyio.to_thread.run_sync(self._items, chosen, results, configured, now_ms)
        merged = await anyio.to_thread.run_sync(self._merge, incoming, configured, now_ms)
        scored = await self._score(merged)
        await anyio.to_thread.run_sync(self.store.save, scored, now_ms)
        reports = [self._report(results[name], merged, now_ms) for name in chosen]
        return CycleReport(
            fetched_at=utc_now_iso(now_ms),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            new_items=len(merged.new_ids),
            duplicates=sum(merged.dup_by_source.values()),
            sources=reports,
        )

    async def _fetch(self, cfg: TradingConfig, chosen: list[str], symbols: list[str]) -> dict[str, FetchResult]:
        """Every chosen source, concurrently; a disabled one is reported, not fetched."""
        configured = cfg.news_priorities
        options = FetchOptions(
            crypto_symbols=[s for s in symbols if ASSETS[s].kind == "crypto"],
            stock_symbols=[s for s in symbols if ASSETS[s].kind != "crypto"],
            timeout_s=cfg.discovery.fetch_timeout_s,
            max_bytes=cfg.discovery.max_feed_bytes,
            env=self.env,
        )
        results: dict[str, FetchResult] = {}

        async def one(name: str) -> None:
            previous = await anyio.to_thread.run_sync(self.store.validators, name)
            results[name] = await fetch_source(self.client, name, configured[name], previous, options)

        async with anyio.create_task_group() as tg:
            for name in chosen:
                if configured[name].enabled:
                    tg.start_soon(one, name)
                else:
                    results[name] = FetchResult(name, "disabled", "Disabled in news_priorities; not fetched.")
        return results

    def _merge(self, incoming: list[tuple[NewsItem, int]], configured: Mapping[str, NewsSource], now_ms: int) -> _Merge:
        priorities = {name: s.priority for name, s in configured.items()}
        return self.store.merge_and_save(
            incoming,
            lambda known, by_id: merge(incoming, known, by_id, priorities),
            lambda m: list(m.touched.values()),
            window_ms=DEDUPE_WINDOW_MS,
            now_ms=now_ms,
            retention_ms=RETENTION_MS,
        )

    def _report(self, r: FetchResult, merged: _Merge, now_ms: int) -> SourceReport:
        """Records the fetch of one source and reports it."""
        new, dup = merged.new_by_source.get(r.source, 0), merged.dup_by_source.get(r.source, 0)
        self.store.record_fetch(r, new, dup, now_ms)
        return SourceReport(
            source=r.source,
            status=r.status,
            message=r.message,
            http_status=r.http_status,
            latency_ms=r.latency_ms,
            entries=len(r.entries),
            new_items=new,
            duplicates=dup,
            warnings=r.warnings,
        )

    @staticmethod
    def _items(
        chosen: list[str], results: dict[str, FetchResult], configured: Mapping[str, NewsSource], now_ms: int
    ) -> list[tuple[NewsItem, int]]:
        out = []
        for name in chosen:
            for raw in results[name].entries:
                try:
                    item = to_item(raw, name, now_ms)
                except (ValueError, OverflowError) as e:  # an impossible date, say: skip the entry, not the cycle
                    results[name].warnings.append(f"{name}: an entry was skipped ({type(e).__name__})")
                    continue
                if item is not None:
                    out.append((item, configured[name].priority))
        return out

    async def _score(self, merged: _Merge) -> list[StoredItem]:
        """Sentiment of the new stories and of those whose kept copy changed; returns them, scored. A flagged story
        (its text addresses the reader) is never sent to a scorer and keeps no sentiment."""
        ids = [i for i in merged.touched if i in merged.new_ids or i in merged.rescore]
        clean = [i for i in ids if not merged.touched[i].item.flagged]
        scores = await self.scorer.score([merged.touched[i].item.untrusted_title for i in clean]) if clean else []
        by_id = dict(zip(clean, scores, strict=True))
        for i in ids:
            story = merged.touched[i]
            sentiment = by_id.get(i)
            update: dict[str, object] = {"sentiment": sentiment}
            if sentiment is not None and sentiment.excluded_reason:  # the scorer's own check caught it
                update = {
                    "sentiment": None,
                    "injection": InjectionVerdict(flagged=True, reasons=[sentiment.excluded_reason]),
                }
            story.item = story.item.model_copy(update=update)
        return [merged.touched[i] for i in ids]

"""News items and per-source fetch state in `state.db`, so repeated discovery cycles are incremental.

Items are stored once per story (duplicates from other sources are folded into it as corroboration). Each source
keeps its conditional-GET validators and its health: last fetch, status, latency, counts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from discovery_mcp.models import NewsItem
from discovery_mcp.news.injection import detect
from discovery_mcp.news.normalise import title_words
from discovery_mcp.news.sources import FetchResult, Validators
from shared.state.store import Store, utc_now_iso

MergeT = TypeVar("MergeT")


def parse_item(raw: str) -> NewsItem:
    """A stored story. One stored before the reader-addressing check is checked now (on its stored plain text), and
    loses its sentiment if flagged, so no story escapes the check."""
    item = NewsItem.model_validate_json(raw)
    if item.injection is None:
        verdict = detect(item.untrusted_title, item.untrusted_summary)
        item = item.model_copy(update={"injection": verdict, **({"sentiment": None} if verdict.flagged else {})})
    return item


@dataclass(slots=True)
class StoredItem:
    item: NewsItem
    priority: int
    words: frozenset[str]


class NewsStore:
    def __init__(self, store: Store):
        self.store = store

    # --- sources ---------------------------------------------------------------------------------------------
    def validators(self, name: str) -> Validators | None:
        """ETag/Last-Modified of the last good fetch, with the address they belong to."""
        with self.store.transaction() as db:
            row = db.execute("SELECT etag, last_modified, state FROM news_sources WHERE name = ?", (name,)).fetchone()
        if row is None or not (row[0] or row[1]):
            return None
        return Validators(json.loads(row[2]).get("validators_url") or "", row[0], row[1])

    def record_fetch(self, result: FetchResult, new_items: int, duplicates: int, now_ms: int) -> None:
        with self.store.transaction() as db:
            row = db.execute("SELECT state FROM news_sources WHERE name = ?", (result.source,)).fetchone()
            state: dict[str, Any] = json.loads(row[0]) if row else {"fetches": 0, "failures": 0}
            failed = result.status == "error"
            state.update(
                url=result.url,
                last_fetch=utc_now_iso(now_ms),
                last_status=result.status,
                last_message=result.message,
                http_status=result.http_status,
                latency_ms=result.latency_ms,
                last_entries=len(result.entries),
                last_new_items=new_items,
                last_duplicates=duplicates,
                fetches=state.get("fetches", 0) + (result.status in ("ok", "not_modified", "error")),
                failures=state.get("failures", 0) + failed,
                consecutive_failures=state.get("consecutive_failures", 0) + 1 if failed else 0,
            )
            if result.status in ("ok", "not_modified"):
                etag, modified = result.etag, result.last_modified
                state["validators_url"] = result.url
            else:  # keep the validators of the last good fetch, tied to their own address
                old = db.execute(
                    "SELECT etag, last_modified FROM news_sources WHERE name = ?", (result.source,)
                ).fetchone()
                etag, modified = old if old else (None, None)
            db.execute(
                "INSERT INTO news_sources (name, etag, last_modified, state) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified, "
                "state = excluded.state",
                (result.source, etag, modified, json.dumps(state)),
            )

    def source_states(self) -> dict[str, dict[str, Any]]:
        with self.store.transaction() as db:
            rows = db.execute("SELECT name, state FROM news_sources").fetchall()
            counts = {
                source: (stored, flagged or 0)
                for source, stored, flagged in db.execute(
                    "SELECT source, COUNT(*), SUM(json_extract(item, '$.injection.flagged') = 1) FROM news_items "
                    "GROUP BY source"
                ).fetchall()
            }
        states = {name: json.loads(state) for name, state in rows}
        for name, state in states.items():
            state["items_stored"], state["items_flagged"] = counts.get(name, (0, 0))
        return states

    # --- items -----------------------------------------------------------------------------------------------
    @staticmethod
    def _stored(rows: list[tuple[str, int]]) -> list[StoredItem]:
        out = []
        for raw, priority in rows:
            item = parse_item(raw)
            out.append(StoredItem(item, priority, title_words(item.untrusted_title)))
        return out

    def merge_and_save(
        self,
        incoming: list[tuple[NewsItem, int]],
        fold: Callable[[list[StoredItem], dict[str, StoredItem]], MergeT],
        touched: Callable[[MergeT], list[StoredItem]],
        *,
        window_ms: int,
        now_ms: int,
        retention_ms: int,
    ) -> MergeT:
        """Read the stories the incoming items may duplicate, fold them in and write the result, in one exclusive
        transaction: two processes sharing state.db never store one story twice. Stories older than the
        retention are pruned."""
        with self.store.transaction() as db:
            db.execute("DELETE FROM news_items WHERE published_ms < ?", (now_ms - retention_ms,))
            oldest = min((i.published_ms for i, _ in incoming), default=now_ms)
            known = self._stored(
                db.execute(
                    "SELECT item, priority FROM news_items WHERE published_ms >= ? ORDER BY published_ms, id",
                    (oldest - window_ms,),
                ).fetchall()
            )
            by_id = {s.item.id: s for s in known}
            missing = [i.id for i, _ in incoming if i.id not in by_id]
            for chunk in range(0, len(missing), 500):  # same URL, published before the window
                ids = missing[chunk : chunk + 500]
                rows = db.execute(
                    f"SELECT item, priority FROM news_items WHERE id IN ({','.join('?' * len(ids))})", ids
                ).fetchall()
                by_id.update({s.item.id: s for s in self._stored(rows)})
            result = fold(known, by_id)
            self._write(db, touched(result), now_ms)
        return result

    def save(self, items: list[StoredItem], now_ms: int) -> None:
        if items:
            with self.store.transaction() as db:
                self._write(db, items, now_ms)

    @staticmethod
    def _write(db: sqlite3.Connection, items: list[StoredItem], now_ms: int) -> None:
        db.executemany(
            "INSERT INTO news_items (id, source, priority, url, title_key, published_ms, fetched_ms, item) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET source = excluded.source, "
            "priority = excluded.priority, url = excluded.url, title_key = excluded.title_key, "
            "published_ms = excluded.published_ms, item = excluded.item",
            [
                (
                    s.item.id,
                    s.item.source,
                    s.priority,
                    s.item.url,
                    " ".join(sorted(s.words)),
                    s.item.published_ms,
                    now_ms,
                    s.item.model_dump_json(),
                )
                for s in items
            ],
        )

    def query(
        self,
        *,
        since_ms: int,
        symbols: list[str] | None = None,
        sources: list[str] | None = None,
        limit: int = 50,
    ) -> list[NewsItem]:
        """Newest first. Symbol and source filters apply to the stored story (its kept copy or corroboration)."""
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT item FROM news_items WHERE published_ms >= ? ORDER BY published_ms DESC, id", (since_ms,)
            ).fetchall()
        out = []
        wanted_symbols, wanted_sources = set(symbols or ()), set(sources or ())
        for (raw,) in rows:
            item = parse_item(raw)
            if wanted_symbols and not wanted_symbols.intersection(item.symbols):
                continue
            if wanted_sources and not wanted_sources.intersection([item.source, *item.corroborating_sources]):
                continue
            out.append(item)
            if len(out) >= limit:
                break
        return out

"""News sources: fetch one configured source (RSS/Atom, CryptoPanic API, Reddit) and read its entries.

httpx fetches (timeouts, conditional GET with ETag/Last-Modified, a size limit); feedparser parses the bytes, never a
URL. A malformed feed, a refusal or a timeout is a result with a reason, never an exception: one bad source must not
stop the others. Sources with no free API (Reuters, X/Twitter, Telegram) report what a user must supply.
"""

from __future__ import annotations

import calendar
import io
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import anyio
import feedparser
import httpx

from shared.config.models import NewsSource
from shared.net.http import FetchRefused, parse_retry_after

Status = Literal["ok", "not_modified", "error", "no_connector", "needs_key", "idle", "disabled"]

CRYPTOPANIC_KEY_ENV = "CRYPTOPANIC_API_KEY"
_MEDIA_TYPE = re.compile(r"[\w.+-]{1,30}/[\w.+-]{1,40}")
FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"

# What a user must supply for sources that have no free connector.
NO_CONNECTOR_HELP = {
    "reuters": "Reuters has published no public RSS since 2020. Configure a licensed feed address (type 'rss') "
    "or a news API you subscribe to.",
    "twitter": "The X (Twitter) API needs a paid bearer token and no connector ships. Configure an RSS bridge you "
    "run (type 'rss') for the accounts you follow.",
    "telegram": "Telegram needs a bot token and channel ids and no connector ships. Configure an RSS bridge of the "
    "channels (type 'rss').",
}


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One entry as the source gave it: text still untrusted and unnormalised."""

    title: str
    summary: str
    url: str
    published_ms: int | None
    tags: tuple[str, ...] = ()  # asset codes the source itself attached (CryptoPanic currencies)


@dataclass(slots=True)
class FetchResult:
    source: str
    status: Status
    message: str | None = None
    http_status: int | None = None
    url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    latency_ms: float | None = None
    entries: list[RawEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Validators:
    """What the last successful fetch of this address returned, for a conditional GET."""

    url: str
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """How a cycle fetches its sources: the symbols it asks about, its limits, and where API keys are read."""

    crypto_symbols: Sequence[str] = ()  # CryptoPanic's `currencies`
    stock_symbols: Sequence[str] = ()  # per-ticker feeds' '{symbols}'
    timeout_s: float = 10.0
    max_bytes: int = 5_000_000
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)


def feed_address(name: str, source: NewsSource, stock_symbols: list[str]) -> str | None:
    """The address to fetch; per-ticker feeds ('{symbols}' in the URL) need stock tickers, else None."""
    url = source.url or ""
    if "{symbols}" in url:
        if not stock_symbols:
            return None
        return url.replace("{symbols}", quote(",".join(stock_symbols[:20]), safe=","))
    return url


async def fetch_source(
    client: httpx.AsyncClient,
    name: str,
    source: NewsSource,
    previous: Validators | None,
    options: FetchOptions = FetchOptions(),
) -> FetchResult:
    kind = source.type or "none"
    if kind == "none" or not source.url:
        help_text = NO_CONNECTOR_HELP.get(name, "Set its 'url' and 'type' (rss, cryptopanic or reddit).")
        return FetchResult(name, "no_connector", f"No connector configured for {name}. {help_text}")
    if kind == "cryptopanic":
        key = options.env.get(CRYPTOPANIC_KEY_ENV, "").strip()
        if not key:
            return FetchResult(
                name,
                "needs_key",
                f"{name} needs {CRYPTOPANIC_KEY_ENV} (a free developer key from cryptopanic.com/developers/api) "
                "in the environment of the discovery server.",
            )
        return await _fetch_cryptopanic(client, name, source.url, key, options)
    url = feed_address(name, source, list(options.stock_symbols))
    if url is None:
        return FetchResult(name, "idle", "Per-ticker feed: fetched only when stock symbols are asked for.")
    return await _fetch_feed(client, name, kind, url, previous, options)


async def _get(
    client: httpx.AsyncClient,
    url: str,
    params: dict[str, str] | None,
    headers: dict[str, str],
    options: FetchOptions,
) -> tuple[httpx.Response, bytes]:
    """GET with an overall deadline and a size limit enforced while reading (a huge or endless body is cut)."""
    timeout_s, max_bytes = options.timeout_s, options.max_bytes
    with anyio.fail_after(timeout_s):
        async with client.stream(
            "GET", url, params=params, headers=headers, timeout=httpx.Timeout(timeout_s)
        ) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _TooLarge(int(declared))
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise _TooLarge(size)
                chunks.append(chunk)
            return response, b"".join(chunks)


class _TooLarge(Exception):
    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


def _too_large(name: str, options: FetchOptions, e: _TooLarge) -> str:
    return f"{name} answered more than {options.max_bytes:,} bytes ({e.size:,}); skipped."


async def _fetch_feed(
    client: httpx.AsyncClient,
    name: str,
    kind: str,
    url: str,
    previous: Validators | None,
    options: FetchOptions,
) -> FetchResult:
    headers = {"Accept": FEED_ACCEPT}
    if previous is not None and previous.url == url:
        if previous.etag:
            headers["If-None-Match"] = previous.etag
        if previous.last_modified:
            headers["If-Modified-Since"] = previous.last_modified
    started = time.perf_counter()
    try:
        response, body = await _get(client, url, None, headers, options)
    except TimeoutError:
        return FetchResult(name, "error", f"{name} did not answer within {options.timeout_s:g} s.", url=url)
    except _TooLarge as e:
        return FetchResult(name, "error", _too_large(name, options, e))
    except FetchRefused as e:
        return FetchResult(name, "error", f"{name}: {e}", url=url)
    except httpx.HTTPError as e:
        return FetchResult(name, "error", f"{name} could not be reached ({type(e).__name__}).", url=url)
    latency = round((time.perf_counter() - started) * 1000, 1)
    result = FetchResult(name, "ok", http_status=response.status_code, url=url, latency_ms=latency)
    if response.status_code == 304:
        result.status, result.message = "not_modified", "Not modified since the last fetch."
        result.etag, result.last_modified = (
            previous.etag if previous else None,
            (previous.last_modified if previous else None),
        )
        return result
    if response.status_code >= 400:
        result.status, result.message = "error", _refusal(name, kind, response)
        return result
    result.etag = response.headers.get("ETag")
    result.last_modified = response.headers.get("Last-Modified")
    parsed = await anyio.to_thread.run_sync(_parse_feed, body, response.headers.get("Content-Type", ""))
    if isinstance(parsed, str):
        result.status, result.message = "error", f"{name}: {parsed}; skipped."
        result.etag = result.last_modified = None  # refetch in full next time
        return result
    entries, warning = parsed
    result.entries = entries
    if warning:
        result.warnings.append(f"{name}: {warning}")
    return result


def _refusal(name: str, kind: str, response: httpx.Response) -> str:
    status = response.status_code
    wait = parse_retry_after(response.headers.get("Retry-After"))
    after = f" It asks to wait {wait:.0f} s." if wait is not None else ""
    if kind == "reddit" and status in (401, 403, 429):
        return (
            f"Reddit refused the anonymous request (HTTP {status}).{after} Reddit often refuses clients without an "
            "account: use an OAuth app's feed address, or disable the reddit source."
        )
    if status == 429:
        return f"{name} is rate limiting (HTTP 429).{after} Fetch less often."
    if status in (401, 403):
        return f"{name} refused access (HTTP {status}); the address may need a subscription or a key."
    if status == 404:
        return f"{name} has no feed at this address (HTTP 404); check its url in news_priorities."
    return f"{name} answered HTTP {status}.{after}"


def _struct_ms(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return calendar.timegm(value) * 1000  # feedparser gives UTC struct_time
    except (TypeError, ValueError, OverflowError):
        return None


def _parse_feed(body: bytes, content_type: str) -> tuple[list[RawEntry], str | None] | str:
    """Entries of an RSS/Atom document, or the reason it is not one."""
    # a file-like object: given bytes, feedparser first tries them as a local file path (a feed could name one)
    doc = feedparser.parse(io.BytesIO(body), response_headers={"content-type": content_type} if content_type else None)
    problem = doc.get("bozo_exception") if doc.get("bozo") else None
    entries = []
    for e in doc.entries:
        if not (e.get("title") or e.get("link")):
            continue  # a fragment the lenient parser salvaged from broken markup
        summary = e.get("summary") or ""
        if not summary and e.get("content"):
            summary = e.content[0].get("value", "")
        entries.append(
            RawEntry(
                title=e.get("title") or "",
                summary=summary,
                url=e.get("link") or "",
                published_ms=_struct_ms(e.get("published_parsed")) or _struct_ms(e.get("updated_parsed")),
            )
        )
    if not entries:
        if not doc.get("version"):
            media = content_type.split(";")[0].strip()
            kind = media if _MEDIA_TYPE.fullmatch(media) else "unrecognised content type"  # header text is untrusted
            return f"not an RSS or Atom feed ({kind}: an HTML page or an error page?)"
        if problem is not None:
            return f"malformed feed ({type(problem).__name__}: {str(problem)[:120]})"
        return [], None
    warning = None
    if problem is not None:
        warning = f"feed is not well-formed ({type(problem).__name__}); {len(entries)} entries read leniently"
    return entries, warning


async def _fetch_cryptopanic(
    client: httpx.AsyncClient,
    name: str,
    url: str,
    key: str,
    options: FetchOptions,
) -> FetchResult:
    params = {"auth_token": key, "public": "true", "kind": "news"}
    if options.crypto_symbols:
        params["currencies"] = ",".join(list(options.crypto_symbols)[:50])
    started = time.perf_counter()
    try:
        response, body = await _get(client, url, params, {"Accept": "application/json"}, options)
    except TimeoutError:
        return FetchResult(name, "error", f"{name} did not answer within {options.timeout_s:g} s.")
    except _TooLarge as e:
        return FetchResult(name, "error", _too_large(name, options, e))
    except FetchRefused as e:  # its message shows addresses without their query, so never the key
        return FetchResult(name, "error", f"{name}: {e}")
    except httpx.HTTPError as e:  # the message of an httpx error may hold the URL with the key: not shown
        return FetchResult(name, "error", f"{name} could not be reached ({type(e).__name__}).")
    latency = round((time.perf_counter() - started) * 1000, 1)
    result = FetchResult(name, "ok", http_status=response.status_code, url=url, latency_ms=latency)
    if response.status_code in (401, 403):
        result.status = "error"
        result.message = f"CryptoPanic refused the key in {CRYPTOPANIC_KEY_ENV} (HTTP {response.status_code})."
        return result
    if response.status_code >= 400:
        result.status, result.message = "error", _refusal(name, "cryptopanic", response)
        return result
    try:
        entries = parse_cryptopanic(json.loads(body))
    except (ValueError, TypeError, KeyError) as e:
        result.status, result.message = "error", f"{name} answered something unexpected ({e}); skipped."
        return result
    result.entries = entries
    return result


def parse_cryptopanic(doc: Any) -> list[RawEntry]:
    """Posts of a CryptoPanic `posts` answer: {"results": [{title, description, published_at, url|original_url,
    currencies|instruments: [{code}]}]}."""
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise ValueError("no 'results' list")
    out = []
    for post in doc["results"]:
        if not isinstance(post, dict) or not isinstance(post.get("title"), str):
            continue
        tags = tuple(
            str(c["code"]).upper()
            for c in (post.get("currencies") or post.get("instruments") or [])
            if isinstance(c, dict) and isinstance(c.get("code"), str)
        )
        link = post.get("original_url") or post.get("url")
        if not link and post.get("id") and post.get("slug"):
            link = f"https://cryptopanic.com/news/{post['id']}/{post['slug']}"
        out.append(
            RawEntry(
                title=post["title"],
                summary=post.get("description") or "",
                url=link or "",
                published_ms=_iso_ms(post.get("published_at")),
                tags=tags,
            )
        )
    return out


def _iso_ms(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:  # CryptoPanic's times are UTC
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return int(parsed.timestamp() * 1000)
    except ValueError:
        return None

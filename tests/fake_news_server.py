"""A local HTTP server on 127.0.0.1 serving news feeds and a CryptoPanic-shaped API, for tests, the demo's checks
and benchmarks. Each path has a body, a content type, optional ETag/Last-Modified validators (answered with 304 when
the client sends them back), a status and a delay. It records every request and stops by itself after
`lifetime_s`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlparse

from shared.net.local_http import LocalHttpServer


@dataclass
class Route:
    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    path: str
    query: str
    headers: dict[str, str]


class FakeNews(LocalHttpServer):
    def __init__(self, routes: dict[str, Route] | None = None, lifetime_s: float = 120.0):
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[Seen] = []
        news = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                url = urlparse(self.path)
                news.requests.append(Seen(url.path, url.query, {k.lower(): v for k, v in self.headers.items()}))
                route = news.routes.get(url.path)
                if route is None:
                    self._send(404, b"<html><body>not found</body></html>", "text/html", {})
                    return
                if route.delay_s:
                    time.sleep(route.delay_s)
                validators = {}
                if route.etag:
                    validators["ETag"] = route.etag
                if route.last_modified:
                    validators["Last-Modified"] = route.last_modified
                matches = (route.etag and self.headers.get("If-None-Match") == route.etag) or (
                    route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified
                )
                if matches and route.status == 200:
                    self._send(304, b"", None, validators)
                    return
                self._send(route.status, route.body, route.content_type, {**validators, **route.headers})

            def _send(self, status: int, body: bytes, content_type: str | None, headers: dict[str, str]) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

        self._serve(Handler, lifetime_s, poll_interval=0.02)  # stopping waits up to one poll: keep tests quick

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]


def rss(title: str, items: list[tuple[str, str, str, str]]) -> bytes:
    """An RSS 2.0 document; items are (title, link, RFC 822 date, description), text escaped by the caller."""
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><pubDate>{d}</pubDate><description>{desc}</description></item>"
        for t, link, d, desc in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://example.com/</link><description>{title}</description>{body}"
        "</channel></rss>"
    ).encode()


def atom(title: str, entries: list[tuple[str, str, str, str]]) -> bytes:
    """An Atom 1.0 document; entries are (title, link, RFC 3339 updated, HTML content)."""
    body = "".join(
        f'<entry><title>{t}</title><link href="{link}"/><id>{link}</id><updated>{u}</updated>'
        f'<content type="html">{c}</content></entry>'
        for t, link, u, c in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{title}</title><id>urn:test</id><updated>2025-12-12T00:00:00Z</updated>{body}</feed>"
    ).encode()

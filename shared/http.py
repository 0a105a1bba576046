"""The one way to reach the network: an httpx client factory and GET-with-retries that honours Retry-After.

Tests inject `transport=httpx.MockTransport(...)` and a fake `sleep`, so nothing touches the network or waits.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx

from shared.errors import TradingMcpError

USER_AGENT = "trading-mcp/0.1 (MCP servers for trading assistants)"
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
RETRY_STATUS = {418, 429, 500, 502, 503, 504}
Sleep = Callable[[float], Awaitable[None]]


class HttpError(TradingMcpError):
    """An HTTP request failed for good: says which host, what status, and what the server said."""

    def __init__(self, message: str, status: int | None = None, retry_after_s: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


def make_client(
    base_url: str = "", *, transport: httpx.AsyncBaseTransport | None = None, timeout: httpx.Timeout | None = None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        transport=transport,
        timeout=timeout or DEFAULT_TIMEOUT,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=True,
    )


def parse_retry_after(value: str | None) -> float | None:
    """A Retry-After value as seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After of a response as seconds (it may be a number of seconds or an HTTP date)."""
    return parse_retry_after(response.headers.get("Retry-After"))


async def get_json(
    client: httpx.AsyncClient,
    url: str,
    params: dict[str, Any] | None = None,
    *,
    max_retries: int = 4,
    max_wait_s: float = 60.0,
    sleep: Sleep = anyio.sleep,
) -> tuple[Any, httpx.Response]:
    """GET and decode JSON. Retries transport errors, 5xx and rate limits (waiting Retry-After when given, else
    exponential backoff); a wait longer than `max_wait_s` is not slept but raised, with the wait in the error."""
    host = client.base_url.host or httpx.URL(url).host
    for attempt in range(max_retries + 1):
        try:
            response = await client.get(url, params=params)
        except httpx.TransportError as e:
            if attempt == max_retries:
                raise HttpError(f"{host} could not be reached ({type(e).__name__}: {e}).") from None
            await sleep(min(max_wait_s, 0.5 * 2**attempt))
            continue
        if response.status_code in RETRY_STATUS and attempt < max_retries:
            wait = retry_after_seconds(response)
            wait = 0.5 * 2**attempt if wait is None else wait
            if wait > max_wait_s:
                raise HttpError(
                    f"{host} asks to wait {wait:.0f} s (HTTP {response.status_code}); try again later.",
                    response.status_code,
                    wait,
                )
            await sleep(wait)
            continue
        if response.status_code >= 400:
            raise HttpError(
                f"{host} answered HTTP {response.status_code} for {response.request.url.path}: {response.text[:300]}",
                response.status_code,
                retry_after_seconds(response),
            )
        try:
            return response.json(), response
        except ValueError:
            raise HttpError(f"{host} answered with something that is not JSON: {response.text[:200]!r}") from None
    raise AssertionError("unreachable")

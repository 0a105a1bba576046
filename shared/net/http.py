"""The one way to reach the network: an httpx client factory and GET-with-retries that honours Retry-After.

Every client it makes fetches only http(s) addresses and follows at most MAX_REDIRECTS redirects, each judged by
where it leads (hand-written because httpx has no address policy for redirects). The rule: a configured address is
fetched whatever it is (the person chose it), but a redirect may reach a non-public address (loopback, private,
link-local) only from an address of that same kind, so a feed on 127.0.0.1 may move within loopback and one on the
LAN within private networks, while a public server can never bounce a fetch inwards. Cloud metadata names and
addresses, unspecified, multicast and reserved addresses are never redirect targets. Hostnames are judged by what
they resolve to; the connection resolves again, so a name whose DNS answer changes in between is not covered.

Tests inject `transport=httpx.MockTransport(...)`, a fake `resolver` and a fake `sleep`: nothing touches the network.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx

from shared.errors import TradingMcpError
from shared.net.addresses import METADATA, PUBLIC, Resolver, host_kinds, system_resolver

USER_AGENT = "trading-mcp/0.1 (MCP servers for trading assistants)"
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
RETRY_STATUS = {418, 429, 500, 502, 503, 504}
MAX_REDIRECTS = 3
SCHEMES = ("http", "https")
NEVER_REDIRECTED_TO = frozenset({METADATA, "unspecified", "multicast", "reserved"})
Sleep = Callable[[float], Awaitable[None]]


class HttpError(TradingMcpError):
    """An HTTP request failed for good: says which host, what status, and what the server said."""

    def __init__(self, message: str, status: int | None = None, retry_after_s: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


class FetchRefused(httpx.RequestError):
    """A request not sent: its address is not http(s), or a redirect leads where the address policy forbids."""


def shown(url: httpx.URL) -> str:
    """An address for a message: without its query or credentials (a key may travel in either)."""
    return str(url.copy_with(query=None, fragment=None, userinfo=b""))


class GuardedClient(httpx.AsyncClient):
    """An httpx client whose every request (get, stream, send) goes through the scheme check and the redirect
    policy of this module; redirects are followed here, one judged hop at a time."""

    def __init__(self, *, resolver: Resolver, max_redirects: int, **kwargs: Any):
        super().__init__(follow_redirects=True, **kwargs)
        self._resolver, self._redirect_limit = resolver, max_redirects

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if request.url.scheme not in SCHEMES:
            raise FetchRefused(
                f"Refused to fetch {shown(request.url)}: only http and https addresses are fetched. "
                "Configure an http(s) address.",
                request=request,
            )
        follow = kwargs.pop("follow_redirects", None)
        follow = follow if isinstance(follow, bool) else self.follow_redirects
        history: list[httpx.Response] = []
        while True:
            response = await super().send(request, follow_redirects=False, **kwargs)
            target = response.next_request
            if not follow or target is None:
                response.history = history
                return response
            await response.aclose()
            history.append(response)
            reason = await self._refusal(request.url, target.url, len(history))
            if reason:
                raise FetchRefused(
                    f"Refused redirect {len(history)} from {shown(request.url)} to {shown(target.url)}: {reason}",
                    request=target,
                )
            request = target

    async def _refusal(self, source: httpx.URL, target: httpx.URL, hop: int) -> str | None:
        """Why the redirect number `hop` from source to target must not be followed, or None."""
        if hop > self._redirect_limit:
            return f"more than {self._redirect_limit} redirects. Configure the final address of the resource instead."
        if target.scheme not in SCHEMES:
            return f"only http and https addresses are fetched, not {target.scheme}:. The server's redirect is refused."
        try:
            kinds = await host_kinds(target.host, self._resolver)
        except OSError as e:
            return f"its host {target.host} could not be resolved ({e}). Check the configured address."
        inward = {address: kind for address, kind in kinds.items() if kind != PUBLIC}
        if not inward:
            return None
        never = {a: k for a, k in inward.items() if k in NEVER_REDIRECTED_TO}
        if never:
            address, kind = next(iter(never.items()))
            why = f"it leads to a {kind} address ({address}), which is never a redirect target"
        else:
            try:
                source_kinds = set((await host_kinds(source.host, self._resolver)).values())
            except OSError:
                source_kinds = set()
            outside = {a: k for a, k in inward.items() if k not in source_kinds}
            if not outside:
                return None
            address, kind = next(iter(outside.items()))
            why = f"it leads to a {kind} address ({address}), and only a {kind} address may redirect there"
        return f"{why}. If the resource really is there, configure its address directly."


def make_client(
    base_url: str = "",
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: httpx.Timeout | None = None,
    resolver: Resolver = system_resolver,
    max_redirects: int = MAX_REDIRECTS,
) -> httpx.AsyncClient:
    return GuardedClient(
        resolver=resolver,
        max_redirects=max_redirects,
        base_url=base_url,
        transport=transport,
        timeout=timeout or DEFAULT_TIMEOUT,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
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
        except FetchRefused as e:
            raise HttpError(str(e)) from None
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

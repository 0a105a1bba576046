"""Talking to providers: one shared httpx client, per-provider concurrency limits, timeouts, retries with backoff,
circuit breakers and health counters. Used by both quotes (prices) and ohlcv (candles)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import anyio
import httpx

from asset_price_mcp.providers.base import ProviderError
from shared.net.http import FetchRefused

Clock = Callable[[], float]


@dataclass
class Breaker:
    """Opens after `threshold` failures in a row; after `cooldown_s` (or the provider's Retry-After, if longer) one
    trial call is let through (half-open); its success closes the breaker, its failure opens it again."""

    threshold: int = 3
    cooldown_s: float = 30.0
    failures: int = 0
    opened_at: float | None = None
    open_for_s: float = 0.0
    trial_running: bool = False

    def state(self, now: float) -> str:
        if self.opened_at is None:
            return "closed"
        return "open" if now - self.opened_at < self.open_for_s else "half_open"

    def allow(self, now: float) -> bool:
        state = self.state(now)
        if state == "closed":
            return True
        if state == "half_open" and not self.trial_running:
            self.trial_running = True
            return True
        return False

    def success(self) -> None:
        self.failures, self.opened_at, self.trial_running = 0, None, False

    def failure(self, now: float, retry_after_s: float | None = None) -> None:
        self.failures += 1
        self.trial_running = False
        if self.failures >= self.threshold or retry_after_s is not None or self.opened_at is not None:
            self.opened_at = now
            self.open_for_s = max(self.cooldown_s, retry_after_s or 0.0)


@dataclass
class Health:
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=50))
    successes: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None

    def ok(self, latency_ms: float) -> None:
        self.successes += 1
        self.latencies_ms.append(latency_ms)

    def failed(self, kind: str, message: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.last_error = message


# --- providers as configured -----------------------------------------------------------------------------------
@dataclass
class Provider:
    module: ModuleType
    base_url: str
    timeout_s: float = 5.0
    concurrency: int = 4
    retries: int = 1
    breaker: Breaker = field(default_factory=Breaker)
    health: Health = field(default_factory=Health)
    limiter: anyio.CapacityLimiter | None = None

    @property
    def name(self) -> str:
        return self.module.NAME

    def serves(self, symbol: str) -> bool:
        local = getattr(self.module, "serves", None)  # in-process providers (replay) know their own symbols
        return local(self.base_url, symbol) if local else self.module.provider_symbol(symbol) is not None


class ProviderClient:
    def __init__(self, providers: list[Provider], client: httpx.AsyncClient, clock: Clock, backoff_s: float = 0.2):
        self.providers, self.client, self.clock, self.backoff_s = providers, client, clock, backoff_s
        for p in providers:
            p.limiter = anyio.CapacityLimiter(p.concurrency)

    async def send(self, provider: Provider, request: httpx.Request) -> tuple[int, httpx.Headers, bytes]:
        """One request with the provider's limit, timeout and retries (on 5xx, timeouts and connection errors)."""
        assert provider.limiter is not None
        last: ProviderError | None = None
        for attempt in range(provider.retries + 1):
            if attempt:
                await anyio.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                async with provider.limiter:
                    with anyio.fail_after(provider.timeout_s):
                        response = await self.client.send(request)
                        body = await response.aread()
            except TimeoutError:
                last = ProviderError(provider.name, "unavailable", f"no answer within {provider.timeout_s:g} s")
                continue
            except FetchRefused as e:  # the address policy will refuse a retry just the same
                raise ProviderError(provider.name, "unavailable", str(e)) from None
            except httpx.HTTPError as e:
                last = ProviderError(provider.name, "unavailable", f"{type(e).__name__}: {e}")
                continue
            if response.status_code >= 500:
                last = ProviderError(provider.name, "unavailable", f"HTTP {response.status_code}")
                continue
            return response.status_code, response.headers, body
        assert last is not None
        raise last

    async def call(self, provider: Provider, request_and_parse: Callable[[], Any]) -> Any:
        """Guarded by the breaker; success and failure recorded in the provider's health."""
        now = self.clock()
        if not provider.breaker.allow(now):
            raise ProviderError(
                provider.name, "unavailable", f"circuit open after repeated failures ({provider.health.last_error})"
            )
        started = time.perf_counter()
        try:
            result = await request_and_parse()
        except ProviderError as e:
            provider.health.failed(e.kind, e.message)
            if e.kind != "not_found":  # an unknown symbol says nothing about the provider's health
                provider.breaker.failure(self.clock(), e.retry_after_s)
            raise
        provider.breaker.success()
        provider.health.ok((time.perf_counter() - started) * 1000)
        return result

    def health(self) -> list[dict[str, Any]]:
        now = self.clock()
        out = []
        for p in self.providers:
            lat = sorted(p.health.latencies_ms)
            out.append(
                {
                    "provider": p.name,
                    "base_url": p.base_url,
                    "breaker": p.breaker.state(now),
                    "successes": p.health.successes,
                    "errors": dict(p.health.errors),
                    "last_error": p.health.last_error,
                    "latency_ms_p50": lat[len(lat) // 2] if lat else None,
                    "latency_ms_max": lat[-1] if lat else None,
                }
            )
        return out

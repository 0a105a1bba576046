"""The edge of streamable HTTP: Host and Origin allowlists, the bearer token and `/health`, all checked before a
request reaches the MCP session layer.

Order of the checks: Host (421), Origin (403), `GET /health` answered without a token, the bearer token (401), then
the body size (413 above TRADING_MCP_MAX_BODY_BYTES, default 1 MiB: a Content-Length above it, or a streamed body
as soon as it crosses it), all before the SDK parses a byte.
The SDK's own DNS-rebinding check (`TransportSecuritySettings`, the same 421/403) stays on behind this one for every
bind address, not only loopback as FastMCP would do by default. Written here because the SDK's bearer auth needs
OAuth issuer settings, and its Host/Origin check runs only inside the /mcp transport, after session routing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import TradingMcpError

log = logging.getLogger("trading_mcp.http")

TOKEN_ENV = "TRADING_MCP_TOKEN"
HOSTS_ENV = "TRADING_MCP_ALLOWED_HOSTS"
ORIGINS_ENV = "TRADING_MCP_ALLOWED_ORIGINS"
MIN_TOKEN_CHARS = 16
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD = frozenset({"0.0.0.0", "::"})
MAX_BODY_ENV = "TRADING_MCP_MAX_BODY_BYTES"
DEFAULT_MAX_BODY_BYTES = 1_048_576  # 1 MiB: the largest legitimate call (score_sentiment, 100 x 2,000 chars) is ~250 KB
HEALTH_PATH = "/health"
MAKE_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class HttpSecurityError(TradingMcpError):
    """The HTTP settings are unsafe or malformed; the server does not start. The message says what to set."""


@dataclass(frozen=True)
class HttpPolicy:
    """What the HTTP edge lets through. The token is kept out of `repr` so it cannot reach a log line."""

    server_name: str
    allowed_hosts: frozenset[str]
    allowed_origins: frozenset[str]
    token: str | None = field(default=None, repr=False)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def sdk_settings(self) -> TransportSecuritySettings:
        """The same allowlists for the SDK's own check, which then runs behind ours on every host."""
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=sorted(self.allowed_hosts),
            allowed_origins=sorted(self.allowed_origins),
        )


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _env_list(env: Mapping[str, str], name: str) -> list[str]:
    return [item.strip().lower().rstrip("/") for item in env.get(name, "").split(",") if item.strip()]


def _check_token(token: str | None, host: str) -> str | None:
    """The token, or None when it is not needed; raises with a remedy when it is missing or too weak."""
    if not token:
        if host in LOOPBACK:
            return None
        raise HttpSecurityError(
            f"binding {host} (not loopback) needs a bearer token: set {TOKEN_ENV} to a random string of at least "
            f"{MIN_TOKEN_CHARS} characters (e.g. from `{MAKE_TOKEN}`), or bind 127.0.0.1."
        )
    if len(token) < MIN_TOKEN_CHARS:
        raise HttpSecurityError(
            f"{TOKEN_ENV} is {len(token)} characters long; use at least {MIN_TOKEN_CHARS} (e.g. from `{MAKE_TOKEN}`)."
        )
    if not all("!" <= ch <= "~" for ch in token):
        raise HttpSecurityError(
            f"{TOKEN_ENV} may contain only printable ASCII without spaces, as it is sent in an HTTP header; "
            f"generate one with `{MAKE_TOKEN}`."
        )
    return token


def http_policy(server_name: str, host: str, port: int, env: Mapping[str, str] | None = None) -> HttpPolicy:
    """The policy for a server bound to host:port, from TRADING_MCP_TOKEN and the two allowlist variables.

    Allowed hosts: host:port itself, its localhost / 127.0.0.1 / [::1] variants for loopback and wildcard binds, and
    TRADING_MCP_ALLOWED_HOSTS. Allowed origins: http:// of each of those, and TRADING_MCP_ALLOWED_ORIGINS."""
    env = os.environ if env is None else env
    host = host.strip().lower()
    token = _check_token(env.get(TOKEN_ENV) or None, host)
    extra_origins = _env_list(env, ORIGINS_ENV)
    bad = [o for o in extra_origins if not o.startswith(("http://", "https://")) or "/" in o.split("://", 1)[1]]
    if bad:
        raise HttpSecurityError(
            f"{ORIGINS_ENV} has entries that are not origins: {', '.join(bad)}. Write scheme://host[:port] "
            "with no path, e.g. http://myhost.lan:8002, comma-separated."
        )
    extra_hosts = _env_list(env, HOSTS_ENV)
    bad = [h for h in extra_hosts if "/" in h or "@" in h]
    if bad:
        raise HttpSecurityError(
            f"{HOSTS_ENV} has entries that are not host[:port]: {', '.join(bad)}. Write them as clients send the "
            "Host header, e.g. myhost.lan:8002, comma-separated."
        )
    names = sorted(LOOPBACK) if host in LOOPBACK | WILDCARD else []
    local = {_authority(name, port) for name in [host, *names]}
    if host in WILDCARD and not extra_hosts:
        log.warning(
            "bound to %s: only local clients pass the Host check until %s lists this machine's names", host, HOSTS_ENV
        )
    return HttpPolicy(
        server_name=server_name,
        allowed_hosts=frozenset(local | set(extra_hosts)),
        allowed_origins=frozenset({f"http://{a}" for a in local} | set(extra_origins)),
        token=token,
        max_body_bytes=_max_body(env),
    )


def _max_body(env: Mapping[str, str]) -> int:
    raw = env.get(MAX_BODY_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BODY_BYTES
    if not raw.isdigit() or int(raw) < 1024:
        raise HttpSecurityError(f"{MAX_BODY_ENV} must be a whole number of bytes, at least 1024 (got {raw!r}).")
    return int(raw)


def _too_large(limit: int) -> Response:
    return PlainTextResponse(
        f"Request body too large: the limit is {limit:,} bytes (set by {MAX_BODY_ENV}). Send smaller arguments.",
        status_code=413,
    )


def _unauthorized(error: str, description: str) -> Response:
    challenge = 'Bearer realm="trading-mcp"' + (f', error="{error}"' if error else "")
    body = {"error": error or "unauthorized", "error_description": description}
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": challenge})


class HttpGuard:
    """Pure ASGI middleware (not BaseHTTPMiddleware, which would buffer the SSE streams of streamable HTTP)."""

    def __init__(self, app: ASGIApp, policy: HttpPolicy):
        self.app = app
        self.policy = policy
        # Digests of equal length: compare_digest then does not even reveal the token's length.
        self._token = hashlib.sha256(policy.token.encode()).digest() if policy.token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websocket endpoints exist; refuse before anything else sees it
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = Headers(scope=scope)
        refusal = self.refusal(scope, headers)
        if refusal is None:
            refusal, receive = await self._bounded_body(headers, receive)
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await refusal(scope, receive, send)

    async def _bounded_body(self, headers: Headers, receive: Receive) -> tuple[Response | None, Receive]:
        """Read the body up to the limit before the SDK parses it: 413 on a Content-Length above it, or as soon as
        a streamed (chunked) body crosses it. The SDK reads whole bodies anyway, so holding one here costs nothing.
        Returns a receive that replays the body, then hands on to the client's (disconnects)."""
        limit = self.policy.max_body_bytes
        length = headers.get("content-length", "")
        if length.strip().isdigit() and int(length) > limit:
            return _too_large(limit), receive
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away mid-body: nothing to serve
                return PlainTextResponse("Request body incomplete.", status_code=400), receive
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                log.warning("refused a request body above %s bytes", limit)
                return _too_large(limit), receive
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        return None, replay

    def refusal(self, scope: Scope, headers: Headers) -> Response | None:
        """The response that ends the request here, or None to let it through."""
        path, method = scope.get("path", ""), scope.get("method", "")
        if headers.get("host", "").lower() not in self.policy.allowed_hosts:
            log.warning("refused %s %r: Host not allowed", method, path)
            return PlainTextResponse(
                f"Misdirected request: this Host is not served here (the server adds names with {HOSTS_ENV}).",
                status_code=421,
            )
        origin = headers.get("origin")
        if origin is not None and origin.lower().rstrip("/") not in self.policy.allowed_origins:
            log.warning("refused %s %r: Origin not allowed", method, path)
            return PlainTextResponse(
                f"Forbidden: this Origin is not allowed (the server adds origins with {ORIGINS_ENV}).", status_code=403
            )
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            return JSONResponse({"status": "ok", "server": self.policy.server_name})
        if self._token is None:
            return None
        return self._check_bearer(headers.get("authorization"), method, path)

    def _check_bearer(self, authorization: str | None, method: str, path: str) -> Response | None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            log.warning("refused %s %r: no bearer token", method, path)
            return _unauthorized("", f"send the header 'Authorization: Bearer <token>' with the server's {TOKEN_ENV}.")
        # Headers are decoded as latin-1, so this round-trips every byte the client sent.
        if not hmac.compare_digest(hashlib.sha256(given.strip().encode("latin-1")).digest(), self._token or b""):
            log.warning("refused %s %r: wrong bearer token", method, path)
            return _unauthorized("invalid_token", f"the bearer token does not match the server's {TOKEN_ENV}.")
        return None


def secure(app: Starlette, policy: HttpPolicy) -> Starlette:
    """Put the guard in front of a Starlette app (inside Starlette's error middleware: no stack traces leak)."""
    app.add_middleware(HttpGuard, policy=policy)
    return app

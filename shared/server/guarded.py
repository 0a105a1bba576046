"""`GuardedServer`: a FastMCP whose tools all come from a ToolRegistry, and whose resource reads and prompt gets
pass the same guard (capability read) and leave the same journal row as a tool call.

Every resources/read and prompts/get of FastMCP goes through `read_resource` / `get_prompt` (its protocol handlers
are these methods), so however a resource or prompt was registered, it cannot skip the guard.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from mcp import types
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ResourceError, ToolError
from mcp.types import GetPromptResult
from starlette.applications import Starlette

from shared.errors import ConfigError, TradingMcpError
from shared.policy.guard import CallRecord
from shared.redact import redact, redact_text
from shared.server.calls import READ_ERRORS, Call, Ending, deny, failure_of, finish, journal_row, policy_decision
from shared.server.deps import ServerDeps
from shared.server.http_edge import http_policy, secure
from shared.server.limits import arguments_problem
from shared.server.protocol import MAX_NAME, RESOURCE_NOT_FOUND, install_gates, protocol_error
from shared.server.schema import digest

T = TypeVar("T")
REGISTER_THROUGH = "Register tools through shared.server.registry.ToolRegistry so the guard and journal apply."


def _root(e: BaseException) -> BaseException:
    """FastMCP wraps what a resource or prompt raised in ValueError/ResourceError: the original exception."""
    while e.__context__ is not None and isinstance(e, ValueError | ResourceError):
        e = e.__context__
    return e


def _contents_digest(contents: list[Any]) -> str:
    return digest([c.content for c in contents])  # bytes as their repr: a digest, not a copy


def _prompt_digest(result: GetPromptResult) -> str:
    return digest(result.model_dump(mode="json"))


class GuardedServer(FastMCP):
    """FastMCP whose tools all come from a ToolRegistry; unknown tool names are journaled too."""

    def __init__(self, *args: Any, deps: ServerDeps, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.deps = deps
        install_gates(self, self._unknown_tool)

    def add_tool(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(REGISTER_THROUGH)

    def tool(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(REGISTER_THROUGH)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        if self._tool_manager.get_tool(name) is None:  # a direct call; over MCP the protocol gate answers first
            raise ToolError(self._unknown_tool(name, arguments))
        return await super().call_tool(name, arguments)

    def _unknown_tool(self, name: str, arguments: dict[str, Any]) -> str:
        """Journal a call of a tool that does not exist; the message for the model."""
        known = sorted(t.name for t in self._tool_manager.list_tools())
        name = redact_text(name[:MAX_NAME])
        message = f"Unknown tool '{name}' on {self.deps.server_name}. Tools here: {', '.join(known)}."
        problem = arguments_problem(arguments, name)
        record = CallRecord(self.deps.server_name, name, "")
        args = {"refused": problem} if problem else redact(arguments)
        self.deps.store.journal_insert(journal_row(record, args, Ending("invalid", "unknown_tool", error=message)))
        return message

    async def read_resource(self, uri: Any) -> Any:
        """As FastMCP, guarded and journaled as `resource:<name>`; a template whose object does not exist
        (backtests://nope) is 'resource not found'."""
        name, params = self._resource_of(str(uri))

        async def read() -> list[Any]:
            return list(await super(GuardedServer, self).read_resource(uri))

        try:
            return await self._guarded(f"resource:{name}", {"uri": str(uri), **params}, read, _contents_digest)
        except (ValueError, ResourceError) as e:
            root = _root(e)
            if isinstance(root, TradingMcpError | ValueError) and not isinstance(root, ConfigError):
                raise protocol_error(RESOURCE_NOT_FOUND, redact_text(str(root))) from None
            raise

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None) -> GetPromptResult:
        """As FastMCP, guarded and journaled as `prompt:<name>`."""

        async def render() -> GetPromptResult:
            return await super(GuardedServer, self).get_prompt(name, arguments)

        return await self._guarded(f"prompt:{name[:MAX_NAME]}", dict(arguments or {}), render, _prompt_digest)

    def _resource_of(self, uri: str) -> tuple[str, dict[str, Any]]:
        """The name of the resource or template serving `uri`, and the template's parameters."""
        manager = self._resource_manager
        for resource in manager.list_resources():
            if str(resource.uri) == uri:
                return resource.name or uri, {}
        for template in manager.list_templates():
            params = template.matches(uri)
            if params is not None:
                return template.name or template.uri_template, params
        return redact_text(uri[:MAX_NAME]), {}

    async def _guarded(
        self, what: str, arguments: dict[str, Any], read: Callable[[], Awaitable[T]], digest_of: Callable[[T], str]
    ) -> T:
        """Guard (capability read), run `read`, journal the outcome. A denial is the spec's internal error."""
        call = Call(CallRecord(self.deps.server_name, what, "read"), redact(arguments), time.perf_counter())
        decision = policy_decision(self.deps, call.record)
        if not decision.allowed:
            raise protocol_error(types.INTERNAL_ERROR, deny(self.deps, call, decision))
        try:
            result = await read()
        except anyio.get_cancelled_exc_class():
            finish(self.deps, call, "cancelled")
            raise
        except Exception as e:
            root = _root(e)
            rule = failure_of(root, READ_ERRORS)
            finish(self.deps, call, rule.outcome, error=rule.text(root), denied_by=rule.rule_of(root))
            raise
        finish(self.deps, call, "ok", result_digest=digest_of(result))
        return result

    def streamable_http_app(self) -> Starlette:
        """The SDK's app behind the HTTP edge (shared.server.http_edge): Host, Origin and token before any session.

        The policy comes from run_server (deps.extras.http_policy) or, for a server started some other way, from
        the environment and this server's own host and port; a non-loopback host without a token fails here."""
        policy = self.deps.extras.http_policy or http_policy(self.name, self.settings.host, self.settings.port)
        self.settings.transport_security = policy.sdk_settings()  # before the session manager is created
        return secure(super().streamable_http_app(), policy)

    async def run_streamable_http_async(self) -> None:
        """As the SDK does, but uvicorn logs through the root logger (stderr, secrets redacted) and names no server,
        and the jobs in deps.extras.background run for as long as the server does, sessions or none."""
        import uvicorn  # only HTTP needs it; stdio servers start without the import

        config = uvicorn.Config(
            self.streamable_http_app(),
            host=self.settings.host,
            port=self.settings.port,
            log_level=self.settings.log_level.lower(),
            log_config=None,
            server_header=False,
            ws="none",  # MCP needs no websockets (and importing uvicorn's legacy websockets module warns)
        )
        async with anyio.create_task_group() as tg:
            for job in self.deps.extras.background:  # process-wide work that must not wait for a session
                tg.start_soon(job)
            self.http_server = uvicorn.Server(config)  # should_exit = True stops it cleanly
            await self.http_server.serve()
            tg.cancel_scope.cancel()

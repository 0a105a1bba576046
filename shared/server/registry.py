"""The one way tools are registered: strict arguments, guard, journal, truthful annotations, error mapping.

`ToolRegistry.read(...)`, `.research(...)`, `.paper(...)`, `.live(...)`, `.admin(...)` (or `.tool(capability=...)`)
wrap a typed function into a `GuardedTool`, with the annotations of its kind (`TOOL_KINDS`) unless the call says
otherwise; `ToolRegistry.build(...)` returns a `GuardedServer` (a FastMCP whose plain `add_tool`/`tool` are
disabled, so nothing can bypass the wrapper).

One call (`GuardedTool.run`): size bounds -> strict validation -> guard -> journal row opened -> the function ->
the row completed with the outcome; an exception is mapped by `shared.server.calls.TOOL_ERRORS`.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, TypedDict, Unpack

import anyio
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.fastmcp.tools.base import Tool
from mcp.server.fastmcp.utilities.context_injection import find_context_parameter
from mcp.server.fastmcp.utilities.func_metadata import ArgModelBase, func_metadata
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings.sources.utils import IncompleteFieldDefinitionWarning

from shared.policy.checks import CAPABILITIES
from shared.policy.guard import CallRecord
from shared.redact import redact, redact_text
from shared.server.calls import (
    Call,
    Ending,
    deny,
    failure_of,
    finish,
    internal_error_message,
    journal_row,
    policy_decision,
    refuse,
)
from shared.server.deps import ServerDeps, ServerExtras
from shared.server.guarded import GuardedServer
from shared.server.limits import arguments_problem
from shared.server.protocol import MAX_NAME
from shared.server.schema import SCHEMA_DIALECT, compact_schema, describe_errors, digest, strict_model_for
from shared.state import callscope
from shared.state.callscope import CallScope

__all__ = ["TOOL_KINDS", "GuardedServer", "GuardedTool", "ServerDeps", "ServerExtras", "ToolKind", "ToolRegistry"]

log = logging.getLogger("trading_mcp.tooling")

META_KEY = "trading_mcp"


@dataclass(frozen=True)
class ToolKind:
    """The annotations a tool of one capability has unless it says otherwise."""

    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool


TOOL_KINDS: dict[str, ToolKind] = {
    "read": ToolKind(read_only=True, destructive=False, idempotent=True, open_world=False),
    # research records what it ran (backtests, stress tests), so it is not read-only by default
    "research": ToolKind(read_only=False, destructive=False, idempotent=False, open_world=False),
    "paper": ToolKind(read_only=False, destructive=False, idempotent=False, open_world=True),  # live prices
    "live": ToolKind(read_only=False, destructive=True, idempotent=False, open_world=True),
    "admin": ToolKind(read_only=False, destructive=False, idempotent=False, open_world=False),
}


class ToolOptions(TypedDict, total=False):
    """What a declaration may say besides its capability. `halt_exempt`: still runs while trading is halted (the
    domain allows only safe changes). `reduces_risk`: a paper/live tool that only closes or cancels, so it needs
    no stage (a demoted strategy can still exit). `journal_in_transaction`: the domain writes the journal row
    inside its own transaction (shared.state.callscope), so a state change and its row commit together or not
    at all."""

    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool
    title: str | None
    name: str | None
    strategy_arg: str | None
    halt_exempt: bool
    reduces_risk: bool
    journal_in_transaction: bool


@dataclass(frozen=True)
class ToolSpec:
    """One tool's declaration: its kind's annotations with the declaration's own choices on top."""

    capability: str
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool
    title: str | None = None
    name: str | None = None
    strategy_arg: str | None = None
    halt_exempt: bool = False
    reduces_risk: bool = False
    journal_in_transaction: bool = False

    @classmethod
    def of(cls, capability: str, options: ToolOptions) -> ToolSpec:
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; known: {CAPABILITIES}")
        return cls(capability, **{**asdict(TOOL_KINDS[capability]), **options})

    def __post_init__(self) -> None:
        if self.read_only and (self.destructive or self.capability not in ("read", "research")):
            raise ValueError("a read-only tool cannot be destructive or need paper/live/admin capability")
        if self.capability == "read" and not self.read_only:
            raise ValueError("a 'read' tool must be read-only")
        if self.reduces_risk and self.capability not in ("paper", "live"):
            raise ValueError("reduces_risk applies to paper and live tools only")

    def annotations(self) -> ToolAnnotations:
        return ToolAnnotations(
            title=self.title,
            readOnlyHint=self.read_only,
            destructiveHint=self.destructive,
            idempotentHint=self.idempotent,
            openWorldHint=self.open_world,
        )


class GuardedTool(Tool):
    """A FastMCP tool whose every call goes through validation, the guard and the journal."""

    capability: str
    strategy_arg: str | None = None
    halt_exempt: bool = False
    reduces_risk: bool = False
    journal_in_transaction: bool = False
    strict_model: Any = Field(exclude=True)
    deps: Any = Field(exclude=True)

    async def run(self, arguments: dict[str, Any], context: Any = None, convert_result: bool = False) -> Any:
        call, parsed = self._admit(arguments, time.perf_counter())
        self._open(call)
        kwargs = parsed.model_dump_one_level()
        if self.context_kwarg is not None:
            kwargs[self.context_kwarg] = context
        try:
            result = await self._invoke(call, kwargs)
            converted = self.fn_metadata.convert_result(result) if convert_result else result
        except anyio.get_cancelled_exc_class():
            finish(self.deps, call, "cancelled")
            raise
        except Exception as e:
            raise ToolError(self._failed(call, e)) from None
        return self._succeeded(call, result, converted)

    def _record(self, strategy: str | None) -> CallRecord:
        return CallRecord(
            self.deps.server_name, self.name, self.capability, strategy, self.halt_exempt, self.reduces_risk
        )

    def _admit(self, arguments: dict[str, Any], started: float) -> tuple[Call, ArgModelBase]:
        """Size bounds, strict validation and the guard, each refusal journaled and raised as ToolError."""
        problem = arguments_problem(arguments, self.name)  # before anything (redaction, validation) reads them
        if problem:
            refused = Call(self._record(None), {"refused": problem}, started)
            raise ToolError(refuse(self.deps, refused, "arguments_too_large", problem))
        raw_strategy = arguments.get(self.strategy_arg) if self.strategy_arg else None
        strategy = redact(raw_strategy)[:MAX_NAME] if isinstance(raw_strategy, str) else None
        call = Call(self._record(strategy), redact(arguments), started)
        try:
            # Validated as given: no JSON-inside-a-string unpacking, no type coercion, no unknown keys.
            parsed = self.strict_model.model_validate_json(json.dumps(arguments, default=str))
        except ValidationError as e:
            message = redact_text(describe_errors(self.name, e, list(self.parameters.get("properties", {}))))
            raise ToolError(refuse(self.deps, call, "invalid_arguments", message)) from None
        if self.strategy_arg:  # the guard judges the strategy the function will really get
            call.record = replace(call.record, strategy=getattr(parsed, self.strategy_arg))
        decision = policy_decision(self.deps, call.record)
        if not decision.allowed:
            raise ToolError(deny(self.deps, call, decision))
        return call, parsed

    def _open(self, call: Call) -> None:
        """Where the row of an allowed call is written: by the domain in its transaction, now (a side effect
        follows, so a crash still leaves a trace), or when the call ends (read-only)."""
        record = call.record
        if self.journal_in_transaction:
            call.scope = CallScope(
                record.server, record.tool, record.capability, record.strategy, call.arguments, call.started
            )
        elif not (self.annotations and self.annotations.readOnlyHint):
            call.row_id = self.deps.store.journal_insert(
                journal_row(record, call.arguments, Ending("allow", "started"))
            )

    async def _invoke(self, call: Call, kwargs: dict[str, Any]) -> Any:
        token = callscope.enter(call.scope) if call.scope is not None else None
        try:
            return await self.fn(**kwargs) if self.is_async else self.fn(**kwargs)
        finally:
            if call.scope is not None and token is not None:
                callscope.leave(token)
                call.row_id = call.scope.row_id  # the row the domain wrote in its transaction, if it got that far

    def _failed(self, call: Call, e: Exception) -> str:
        """Journal a failed run (inside the except block, so a traceback can be logged); the model's message."""
        rule = failure_of(e)
        if rule.internal:
            log.exception("tool %s failed unexpectedly", self.name)
        text = rule.text(e)
        ref = finish(self.deps, call, rule.outcome, error=text, denied_by=rule.rule_of(e))
        return internal_error_message(self.name, ref) if rule.internal else text

    def _succeeded(self, call: Call, result: Any, converted: Any) -> Any:
        content = converted[1] if isinstance(converted, tuple) else result
        if isinstance(content, BaseModel):
            content = content.model_dump(mode="json")
        finish(self.deps, call, "ok", result_digest=digest(content))
        if isinstance(converted, tuple):
            # Already validated against the output model by pydantic; as a CallToolResult the low-level server
            # passes it on instead of validating it again with jsonschema (milliseconds per call on big schemas).
            return CallToolResult(content=list(converted[0]), structuredContent=converted[1], isError=False)
        return converted


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class ToolRegistry:
    def __init__(self, deps: ServerDeps):
        self.deps = deps
        self.tools: list[GuardedTool] = []

    def tool(self, *, capability: str, **options: Unpack[ToolOptions]) -> Decorator:
        """Register a tool of `capability`; annotations not given are its kind's (TOOL_KINDS)."""
        spec = ToolSpec.of(capability, options)
        return lambda fn: self._register(fn, spec)

    def read(self, **options: Unpack[ToolOptions]) -> Decorator:
        return self.tool(capability="read", **options)

    def research(self, **options: Unpack[ToolOptions]) -> Decorator:
        return self.tool(capability="research", **options)

    def paper(self, **options: Unpack[ToolOptions]) -> Decorator:
        return self.tool(capability="paper", **options)

    def live(self, **options: Unpack[ToolOptions]) -> Decorator:
        return self.tool(capability="live", **options)

    def admin(self, **options: Unpack[ToolOptions]) -> Decorator:
        return self.tool(capability="admin", **options)

    def _register(self, fn: Callable[..., Any], spec: ToolSpec) -> Callable[..., Any]:
        tool_name = spec.name or fn.__name__
        if any(t.name == tool_name for t in self.tools):
            raise ValueError(f"tool {tool_name!r} registered twice")
        ctx_kwarg = find_context_parameter(fn)
        meta = func_metadata(fn, skip_names=[ctx_kwarg] if ctx_kwarg else [])
        if meta.output_schema is not None:
            compact = compact_schema(meta.output_schema)
            meta.output_schema.clear()
            meta.output_schema.update({"$schema": SCHEMA_DIALECT, **compact})
        strict = strict_model_for(meta.arg_model, tool_name)
        if spec.strategy_arg is not None and spec.strategy_arg not in strict.model_fields:
            raise ValueError(f"{tool_name}: strategy_arg {spec.strategy_arg!r} is not a parameter")
        self.tools.append(
            GuardedTool(
                fn=fn,
                name=tool_name,
                title=spec.title,
                description=(fn.__doc__ or "").strip(),
                parameters={"$schema": SCHEMA_DIALECT, **compact_schema(strict.model_json_schema(by_alias=True))},
                fn_metadata=meta,
                is_async=inspect.iscoroutinefunction(fn),
                context_kwarg=ctx_kwarg,
                annotations=spec.annotations(),
                meta={META_KEY: {"capability": spec.capability, "guarded": True, "server": self.deps.server_name}},
                capability=spec.capability,
                strategy_arg=spec.strategy_arg,
                halt_exempt=spec.halt_exempt,
                reduces_risk=spec.reduces_risk,
                journal_in_transaction=spec.journal_in_transaction,
                strict_model=strict,
                deps=self.deps,
            )
        )
        return fn

    def build(self, *, instructions: str, lifespan: Any = None, **kwargs: Any) -> GuardedServer:
        """The server, bound (for streamable HTTP) to deps.extras.http = (host, port), default loopback."""
        host, port = self.deps.extras.http
        if not all(t.description for t in self.tools):
            missing = [t.name for t in self.tools if not t.description]
            raise ValueError(f"tools without a description: {missing}")
        with warnings.catch_warnings():
            # FastMCP's settings model trips a harmless pydantic-settings warning on every construction.
            warnings.simplefilter("ignore", IncompleteFieldDefinitionWarning)
            return GuardedServer(
                self.deps.server_name,
                instructions=instructions,
                tools=list(self.tools),
                lifespan=lifespan,
                host=host,
                port=port,
                deps=self.deps,
                **kwargs,
            )

"""The one way tools are registered: strict arguments, guard, journal, truthful annotations, error mapping.

`ToolRegistry.tool(...)` wraps a typed function into a `GuardedTool`; `ToolRegistry.build(...)` returns a
`GuardedServer` (a FastMCP whose plain `add_tool`/`tool` are disabled, so nothing can bypass the wrapper).
"""

from __future__ import annotations

import inspect
import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

import anyio
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ResourceError, ToolError
from mcp.server.fastmcp.tools.base import Tool
from mcp.server.fastmcp.utilities.context_injection import find_context_parameter
from mcp.server.fastmcp.utilities.func_metadata import func_metadata
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings.sources.utils import IncompleteFieldDefinitionWarning
from starlette.applications import Starlette

from shared.config.store import ConfigStore
from shared.errors import ConfigError, PolicyDenied, TradingMcpError
from shared.policy.checks import CAPABILITIES, TradingStateName
from shared.policy.guard import CallRecord, Decision, decide
from shared.redact import redact, redact_text
from shared.server.http_edge import http_policy, secure
from shared.server.limits import arguments_problem
from shared.server.protocol import MAX_NAME, RESOURCE_NOT_FOUND, install_gates, protocol_error
from shared.server.schema import SCHEMA_DIALECT, compact_schema, describe_errors, digest, strict_model_for
from shared.state import callscope
from shared.state.callscope import CallScope
from shared.state.store import JournalEntry, Store

log = logging.getLogger("trading_mcp.tooling")

META_KEY = "trading_mcp"


@dataclass
class ServerDeps:
    """What every tool of a server may use. Servers add their own objects in `extras`."""

    server_name: str
    config: ConfigStore
    store: Store
    extras: dict[str, Any]


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
        started = time.perf_counter()
        deps: ServerDeps = self.deps
        problem = arguments_problem(arguments, self.name)  # before anything (redaction, validation) reads them
        if problem:
            record = CallRecord(deps.server_name, self.name, self.capability, None, self.halt_exempt, self.reduces_risk)
            self._journal(record, {"refused": problem}, "invalid", "arguments_too_large", None, problem, started)
            raise ToolError(problem)
        raw_strategy = arguments.get(self.strategy_arg) if self.strategy_arg else None
        record = CallRecord(
            server=deps.server_name,
            tool=self.name,
            capability=self.capability,
            strategy=redact(raw_strategy)[:MAX_NAME] if isinstance(raw_strategy, str) else None,
            halt_exempt=self.halt_exempt,
            reduces_risk=self.reduces_risk,
        )
        args_for_journal = redact(arguments)
        try:
            # Validated as given: no JSON-inside-a-string unpacking, no type coercion, no unknown keys.
            parsed = self.strict_model.model_validate_json(json.dumps(arguments, default=str))
        except ValidationError as e:
            message = redact_text(describe_errors(self.name, e, list(self.parameters.get("properties", {}))))
            self._journal(record, args_for_journal, "invalid", "invalid_arguments", None, message, started)
            raise ToolError(message) from None
        if self.strategy_arg:  # the guard judges the strategy the function will really get
            record = replace(record, strategy=getattr(parsed, self.strategy_arg))

        decision = self._decide(record)
        if not decision.allowed:
            reason = decision.reason
            if decision.rule == "trading_halted":  # say why it halted, and how it ends
                state = deps.store.trading_state()
                reason += f" Halted since {state['since']}: {state['reason']}"
            message = f"Denied ({decision.rule}): {reason} Remedy: {decision.remedy}"
            self._journal(record, args_for_journal, "deny", "denied", decision, message, started)
            raise ToolError(message)

        row_id = None
        scope = None
        if self.journal_in_transaction:  # the domain journals inside the transaction of its state change
            scope = CallScope(deps.server_name, self.name, self.capability, record.strategy, args_for_journal, started)
        elif not (self.annotations and self.annotations.readOnlyHint):
            # A side-effecting call is journaled before it runs, so a crash still leaves a trace.
            row_id = deps.store.journal_insert(
                JournalEntry(
                    deps.server_name,
                    self.name,
                    self.capability,
                    record.strategy,
                    args_for_journal,
                    "allow",
                    "started",
                )
            )
        kwargs = parsed.model_dump_one_level()
        if self.context_kwarg is not None:
            kwargs[self.context_kwarg] = context
        token = callscope.enter(scope) if scope is not None else None
        try:
            try:
                result = await self.fn(**kwargs) if self.is_async else self.fn(**kwargs)
                converted = self.fn_metadata.convert_result(result) if convert_result else result
            finally:
                if scope is not None:
                    callscope.leave(token)  # type: ignore[arg-type]
                    row_id = scope.row_id  # the row the domain wrote in its transaction, if it got that far
        except anyio.get_cancelled_exc_class():
            self._finish(row_id, record, args_for_journal, "cancelled", None, started, None)
            raise
        except ToolError as e:
            self._finish(row_id, record, args_for_journal, "error", redact_text(str(e)), started, None)
            raise ToolError(redact_text(str(e))) from None
        except PolicyDenied as e:
            self._finish(row_id, record, args_for_journal, "denied", redact_text(str(e)), started, None, e.rule)
            raise ToolError(redact_text(str(e))) from None
        except TradingMcpError as e:
            self._finish(row_id, record, args_for_journal, "error", redact_text(str(e)), started, None)
            raise ToolError(redact_text(str(e))) from None
        except Exception:
            log.exception("tool %s failed unexpectedly", self.name)
            ref = self._finish(row_id, record, args_for_journal, "internal_error", "see server log", started, None)
            raise ToolError(
                f"Internal error in {self.name} (journal #{ref}). The details are in the server's log on stderr; "
                "your input was accepted, so retrying later or reporting the error is the way forward."
            ) from None
        content = converted[1] if isinstance(converted, tuple) else result
        if isinstance(content, BaseModel):
            content = content.model_dump(mode="json")
        self._finish(row_id, record, args_for_journal, "ok", None, started, digest(content))
        if isinstance(converted, tuple):
            # Already validated against the output model by pydantic; as a CallToolResult the low-level server
            # passes it on instead of validating it again with jsonschema (milliseconds per call on big schemas).
            return CallToolResult(content=list(converted[0]), structuredContent=converted[1], isError=False)
        return converted

    def _decide(self, record: CallRecord) -> Decision:
        deps: ServerDeps = self.deps
        try:
            cfg = deps.config.load()
            state = cast(TradingStateName, deps.store.trading_state()["state"])
        except ConfigError as e:
            return Decision(False, "config_invalid", str(e), f"fix the file {deps.config.path} as listed.")
        except Exception as e:  # fail closed: no policy, no call
            log.exception("policy inputs unavailable")
            return Decision(
                False,
                "policy_unavailable",
                f"policy inputs could not be read ({type(e).__name__}).",
                "check TRADING_MCP_HOME and its state.db; see the server log.",
            )
        return decide(record, cfg, state)

    def _journal(
        self,
        record: CallRecord,
        args: dict[str, Any],
        decision: str,
        outcome: str,
        dec: Decision | None,
        message: str,
        started: float,
    ) -> int:
        return self.deps.store.journal_insert(
            JournalEntry(
                server=record.server,
                tool=record.tool,
                capability=record.capability,
                strategy=record.strategy,
                arguments=args,
                decision=decision,
                outcome=outcome,
                rule=dec.rule if dec else None,
                reason=dec.reason if dec else message,
                error=message,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        )

    def _finish(
        self,
        row_id: int | None,
        record: CallRecord,
        args: dict[str, Any],
        outcome: str,
        error: str | None,
        started: float,
        result_digest: str | None,
        denied_by: str | None = None,
    ) -> int:
        """Complete the journal row; a denial raised by the domain (e.g. a missing confirmation) is a 'deny'."""
        duration = (time.perf_counter() - started) * 1000
        store: Store = self.deps.store
        decision = "deny" if denied_by else "allow"
        if row_id is not None:
            store.journal_finish(row_id, outcome, error, duration, result_digest, decision, denied_by)
            return row_id
        return store.journal_insert(
            JournalEntry(
                record.server,
                record.tool,
                record.capability,
                record.strategy,
                args,
                decision,
                outcome,
                rule=denied_by,
                reason=error if denied_by else None,
                error=error,
                duration_ms=duration,
                result_digest=result_digest,
            )
        )


class GuardedServer(FastMCP):
    """FastMCP whose tools all come from a ToolRegistry; unknown tool names are journaled too."""

    def __init__(self, *args: Any, deps: ServerDeps, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.deps = deps
        install_gates(self, self._unknown_tool)

    def add_tool(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("Register tools through shared.server.registry.ToolRegistry so the guard and journal apply.")

    def tool(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("Register tools through shared.server.registry.ToolRegistry so the guard and journal apply.")

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
        self.deps.store.journal_insert(
            JournalEntry(
                self.deps.server_name,
                name,
                None,
                None,
                {"refused": problem} if problem else redact(arguments),
                "invalid",
                "unknown_tool",
                error=message,
            )
        )
        return message

    async def read_resource(self, uri: Any) -> Any:
        """As FastMCP, but a template whose object does not exist (backtests://nope) is 'resource not found'."""
        try:
            return await super().read_resource(uri)
        except (ValueError, ResourceError) as e:
            root: BaseException = e
            while root.__context__ is not None and isinstance(root, ValueError | ResourceError):
                root = root.__context__
            if isinstance(root, TradingMcpError | ValueError) and not isinstance(root, ConfigError):
                raise protocol_error(RESOURCE_NOT_FOUND, redact_text(str(root))) from None
            raise

    def streamable_http_app(self) -> Starlette:
        """The SDK's app behind the HTTP edge (shared.server.http_edge): Host, Origin and token before any session.

        The policy comes from run_server (deps.extras['http_policy']) or, for a server started some other way, from
        the environment and this server's own host and port; a non-loopback host without a token fails here."""
        policy = self.deps.extras.get("http_policy") or http_policy(self.name, self.settings.host, self.settings.port)
        self.settings.transport_security = policy.sdk_settings()  # before the session manager is created
        return secure(super().streamable_http_app(), policy)

    async def run_streamable_http_async(self) -> None:
        """As the SDK does, but uvicorn logs through the root logger (stderr, secrets redacted) and names no server,
        and the jobs in deps.extras['background'] run for as long as the server does, sessions or none."""
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
            for job in self.deps.extras.get("background", ()):  # process-wide work that must not wait for a session
                tg.start_soon(job)
            self.http_server = uvicorn.Server(config)  # should_exit = True stops it cleanly
            await self.http_server.serve()
            tg.cancel_scope.cancel()


class ToolRegistry:
    def __init__(self, deps: ServerDeps):
        self.deps = deps
        self.tools: list[GuardedTool] = []

    def tool(
        self,
        *,
        capability: str,
        read_only: bool,
        destructive: bool,
        idempotent: bool,
        open_world: bool,
        title: str | None = None,
        name: str | None = None,
        strategy_arg: str | None = None,
        halt_exempt: bool = False,
        reduces_risk: bool = False,
        journal_in_transaction: bool = False,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a tool. `halt_exempt`: still runs while trading is halted (the domain allows only safe changes).
        `reduces_risk`: a paper/live tool that only closes or cancels, so it needs no stage (a demoted strategy can
        still exit). `journal_in_transaction`: the domain writes the journal row inside its own transaction
        (shared.state.callscope), so a state change and its row commit together or not at all."""
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; known: {CAPABILITIES}")
        if read_only and (destructive or capability not in ("read", "research")):
            raise ValueError("a read-only tool cannot be destructive or need paper/live/admin capability")
        if capability == "read" and not read_only:
            raise ValueError("a 'read' tool must be read-only")
        if reduces_risk and capability not in ("paper", "live"):
            raise ValueError("reduces_risk applies to paper and live tools only")

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            tool_name = name or fn.__name__
            if any(t.name == tool_name for t in self.tools):
                raise ValueError(f"tool {tool_name!r} registered twice")
            ctx_kwarg = find_context_parameter(fn)
            meta = func_metadata(fn, skip_names=[ctx_kwarg] if ctx_kwarg else [])
            if meta.output_schema is not None:
                compact = compact_schema(meta.output_schema)
                meta.output_schema.clear()
                meta.output_schema.update({"$schema": SCHEMA_DIALECT, **compact})
            strict = strict_model_for(meta.arg_model, tool_name)
            if strategy_arg is not None and strategy_arg not in strict.model_fields:
                raise ValueError(f"{tool_name}: strategy_arg {strategy_arg!r} is not a parameter")
            annotations = ToolAnnotations(
                title=title,
                readOnlyHint=read_only,
                destructiveHint=destructive,
                idempotentHint=idempotent,
                openWorldHint=open_world,
            )
            self.tools.append(
                GuardedTool(
                    fn=fn,
                    name=tool_name,
                    title=title,
                    description=(fn.__doc__ or "").strip(),
                    parameters={"$schema": SCHEMA_DIALECT, **compact_schema(strict.model_json_schema(by_alias=True))},
                    fn_metadata=meta,
                    is_async=inspect.iscoroutinefunction(fn),
                    context_kwarg=ctx_kwarg,
                    annotations=annotations,
                    meta={META_KEY: {"capability": capability, "guarded": True, "server": self.deps.server_name}},
                    capability=capability,
                    strategy_arg=strategy_arg,
                    halt_exempt=halt_exempt,
                    reduces_risk=reduces_risk,
                    journal_in_transaction=journal_in_transaction,
                    strict_model=strict,
                    deps=self.deps,
                )
            )
            return fn

        return register

    def build(self, *, instructions: str, lifespan: Any = None, **kwargs: Any) -> GuardedServer:
        """The server, bound (for streamable HTTP) to deps.extras['http'] = (host, port), default loopback."""
        host, port = self.deps.extras.get("http", ("127.0.0.1", 8000))
        if not all(t.description for t in self.tools):
            missing = [t.name for t in self.tools if not t.description]
            raise ValueError(f"tools without a description: {missing}")
        with warnings.catch_warnings():
            # FastMCP's settings model trips a harmless pydantic-settings warning on every construction.
            warnings.simplefilter("ignore", IncompleteFieldDefinitionWarning)
            return self._construct(instructions, lifespan, host, port, **kwargs)

    def _construct(self, instructions: str, lifespan: Any, host: str, port: int, **kwargs: Any) -> GuardedServer:
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

"""Argument completion for prompts and resource templates, shared by the three servers.

Matching is a case-insensitive prefix match that ignores separators (`btcu` finds `BTC-USDT`, `trend f` finds
`trend_following`); answers are sorted and capped at MCP's 100 values, with `total` and `hasMore` telling the rest.
A comma-separated list completes its last item and keeps the items before it. An argument without a source completes
to nothing, never to an error. Written by hand: the SDK leaves matching to each server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mcp.server.fastmcp import FastMCP
from mcp.types import Completion, CompletionArgument, CompletionContext, PromptReference, ResourceTemplateReference

MAX_VALUES = 100  # MCP: "Must not exceed 100 items"
_SEPARATORS = str.maketrans("", "", "-_/. ")

Source = Iterable[str] | Callable[[], Iterable[str]]


def fold(text: str) -> str:
    """The matching key: lower case, without separators."""
    return text.lower().translate(_SEPARATORS)


def match(candidates: Iterable[str], typed: str) -> Completion:
    """The candidates starting with `typed` (case and separators ignored), sorted, at most MAX_VALUES of them."""
    key = fold(typed.strip())
    found = sorted({c for c in candidates if fold(c).startswith(key)}, key=lambda c: (c.lower(), c))
    return Completion(values=found[:MAX_VALUES], total=len(found), hasMore=len(found) > MAX_VALUES)


def match_last_item(candidates: Iterable[str], typed: str, separator: str = ",") -> Completion:
    """Complete the last item of a `separator`-separated list; items already listed are not offered again."""
    head, sep, last = typed.rpartition(separator)
    listed = {fold(item.strip()) for item in head.split(separator)} if sep else set()
    found = match((c for c in candidates if fold(c) not in listed), last)
    keep = head + sep + last[: len(last) - len(last.lstrip())]  # what was typed before the item, spaces included
    return found.model_copy(update={"values": [keep + v for v in found.values]})


@dataclass(frozen=True)
class Choices:
    """Where an argument's values come from (a collection, or a function read at each request)."""

    source: Source
    listed: bool = False  # a comma-separated list: complete its last item

    def complete(self, typed: str) -> Completion:
        values = self.source() if callable(self.source) else self.source
        return match_last_item(values, typed) if self.listed else match(values, typed)


def one_of(source: Source) -> Choices:
    return Choices(source)


def list_of(source: Source) -> Choices:
    return Choices(source, listed=True)


def empty() -> Completion:
    return Completion(values=[], total=0, hasMore=False)


class Completions:
    """The completion table of one server: (prompt name or URI template, argument) -> Choices."""

    def __init__(self) -> None:
        self._table: dict[tuple[str, str], dict[str, Choices]] = {}

    def prompt(self, name: str, **arguments: Choices) -> None:
        self._table[("ref/prompt", name)] = arguments

    def template(self, uri_template: str, **params: Choices) -> None:
        self._table[("ref/resource", uri_template)] = params

    def complete(self, ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument) -> Completion:
        key = ref.name if isinstance(ref, PromptReference) else ref.uri
        choices = self._table.get((ref.type, key), {}).get(argument.name)
        return choices.complete(argument.value) if choices is not None else empty()

    def install(self, server: FastMCP) -> None:
        """Register the server's one completion handler, after checking every entry names a real argument."""
        self._check(server)

        @server.completion()
        async def complete(
            ref: PromptReference | ResourceTemplateReference,
            argument: CompletionArgument,
            context: CompletionContext | None,
        ) -> Completion:
            return self.complete(ref, argument)

    def _check(self, server: FastMCP) -> None:
        prompts = {p.name: {a.name for a in p.arguments or ()} for p in server._prompt_manager.list_prompts()}
        templates = {t.uri_template for t in server._resource_manager.list_templates()}
        for (kind, key), arguments in self._table.items():
            for name in arguments:
                if kind == "ref/prompt" and name not in prompts.get(key, ()):
                    raise ValueError(f"Completion for {key}.{name}, but no prompt {key} has an argument {name}.")
                if kind == "ref/resource" and (key not in templates or f"{{{name}}}" not in key):
                    raise ValueError(f"Completion for {{{name}}} of {key}, but no such resource template parameter.")

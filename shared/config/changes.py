"""Configuration changes: apply dotted-path edits, and classify them (loosening, stage raise, demotion). Pure."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.config.directions import COMPARE_KEY, RISKIER_KEY, declared, is_riskier
from shared.config.models import STAGE_RANK, TradingConfig
from shared.config.news import sources_by_name
from shared.config.profiles import PROFILE_RANK, is_looser
from shared.config.resolve import resolve_risk
from shared.config.risk_fields import RISK_FIELD_NAMES, RISK_LOOSER_DIRECTION
from shared.errors import ConfigError, ConfigProblem

# Dict-valued sections whose keys are names chosen by the user (new entries may be created).
_NAMED_COLLECTIONS = {("strategies",), ("news_priorities",)}


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any
    new: Any


def apply_changes(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `data` with each `dotted.path: value` applied.

    `null` on an entry of strategies/news_priorities removes it; elsewhere it sets the field to null (which only
    optional fields such as risk_overrides.* accept). Validation of the result is the caller's job.
    """
    if not changes:
        raise ConfigError("No changes given: pass at least one 'dotted.path': value pair.")
    out = keyed(copy.deepcopy(data))
    for path, value in changes.items():
        parts = path.split(".")
        if not path or any(not p for p in parts):
            raise ConfigError(
                f"Bad path {path!r}: use dot-separated keys such as 'strategies.trend_following.risk_profile'.",
                [ConfigProblem(path, value, "a path")],
            )
        node = out
        for depth, key in enumerate(parts[:-1]):
            child = node.get(key)
            if child is None and tuple(parts[:depth]) in _NAMED_COLLECTIONS:
                child = node[key] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                here = ".".join(parts[:depth]) or "the top level"
                allowed = (
                    f"{where} is a value, not a section"
                    if key in node
                    else f"no key {key!r} in {here}; keys there: {', '.join(node) or '(none)'}"
                )
                raise ConfigError(f"Bad path {path!r}: {allowed}.", [ConfigProblem(path, value, allowed)])
            node = child
        last = parts[-1]
        if value is None and tuple(parts[:-1]) in _NAMED_COLLECTIONS:
            if last not in node:
                raise ConfigError(f"Cannot remove {path!r}: no such entry.", [ConfigProblem(path, None, "an entry")])
            del node[last]
        else:
            node[last] = copy.deepcopy(value)
    return out


def keyed(data: dict[str, Any]) -> dict[str, Any]:
    """The configuration data with `news_priorities` keyed by source name, as dotted paths address it
    (`news_priorities.coindesk.weight`); the file lists the sources."""
    sources = data.get("news_priorities")
    if not isinstance(sources, list):
        return data
    try:
        return {**data, "news_priorities": sources_by_name(sources)}
    except ValueError as e:
        raise ConfigError(f"news_priorities: {e}.", [ConfigProblem("news_priorities", None, str(e))]) from None


def leaf_changes(old: Any, new: Any, prefix: str = "") -> list[FieldChange]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[FieldChange] = []
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{prefix}.{key}" if prefix else key
            out += leaf_changes(old.get(key, _MISSING), new.get(key, _MISSING), sub)
        return out
    if old == new:
        return []
    return [FieldChange(prefix, None if old is _MISSING else old, None if new is _MISSING else new)]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def loosenings(old: TradingConfig, new: TradingConfig) -> list[str]:
    """Every way `new` takes more risk than `old` (or changes what needs the person: addresses, listeners,
    connectors), as readable sentences; empty when nothing does. Each field's direction is declared on the model
    (shared.config.directions): risk settings are compared after resolution, everything else field by field."""
    return _resolved_risk(old, new) + _walk(TradingConfig, old, new, "")


def _resolved_risk(old: TradingConfig, new: TradingConfig) -> list[str]:
    found: list[str] = []
    if PROFILE_RANK[new.global_risk_profile] > PROFILE_RANK[old.global_risk_profile]:
        found.append(f"global_risk_profile {old.global_risk_profile} -> {new.global_risk_profile}")
    scopes: list[str | None] = [None, *new.strategies]
    for strategy in scopes:
        baseline_strategy = strategy if strategy is None or strategy in old.strategies else None
        before = resolve_risk(old, baseline_strategy, mode="backtest")
        after = resolve_risk(new, strategy, mode="backtest")
        label = f"strategy '{strategy}'" if strategy else "global"
        if PROFILE_RANK[after.risk_profile] > PROFILE_RANK[before.risk_profile] and strategy is not None:
            found.append(f"{label}: risk_profile {before.risk_profile} -> {after.risk_profile}")
        b, a = before.settings.model_dump(), after.settings.model_dump()
        for field in RISK_FIELD_NAMES:
            if is_looser(RISK_LOOSER_DIRECTION[field], b[field], a[field]):
                found.append(f"{label}: {field} {b[field]:g} -> {a[field]:g}")
    return found


# How an entry of a named collection counts when it is absent on one side: a news source that is not there is the
# least trusted, weightless and off; a price provider that is not there does not vote; a strategy that is not there
# is judged by resolution and its stage only.
_ABSENT_AS: dict[str, dict[str, Any]] = {
    "news_priorities": {"priority": 100, "weight": 0.0, "enabled": False},
    "price_config.providers": {"enabled": False},
    "strategies": {},
}


def _walk(model: type[BaseModel], old: BaseModel, new: BaseModel, path: str) -> list[str]:
    found: list[str] = []
    for name, info in model.model_fields.items():
        sub = f"{path}.{name}" if path else name
        before, after = getattr(old, name), getattr(new, name)
        decl = declared(info)
        if decl is not None:
            if decl[COMPARE_KEY] == "walk" and is_riskier(decl, before, after):
                if decl[RISKIER_KEY] == "added":
                    found.append(f"{sub} adds {', '.join(str(v) for v in after if v not in before)}")
                else:
                    found.append(f"{sub} {_show(before)} -> {_show(after)}")
        elif isinstance(before, BaseModel):
            found += _walk(type(before), before, after, sub)
        elif isinstance(before, dict) and sub in _ABSENT_AS:
            found += _walk_entries(before, after, sub)
        elif before != after:  # undeclared (a test keeps this from happening): the person decides
            found.append(f"{sub} changed")
    return found


def _walk_entries(old: dict[str, BaseModel], new: dict[str, BaseModel], path: str) -> list[str]:
    found: list[str] = []
    for key in [*old, *(k for k in new if k not in old)]:
        before, after = old.get(key), new.get(key)
        present = after if after is not None else before
        assert present is not None
        absent = present.model_copy(update=_ABSENT_AS[path])
        diffs = _walk(type(present), before or absent, after or absent, "")
        if before is None and diffs:
            found.append(f"{path}.{key} added ({'; '.join(diffs)})")
        elif after is None and diffs:
            found.append(f"{path}.{key} removed ({'; '.join(diffs)})")
        else:
            found += [f"{path}.{key}.{d}" for d in diffs]
    return found


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float | int):
        return f"{value:g}"
    return "-" if value is None else str(value)


def stage_moves(old: TradingConfig, new: TradingConfig) -> tuple[list[FieldChange], list[FieldChange]]:
    """(raises, demotions) of the global stage and of each strategy; a new strategy starts from exploration."""
    raises, demotions = [], []
    pairs = [("stage", old.stage, new.stage)]
    for name, strat in old.strategies.items():
        if name not in new.strategies and strat.stage != "exploration":  # removal ends its stage
            demotions.append(FieldChange(f"strategies.{name}.stage", strat.stage, "exploration"))
    for name, strat in new.strategies.items():
        before = old.strategies[name].stage if name in old.strategies else "exploration"
        pairs.append((f"strategies.{name}.stage", before, strat.stage))
    for path, before, after in pairs:
        if STAGE_RANK[after] > STAGE_RANK[before]:
            raises.append(FieldChange(path, before, after))
        elif STAGE_RANK[after] < STAGE_RANK[before]:
            demotions.append(FieldChange(path, before, after))
    return raises, demotions


def shadowed_changes(old: TradingConfig, new: TradingConfig, changed_paths: list[str]) -> list[str]:
    """Changes to global_risk_settings that alter no effective setting, because every profile in use sets
    that field itself (global settings only fill the fields a profile leaves out)."""
    notes = []
    scopes: list[str | None] = [None, *new.strategies]
    for path in changed_paths:
        parts = path.split(".")
        if len(parts) != 2 or parts[0] != "global_risk_settings":
            continue
        field = parts[1]
        before = [
            getattr(resolve_risk(old, s if s in old.strategies else None, mode="backtest").settings, field)
            for s in scopes
        ]
        after = [getattr(resolve_risk(new, s, mode="backtest").settings, field) for s in scopes]
        if before == after:
            notes.append(
                f"{path} changes no effective setting: every risk profile in use sets {field} itself (global "
                "settings fill only the fields a profile leaves out). Change a strategy's risk_overrides or "
                "risk_profile to change it."
            )
    return notes

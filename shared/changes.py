"""Configuration changes: apply dotted-path edits, and classify them (loosening, stage raise, demotion). Pure."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from shared.config import RISK_FIELD_NAMES, STAGE_RANK, TradingConfig
from shared.errors import ConfigError, ConfigProblem
from shared.profiles import (
    PAPER_LOOSER_DIRECTION,
    PORTFOLIO_LOOSER_DIRECTION,
    PRICE_LOOSER_DIRECTION,
    PROFILE_RANK,
    PROMOTION_LOOSER_DIRECTION,
    RISK_LOOSER_DIRECTION,
    is_looser,
)
from shared.resolve import resolve_risk

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
    out = copy.deepcopy(data)
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
    """Every way `new` takes more risk than `old`, as readable sentences (empty: nothing loosened)."""
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
    for section, directions in (
        ("portfolio_limits", PORTFOLIO_LOOSER_DIRECTION),
        ("paper", PAPER_LOOSER_DIRECTION),
        ("promotion", PROMOTION_LOOSER_DIRECTION),
        ("price_config", PRICE_LOOSER_DIRECTION),
    ):
        b, a = getattr(old, section).model_dump(), getattr(new, section).model_dump()
        for field, direction in directions.items():
            if is_looser(direction, float(b[field]), float(a[field])):
                found.append(f"{section}.{field} {_show(b[field])} -> {_show(a[field])}")
    return found


def _show(value: float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}"


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


def sensitive_changes(old: TradingConfig, new: TradingConfig) -> list[str]:
    """Changes that are not risk limits but still need the person: where servers listen, which addresses they
    fetch, which price providers vote, switching a disabled strategy back on, and new folders tools may read."""
    found = []
    if old.mcp_config != new.mcp_config:
        for c in leaf_changes(old.mcp_config.model_dump(), new.mcp_config.model_dump(), "mcp_config"):
            found.append(f"{c.path} {c.old} -> {c.new}")
    old_news, new_news = old.news_priorities, new.news_priorities
    for name, source in new_news.items():
        before = old_news.get(name)
        moved = before is None or (before.url, before.type) != (source.url, source.type)
        if moved and (source.url or source.type):
            found.append(f"news source '{name}' address {source.url or '-'} ({source.type or 'no connector'})")
    for name in sorted({*old.price_config.providers, *new.price_config.providers}):
        before, prov = old.price_config.providers.get(name), new.price_config.providers.get(name)
        if prov is not None and prov.base_url and (before is None or before.base_url != prov.base_url):
            found.append(f"price provider '{name}' address {prov.base_url}")
        was_on, is_on = before is not None and before.enabled, prov is not None and prov.enabled  # absent: unused
        if was_on != is_on:  # which providers vote on the consensus price that fills and stops paper orders
            found.append(f"price provider '{name}' {'enabled' if is_on else 'disabled'}")
    for name, strat in new.strategies.items():
        if strat.enabled and name in old.strategies and not old.strategies[name].enabled:
            found.append(f"strategy '{name}' re-enabled")
    for folder in new.import_config.folders:  # tools may read files there; removing a folder never asks
        if folder not in old.import_config.folders:
            found.append(f"import folder added: {folder} (tools may read files in it)")
    return found

"""Older configuration files, read as the current format: key names the design document spells differently are
renamed in memory, with a note for get_config. The file itself is rewritten only by the next saved change."""

from __future__ import annotations

import copy
from typing import Any

from shared.errors import ConfigError, ConfigProblem

# section (a path; "*" is any entry of a named collection) -> {old key: the key(s) it became}
_RENAMES: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {
    ("portfolio_limits",): {
        "max_trades_per_day": ("max_daily_trades",),
        "max_trades_per_week": ("max_weekly_trades",),
        "max_trades_per_month": ("max_monthly_trades",),
    },
    ("strategies", "*"): {"hyperparameters": ("custom_params",)},
    ("mcp_config",): {
        "host": ("jesse_host", "asset_price_host", "discovery_host"),
        "jesse_mcp_port": ("jesse_port",),
        "asset_price_mcp_port": ("asset_price_port",),
        "discovery_mcp_port": ("discovery_port",),
    },
}


def renamed_to(loc: tuple[int | str, ...]) -> tuple[str, ...] | None:
    """The current name(s) of the key at `loc` when it is an older spelling, else None."""
    section, key = tuple(str(p) for p in loc[:-1]), str(loc[-1]) if loc else ""
    for pattern, table in _RENAMES.items():
        if len(pattern) == len(section) and all(p in ("*", s) for p, s in zip(pattern, section, strict=True)):
            return table.get(key)
    return None


def _sections(data: dict[str, Any], pattern: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    nodes: list[tuple[str, Any]] = [("", data)]
    for part in pattern:
        nxt = []
        for path, node in nodes:
            if not isinstance(node, dict):
                continue
            keys = list(node) if part == "*" else [part] if part in node else []
            nxt += [(f"{path}.{k}" if path else k, node[k]) for k in keys]
        nodes = nxt
    return [(path, node) for path, node in nodes if isinstance(node, dict)]


def migrate(data: dict[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """(data in the current key names, a note per migrated key). Two spellings with different values are an error:
    which one is meant cannot be guessed."""
    out = copy.deepcopy(data)
    notes: list[str] = []
    for pattern, table in _RENAMES.items():
        for path, section in _sections(out, pattern):
            for old, targets in table.items():
                if old not in section:
                    continue
                value = section.pop(old)
                for target in targets:
                    if target in section and section[target] != value:
                        where = f"{path}.{old}"
                        raise ConfigError(
                            f"{source} sets both {where} ({value!r}) and its current name {path}.{target} "
                            f"({section[target]!r}). Keep only {target}.",
                            [ConfigProblem(where, value, f"renamed to {target}; remove one of the two")],
                        )
                    section[target] = value
                notes.append(f"{path}.{old} is read as {', '.join(f'{path}.{t}' for t in targets)} (older name)")
    if isinstance(out.get("news_priorities"), dict):
        notes.append("news_priorities is a mapping in this file; it is read as the list of sources the design shows")
    if notes:
        notes.append("the file keeps its older names until the next saved change writes the current format")
    return out, notes

"""Readable text for results: short JSON per field, long lists cut, so a person can follow along."""

from __future__ import annotations

import json
from typing import Any

MAX_LIST = 8


def _short(value: Any, width: int = 100) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def render(payload: Any, indent: str = "    ") -> str:
    if not isinstance(payload, dict):
        return indent + str(payload).replace("\n", "\n" + indent)
    lines = []
    for key, value in payload.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"{indent}{key}: ({len(value)})")
            for item in value[:MAX_LIST]:
                lines.append(f"{indent}  - {_short(item, 140)}")
            if len(value) > MAX_LIST:
                lines.append(f"{indent}  ... {len(value) - MAX_LIST} more")
        else:
            lines.append(f"{indent}{key}: {_short(value)}")
    return "\n".join(lines)

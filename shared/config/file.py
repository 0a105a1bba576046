"""The configuration file: bytes to text, text to data, older key names migrated, strict validation with
field-path error messages, and the canonical JSON written back.

Loading, atomic saving and caching live in `shared.config.store`; the models in `shared.config.models`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from shared.config.migrate import migrate, renamed_to
from shared.config.models import TradingConfig
from shared.errors import ConfigError, ConfigProblem


def format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """Walk `loc` down the model tree and list the keys allowed at its end (None when not a model)."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        else:  # a dict[str, Model]: the key is free, the value is the model
            args = getattr(current, "__args__", ())
            current = args[-1] if args else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def problems_from(error: ValidationError, model: type[BaseModel] = TradingConfig) -> list[ConfigProblem]:
    problems = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            keys = _allowed_keys(model, loc[:-1])
            allowed = "unknown key" + (f"; allowed keys here: {', '.join(keys)}" if keys else "")
            if renamed := renamed_to(loc):
                allowed = f"'{loc[-1]}' is now called {', '.join(renamed)} (a file is migrated when read; a change "
                allowed += "uses the current name)"
        elif err["type"] == "missing":
            allowed = "this field is required"
        elif err["type"] == "string_pattern_mismatch" and loc and loc[-1] == "[key]":
            allowed = "names use lower-case letters, digits and '_' (strategies start with a letter), no dots"
        elif err["type"] == "model_type" and err.get("input") is None:
            allowed = "a section cannot be null; null its fields one by one, or give {} to reset it"
        else:
            allowed = err["msg"]
        problems.append(ConfigProblem(format_loc(loc), err.get("input"), allowed))
    return problems


def validate_config_data(data: Any, source: str = "configuration") -> TradingConfig:
    """Validate plain JSON data strictly; raise ConfigError naming every bad field."""
    try:
        return TradingConfig.model_validate_json(json.dumps(data, allow_nan=True), strict=True)
    except ValidationError as e:
        problems = problems_from(e)
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"Invalid {source} ({len(problems)} problem(s)):\n{lines}", problems) from None


def decode_config_bytes(raw: bytes, source: str) -> str:
    """The file's text: UTF-8 (a byte-order mark is allowed), not empty, no NUL bytes; else a ConfigError."""
    fix = "Save it as UTF-8 JSON, or delete it to get the defaults."
    if not raw.strip():
        raise ConfigError(
            f"{source} is empty. Write a JSON object ({{}} gives every default) or delete it. {fix}",
            [ConfigProblem("(file)", None, "a JSON object is required")],
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{source} is not UTF-8 text: byte {e.start} is 0x{raw[e.start]:02x}. {fix}",
            [ConfigProblem("(file)", None, "UTF-8 text is required")],
        ) from None
    if "\x00" in text:
        raise ConfigError(
            f"{source} holds NUL bytes (character {text.index(chr(0))}): it is not a JSON text file. {fix}",
            [ConfigProblem("(file)", None, "JSON text is required")],
        )
    return text


def read_config_data(text: str, source: str) -> dict[str, Any]:
    """The file's JSON object (not yet validated)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        snippet = text[max(0, e.pos - 20) : e.pos + 20]
        raise ConfigError(
            f"{source} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}. "
            "Fix the syntax (quotes around keys, no trailing commas) or delete the file to get the defaults.",
            [ConfigProblem("(file)", snippet, "valid JSON is required")],
        ) from None
    except RecursionError:
        raise ConfigError(
            f"{source} nests too deeply to be a configuration.", [ConfigProblem("(file)", None, "a flat object")]
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source} must hold a JSON object at the top level, got {type(data).__name__}.",
            [ConfigProblem("(root)", data, "a JSON object is required")],
        )
    return data


def parse_config_text(text: str, source: str) -> TradingConfig:
    return load_config_text(text, source)[0]


def load_config_text(text: str, source: str) -> tuple[TradingConfig, list[str]]:
    """A file's configuration and the notes of what was migrated from older key names (the file is not changed)."""
    data, notes = migrate(read_config_data(text, source), source)
    return validate_config_data(data, source), notes


def config_to_json(cfg: TradingConfig) -> str:
    return json.dumps(cfg.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"

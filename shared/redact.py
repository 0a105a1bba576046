"""Keep secrets out of the journal, logs and outputs: secret-looking keys and any value of a secret env var."""

from __future__ import annotations

import os
import re
from typing import Any

SECRET_KEY = re.compile(
    r"(api[_-]?key|token|secret|password|passphrase|authorization|private[_-]?key|bearer|credential)",
    re.IGNORECASE,
)
REDACTED = "[redacted]"
# Linear by construction (each runs on every argument, error and log line): a match may start only where the scheme
# word starts, and a parameter name stops at the next '?' or '&', so no character is scanned from two starts. The
# earlier patterns scanned from every character again, quadratic or worse on a few kilobytes of '1' or '?key'.
URL_USERINFO = re.compile(r"(?<!\w)(\w+://)[^/@\s]+@")
URL_PARAM = re.compile(r"([?&][^=&?\s]*=)([^&\s#]+)")
SECRET_PARAM_NAME = re.compile(r"key|token|secret|password|auth|signature", re.IGNORECASE)
MAX_STRING = 2000
CUT_SLACK = 32  # a string cut once (with its "...(+N chars)" note) is not cut again


_secret_names: tuple[tuple[str, ...], list[str]] = ((), [])


def secret_env_values() -> list[str]:
    """Values of environment variables whose names look secret (long enough to be worth hiding).

    Runs on every tool call: the regex scan of the names is redone only when the set of names changes; values are
    always read fresh."""
    global _secret_names
    names = tuple(os.environ)
    if names != _secret_names[0]:
        _secret_names = (names, [k for k in names if SECRET_KEY.search(k) or k.endswith("_KEY")])
    values = (os.environ.get(k, "") for k in _secret_names[1])
    return [v for v in values if len(v) >= 8]


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """Replace secret values, and any user:password inside URLs."""
    for value in secrets if secrets is not None else secret_env_values():
        if value in text:
            text = text.replace(value, REDACTED)
    if "://" in text:
        text = URL_USERINFO.sub(r"\1[redacted]@", text)
    return URL_PARAM.sub(_secret_param, text) if "=" in text else text


def _secret_param(m: re.Match[str]) -> str:
    return m[1] + REDACTED if SECRET_PARAM_NAME.search(m[1]) else m[0]


def redact(value: Any, secrets: list[str] | None = None) -> Any:
    """A copy of `value` with secret keys masked, secret values replaced and long strings cut."""
    secrets = secret_env_values() if secrets is None else secrets
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and SECRET_KEY.search(k) and v not in (None, "") else redact(v, secrets))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        value = redact_text(value, secrets)
        if len(value) > MAX_STRING + CUT_SLACK:
            return value[:MAX_STRING] + f"...(+{len(value) - MAX_STRING} chars)"
    return value

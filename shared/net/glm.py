"""The GLM API's address rule and error wording, shared by the sentiment scorer (discovery_mcp) and the ask fallback
(trading_cli), so both refuse the same bad addresses and report HTTP failures in the same words."""

from __future__ import annotations

import httpx

from shared.errors import TradingMcpError

DEFAULT_BASE_URL = "https://open.bigmodel.cn/api/paas/v4/"  # the zhipuai SDK's own default
_STATUS_HINTS = {
    400: "request rejected, check zai_glm_config.model",
    401: "authentication failed, check ZHIPUAI_API_KEY",
    403: "access denied for this key",
    429: "rate limited or out of quota",
}


class GlmApiError(TradingMcpError):
    """The GLM API cannot be used as configured (address, key)."""


def status_reason(status: int) -> str:
    hint = _STATUS_HINTS.get(status) or ("server error" if status >= 500 else None)
    return f"glm http {status}" + (f": {hint}" if hint else "")


def check_base_url(value: str) -> str:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise GlmApiError(
            f"The GLM address {value!r} is not an http(s) URL such as {DEFAULT_BASE_URL}: fix ZHIPUAI_BASE_URL "
            "(or unset it) or zai_glm_config.api_endpoint."
        )
    return value

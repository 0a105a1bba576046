"""Ask the person (not the model) to confirm, through MCP elicitation. No argument can stand in for it."""

from __future__ import annotations

from typing import Any

import anyio
from mcp.types import ClientCapabilities, ElicitationCapability
from pydantic import BaseModel, Field

from shared.errors import ConfirmationRequired


class Confirmation(BaseModel):
    confirm: bool = Field(description="true to go ahead, false to refuse.")


async def require_confirmation(ctx: Any, rule: str, question: str, timeout_s: float = 300.0) -> str:
    """Return a short record of the person's confirmation, or raise ConfirmationRequired."""
    session = ctx.session if ctx is not None else None
    supported = session is not None and session.check_client_capability(
        ClientCapabilities(elicitation=ElicitationCapability())
    )
    if not supported:
        raise ConfirmationRequired(
            rule,
            "this change needs a person's explicit confirmation through MCP elicitation, and this client does not "
            "support elicitation.",
            "make the change from a client that supports elicitation (so the person is asked), or edit the "
            "configuration file by hand.",
        )
    with anyio.move_on_after(timeout_s) as scope:
        answer = await ctx.elicit(message=question, schema=Confirmation)
    if scope.cancelled_caught:
        raise ConfirmationRequired(
            rule,
            f"no answer to the confirmation request within {timeout_s:g} s, so nothing was changed.",
            "ask again when the person is there to answer.",
        )
    if answer.action == "accept" and answer.data is not None and answer.data.confirm:
        return "confirmed by the person through elicitation"
    how = "declined" if answer.action != "cancel" else "cancelled"
    if answer.action == "accept":
        how = "answered confirm=false"
    raise ConfirmationRequired(
        rule,
        f"the person {how} the confirmation, so nothing was changed.",
        "ask again only if the person wants this change.",
    )

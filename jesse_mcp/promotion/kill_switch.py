"""Resuming trading after the kill switch halted it: an admin transition that needs the person's confirmation (the
halt itself is applied by the paper ledger, trading/kill_switch.py)."""

from __future__ import annotations

from jesse_mcp.promotion.gates import Confirm
from jesse_mcp.trading.models import ResetResult
from jesse_mcp.trading.paper import PaperService
from shared.state import trading_state


async def reset_kill_switch(paper: PaperService, reason: str, confirm: Confirm) -> ResetResult:
    """Show the person the halt and the account, and clear the halt they confirmed (not a newer one)."""
    state = trading_state.read(paper.store)
    if state.active:
        return paper.reset_kill_switch("not asked", reason)  # raises: nothing to reset
    portfolio = await paper.portfolio()
    acct = portfolio.account
    question = (
        f"Trading is halted: {state.reason} Equity {acct.equity:,.2f} USD, peak {acct.peak_equity:,.2f} USD, "
        f"{len(portfolio.positions)} open position(s). Resume trading? Reason given: {reason or 'none'}. "
        "Confirm only if you, the person, want this."
    )
    confirmation = await confirm("kill_switch_reset_needs_confirmation", question)
    return paper.reset_kill_switch(confirmation, reason, seen_since=state.since)

"""One-day VaR and CVaR of a daily equity series as reported in results: three estimates at a confidence, in %
(the numbers come from jesse_mcp.backtesting.analysis.tail_risk)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from jesse_mcp.backtesting.analysis.tail_risk import all_tail_risks


class TailRiskEstimate(BaseModel):
    method: str = Field(description="historical, parametric (normal) or cornish_fisher (skew and fat tails).")
    var_pct: float | None = Field(description="Daily Value at Risk, % of equity: the loss not exceeded on c of days.")
    cvar_pct: float | None = Field(description="Daily CVaR (expected shortfall), % of equity: the mean loss beyond it.")


class TailRisk(BaseModel):
    confidence: float = Field(description="The profile's var_confidence (0.95 = 95 %).")
    daily_returns: int = Field(description="Daily equity returns the estimates come from (at least 10 needed).")
    estimates: list[TailRiskEstimate]


def daily_returns(equity: list[list[float]]) -> np.ndarray:
    """Returns between consecutive daily equity samples ([time, value] pairs)."""
    values = np.array([v for _, v in equity], dtype=float)
    if len(values) < 2 or np.any(values <= 0):
        return np.array([], dtype=float)
    return values[1:] / values[:-1] - 1


def tail_risk_of(returns: np.ndarray, confidence: float) -> TailRisk:
    def pct(x: float | None) -> float | None:
        return None if x is None else round(x * 100, 4)

    return TailRisk(
        confidence=confidence,
        daily_returns=len(returns),
        estimates=[
            TailRiskEstimate(method=t.method, var_pct=pct(t.var), cvar_pct=pct(t.cvar))
            for t in all_tail_risks(returns, confidence)
        ],
    )

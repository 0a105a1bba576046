"""The risk fields, each defined once (bounds, the riskier direction, the description): RiskSettings and RiskOverrides
in shared.config.models are built from this table."""

from __future__ import annotations

from typing import Any

from shared.config.directions import Riskier, knob
from shared.config.profiles import PROFILE_TEMPLATES

# One definition of each risk field: bounds, the riskier direction and the description, shared by RiskSettings and
# RiskOverrides. Risk fields are compared after resolution (global -> profile -> overrides, shared.config.resolve).
_RISK_FIELDS: dict[str, tuple[dict[str, Any], Riskier, str]] = {
    "max_portfolio_risk": (
        {"gt": 0, "le": 0.5},
        "higher",
        "Capital risked per trade, fraction of equity (0.02 = 2 %).",
    ),
    "max_position_size": ({"gt": 0, "le": 1}, "higher", "Largest position notional, fraction of equity."),
    "max_leverage": ({"ge": 1, "le": 125}, "higher", "Largest leverage, a multiple (1.0 = no leverage)."),
    "max_drawdown": ({"gt": 0, "lt": 1}, "higher", "Drawdown from peak at which no new entries are made, fraction."),
    "stop_loss": ({"gt": 0, "lt": 1}, "higher", "Stop-loss distance from entry, fraction of price."),
    "take_profit": ({"gt": 0, "le": 10}, "higher", "Take-profit distance from entry, fraction of price."),
    "var_confidence": ({"gt": 0.5, "lt": 1}, "lower", "Confidence level of Value-at-Risk estimates (0.95 = 95 %)."),
    "max_correlation": ({"ge": 0, "le": 1}, "higher", "Largest return correlation allowed with any open position."),
    "emergency_stop": ({"gt": 0, "lt": 1}, "higher", "Fall of equity from its peak that halts all trading, fraction."),
    "cooldown_minutes": (
        {"ge": 0, "le": 10_080},
        "lower",
        "Protection: minutes after an exit in a market before a new entry there (0 = none).",
    ),
    "stoploss_guard_stops": (
        {"ge": 1, "le": 1000},
        "higher",
        "Protection: this many stop-loss exits within protection_window_hours pause all new entries.",
    ),
    "low_profit_max_loss": (
        {"gt": 0, "le": 10},
        "higher",
        "Protection: a market whose trades of the window lose more than this in all (sum of each trade's return on "
        "its notional, 0.05 = 5 %) is locked for the pause.",
    ),
    "window_drawdown": (
        {"gt": 0, "lt": 1},
        "higher",
        "Protection: equity this far below its high of the window pauses all new entries, fraction.",
    ),
    "protection_window_hours": (
        {"gt": 0, "le": 8760},
        "lower",
        "Protection: the window the stop-loss guard, low-profit lock and drawdown pause look back over, hours.",
    ),
    "protection_pause_hours": (
        {"ge": 0, "le": 8760},
        "lower",
        "Protection: how long the stop-loss guard, low-profit lock and drawdown pause last, hours.",
    ),
    "max_cvar": (
        {"gt": 0, "le": 1},
        "higher",
        "Largest one-day CVaR (expected shortfall at var_confidence) of everything held once an order fills, "
        "fraction of equity; historical simulation on daily closes (0.02 = a 2 % average loss on the worst days).",
    ),
}
RISK_FIELD_NAMES: tuple[str, ...] = tuple(_RISK_FIELDS)
# +1: a larger value is looser (more risk). -1: a smaller value is looser.
RISK_LOOSER_DIRECTION: dict[str, int] = {f: +1 if r == "higher" else -1 for f, (_, r, _) in _RISK_FIELDS.items()}


# Risk fields added after the seed format: a file that leaves them out gets the moderate profile's value.
LATER_RISK_FIELDS = (
    "cooldown_minutes",
    "stoploss_guard_stops",
    "low_profit_max_loss",
    "window_drawdown",
    "protection_window_hours",
    "protection_pause_hours",
    "max_cvar",
)
_LATER_RISK_DEFAULTS: dict[str, float] = {f: PROFILE_TEMPLATES["moderate"][f] for f in LATER_RISK_FIELDS}


def risk_field(field: str, optional: bool = False) -> Any:
    """The pydantic Field of one risk setting, from its one definition in _RISK_FIELDS."""
    bounds, riskier, description = _RISK_FIELDS[field]
    default = None if optional else _LATER_RISK_DEFAULTS.get(field, ...)
    return knob(default, riskier, description, compare="resolved", **bounds)

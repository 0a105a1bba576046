"""The three risk-profile templates, and what 'looser' means for a number.

Values are fractions (0.02 = 2 %) except leverage (a multiple). The ordering conservative < moderate < aggressive
defines what "loosening" means: moving a value in the direction from conservative towards aggressive.
"""

from __future__ import annotations

from typing import Literal

ProfileName = Literal["conservative", "moderate", "aggressive"]
PROFILE_NAMES: tuple[ProfileName, ...] = ("conservative", "moderate", "aggressive")
PROFILE_RANK: dict[str, int] = {name: rank for rank, name in enumerate(PROFILE_NAMES)}

# Exact seed values (ARCHITECTURE "Policy model"), plus max_cvar (not in the seed): the one-day CVaR budget at the
# profile's own confidence. Chosen so that the profile's own position limits fit inside it with room: a crypto
# position's daily CVaR is about 10 % of its notional at 99 %, 6 % at 95 %, 4.5 % at 90 % (BTC, 2019-2024), so
# conservative (2 % at 99 %) holds about 20 % of equity in crypto, moderate (4 % at 95 %) about 65 %, aggressive
# (8 % at 90 %) about 1.8x equity, below what their max_account_usage and leverage would otherwise allow.
# The protections (shared.policy.protections) are not in the seed either: the safer the profile, the longer the
# cooldown and pause and the fewer losses it takes to trigger one.
# Fields a template leaves out (max_correlation 0.7 and
# emergency_stop 0.25 by default) come from `global_risk_settings` during resolution, for every profile.
PROFILE_TEMPLATES: dict[str, dict[str, float]] = {
    "conservative": {
        "max_portfolio_risk": 0.01,
        "max_position_size": 0.05,
        "max_leverage": 1.0,
        "max_drawdown": 0.10,
        "stop_loss": 0.015,
        "take_profit": 0.025,
        "var_confidence": 0.99,
        "cooldown_minutes": 240.0,
        "stoploss_guard_stops": 2.0,
        "low_profit_max_loss": 0.03,
        "window_drawdown": 0.05,
        "protection_window_hours": 24.0,
        "protection_pause_hours": 24.0,
        "max_cvar": 0.02,
    },
    "moderate": {
        "max_portfolio_risk": 0.02,
        "max_position_size": 0.10,
        "max_leverage": 2.0,
        "max_drawdown": 0.15,
        "stop_loss": 0.02,
        "take_profit": 0.04,
        "var_confidence": 0.95,
        "cooldown_minutes": 60.0,
        "stoploss_guard_stops": 3.0,
        "low_profit_max_loss": 0.06,
        "window_drawdown": 0.08,
        "protection_window_hours": 24.0,
        "protection_pause_hours": 12.0,
        "max_cvar": 0.04,
    },
    "aggressive": {
        "max_portfolio_risk": 0.04,
        "max_position_size": 0.20,
        "max_leverage": 5.0,
        "max_drawdown": 0.25,
        "stop_loss": 0.03,
        "take_profit": 0.06,
        "var_confidence": 0.90,
        "cooldown_minutes": 0.0,
        "stoploss_guard_stops": 4.0,
        "low_profit_max_loss": 0.12,
        "window_drawdown": 0.12,
        "protection_window_hours": 24.0,
        "protection_pause_hours": 4.0,
        "max_cvar": 0.08,
    },
}


def is_looser(direction: int, old: float, new: float) -> bool:
    """True when `new` takes more risk than `old` for a field with the given looser direction."""
    return (new - old) * direction > 0

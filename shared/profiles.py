"""The three risk-profile templates and the direction in which each risk field is 'looser'.

Values are fractions (0.02 = 2 %) except leverage (a multiple). The ordering conservative < moderate < aggressive
defines what "loosening" means: moving a value in the direction from conservative towards aggressive.
"""

from __future__ import annotations

from typing import Literal

ProfileName = Literal["conservative", "moderate", "aggressive"]
PROFILE_NAMES: tuple[ProfileName, ...] = ("conservative", "moderate", "aggressive")
PROFILE_RANK: dict[str, int] = {name: rank for rank, name in enumerate(PROFILE_NAMES)}

# Exact seed values (ARCHITECTURE "Policy model"). Fields a template leaves out (max_correlation 0.7 and
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
    },
    "moderate": {
        "max_portfolio_risk": 0.02,
        "max_position_size": 0.10,
        "max_leverage": 2.0,
        "max_drawdown": 0.15,
        "stop_loss": 0.02,
        "take_profit": 0.04,
        "var_confidence": 0.95,
    },
    "aggressive": {
        "max_portfolio_risk": 0.04,
        "max_position_size": 0.20,
        "max_leverage": 5.0,
        "max_drawdown": 0.25,
        "stop_loss": 0.03,
        "take_profit": 0.06,
        "var_confidence": 0.90,
    },
}

# +1: a larger value is looser (more risk). -1: a smaller value is looser.
RISK_LOOSER_DIRECTION: dict[str, int] = {
    "max_portfolio_risk": +1,
    "max_position_size": +1,
    "max_leverage": +1,
    "max_drawdown": +1,
    "stop_loss": +1,
    "take_profit": +1,
    "var_confidence": -1,
    "max_correlation": +1,
    "emergency_stop": +1,
}

PORTFOLIO_LOOSER_DIRECTION: dict[str, int] = {
    "max_total_positions": +1,
    "max_open_positions": +1,
    "max_trades_per_day": +1,
    "max_trades_per_week": +1,
    "max_trades_per_month": +1,
    "position_timeout_hours": +1,
    "min_account_balance": -1,
    "max_account_usage": +1,
}


def is_looser(direction: int, old: float, new: float) -> bool:
    """True when `new` takes more risk than `old` for a field with the given looser direction."""
    return (new - old) * direction > 0


# Paper settings: lower costs flatter the track record that promotion to live is judged on; a longer monitor interval
# lets stops and the kill switch act later.
PAPER_LOOSER_DIRECTION: dict[str, int] = {
    "daily_loss_limit": +1,
    "fee_bps": -1,
    "slippage_bps": -1,
    "monitor_interval_s": +1,
}

# Prices: older quotes and wider outlier bands let a stale or wrong price fill, mark or stop a paper position.
PRICE_LOOSER_DIRECTION: dict[str, int] = {"quote_ttl_s": +1, "max_age_s": +1, "outlier_bps": +1}

# Promotion gates: a gate is looser when it lets weaker evidence through.
PROMOTION_LOOSER_DIRECTION: dict[str, int] = {
    "backtest_max_age_days": +1,
    "backtest_min_sharpe": -1,
    "backtest_min_trades": -1,
    "backtest_min_days": -1,
    "backtest_max_data_age_days": +1,
    "backtest_allow_synthetic": +1,
    "backtest_allow_csv": +1,
    "require_stress_test": -1,
    "paper_min_days": -1,
    "paper_min_sharpe": -1,
    "paper_max_drawdown": +1,
    "paper_min_trades": -1,
    "paper_min_position_share": -1,
}

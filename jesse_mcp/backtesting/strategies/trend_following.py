"""trend_following: EMA crossover with an ADX filter (parameters in jesse_mcp.backtesting.catalog)."""

from __future__ import annotations

import jesse.indicators as ta

from jesse_mcp.backtesting.strategies.base import RiskManagedStrategy


class TrendFollowing(RiskManagedStrategy):
    catalog_name = "trend_following"

    def _emas(self) -> tuple[float, float]:
        return ta.ema(self.candles, int(self.hp["fast_period"])), ta.ema(self.candles, int(self.hp["slow_period"]))

    def _trending(self) -> bool:
        return self.hp["adx_min"] <= 0 or ta.adx(self.candles, int(self.hp["adx_period"])) >= self.hp["adx_min"]

    def long_signal(self) -> bool:
        fast, slow = self._emas()
        return fast > slow and self._trending()

    def short_signal(self) -> bool:
        fast, slow = self._emas()
        return fast < slow and self._trending()

    def exit_long(self) -> bool:
        fast, slow = self._emas()
        return fast < slow

    def exit_short(self) -> bool:
        fast, slow = self._emas()
        return fast > slow

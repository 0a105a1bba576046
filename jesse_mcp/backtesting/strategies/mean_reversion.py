"""mean_reversion: Bollinger Bands with RSI confirmation (parameters in jesse_mcp.backtesting.catalog)."""

from __future__ import annotations

import jesse.indicators as ta

from jesse_mcp.backtesting.strategies.base import RiskManagedStrategy


class MeanReversion(RiskManagedStrategy):
    catalog_name = "mean_reversion"

    def _bands(self):
        sd = float(self.hp["bb_std"])
        return ta.bollinger_bands(self.candles, int(self.hp["bb_period"]), devup=sd, devdn=sd)

    def _rsi(self) -> float:
        return ta.rsi(self.candles, int(self.hp["rsi_period"]))

    def long_signal(self) -> bool:
        return self.close < self._bands().lowerband and self._rsi() <= self.hp["rsi_low"]

    def short_signal(self) -> bool:
        return self.close > self._bands().upperband and self._rsi() >= self.hp["rsi_high"]

    def exit_long(self) -> bool:
        return self.close >= self._bands().middleband

    def exit_short(self) -> bool:
        return self.close <= self._bands().middleband

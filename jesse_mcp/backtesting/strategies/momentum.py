"""momentum: rate of change confirmed by MACD and a trend EMA (parameters in jesse_mcp.backtesting.catalog)."""

from __future__ import annotations

import jesse.indicators as ta

from jesse_mcp.backtesting.strategies.base import RiskManagedStrategy


class Momentum(RiskManagedStrategy):
    catalog_name = "momentum"

    def _hist(self) -> float:
        hp = self.hp
        return ta.macd(
            self.candles, int(hp["macd_fast_period"]), int(hp["macd_slow_period"]), int(hp["macd_signal_period"])
        ).hist

    def _roc(self) -> float:
        return ta.roc(self.candles, int(self.hp["roc_period"]))

    def _trend(self) -> float:
        return ta.ema(self.candles, int(self.hp["trend_period"]))

    def long_signal(self) -> bool:
        return self._roc() >= self.hp["roc_threshold"] and self._hist() > 0 and self.close > self._trend()

    def short_signal(self) -> bool:
        return self._roc() <= -self.hp["roc_threshold"] and self._hist() < 0 and self.close < self._trend()

    def exit_long(self) -> bool:
        return self._hist() < 0

    def exit_short(self) -> bool:
        return self._hist() > 0

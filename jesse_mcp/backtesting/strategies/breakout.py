"""breakout: Donchian channel breakout with a volume filter (parameters in jesse_mcp.backtesting.catalog)."""

from __future__ import annotations

import numpy as np

from jesse_mcp.backtesting.strategies.base import RiskManagedStrategy

HIGH, LOW, VOLUME, CLOSE = 3, 4, 5, 2


class Breakout(RiskManagedStrategy):
    catalog_name = "breakout"

    def _previous(self, period: int) -> np.ndarray:
        # the `period` candles before the current one: a breakout is measured against the channel it breaks
        return self.candles[-period - 1 : -1]

    def _volume_ok(self) -> bool:
        factor = float(self.hp["volume_factor"])
        if factor <= 0:
            return True
        window = self._previous(int(self.hp["channel_period"]))
        return self.volume >= factor * float(np.mean(window[:, VOLUME]))

    def long_signal(self) -> bool:
        window = self._previous(int(self.hp["channel_period"]))
        return len(window) > 0 and self.close > window[:, HIGH].max() and self._volume_ok()

    def short_signal(self) -> bool:
        window = self._previous(int(self.hp["channel_period"]))
        return len(window) > 0 and self.close < window[:, LOW].min() and self._volume_ok()

    def exit_long(self) -> bool:
        window = self._previous(int(self.hp["exit_period"]))
        return len(window) > 0 and self.close < window[:, LOW].min()

    def exit_short(self) -> bool:
        window = self._previous(int(self.hp["exit_period"]))
        return len(window) > 0 and self.close > window[:, HIGH].max()

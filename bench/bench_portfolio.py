"""Portfolio backtest figures (issue 18): one run over 4 markets in one account versus the same 4 markets as 4
one-market runs, one after another, in the same process.

1. Wall time of the portfolio run (4 Jesse routes, every entry through the paper account's pre-trade checks) over the
   sum of the 4 one-market runs' (each with its own account): ratio of medians.
2. The share of the portfolio run spent in the gate (PortfolioRun.refused_by: book, correlations, CVaR, the checks),
   with the number of entry signals it judged and the time per check.
3. Fast mode (the default, normal mode's daily equity rebuilt for several routes) versus Jesse's normal mode on the
   portfolio: ratio of medians; the daily equity must be equal.

Each run is jesse_mcp.backtesting.engine.run_backtest in this process (store load included), trend_following on the
1h route, moderate profile, on synthetic candles (exchange 'synthetic', seeds 11..14). One untimed run first.
No network; the temporary store ends with the process.

Run: uv run python bench/bench_portfolio.py [--days 180] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from jesse_mcp.backtesting import engine
from jesse_mcp.backtesting.catalog import BUILTIN
from jesse_mcp.backtesting.plans import PlanRequest, build_plan
from jesse_mcp.backtesting.strategies import portfolio
from jesse_mcp.candles.ops import generate_synthetic
from shared.config.models import TradingConfig
from shared.market.candles import CandleStore

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DAY_MS = 86_400_000
MARKETS = ("BTC-USDT", "ETH-USDT", "SOL-USDT", "BNB-USDT")
STRATEGY, PROFILE = "trend_following", "moderate"


def timed(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    t = time.perf_counter()
    out = engine.run_backtest(spec)
    return time.perf_counter() - t, out


class GateClock:
    """Time spent in PortfolioRun.refused_by, and how many entry signals it judged."""

    def __init__(self) -> None:
        self.seconds, self.calls, self._real = 0.0, 0, portfolio.PortfolioRun.refused_by

    def __enter__(self) -> GateClock:
        clock, real = self, self._real

        def refused_by(run: Any, strategy: Any, long: bool, notional: float) -> list[str]:
            t = time.perf_counter()
            try:
                return real(run, strategy, long, notional)
            finally:
                clock.seconds += time.perf_counter() - t
                clock.calls += 1

        portfolio.PortfolioRun.refused_by = refused_by
        return self

    def __exit__(self, *exc: Any) -> None:
        portfolio.PortfolioRun.refused_by = self._real


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=180, help="traded days (plus warm-up room)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        candles = CandleStore(Path(tmp) / "candles")
        for i, symbol in enumerate(MARKETS):
            generate_synthetic(candles, symbol, START_MS, START_MS + (args.days + 30) * DAY_MS, seed=11 + i)
        cfg = TradingConfig()

        def spec(**req: Any) -> dict[str, Any]:
            r = PlanRequest(days=args.days, risk_profile=PROFILE, **req)
            return build_plan(cfg=cfg, candles=candles, strategy=BUILTIN[STRATEGY], req=r).spec

        whole = spec(markets=MARKETS)
        singles = [spec(symbol=s) for s in MARKETS]
        timed(whole)  # untimed: Jesse's import and first-run caches
        together, apart, normal, gate_share, per_check = [], [], [], [], []
        for _ in range(args.repeat):
            with GateClock() as gate:
                seconds, out = timed(whole)
            together.append(seconds)
            gate_share.append(gate.seconds / seconds)
            per_check.append(gate.seconds / max(gate.calls, 1))
            apart.append(sum(timed(s)[0] for s in singles))
            n_seconds, n_out = timed({**whole, "fast_mode": False})
            normal.append(n_seconds)
            assert out["fast_mode"] and n_out["equity"] == out["equity"], "fast mode must equal normal mode"
        med = statistics.median
        print(f"{len(MARKETS)} markets x {args.days} days, {STRATEGY} 1h {PROFILE}; {len(out['trades'])} trades")
        print(f"  refused by the gate: {out['portfolio']['refused']}; entry signals judged per run: {gate.calls}")
        print(f"portfolio run            {med(together):7.2f} s (median of {args.repeat})")
        ratio = med(together) / med(apart)
        print(f"4 one-market runs        {med(apart):7.2f} s  -> ratio portfolio / singles = {ratio:.2f}")
        print(f"gate share of the run    {med(gate_share) * 100:7.1f} %  ({med(per_check) * 1000:.2f} ms per check)")
        print(
            f"normal mode (portfolio)  {med(normal):7.2f} s  -> ratio fast / normal = {med(together) / med(normal):.2f}"
        )


if __name__ == "__main__":
    main()

"""The equity and drawdown picture of a backtest (matplotlib, Agg), as PNG bytes; a portfolio's adds each market's
P&L."""

from __future__ import annotations

import io

import numpy as np


def equity_png(equity: list[list[float]], title: str, lines: dict[str, list[float]] | None = None) -> bytes | None:
    """`lines`: each market's P&L at the equity's times (a portfolio backtest), drawn in a panel of its own."""
    if len(equity) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from datetime import UTC, datetime

    import matplotlib.pyplot as plt

    times = [datetime.fromtimestamp(t, UTC) for t, _ in equity]
    values = np.array([v for _, v in equity])
    peak = np.maximum.accumulate(values)
    ratios = [3, 2, 1] if lines else [3, 1]
    fig, axes = plt.subplots(
        len(ratios), 1, figsize=(9, 2 + len(ratios) * 1.5), sharex=True, gridspec_kw={"height_ratios": ratios}
    )
    ax1, ax2 = axes[0], axes[-1]
    ax1.plot(times, values, color="#1f5fbf", linewidth=1.4)
    ax1.set_ylabel("Equity")
    ax1.set_title(title, fontsize=10)
    ax1.grid(alpha=0.3)
    if lines:
        for symbol, pnl in lines.items():
            axes[1].plot(times, pnl, linewidth=1.0, label=symbol)
        axes[1].axhline(0, color="#888", linewidth=0.6)
        axes[1].set_ylabel("P&L by market")
        axes[1].legend(fontsize=7, loc="upper left", ncol=min(len(lines), 4))
        axes[1].grid(alpha=0.3)
    ax2.fill_between(times, (values / peak - 1) * 100, 0, color="#c0392b", alpha=0.5)
    ax2.set_ylabel("Drawdown %")
    ax2.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()

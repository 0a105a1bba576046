"""The equity and drawdown picture of a backtest (matplotlib, Agg), as PNG bytes."""

from __future__ import annotations

import io

import numpy as np


def equity_png(equity: list[list[float]], title: str) -> bytes | None:
    if len(equity) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from datetime import UTC, datetime

    import matplotlib.pyplot as plt

    times = [datetime.fromtimestamp(t, UTC) for t, _ in equity]
    values = np.array([v for _, v in equity])
    peak = np.maximum.accumulate(values)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax1.plot(times, values, color="#1f5fbf", linewidth=1.4)
    ax1.set_ylabel("Equity")
    ax1.set_title(title, fontsize=10)
    ax1.grid(alpha=0.3)
    ax2.fill_between(times, (values / peak - 1) * 100, 0, color="#c0392b", alpha=0.5)
    ax2.set_ylabel("Drawdown %")
    ax2.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()

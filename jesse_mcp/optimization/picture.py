"""A study as a PNG: the optimization history (each trial's first objective, infeasible ones marked, the best
feasible so far) and each searched parameter against that objective. Plain matplotlib on the Agg backend: Optuna's
own matplotlib plots are marked experimental and draw one figure per plot."""

from __future__ import annotations

import io

from jesse_mcp.optimization.models import OBJECTIVES, TrialRow


def study_png(rows: list[TrialRow], objective: str, title: str) -> bytes | None:
    import matplotlib  # imported when a picture is asked for: a second of the server's start otherwise

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.values and r.state in ("feasible", "infeasible")]
    if not done:
        return None
    params = sorted({k for r in done for k in r.params})
    fig, axes = plt.subplots(1, 1 + len(params), figsize=(4 + 3 * len(params), 3.2), squeeze=False)
    ax = axes[0][0]
    ok = [r for r in done if r.state == "feasible"]
    bad = [r for r in done if r.state == "infeasible"]
    ax.scatter([r.number for r in ok], [r.values[objective] for r in ok], s=14, label="feasible")
    ax.scatter([r.number for r in bad], [r.values[objective] for r in bad], s=14, marker="x", label="infeasible")
    best, line = None, []
    better = max if OBJECTIVES[objective][1] == "maximize" else min
    for r in sorted(ok, key=lambda r: r.number):
        best = r.values[objective] if best is None else better(best, r.values[objective])
        line.append((r.number, best))
    if line:
        ax.step([n for n, _ in line], [b for _, b in line], where="post", label="best feasible")
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.set_title("history")
    ax.legend(fontsize=7)
    for i, name in enumerate(params, start=1):
        a = axes[0][i]
        a.scatter([r.params.get(name) for r in done], [r.values[objective] for r in done], s=12)
        a.set_xlabel(name)
        a.set_title(name)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()

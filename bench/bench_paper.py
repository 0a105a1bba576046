"""jesse-mcp paper trading: one paper market order end to end, with a cached price.

`place_paper_order` through an in-memory MCP session: argument validation, the wrapper's guard, reconciliation of
the open positions, the consensus price, the daily-return correlation with every open position, every pre-trade
check and the guard decision inside the order's SQLite transaction, the order, fill and position rows, the journal
row. Prices come from the real price library (LibraryPrices over QuoteService/OhlcvService) whose providers point at a
local fake market on 127.0.0.1; `quote_ttl_s` keeps the quote cached and closed daily candles are cached, so the
cached path is what is measured. Two positions in other symbols stay open, so the correlation check runs against
both; each measured order's own position is closed again (not measured) so the next order meets the same book.

Target: p99 < 10 ms. The pieces are timed with perf_counter accumulators patched around them (GuardedTool.run, the
wrapper's policy_decision, PaperService.reconcile / ._daily_risk, PaperOrders.place_in, the max_cvar check's
order_tail, the `decide` that orders.py calls, Store.transaction, the client's output-schema check). The guard's
share: the wrapper's guard (configuration, trading state, decide) plus place_in from its start to the return of its
decide() (the reads the checks need, every check, the decision).

Run: uv run python bench/bench_paper.py [--no-autocheckpoint]
(--no-autocheckpoint turns SQLite's automatic WAL checkpoint off for the run: a diagnostic of the tail, not a setting.)
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from mcp import ClientSession
from mcp.shared.memory import create_connected_server_and_client_session as connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import jesse_mcp.trading.checks as checks_module
import jesse_mcp.trading.orders as orders_module
import shared.server.calls as calls_module
import shared.server.registry as tooling
from jesse_mcp.server import build_server
from shared.config.models import PRICE_PROVIDERS
from shared.server.common import make_deps
from tests.fake_price_server import FakeMarket
from tests.paper_helpers import NoPool, configure

N, WARMUP = 1000, 50
TIME_LIMIT_S = 600
SYMBOL = "BTC-USDT"
OTHERS = {"ETH-USDT": "long", "SOL-USDT": "short"}  # open all along: the correlation check runs against both
PRICES = {"BTC-USDT": "60000.5", "ETH-USDT": "3000.25", "SOL-USDT": "150.125"}
DAY_MS = 86_400_000


class DailyMarket(FakeMarket):
    """FakeMarket whose klines honour `interval` and give each symbol its own daily path (a shared factor plus its
    own noise), so return correlations are real numbers, not 1.0."""

    def binance_klines(self, path, q, now):
        step = {"1d": DAY_MS, "1h": 3_600_000}[q.get("interval", "1h")]
        start = int(q.get("startTime", 0))
        end = min(int(q.get("endTime", now * 1000)), int(now * 1000))
        rows = []
        for t in range(start - start % step, end + 1, step):
            p = f"{self._close(q['symbol'], t // step):.4f}"
            rows.append([t, p, p, p, p, "1.0", t + step - 1, "0", 1, "0", "0", "0"])
            if len(rows) >= int(q.get("limit", 500)):
                break
        return 200, rows

    @staticmethod
    def _close(symbol: str, day: int) -> float:
        common = random.Random(day).gauss(0, 1)
        own = random.Random(zlib.crc32(symbol.encode()) * 100_003 + day).gauss(0, 1)
        return 100 * math.exp(0.03 * (0.6 * common + 0.8 * own))


class Meter:
    """perf_counter accumulators around the pieces of a call, one row per measured call."""

    def __init__(self) -> None:
        self.on = False
        self.rows: list[dict[str, float]] = []
        self.current: dict[str, float] = defaultdict(float)
        self.stack: list[str] = []
        self.checks_from: float | None = None

    def begin(self) -> None:
        self.on, self.current = True, defaultdict(float)

    def end(self, e2e: float) -> None:
        self.rows.append({**self.current, "e2e": e2e})

    def add(self, name: str, seconds: float) -> None:
        if self.on:
            self.current[name] += seconds
            self.current[f"{name}_count"] += 1

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        self.stack.append(name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)
            self.stack.pop()

    def wrap(self, name: str, fn: Callable[..., Any], is_async: bool) -> Callable[..., Any]:
        if is_async:

            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                with self.span(name):
                    return await fn(*args, **kwargs)

            return timed_async

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.span(name):
                return fn(*args, **kwargs)

        return timed


def instrument(meter: Meter, deps: Any) -> Callable[[], None]:
    """Patch the accumulators in; returns the undo."""
    paper = deps.extras.paper
    store = deps.store
    undo: list[Callable[[], None]] = []

    def patch(owner: Any, attr: str, new: Any) -> None:
        old = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
        setattr(owner, attr, new)
        undo.append(lambda: setattr(owner, attr, old) if isinstance(owner, type) else delattr(owner, attr))

    # The client: the SDK's ClientSession checks structuredContent against the tool's output schema (jsonschema).
    patch(
        ClientSession, "_validate_tool_result", meter.wrap("client_validate", ClientSession._validate_tool_result, True)
    )
    # The server side of the tool call, and the wrapper's guard (configuration, trading state, decide).
    patch(tooling.GuardedTool, "run", meter.wrap("server", tooling.GuardedTool.run, True))
    patch(tooling, "policy_decision", meter.wrap("wrapper_guard", tooling.policy_decision, False))
    patch(calls_module, "decide", meter.wrap("decide", calls_module.decide, False))
    # The paper service: reconciliation, the price, correlations, the order transaction.
    patch(paper, "reconcile", meter.wrap("reconcile", paper.reconcile, True))
    patch(paper, "_daily_risk", meter.wrap("correlations", paper._daily_risk, True))
    patch(checks_module, "order_tail", meter.wrap("cvar", checks_module.order_tail, False))
    patch(orders_module, "locks_in", meter.wrap("locks", orders_module.locks_in, False))
    quote = paper.prices.quote

    async def order_quote(symbol: str) -> Any:
        if "reconcile" in meter.stack:
            return await quote(symbol)
        with meter.span("quote"):
            return await quote(symbol)

    patch(paper.prices, "quote", order_quote)
    place_in = paper._orders.place_in

    def timed_place_in(*args: Any, **kwargs: Any) -> Any:
        meter.checks_from = time.perf_counter()
        with meter.span("place_in"):
            return place_in(*args, **kwargs)

    patch(paper._orders, "place_in", timed_place_in)
    decide = orders_module.decide

    def timed_decide(*args: Any, **kwargs: Any) -> Any:
        with meter.span("decide"):
            decision = decide(*args, **kwargs)
        if meter.checks_from is not None:  # from _place_in's start to the decision: reads, checks, decide
            meter.add("checks_to_decision", time.perf_counter() - meter.checks_from)
            meter.checks_from = None
        return decision

    patch(orders_module, "decide", timed_decide)
    transaction = store.transaction

    @contextlib.contextmanager
    def timed_transaction() -> Iterator[Any]:
        name = "order_transaction" if meter.stack and meter.stack[-1] == "server" else "other_transaction"
        with meter.span(name), transaction() as db:
            yield db

    patch(store, "transaction", timed_transaction)
    patch(store, "journal_finish", meter.wrap("journal_finish", store.journal_finish, False))

    def restore() -> None:
        for fn in reversed(undo):
            fn()

    return restore


def write_config(home: Path) -> None:
    providers = {n: {"enabled": n in ("binance", "coinbase", "kraken")} for n in PRICE_PROVIDERS}
    configure(
        home,
        stage="paper",
        **{
            "strategies.trend_following.stage": "paper",
            "portfolio_limits.max_total_positions": 10_000,
            "portfolio_limits.max_open_positions": 10_000,
            "portfolio_limits.max_daily_trades": 1_000_000,
            "portfolio_limits.max_weekly_trades": 1_000_000,
            "portfolio_limits.max_monthly_trades": 1_000_000,
            "portfolio_limits.min_account_balance": 0,
            "paper.starting_balance": 1_000_000,
            # each measured order's position is closed again: no protection may pause the next (they stay checked)
            "strategies.trend_following.risk_overrides.cooldown_minutes": 0.0,
            "strategies.trend_following.risk_overrides.stoploss_guard_stops": 1000.0,
            "strategies.trend_following.risk_overrides.low_profit_max_loss": 10.0,
            "strategies.trend_following.risk_overrides.window_drawdown": 0.99,
            "paper.monitor_interval_s": 3600,  # the background monitor stays out of the measurement
            "price_config.quote_ttl_s": 3600,  # the price stays cached for the whole run
            "price_config.providers": providers,
        },
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f}"


def report(meter: Meter, failures: int, checks: list[dict[str, Any]]) -> None:
    col = {k: np.array([r.get(k, 0.0) for r in meter.rows]) for k in {k for r in meter.rows for k in r}}
    e2e, server = col["e2e"], col["server"]
    parts = ("wrapper_guard", "reconcile", "quote", "correlations", "order_transaction", "journal_finish")
    rows = [
        ("MCP session + transport (end to end - server)", e2e - server, ""),
        ("  of which the client's output-schema check (SDK, jsonschema)", col["client_validate"], ""),
        ("server: GuardedTool.run", server, ""),
        ("  wrapper guard (policy_decision: config, trading state, decide)", col["wrapper_guard"], "guard"),
        ("  reconcile (2 open positions, cached marks)", col["reconcile"], ""),
        ("  consensus quote (cached)", col["quote"], ""),
        ("  daily returns: correlations, CVaR series (cached daily candles, numpy)", col["correlations"], ""),
        ("  order transaction (BEGIN IMMEDIATE .. COMMIT)", col["order_transaction"], ""),
        ("    pre-trade checks up to the decision (reads, checks, decide)", col["checks_to_decision"], "guard"),
        ("      of which the max_cvar check (order_tail: CVaR with and without the order)", col["cvar"], ""),
        ("      of which the protections (locks_in: the strategy's exits and equity replayed)", col["locks"], ""),
        (
            "    order/fill/position writes, snapshot, result (rest of _place_in)",
            col["place_in"] - col["checks_to_decision"],
            "",
        ),
        (
            "    journal row, duplicate check, commit (rest of the transaction)",
            col["order_transaction"] - col["place_in"],
            "",
        ),
        ("  journal_finish (outside the order transaction)", col["journal_finish"], ""),
        ("  other (argument validation, reads, result serialisation)", server - sum(col[k] for k in parts), ""),
        ("end to end", e2e, ""),
    ]
    mean = float(e2e.mean())
    p50, p90, p99 = np.percentile(e2e, [50, 90, 99])
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print("prices: the real price library (LibraryPrices over QuoteService/OhlcvService), fake market on 127.0.0.1")
    print(f"place_paper_order, market, {len(e2e)} calls after {WARMUP} warm-up calls ({failures} failed)")
    print(
        f"  end to end (client call_tool): p50 {ms(p50)} ms  p90 {ms(p90)} ms  p99 {ms(p99)} ms  max {ms(e2e.max())} ms"
    )
    print(f"  target p99 < 10 ms: {'met' if p99 < 0.010 else 'NOT met'}")
    print(f"  machine: {os.cpu_count()} CPUs, load average {load} at the end (other work on it inflates the tail)")
    corr = [c["detail"].split(" (")[0] for c in checks if c["rule"] == "max_correlation"]
    print(f"  checks per order: {len(checks)}, of which max_correlation: {'; '.join(corr)}")
    print(f"\n  {'per order':<72} {'mean ms':>8} {'p99 ms':>8} {'share':>7}")
    for label, values, _ in rows:
        p99_part = np.percentile(values, 99)
        print(f"  {label:<72} {ms(values.mean())} {ms(p99_part)} {values.mean() / mean * 100:6.1f}%")
    guard = sum(values for _, values, tag in rows if tag == "guard")
    decide = col["decide"]
    print(
        f"\n  guard share (wrapper guard + pre-trade checks up to the decision): mean {ms(guard.mean())} ms = "
        f"{guard.mean() / mean * 100:.1f}% of end to end (p99 {ms(np.percentile(guard, 99))} ms)"
    )
    print(
        f"  of which shared.policy.guard.decide itself ({col['decide_count'].mean():.0f} calls per order): "
        f"{ms(decide.mean())} ms = {decide.mean() / mean * 100:.2f}%"
    )
    print(
        f"  _place_in (checks and writes inside the transaction): {col['place_in'].mean() / mean * 100:.1f}%; the "
        f"order transaction: {col['order_transaction'].mean() / mean * 100:.1f}%"
    )


async def measure(client: ClientSession, meter: Meter, market: FakeMarket) -> tuple[int, list[dict[str, Any]], int]:
    """Returns the failed calls, the checks of one order, and the HTTP requests made while measuring."""
    order = {"strategy": "trend_following", "symbol": SYMBOL, "side": "long", "notional_usd": 100.0}
    for symbol, side in OTHERS.items():
        kept = {**order, "symbol": symbol, "side": side, "client_order_id": f"keep-{symbol}"}
        r = await client.call_tool("place_paper_order", kept)
        assert not r.isError, r.content
    failures = 0
    checks: list[dict[str, Any]] = []
    for i in range(WARMUP + N):
        if i == WARMUP:
            before = len(market.requests)
        if i >= WARMUP:
            meter.begin()
        t0 = time.perf_counter()
        r = await client.call_tool("place_paper_order", {**order, "client_order_id": f"o{i}"})
        elapsed = time.perf_counter() - t0
        meter.on = False
        if r.isError:
            failures += 1
            print("failed:", r.content[0].text[:300])  # type: ignore[union-attr]
            continue
        if i >= WARMUP:
            meter.end(elapsed)
        out = r.structuredContent or {}
        checks = checks or out["checks"]
        closed = await client.call_tool("close_paper_position", {"position_id": out["position"]["id"]})
        assert not closed.isError, closed.content
    return failures, checks, len(market.requests) - before


async def bench(home: Path, market: FakeMarket, autocheckpoint: bool) -> None:
    deps = make_deps("jesse-mcp", home)
    if not autocheckpoint:  # diagnostic: how much of the tail SQLite's automatic WAL checkpoint is
        deps.store._db.execute("PRAGMA wal_autocheckpoint=0")
    print(f"SQLite WAL auto-checkpoint: {'on (as shipped)' if autocheckpoint else 'OFF (diagnostic run)'}")
    server = build_server(deps, warmup=(), pool=NoPool())
    meter = Meter()
    restore = instrument(meter, deps)
    try:
        with anyio.fail_after(TIME_LIMIT_S):
            async with connect(server._mcp_server) as client:
                failures, checks, http = await measure(client, meter, market)
    finally:
        restore()
        await deps.extras.paper.prices.aclose()
        deps.store.close()
    report(meter, failures, checks)
    cached = "quotes and daily candles came from the caches" if http == 0 else "NOT the cached path alone"
    print(f"  HTTP requests to the fake market while measuring: {http} ({cached})")


def main() -> None:
    logging.disable(logging.CRITICAL)
    table = {"binance": PRICES, "coinbase": PRICES, "kraken": PRICES}
    with tempfile.TemporaryDirectory(prefix="bench-paper-") as tmp, DailyMarket(table, lifetime_s=TIME_LIMIT_S) as m:
        home = Path(tmp)
        os.environ.update(m.env())
        os.environ["TRADING_MCP_HOME"] = tmp
        os.environ["TRADING_MCP_CONFIG"] = str(home / "config.json")
        write_config(home)
        anyio.run(bench, home, m, "--no-autocheckpoint" not in sys.argv)


if __name__ == "__main__":
    main()

"""The paper ledger shared by several OS processes: limits hold across processes, a crash mid-order leaves the whole
order or no trace of it, a client order id fills once whoever places it, and fills use only fresh consensus prices.

The processes are tests/jesse_mcp/trading/paper_worker.py, each with its own jesse-mcp server and MCP session on one
state folder."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from jesse_mcp.trading.paper import OrderRequest, PaperService
from jesse_mcp.trading.prices import LibraryPrices, NoPrice
from shared.config.store import ConfigStore
from shared.state import counters
from shared.state.store import Store
from tests.fake_price_server import FakeMarket
from tests.jesse_mcp.trading.paper_worker import KILL_POINTS, ledger_counts
from tests.paper_helpers import Clock, TablePrices, configure
from tests.timeouts import hang_guard

# real processes; one xdist worker runs the day-limit race once
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("paper-processes")]

ROOT = Path(__file__).resolve().parents[3]  # the repository: tests/jesse_mcp/trading/ is three levels down
CLOCK = 1_790_000_000.0
PRICES = {"BTC-USDT": 60_000.0}
STRATEGY = "trend_following"
DAY_KEY = counters.window_keys("paper_trades", datetime.fromtimestamp(CLOCK, UTC))["day"]
PAPER = {
    "stage": "paper",
    f"strategies.{STRATEGY}.stage": "paper",
    # every order is on one symbol: a correlation of 1.0 with the open positions is allowed here
    f"strategies.{STRATEGY}.risk_overrides.max_correlation": 1.0,
    "portfolio_limits.max_open_positions": 1000,
    "portfolio_limits.max_total_positions": 1000,
    "portfolio_limits.max_weekly_trades": 1000,
    "portfolio_limits.max_monthly_trades": 1000,
    "portfolio_limits.min_account_balance": 0,
}
ONE_ORDER = {"orders": 1, "fills": 1, "positions": 1, "journal": 1, "trades_counted": 1, "accounts": 1}
NOTHING = dict.fromkeys(ONE_ORDER, 0)


def order(client_order_id: str, notional_usd: float = 100.0) -> dict[str, Any]:
    return {
        "strategy": STRATEGY,
        "symbol": "BTC-USDT",
        "side": "long",
        "notional_usd": notional_usd,
        "client_order_id": client_order_id,
    }


class Workers:
    """Starts paper_worker.py processes on `home`; the fixture kills what is left and reaps every one."""

    def __init__(self, home: Path):
        self.home = home
        self.procs: list[subprocess.Popen[str]] = []

    def spawn(self, **spec: Any) -> subprocess.Popen[str]:
        env = {**os.environ, "TRADING_MCP_HOME": str(self.home), "TRADING_MCP_CONFIG": str(self.home / "config.json")}
        argv = [
            sys.executable,
            "-m",
            "tests.jesse_mcp.trading.paper_worker",
            json.dumps({"prices": PRICES, "clock": CLOCK, **spec}),
        ]
        with open(self.home / f"worker-{len(self.procs)}.log", "w") as stderr:
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        self.procs.append(proc)
        return proc

    def log(self, proc: subprocess.Popen[str]) -> str:
        return (self.home / f"worker-{self.procs.index(proc)}.log").read_text()[-3000:]

    def finish(self, proc: subprocess.Popen[str]) -> list[str]:
        out, _ = proc.communicate(timeout=hang_guard(300))
        return out.splitlines()

    def run_together(self, *order_lists: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """One worker per order list; all build their server and session first, then start at one signal."""
        procs = [self.spawn(orders=orders, barrier=True) for orders in order_lists]
        for p in procs:
            assert p.stdout.readline() == "ready\n", self.log(p)
        for p in procs:  # the start signal, to every worker at once
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            lines = self.finish(p)
            assert p.returncode == 0 and lines, self.log(p)
            results.append(json.loads(lines[-1]))
        return results

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for pipe in (p.stdin, p.stdout):
                if pipe is not None and not pipe.closed:
                    pipe.close()


@contextlib.contextmanager
def watched(w: Workers) -> Iterator[Workers]:
    """Kill what is left of the workers at the end; a hung worker fails the test instead of hanging the suite."""
    watchdog = threading.Timer(90, w.close)
    watchdog.start()
    try:
        yield w
    finally:
        watchdog.cancel()
        w.close()


@pytest.fixture
def workers(home: Path) -> Iterator[Workers]:
    with watched(Workers(home)) as w:
        yield w


def open_store(home: Path) -> contextlib.closing[Store]:
    return contextlib.closing(Store(home / "state.db"))


def query(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with store.transaction() as db:
        return db.execute(sql).fetchall()


def counts(store: Store) -> dict[str, int]:
    with store.transaction() as db:
        return ledger_counts(db)


def service(store: Store, home: Path, now: float = CLOCK) -> PaperService:
    clock = Clock(now)
    return PaperService(store, ConfigStore(home / "config.json").load, TablePrices(PRICES, clock=clock), clock=clock)


# --- several processes, one limit ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def day_limit_race(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """Three processes place 30 orders each at one signal against max_daily_trades = 20. A BTC-USDT position from
    the day before is open, so each order measures its correlation with BTC-USDT before the race (see
    test_an_order_is_not_refused_for_a_same_symbol_position_another_process_opened_while_it_was_checked)."""
    home = tmp_path_factory.mktemp("day-limit")
    configure(home, **PAPER, **{"portfolio_limits.max_daily_trades": 20})
    with open_store(home) as store:
        anyio.run(service(store, home, CLOCK - 86_400).place_order, OrderRequest(**order("yesterday")))
    with watched(Workers(home)) as w:
        results = w.run_together(*[[order(f"w{n}-{i}", 100.0 + i) for i in range(30)] for n in range(3)])
    return home, [r for worker in results for r in worker]


def test_three_processes_together_fill_exactly_the_daily_trade_limit_and_the_rest_are_denied(day_limit_race):
    home, outcomes = day_limit_race
    filled = [r for r in outcomes if r["ok"]]
    denied = [r for r in outcomes if not r["ok"]]
    assert len(filled) == 20 and not any(r["duplicate"] for r in filled)
    assert Counter(r["rule"] for r in denied) == {"max_daily_trades": 70}, denied[:3]
    with open_store(home) as store:
        assert counters.value(store, DAY_KEY) == 20
        # yesterday's order and the 20 of today, each whole
        assert counts(store) == {
            "orders": 21,
            "fills": 21,
            "positions": 21,
            "journal": 91,
            "trades_counted": 21,
            "accounts": 1,
        }
        linked = query(
            store,
            "SELECT o.client_order_id FROM paper_orders o JOIN paper_fills f ON f.order_id = o.id "
            "JOIN paper_positions p ON p.id = o.position_id AND p.id = f.position_id "
            "WHERE o.status = 'filled' AND f.action = 'open'",
        )
    assert sorted(row[0] for row in linked) == sorted([*(r["client_order_id"] for r in filled), "yesterday"])


def test_every_concurrent_order_is_journaled_once_as_allowed_or_denied_with_its_rule(day_limit_race):
    home, _ = day_limit_race
    with open_store(home) as store:
        journal = store.journal_query(tool="place_paper_order", limit=1000)
    through_mcp = [j for j in journal if j.arguments.get("client_order_id", "").startswith("w")]
    assert Counter((j.decision, j.outcome, j.rule) for j in through_mcp) == {
        ("allow", "ok", None): 20,
        ("deny", "denied", "max_daily_trades"): 70,
    }
    assert len({j.arguments["client_order_id"] for j in through_mcp}) == 90


def test_the_cash_after_concurrent_fills_is_the_start_less_each_fills_margin_and_fee(day_limit_race):
    home, _ = day_limit_race
    with open_store(home) as store:
        ((start, cash),) = query(store, "SELECT starting_balance, cash FROM paper_account")
        fills = query(
            store,
            "SELECT f.qty * f.price / o.leverage, f.fee FROM paper_fills f JOIN paper_orders o ON o.id = f.order_id",
        )
        ((margin, fees),) = query(store, "SELECT SUM(margin), SUM(fees) FROM paper_positions")
    assert len(fills) == 21
    assert cash == pytest.approx(start - sum(m + f for m, f in fills), abs=1e-6)
    assert cash == pytest.approx(start - margin - fees, abs=1e-6)


@pytest.mark.anyio
async def test_an_order_is_not_refused_for_a_same_symbol_position_another_process_opened_while_it_was_checked(
    home, monkeypatch
):
    """Correlation with the same symbol is 1.0 without any data; max_correlation = 1.0 allows it, whenever the other
    position was opened."""
    configure(home, **PAPER)
    with open_store(home) as mine, open_store(home) as theirs:  # two connections, as two processes have
        me, other = service(mine, home), service(theirs, home)
        measure = me._daily_risk

        async def measure_then_the_other_process_fills(*args: Any) -> Any:
            measured = await measure(*args)
            await other.place_order(OrderRequest(**order("theirs-1")))
            return measured

        monkeypatch.setattr(me, "_daily_risk", measure_then_the_other_process_fills)
        result = await me.place_order(OrderRequest(**order("mine-1")))
        assert result.fill is not None and counts(mine)["positions"] == 2


# --- a crash in the middle of an order ---------------------------------------------------------------------------
@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_process_killed_inside_an_order_leaves_the_whole_order_or_no_trace(home, workers, point):
    configure(home, **PAPER)
    proc = workers.spawn(orders=[order("crash-1")], kill_at=point)
    lines = workers.finish(proc)
    assert proc.returncode == -signal.SIGKILL, workers.log(proc)
    killed = json.loads(lines[0])
    assert killed["killed_at"] == point
    written = {
        "order_row": {**ONE_ORDER, "fills": 0, "positions": 0, "journal": 0, "trades_counted": 0},
        "fill": {**ONE_ORDER, "journal": 0},
    }
    assert killed["seen"] == written.get(point, ONE_ORDER)  # what the killed transaction held at that moment

    with open_store(home) as store:
        assert query(store, "PRAGMA integrity_check") == [("ok",)]
        committed = point == "commit"
        assert counts(store) == (ONE_ORDER if committed else NOTHING)
        assert counters.value(store, DAY_KEY) == int(committed)
        journal = store.journal_query(tool="place_paper_order")
        assert [(j.decision, j.outcome) for j in journal] == [("allow", "ok")] * int(committed)

        # The client retries with the same id, as after any timeout: it fills once in all.
        retry = anyio.run(service(store, home).place_order, OrderRequest(**order("crash-1")))
        assert retry.duplicate is committed and retry.order.status == "filled"
        assert counts(store) == ONE_ORDER
        ((cash, start),) = query(store, "SELECT cash, starting_balance FROM paper_account")
        ((margin, fees),) = query(store, "SELECT margin, fees FROM paper_positions")
        assert cash == pytest.approx(start - margin - fees)


# --- idempotency across processes ------------------------------------------------------------------------------
def test_two_processes_placing_the_same_client_order_ids_at_once_fill_each_once_and_agree_on_the_order(home, workers):
    configure(home, **PAPER)
    ids = [f"same-{i}" for i in range(8)]
    first, second = workers.run_together([order(i) for i in ids], [order(i) for i in ids])

    assert all(r["ok"] for r in first + second), first + second
    for a, b in zip(first, second, strict=True):
        assert a["client_order_id"] == b["client_order_id"] and a["order_id"] == b["order_id"]
        assert sorted([a["duplicate"], b["duplicate"]]) == [False, True]
    with open_store(home) as store:
        # every call is journaled, the retry that changed nothing too
        assert counts(store) == {
            "orders": 8,
            "fills": 8,
            "positions": 8,
            "journal": 16,
            "trades_counted": 8,
            "accounts": 1,
        }
        per_order = query(store, "SELECT order_id, COUNT(*) FROM paper_fills GROUP BY order_id")
        journal = store.journal_query(tool="place_paper_order", limit=100)
    assert sorted(per_order) == sorted((r["order_id"], 1) for r in first)
    assert Counter((j.decision, j.outcome) for j in journal) == {("allow", "ok"): 16}


# --- the real price path ---------------------------------------------------------------------------------------
MARKET = {
    "binance": {"BTC-USDT": "60001.5"},
    "coinbase": {"BTC-USDT": "60002.0"},
    "kraken": {"BTC-USDT": "60003.0"},
}


@pytest.fixture
def market(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMarket]:
    with FakeMarket(MARKET) as m:
        for key, value in m.env().items():
            monkeypatch.setenv(key, value)
        yield m


@pytest.mark.anyio
async def test_a_paper_fill_is_priced_at_the_consensus_of_the_configured_providers(home, market):
    cfg = configure(home, **PAPER)
    prices = LibraryPrices.build(cfg, home)
    try:
        quote = await prices.quote("BTC-USDT")
        assert (quote.symbol, quote.price, quote.source) == ("BTC-USDT", 60002.0, "consensus of 3 provider(s)")
        with open_store(home) as store:
            paper = PaperService(store, ConfigStore(home / "config.json").load, prices)
            result = await paper.place_order(OrderRequest(**order("real-1", 600.0)))
    finally:
        await prices.aclose()
    assert result.fill.reference_price == 60002.0 and result.fill.price_source == "consensus of 3 provider(s)"
    assert result.fill.price == pytest.approx(60002.0 * (1 + 5 / 10_000))  # default slippage 5 bps, buying higher


@pytest.mark.anyio
async def test_when_every_provider_fails_the_stale_cached_price_is_never_filled_at(home, market):
    cfg = configure(home, **PAPER, **{"price_config.quote_ttl_s": 0})
    prices = LibraryPrices.build(cfg, home)
    try:
        assert (await prices.quote("BTC-USDT")).price == 60002.0
        market.failing.update(dict.fromkeys(MARKET, 503))
        cached = await prices.quotes.price("BTC-USDT")
        assert cached.stale and cached.price == 60002.0  # the library does have a value, flagged stale
        with pytest.raises(NoPrice, match=r"no fresh price for BTC-USDT: every provider failed.*never use a stale"):
            await prices.quote("BTC-USDT")
        with open_store(home) as store:
            paper = PaperService(store, ConfigStore(home / "config.json").load, prices)
            with pytest.raises(NoPrice, match="stale"):
                await paper.place_order(OrderRequest(**order("stale-1")))
            assert counts(store) == NOTHING
    finally:
        await prices.aclose()

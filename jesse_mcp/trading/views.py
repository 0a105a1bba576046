"""Read-side results built from the ledger inside one read: the portfolio, the answer to a repeated client order id,
and the rows a performance report is computed from."""

from __future__ import annotations

import sqlite3

from jesse_mcp.trading import ledger, protect, rows
from jesse_mcp.trading.models import Account, ActiveLock, Event, OrderResult, Portfolio
from jesse_mcp.trading.rows import OrderRow
from jesse_mcp.trading.stats import TrackRecord
from shared.config.models import TradingConfig
from shared.config.resolve import resolve_risk
from shared.policy import checks as policy
from shared.state import trading_state
from shared.state.store import Store, utc_now_iso


def portfolio_of(
    db: sqlite3.Connection,
    store: Store,
    cfg: TradingConfig,
    now: int,
    events: list[Event],
    missing: dict[str, str],
) -> Portfolio:
    account = ledger.load_account(db, cfg, now, create=False)
    positions = ledger.open_positions(db)
    equity, margin, upnl = ledger.equity_of(account, positions)
    realised = db.execute(
        "SELECT COALESCE(SUM(realised_pnl), 0) FROM paper_positions WHERE status = 'closed'"
    ).fetchone()[0]
    fees = db.execute("SELECT COALESCE(SUM(fee), 0) FROM paper_fills").fetchone()[0]
    state = trading_state.read_in(db)
    fills = ledger.select_fills(db, "ORDER BY id DESC LIMIT 20")
    settings = resolve_risk(cfg, None, mode="backtest").settings
    return Portfolio(
        account=Account(
            starting_balance=account.starting_balance,
            cash=round(account.cash, 2),
            equity=round(equity, 2),
            margin_used=round(margin, 2),
            unrealised_pnl=round(upnl, 2),
            realised_pnl=round(realised, 2),
            fees_paid=round(fees, 2),
            peak_equity=round(account.peak_equity, 2),
            drawdown=round(policy.drawdown(equity, account.peak_equity), 6),
            day=account.day,
            day_start_equity=round(account.day_start_equity, 2),
            day_pnl=round(equity - account.day_start_equity, 2),
            emergency_stop=settings.emergency_stop,
            daily_loss_limit=cfg.paper.daily_loss_limit,
        ),
        trading_state=state.state,
        trading_state_reason=state.reason,
        positions=[rows.position_model(p, cfg) for p in positions],
        open_orders=[rows.order_model(o) for o in ledger.open_orders(db)],
        recent_fills=[rows.fill_model(f) for f in fills],
        events=events,
        unpriced=sorted(missing),
        protection_locks=[
            ActiveLock(
                strategy=k.strategy,
                rule=k.rule,
                market=None if k.symbol == protect.ALL_MARKETS else k.symbol,
                start=utc_now_iso(k.from_ms),
                end=utc_now_iso(k.until_ms),
                reason=k.reason,
            )
            for k in protect.active_locks(db, now)
        ],
    )


def duplicate_result(
    db: sqlite3.Connection, cfg: TradingConfig, row: OrderRow, now: int, events: list[Event]
) -> OrderResult:
    """The result of an order placed before under the same client order id: nothing new happened."""
    account = ledger.load_account(db, cfg, now, create=False)
    positions = ledger.open_positions(db)
    pos = ledger.select_positions(db, "WHERE id = ?", (row.position_id,))
    fill = ledger.select_fills(db, "WHERE order_id = ? AND action = 'open'", (row.id,))
    equity, _, _ = ledger.equity_of(account, positions)
    return OrderResult(
        order=rows.order_model(row),
        position=rows.position_model(pos[0], cfg) if pos else None,
        fill=rows.fill_model(fill[0]) if fill else None,
        duplicate=True,
        checks=[],
        equity=round(equity, 2),
        cash=round(account.cash, 2),
        events=events,
        notes=[
            f"client_order_id {row.client_order_id!r} was placed before ({row.id}, now {row.status}); "
            "this retry changed nothing and filled nothing."
        ],
    )


def track_record(db: sqlite3.Connection, cfg: TradingConfig, strategy: str | None, now: int) -> TrackRecord:
    """The track record of `strategy`, or of the whole account."""
    account = ledger.load_account(db, cfg, now, create=False)
    points = ledger.select_equity(db, "WHERE strategy = ? ORDER BY ts_ms", (strategy or ledger.ACCOUNT_KEY,))
    curve = [(e.ts_ms, e.equity) for e in points]
    where, params = ("WHERE strategy = ?", (strategy,)) if strategy else ("", ())
    closed = ledger.select_positions(
        db, f"{where} {'AND' if where else 'WHERE'} status = 'closed' ORDER BY closed_ms", params
    )
    opened = db.execute(
        f"SELECT COUNT(*) FROM paper_positions {where} {'AND' if where else 'WHERE'} status = 'open'", params
    ).fetchone()[0]
    first = db.execute(f"SELECT MIN(ts_ms) FROM paper_fills {where}", params).fetchone()[0]
    fees = db.execute(f"SELECT COALESCE(SUM(fee), 0) FROM paper_fills {where}", params).fetchone()[0]
    sizes = [r[0] for r in db.execute(f"SELECT qty * entry_price FROM paper_positions {where}", params)]
    replay = db.execute(
        f"SELECT COUNT(*) FROM paper_fills {where} {'AND' if where else 'WHERE'} price_source LIKE 'replay%'", params
    ).fetchone()[0]
    return TrackRecord(account.starting_balance, curve, closed, opened, first, fees, sizes, replay)

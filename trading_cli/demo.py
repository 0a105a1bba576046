"""`trading-mcp demo`: an offline tour of the three servers over real MCP stdio sessions."""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp import ClientSession

from trading_cli.client import SERVERS, error_text, open_session, result_payload
from trading_cli.render import render


class Demo:
    def __init__(self, home: Path):
        self.home = home
        self.env = {
            "TRADING_MCP_HOME": str(home),
            "TRADING_MCP_CONFIG": str(home / "config.json"),
            "TRADING_MCP_LOG_LEVEL": "WARNING",
        }
        self.surprises: list[str] = []

    async def call(
        self, session: ClientSession, server: str, tool: str, args: dict[str, Any], expect: str = "ok"
    ) -> Any:
        print(f"\n-> {server}.{tool} {json.dumps(args)}")
        result = await session.call_tool(tool, args)
        if result.isError:
            print(f"   refused: {error_text(result)}")
            if expect == "ok":
                self.surprises.append(f"{tool} failed: {error_text(result)[:200]}")
            return None
        payload = result_payload(result)
        print(render(payload))
        if expect != "ok":
            self.surprises.append(f"{tool} {args} was expected to be refused but succeeded")
        return payload

    def offline_prices(self) -> None:
        """The demo has no internet: prices come from the replay provider (the candle store), live ones are off.
        Only the demo's own temporary state folder is changed."""
        from shared.config_store import ConfigStore

        def replay_only(data: dict) -> dict:
            providers = {n: {**p, "enabled": n == "replay"} for n, p in data["price_config"]["providers"].items()}
            return {**data, "price_config": {**data["price_config"], "providers": providers}}

        ConfigStore(self.home / "config.json").update(replay_only)

    async def price_server(self) -> None:
        server = "asset-price-mcp"
        print(f"\n== {server} ==  (offline: the replay provider answers from the stored candles, and says so)")
        async with open_session(server, self.env, interactive=False) as session:
            tools = (await session.list_tools()).tools
            print(f"tools/list: {', '.join(t.name for t in tools)}")
            await self.call(session, server, "get_policy", {})
            price = await self.call(session, server, "get_price", {"symbol": "btcusdt"})
            if price and not price.get("replay"):
                self.surprises.append("get_price in the offline demo was not labelled replay")
            await self.call(session, server, "get_prices", {"symbols": ["BTC/USDT", "ETH-USDT", "???"]})
            await self.call(
                session,
                server,
                "get_ohlcv",
                {"symbol": "BTC-USDT", "interval": "4hour", "start": "2024-04-01", "end": "2024-04-02"},
            )
            await self.call(session, server, "list_providers", {})

    def offline_news(self, url: str) -> None:
        """The demo's news sources are sample feeds on a local server (real HTTP, written for the demo). Only the
        demo's own temporary configuration is changed."""
        from shared.config_store import ConfigStore

        def sample_sources(data: dict) -> dict:
            feeds = {
                "wire": {"priority": 1, "weight": 0.6, "speed": "fast"},
                "blog": {"priority": 2, "weight": 0.4, "speed": "normal"},
                "community": {"priority": 3, "weight": 0.2, "speed": "fast"},
            }
            news = {n: {**f, "enabled": True, "url": f"{url}/{n}.rss", "type": "rss"} for n, f in feeds.items()}
            news["reuters"] = {**data["news_priorities"]["reuters"], "priority": 4}
            return {**data, "news_priorities": news}

        ConfigStore(self.home / "config.json").update(sample_sources)

    async def discovery_server(self) -> None:
        from trading_cli.sample_feeds import SampleFeedServer

        server = "discovery-mcp"
        print(f"\n== {server} ==  (offline: sample feeds written for the demo, served on 127.0.0.1; not real news)")
        with SampleFeedServer() as feeds:
            self.offline_news(feeds.url)
            async with open_session(server, self.env, interactive=False) as session:
                tools = (await session.list_tools()).tools
                print(f"tools/list: {', '.join(t.name for t in tools)}")
                await self.call(session, server, "get_policy", {"strategy": "mean_reversion"})
                news = await self.call(session, server, "fetch_news", {"since_hours": 12})
                if news and news["cycle"]["duplicates"] < 1:
                    self.surprises.append("fetch_news did not fold the duplicated sample story")
                await self.call(
                    session,
                    server,
                    "score_sentiment",
                    {"texts": ["Nvidia beats estimates and raises guidance", "Exchange halts withdrawals after hack"]},
                )
                found = await self.call(session, server, "discover_opportunities", {"top_k": 3, "refresh": False})
                if found and not found["opportunities"]:
                    self.surprises.append("discover_opportunities found nothing in the sample news")
                await self.call(session, server, "list_sources", {})
                print("\n# Changing a source's address needs a person's confirmation; this client offers none:")
                await self.call(
                    session,
                    server,
                    "update_source_priority",
                    {"source": "blog", "url": "https://example.com/other.rss"},
                    expect="refused",
                )

    async def quiet(self, session: ClientSession, tool: str, args: dict[str, Any]) -> Any:
        print(f"\n-> jesse-mcp.{tool} {json.dumps(args)}")
        result = await session.call_tool(tool, args)
        if result.isError:
            print(f"   refused: {error_text(result)}")
            self.surprises.append(f"{tool} failed: {error_text(result)[:200]}")
            return None
        return result_payload(result)

    async def backtest_tour(self, session: ClientSession) -> None:
        print("\n# Backtests run on real Jesse in worker processes. Offline, the data is synthetic (and labelled so):")
        made = await self.quiet(
            session, "generate_synthetic_candles", {"symbol": "BTC-USDT", "start": "2024-01-01", "days": 120}
        )
        if made:
            regimes = ", ".join(dict.fromkeys(r[0] for r in made["regimes"]))
            print(f"   {made['rows']} one-minute candles, regimes: {regimes}")
        listed = await self.quiet(session, "list_strategies", {})
        if listed:
            for s in listed["strategies"]:
                params = ", ".join(f"{p['name']}={p['default']:g}" for p in s["hyperparameters"])
                print(f"   {s['name']:<16} {params}")
        print("\n# 'backtest trend_following conservatively' (the first run waits for the workers to import Jesse):")
        bt = await self.quiet(session, "backtest", {"strategy": "trend_following", "risk_profile": "conservative"})
        if bt:
            p, a = bt["performance"], bt["risk_adherence"]
            span = f"{bt['data']['start'][:10]} .. {bt['data']['end'][:10]}"
            print(
                f"   {bt['id']}  {span}  net {p['net_profit_pct']:.2f} %  max drawdown {p['max_drawdown_pct']:.2f} %  "
                f"Sharpe {_num(p['sharpe'])}  trades {p['trades']}"
            )
            print(
                f"   largest position {a['largest_position_pct_of_equity']:.2f} % of equity (limit "
                f"{a['limits']['max_position_pct_of_equity']:g} %), leverage {bt['request']['leverage']:g}x, "
                f"violations: {a['violations'] or 'none'}"
            )
            for note in bt["notes"]:
                print(f"   note: {note}")
        compared = await self.quiet(session, "compare_risk_profiles", {"strategy": "trend_following"})
        if compared:
            print("   " + compared["table"].replace("\n", "\n   "))
            print(f"   (three runs in parallel: {compared['wall_time_s']:.1f} s)")
        if not bt:
            return
        stress = await self.quiet(session, "stress_test", {"backtest_id": bt["id"]})
        if stress:
            print("   " + stress["table"].replace("\n", "\n   "))
            print(f"   verdict: {stress['verdict']}")
        mc = await self.quiet(session, "monte_carlo", {"backtest_id": bt["id"], "candle_simulations": 6})
        if mc:
            for part in mc["parts"]:
                r, d = part["return_pct"], part["max_drawdown_pct"]
                print(
                    f"   {part['method']:<12} return % p5 {r['p5']:.2f} / p50 {r['p50']:.2f} / p95 {r['p95']:.2f}   "
                    f"max drawdown % p50 {d['p50']:.2f} / p95 {d['p95']:.2f}   "
                    f"P(loss) {part['probability_of_loss']:.2f}"
                )
        wf = await self.quiet(session, "validate_strategy", {"backtest_id": bt["id"], "folds": 3})
        if wf:
            for f in wf["folds"]:
                print(
                    f"   fold {f['fold']}: in-sample Sharpe {_num(f['in_sample_sharpe'])}, out-of-sample Sharpe "
                    f"{_num(f['out_of_sample_sharpe'])} ({', '.join(f['out_of_sample_regimes'])})"
                )
            print(f"   verdict: {wf['verdict']}")

    def raise_global_stage(self) -> None:
        """What a person does by hand (no tool raises a stage without evidence): set the global stage to paper in
        the configuration file. Only the demo's own temporary configuration is changed."""
        from shared.config_store import ConfigStore

        ConfigStore(self.home / "config.json").update(lambda data: {**data, "stage": "paper"})

    async def paper_tour(self, session: ClientSession) -> None:
        order = {"symbol": "BTC-USDT", "side": "long", "notional_usd": 300.0}
        print("\n# Paper trading needs stage paper. trend_following is at exploration, so its order is refused:")
        await self.paper_refusal(session, {"strategy": "trend_following", **order, "client_order_id": "demo-tf-1"})
        print("\n# What promotion to paper would need (get_promotion_gates measures, changes nothing):")
        await self.promotion_gates(session, "trend_following")
        print("\n# A person sets the global stage to paper in the configuration file (mean_reversion is at paper):")
        self.raise_global_stage()
        stage = await self.quiet(session, "get_stage", {"strategy": "mean_reversion"})
        if stage:
            mine = next(s for s in stage["strategies"] if s["name"] == "mean_reversion")
            print(f"   global stage {stage['global_stage']}, mean_reversion effectively at {mine['effective_stage']}")
        await self.paper_fill(session, {"strategy": "mean_reversion", **order, "client_order_id": "demo-mr-1"})

    async def paper_refusal(self, session: ClientSession, args: dict[str, Any]) -> None:
        print(f"\n-> jesse-mcp.place_paper_order {json.dumps(args)}")
        result = await session.call_tool("place_paper_order", args)
        if result.isError:
            text = error_text(result)
            rule = re.search(r"Denied \(([^)]+)\)", text)
            print(f"   refused, rule: {rule.group(1) if rule else '?'}")
            print(f"   {text}")
        else:
            self.surprises.append(f"a paper order of {args['strategy']} (stage exploration) was not refused")

    async def promotion_gates(self, session: ClientSession, strategy: str) -> None:
        gates = await self.quiet(session, "get_promotion_gates", {"strategy": strategy, "to_stage": "paper"})
        if gates:
            print(f"   {gates['from_stage']} -> {gates['to_stage']}; the honest outcome on synthetic data:")
            print("   | Gate | Result | Value | Needs |\n   |---|---|---|---|")
            for g in gates["gates"]:
                value = f"{round(g['value'], 2):g}" if isinstance(g["value"], float) else g["value"]
                print(f"   | {g['name']} | {'pass' if g['passed'] else 'FAIL'} | {value} | {g['threshold']} |")
            for note in gates["notes"]:
                print(f"   note: {note}")

    async def paper_fill(self, session: ClientSession, args: dict[str, Any]) -> None:
        placed = await self.quiet(session, "place_paper_order", args)
        if placed and placed["fill"]:
            f = placed["fill"]
            label = "replay price from stored candles" if "replay" in f["price_source"] else f["price_source"]
            print(
                f"   {placed['order']['status']}: {f['side']} {f['qty']:.6f} {f['symbol']} at {f['price']:,.2f} "
                f"(reference {f['reference_price']:,.2f}, {label}; slippage included), fee {f['fee']:.4f} USD"
            )
            passed = sum(c["passed"] for c in placed["checks"])
            print(f"   pre-trade checks: {passed} of {len(placed['checks'])} passed")
            for c in placed["checks"]:
                print(f"     {'pass' if c['passed'] else 'FAIL'}  {c['rule']:<22} {c['detail']}")
            for note in placed["notes"]:
                print(f"   note: {note}")
            if "replay" not in f["price_source"]:
                self.surprises.append(f"the paper fill was not priced by replay: {f['price_source']}")
        elif placed:
            self.surprises.append(f"the {args['strategy']} paper order did not fill: {placed['order']['status']}")
        book = await self.quiet(session, "get_paper_portfolio", {})
        if book:
            a = book["account"]
            print(
                f"   equity {a['equity']:,.2f} USD, cash {a['cash']:,.2f}, margin {a['margin_used']:,.2f}, "
                f"fees {a['fees_paid']:,.2f}, state {book['trading_state']}"
            )
            for p in book["positions"]:
                print(
                    f"   {p['strategy']} {p['side']} {p['qty']:.6f} {p['symbol']} entry {p['entry_price']:,.2f} "
                    f"mark {p['mark_price']:,.2f} stop {p['stop_loss_price']:,.2f} "
                    f"take profit {p['take_profit_price']:,.2f} unrealised {p['unrealised_pnl']:,.2f} USD"
                )

    async def jesse_server(self) -> None:
        server = "jesse-mcp"
        print(f"\n== {server} ==  (Jesse worker processes start in the background; tools answer at once)")
        async with open_session(server, self.env, interactive=False) as session:
            tools = (await session.list_tools()).tools
            print(f"tools/list: {', '.join(t.name for t in tools)}")
            await self.call(session, server, "get_stage", {})
            await self.backtest_tour(session)
            print("\n# Loosening a risk setting needs a person's confirmation; this client offers none:")
            await self.call(
                session,
                server,
                "update_config",
                {
                    "changes": {"strategies.trend_following.risk_profile": "aggressive"},
                    "reason": "demo: try to loosen",
                },
                expect="refused",
            )
            print("\n# Tightening never needs confirmation:")
            await self.call(
                session,
                server,
                "update_config",
                {
                    "changes": {
                        "strategies.trend_following.risk_overrides.max_leverage": 1.5,
                        "portfolio_limits.max_trades_per_day": 10,
                    },
                    "reason": "demo: tighten",
                },
            )
            await self.call(session, server, "get_policy", {"strategy": "trend_following"})
            print("\n# update_config never raises a stage; promotion needs recorded evidence:")
            await self.call(session, server, "update_config", {"changes": {"stage": "paper"}}, expect="refused")
            print("\n# Arguments are strict: a number where a name belongs, and an unknown key:")
            await self.call(session, server, "get_policy", {"strategy": 7}, expect="refused")
            await self.call(
                session,
                server,
                "get_policy",
                {"strategy": "trend_following", "profile": "x"},
                expect="refused",
            )
            await self.paper_tour(session)
            print("\n# Every call above, allowed or not, is in the audit journal:")
            result = await session.call_tool("get_journal", {"limit": 12})
            for row in reversed(result_payload(result)["entries"]):
                print(
                    f"   {row['ts']}  {row['server']:<16} {row['tool']:<22} {row['decision']:<8} "
                    f"{row['outcome']:<18} {row['rule'] or ''}"
                )


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


async def run_demo(home: str | None = None) -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trading-mcp-demo-") as tmp:
        root = Path(home) if home else Path(tmp)
        print("trading-mcp demo: three guarded MCP servers, driven over real MCP stdio sessions, offline.")
        print(f"state folder: {root} ({'given' if home else 'temporary; your own configuration is untouched'})")
        print(f"servers: {', '.join(SERVERS)}")
        demo = Demo(root)
        demo.offline_prices()
        await demo.jesse_server()  # stores synthetic candles, which the price server then replays
        await demo.price_server()
        await demo.discovery_server()  # prices for its opportunities come from the same replayed candles
    print(f"\ndemo finished in {time.perf_counter() - started:.1f} s")
    if demo.surprises:
        print("UNEXPECTED:\n  " + "\n  ".join(demo.surprises))
        return 1
    return 0

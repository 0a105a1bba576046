"""`trading-mcp demo`: an offline tour of the three servers over real MCP stdio sessions.

Every step prints the tool it called and what came back. The data is the candle store's: real BTC-USDT candles when
enough are stored, else synthetic ones generated for the demo (labelled SYNTHETIC wherever they show); prices are
replayed from those candles; news comes from sample feeds served on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from mcp import ClientSession, types

from shared.config.changes import keyed
from trading_cli import render as text
from trading_cli.client import SERVERS, error_text, open_session, result_payload

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MIN_REAL_DAYS = 60  # fewer stored real days than this make a poor tour: synthetic candles are generated instead
SYNTHETIC_LABEL = "SYNTHETIC DATA: generated candles, not a market's history"


def _rule(refusal: str) -> str:
    found = re.search(r"Denied \(([^)]+)\)", refusal)
    return found.group(1) if found else "?"


class Demo:
    def __init__(self, home: Path, charts: Path):
        self.home = home
        self.charts = charts  # where the equity-curve PNGs go (kept after the demo)
        self.env = {
            "TRADING_MCP_HOME": str(home),
            "TRADING_MCP_CONFIG": str(home / "config.json"),
            "TRADING_MCP_LOG_LEVEL": "WARNING",
        }
        self.surprises: list[str] = []
        self.market: dict[str, Any] = {"exchange": "synthetic", "symbol": "BTC-USDT"}
        self.synthetic = True
        self.data_label = SYNTHETIC_LABEL
        self.last_day = "2024-04-29"

    def configure(self, change: Callable[[dict], dict]) -> None:
        """Edit the demo's own configuration file, as a person would by hand (never the user's own)."""
        from shared.config.store import ConfigStore

        ConfigStore(self.home / "config.json").update(change)

    async def call(
        self, session: ClientSession, server: str, tool: str, args: dict[str, Any], expect: str = "ok"
    ) -> Any:
        """Call a tool and print the whole answer (long fields cut)."""
        print(f"\n-> {server}.{tool} {json.dumps(args)}")
        result = await session.call_tool(tool, args)
        if result.isError:
            print(f"   refused: {error_text(result)}")
            if expect == "ok":
                self.surprises.append(f"{tool} failed: {error_text(result)[:200]}")
            return None
        payload = result_payload(result)
        print(text.render(payload))
        if expect != "ok":
            self.surprises.append(f"{tool} {args} was expected to be refused but succeeded")
        return payload

    async def invoke(self, session: ClientSession, tool: str, args: dict[str, Any]) -> types.CallToolResult | None:
        """Call a jesse-mcp tool whose answer the caller summarises; None (and a surprise) when it fails."""
        print(f"\n-> jesse-mcp.{tool} {json.dumps(args)}")
        started = time.perf_counter()
        result = await session.call_tool(tool, args)
        took = time.perf_counter() - started
        if result.isError:
            print(f"   refused: {error_text(result)}")
            self.surprises.append(f"{tool} failed: {error_text(result)[:200]}")
            return None
        if took >= 1:
            print(f"   ({took:.1f} s)")
        return result

    async def quiet(self, session: ClientSession, tool: str, args: dict[str, Any]) -> Any:
        result = await self.invoke(session, tool, args)
        return None if result is None else result_payload(result)

    async def attempt(self, session: ClientSession, tool: str, args: dict[str, Any]) -> types.CallToolResult:
        """Call a tool the guard is expected to refuse; the caller reports either outcome."""
        print(f"\n-> jesse-mcp.{tool} {json.dumps(args)}")
        return await session.call_tool(tool, args)

    # --- jesse-mcp: data, backtests, robustness -------------------------------------------------------------------
    async def choose_data(self, session: ClientSession) -> None:
        """Real BTC-USDT candles when enough are stored (the replay provider prefers them too), else synthetic."""
        listed = await self.quiet(session, "list_candles", {"symbol": "BTC-USDT"})
        markets = (listed or {}).get("markets", [])
        real = [m for m in markets if not m["synthetic"] and m["rows"] >= MIN_REAL_DAYS * 1440]
        if real:
            m = max(real, key=lambda m: m["rows"])
            self.synthetic, self.last_day = False, m["last"][:10]
            self.market = {"exchange": m["exchange"], "symbol": m["symbol"]}
            if m["rows"] > 150 * 1440:
                self.market["days"] = 120  # the last 120 days: a bounded run, with warm-up candles before them
            self.data_label = f"real candles from {m['exchange']} ({m['first'][:10]} .. {self.last_day})"
            print(f"   using the stored {self.data_label}")
            return
        print("   no real BTC-USDT candles stored (60 days or more), so synthetic ones are generated:")
        args = {"symbol": "BTC-USDT", "start": "2024-01-01", "days": 120}
        made = await self.quiet(session, "generate_synthetic_candles", args)
        if made:
            self.last_day = made["market"]["last"][:10]
            regimes = ", ".join(dict.fromkeys(r[0] for r in made["regimes"]))
            print(f"   {made['rows']} one-minute candles, regimes: {regimes}")
            print(f"   {made['note']}")

    async def profile_backtest(self, session: ClientSession, profile: str) -> tuple[dict[str, Any] | None, str]:
        args = {"strategy": "trend_following", **self.market, "risk_profile": profile, "equity_image": True}
        result = await self.invoke(session, "backtest", args)
        if result is None:
            return None, "none"
        bt = result_payload(result)
        print("\n".join(text.backtest_lines(bt)))
        return bt, self.save_png(result, f"equity_trend_following_{profile}.png")

    def save_png(self, result: types.CallToolResult, name: str) -> str:
        """Write the equity-curve image the server attached (base64 PNG) to the charts folder."""
        images = [c for c in result.content if isinstance(c, types.ImageContent) and c.mimeType == "image/png"]
        data = base64.b64decode(images[0].data) if images else b""
        if not data.startswith(PNG_MAGIC):
            self.surprises.append(f"no equity-curve PNG came back for {name}")
            return "none"
        path = self.charts / name
        path.write_bytes(data)
        print(f"   equity curve and drawdown, a PNG drawn by the server ({len(data) / 1024:.0f} kB): {path}")
        return name

    async def backtest_tour(self, session: ClientSession) -> None:
        print("\n# Backtests run on real Jesse in worker processes, on stored 1-minute candles:")
        await self.choose_data(session)
        listed = await self.quiet(session, "list_strategies", {})
        for s in (listed or {}).get("strategies", []):
            params = ", ".join(f"{p['name']}={p['default']:g}" for p in s["hyperparameters"])
            print(f"   {s['name']:<16} {params}")
        print("\n# 'backtest trend_following conservatively, then aggressively' (the first run waits for Jesse):")
        runs, charts = {}, {}
        for profile in ("conservative", "aggressive"):
            runs[profile], charts[profile] = await self.profile_backtest(session, profile)
        if all(runs.values()):
            print(f"\n   conservative vs aggressive, side by side ({self.data_label}):")
            print(text.profiles_table(runs, charts))
        print("\n# All three profiles at once (compare_risk_profiles runs them in parallel and stores each):")
        compared = await self.quiet(session, "compare_risk_profiles", {"strategy": "trend_following", **self.market})
        if compared:
            print("   " + compared["table"].replace("\n", "\n   "))
            label = f"  {SYNTHETIC_LABEL}" if compared["synthetic"] else ""
            print(f"   (three runs in parallel: {compared['wall_time_s']:.1f} s){label}")
        if runs["conservative"]:
            await self.robustness(session, runs["conservative"]["id"])
        await self.optimization(session)

    async def optimization(self, session: ClientSession) -> None:
        print(
            "\n# 'optimize trend_following' (Optuna: 8 trials on the worker pool, the winner judged on the unseen "
            f"last 30 % of the range; on {self.data_label}):"
        )
        space = {"fast_period": {"min": 5, "max": 30}, "slow_period": {"min": 31, "max": 120}}
        args = {"strategy": "trend_following", "symbols": [self.market["symbol"]], "exchange": self.market["exchange"]}
        study = await self.quiet(
            session, "optimize_strategy", {**args, "days": 60, "trials": 8, "seed": 1, "space": space}
        )
        if study and study.get("report"):
            print("\n".join(text.optimization_lines(study["report"])))

    async def robustness(self, session: ClientSession, backtest_id: str) -> None:
        print(f"\n# How fragile is the conservative run {backtest_id}? (on {self.data_label})")
        stress = await self.quiet(session, "stress_test", {"backtest_id": backtest_id})
        if stress:
            print("   " + stress["table"].replace("\n", "\n   "))
            print(f"   verdict: {stress['verdict']}")
        mc = await self.quiet(session, "monte_carlo", {"backtest_id": backtest_id, "candle_simulations": 6})
        if mc:
            print("\n".join(text.monte_carlo_lines(mc)))
        wf = await self.quiet(session, "validate_strategy", {"backtest_id": backtest_id, "folds": 3})
        if wf:
            print("\n".join(text.validation_lines(wf)))

    # --- jesse-mcp: stages, promotion, paper trading ----------------------------------------------------------------
    async def paper_tour(self, session: ClientSession) -> None:
        order = {"symbol": "BTC-USDT", "side": "long", "notional_usd": 300.0}
        print("\n# Paper trading needs stage paper. trend_following is at exploration, so its order is refused:")
        args = {"strategy": "trend_following", **order, "client_order_id": "demo-tf-1"}
        refused = await self.attempt(session, "place_paper_order", args)
        if refused.isError:
            print(f"   refused, rule: {_rule(error_text(refused))}\n   {error_text(refused)}")
        else:
            self.surprises.append("a paper order of trend_following (stage exploration) was not refused")
        print("\n# Promotion is gated by recorded evidence. get_promotion_gates measures it and changes nothing:")
        measured = await self.promotion_gates(session, "trend_following")
        print("\n# Asking for it: request_stage_promotion checks the same gates and refuses if one fails:")
        await self.promotion_request(session, "trend_following", measured)
        print("\n# A person sets the global stage to paper in the configuration file (mean_reversion is at paper):")
        self.configure(lambda data: {**data, "stage": "paper"})
        stage = await self.quiet(session, "get_stage", {"strategy": "mean_reversion"})
        if stage:
            mine = next(s for s in stage["strategies"] if s["name"] == "mean_reversion")
            print(f"   global stage {stage['global_stage']}, mean_reversion effectively at {mine['effective_stage']}")
        await self.paper_fill(session, {"strategy": "mean_reversion", **order, "client_order_id": "demo-mr-1"})

    async def promotion_gates(self, session: ClientSession, strategy: str) -> dict[str, bool]:
        gates = await self.quiet(session, "get_promotion_gates", {"strategy": strategy, "to_stage": "paper"})
        if not gates:
            return {}
        honest = "; on synthetic data the honest outcome is a refusal" if self.synthetic else ""
        print(f"   {gates['from_stage']} -> {gates['to_stage']}{honest}:")
        print(text.gate_table(gates["gates"]))
        for note in gates["notes"]:
            print(f"   note: {note}")
        return {g["name"]: g["passed"] for g in gates["gates"]}

    async def promotion_request(self, session: ClientSession, strategy: str, measured: dict[str, bool]) -> None:
        args = {"strategy": strategy, "to_stage": "paper", "reason": "demo: the backtests and stress test above"}
        result = await self.attempt(session, "request_stage_promotion", args)
        if not result.isError:
            report = result_payload(result)
            print(f"   promoted {report['from_stage']} -> {report['to_stage']}, effective {report['effective_stage']}")
            print(text.gate_table(report["gates"]))
            if self.synthetic:
                self.surprises.append("request_stage_promotion promoted a strategy on synthetic evidence")
            return
        refusal = error_text(result)
        gates = text.gates_in_text(refusal)
        failed = sum(not ok for _, ok, _, _ in gates)
        print(f"   refused, rule: {_rule(refusal)}: {failed} of {len(gates)} gates failed; nothing was changed")
        rows = [[name, "pass" if ok else "FAIL", got, needs] for name, ok, got, needs in gates]
        print(text.markdown_table(["Gate", "Result", "Measured", "Needs"], rows, numeric=False))
        print(f"   remedy: {refusal.partition('Remedy: ')[2] or '?'}")
        if not failed:
            self.surprises.append(f"the promotion refusal did not list its failed gates: {refusal[:200]}")
        elif measured and {name: ok for name, ok, _, _ in gates} != measured:
            self.surprises.append("request_stage_promotion and get_promotion_gates disagree on the gates")

    async def paper_fill(self, session: ClientSession, args: dict[str, Any]) -> None:
        placed = await self.quiet(session, "place_paper_order", args)
        if placed and placed["fill"]:
            source = placed["fill"]["price_source"]
            stored = "stored SYNTHETIC candles" if self.synthetic else "stored candles"
            print(
                "\n".join(text.fill_lines(placed, f"replay price from the {stored}" if "replay" in source else source))
            )
            if "replay" not in source:
                self.surprises.append(f"the paper fill was not priced by replay: {source}")
        elif placed:
            self.surprises.append(f"the {args['strategy']} paper order did not fill: {placed['order']['status']}")
        book = await self.quiet(session, "get_paper_portfolio", {})
        if book:
            print("\n".join(text.portfolio_lines(book)))

    async def guard_tour(self, session: ClientSession, server: str) -> None:
        print("\n# Loosening a risk setting needs a person's confirmation; this client offers none:")
        loosen = {"changes": {"strategies.trend_following.risk_profile": "aggressive"}, "reason": "demo: try to loosen"}
        await self.call(session, server, "update_config", loosen, expect="refused")
        print("\n# Tightening never needs confirmation:")
        changes = {
            "strategies.trend_following.risk_overrides.max_leverage": 1.5,
            "portfolio_limits.max_daily_trades": 10,
        }
        await self.call(session, server, "update_config", {"changes": changes, "reason": "demo: tighten"})
        await self.call(session, server, "get_policy", {"strategy": "trend_following"})
        print("\n# update_config never raises a stage; promotion needs recorded evidence:")
        await self.call(session, server, "update_config", {"changes": {"stage": "paper"}}, expect="refused")
        print("\n# Arguments are strict: a number where a name belongs, and an unknown key:")
        await self.call(session, server, "get_policy", {"strategy": 7}, expect="refused")
        await self.call(
            session, server, "get_policy", {"strategy": "trend_following", "profile": "x"}, expect="refused"
        )

    async def jesse_server(self) -> None:
        server = "jesse-mcp"
        print(f"\n== {server} ==  (Jesse worker processes start in the background; tools answer at once)")
        async with open_session(server, self.env, interactive=False) as session:
            tools = (await session.list_tools()).tools
            print(f"tools/list: {', '.join(t.name for t in tools)}")
            await self.call(session, server, "get_stage", {})
            await self.backtest_tour(session)
            await self.guard_tour(session, server)
            await self.paper_tour(session)
            print("\n# Every call above, allowed or not, is in the audit journal:")
            journal = await self.quiet(session, "get_journal", {"limit": 14})
            print("\n".join(text.journal_lines((journal or {}).get("entries", []))))

    # --- asset-price-mcp and discovery-mcp ----------------------------------------------------------------------
    async def price_server(self) -> None:
        server = "asset-price-mcp"
        print(f"\n== {server} ==  (offline: the replay provider answers from the stored candles, and says so)")
        print(f"   the stored candles: {self.data_label}")
        async with open_session(server, self.env, interactive=False) as session:
            tools = (await session.list_tools()).tools
            print(f"tools/list: {', '.join(t.name for t in tools)}")
            await self.call(session, server, "get_policy", {})
            price = await self.call(session, server, "get_price", {"symbol": "btcusdt"})
            if price and not price.get("replay"):
                self.surprises.append("get_price in the offline demo was not labelled replay")
            if price and self.synthetic:
                print("   note: replayed from the SYNTHETIC candles stored above: a made-up price, not a market's")
            await self.call(session, server, "get_prices", {"symbols": ["BTC/USDT", "ETH-USDT", "???"]})
            day = date.fromisoformat(self.last_day)
            window = {"start": (day - timedelta(days=1)).isoformat(), "end": day.isoformat()}
            await self.call(session, server, "get_ohlcv", {"symbol": "BTC-USDT", "interval": "4hour", **window})
            await self.call(session, server, "list_providers", {})

    async def discovery_server(self) -> None:
        from trading_cli.sample_feeds import SampleFeedServer

        server = "discovery-mcp"
        print(f"\n== {server} ==  (offline: sample feeds written for the demo, served on 127.0.0.1; not real news)")
        with SampleFeedServer() as feeds:
            self.configure(lambda data: sample_sources(data, feeds.url))
            async with open_session(server, self.env, interactive=False) as session:
                tools = (await session.list_tools()).tools
                print(f"tools/list: {', '.join(t.name for t in tools)}")
                await self.call(session, server, "get_policy", {"strategy": "mean_reversion"})
                news = await self.call(session, server, "fetch_news", {"since_hours": 12})
                if news and news["cycle"]["duplicates"] < 1:
                    self.surprises.append("fetch_news did not fold the duplicated sample story")
                texts = ["Nvidia beats estimates and raises guidance", "Exchange halts withdrawals after hack"]
                await self.call(session, server, "score_sentiment", {"texts": texts})
                found = await self.call(session, server, "discover_opportunities", {"top_k": 3, "refresh": False})
                if found and not found["opportunities"]:
                    self.surprises.append("discover_opportunities found nothing in the sample news")
                if found:
                    print("   from SAMPLE news (written for the demo):")
                    print("\n".join(text.opportunity_line(o) for o in found["opportunities"]))
                await self.call(session, server, "list_sources", {})
                print("\n# Changing a source's address needs a person's confirmation; this client offers none:")
                move = {"source": "blog", "url": "https://example.com/other.rss"}
                await self.call(session, server, "update_source_priority", move, expect="refused")


def replay_only(data: dict) -> dict:
    """No internet: prices come from the replay provider (the candle store); the live providers are off."""
    providers = {n: {**p, "enabled": n == "replay"} for n, p in data["price_config"]["providers"].items()}
    return {**data, "price_config": {**data["price_config"], "providers": providers}}


def sample_sources(data: dict, url: str) -> dict:
    """The news sources become the sample feeds on the local server (real HTTP, stories written for the demo)."""
    feeds = {
        "wire": {"priority": 1, "weight": 0.6, "speed": "fast"},
        "blog": {"priority": 2, "weight": 0.4, "speed": "normal"},
        "community": {"priority": 3, "weight": 0.2, "speed": "fast"},
    }
    news = {n: {**f, "enabled": True, "url": f"{url}/{n}.rss", "type": "rss"} for n, f in feeds.items()}
    news["reuters"] = {**keyed(data)["news_priorities"]["reuters"], "priority": 4}
    return {**data, "news_priorities": news}


async def run_demo(home: str | None = None) -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trading-mcp-demo-") as tmp:
        root = Path(home) if home else Path(tmp)
        charts = root if home else Path(tempfile.mkdtemp(prefix="trading-mcp-demo-charts-"))
        print("trading-mcp demo: three guarded MCP servers, driven over real MCP stdio sessions, offline.")
        print(f"state folder: {root} ({'given' if home else 'temporary; your own configuration is untouched'})")
        print(f"servers: {', '.join(SERVERS)}")
        demo = Demo(root, charts)
        demo.configure(replay_only)  # before jesse-mcp starts: paper fills are priced by replay too
        await demo.jesse_server()  # picks or generates the candles that the price server then replays
        await demo.price_server()
        await demo.discovery_server()  # sample news; its crypto symbols (BTC-USD) are not in the store
    print(f"\ndemo finished in {time.perf_counter() - started:.1f} s")
    if not home:
        print(f"the state folder was removed; the equity-curve PNGs are kept in {charts}")
    if demo.surprises:
        print("UNEXPECTED:\n  " + "\n  ".join(demo.surprises))
        return 1
    return 0

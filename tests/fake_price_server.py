"""A local HTTP server on 127.0.0.1 speaking the five providers' protocols (the documented response shapes), for
end-to-end tests and benchmarks. Prices come from a table; a provider can be made to fail; every request can be
delayed. It stops by itself after `lifetime_s`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from shared.net.local_http import LocalHttpServer

KRAKEN_CODES = {"BTC": "XBT", "DOGE": "XDG"}
COINGECKO_IDS = {"BTC": "bitcoin", "ETH": "ethereum", "SOL": "solana"}


class FakeMarket(LocalHttpServer):
    def __init__(self, prices: dict[str, dict[str, str]], delay_s: float = 0.0, lifetime_s: float = 120.0):
        """prices: provider -> canonical symbol -> price text, e.g. {"binance": {"BTC-USDT": "60000.5"}}."""
        self.prices = prices
        self.delay_s = delay_s
        self.failing: dict[str, int] = {}  # provider -> HTTP status to answer with
        self.requests: list[str] = []
        market = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                market.requests.append(self.path)
                if market.delay_s:
                    time.sleep(market.delay_s)
                status, body = market.answer(urlparse(self.path))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._serve(Handler, lifetime_s, poll_interval=0.02)  # stopping waits up to one poll: keep tests quick

    def env(self) -> dict[str, str]:
        return {
            "BINANCE_BASE_URL": self.url,
            "COINBASE_BASE_URL": self.url,
            "KRAKEN_BASE_URL": self.url,
            "COINGECKO_BASE_URL": self.url + "/api/v3",
            "YAHOO_BASE_URL": self.url,
        }

    # --- the protocols ------------------------------------------------------------------------------------------
    def answer(self, url) -> tuple[int, object]:
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        now = time.time()
        for provider, prefix in (
            ("binance_klines", "/api/v3/klines"),
            ("binance", "/api/v3/ticker/24hr"),
            ("kraken", "/0/public/Ticker"),
            ("coingecko", "/api/v3/simple/price"),
            ("yahoo", "/v8/finance/chart/"),
            ("coinbase", "/products/"),
        ):
            if url.path.startswith(prefix):
                if provider.split("_")[0] in self.failing:
                    return self.failing[provider], {"error": "failing on purpose"}
                return getattr(self, provider)(url.path, q, now)
        return 404, {"error": f"unknown path {url.path}"}

    def binance(self, path, q, now):
        table = {s.replace("-", ""): p for s, p in self.prices.get("binance", {}).items()}
        asked = json.loads(q["symbols"])
        if any(a not in table for a in asked):
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        close = int(now * 1000)
        return 200, [
            {
                "symbol": a,
                "lastPrice": table[a],
                "bidPrice": table[a],
                "askPrice": table[a],
                "volume": "100.0",
                "openTime": close - 86_400_000,
                "closeTime": close,
            }
            for a in asked
        ]

    def binance_klines(self, path, q, now):
        """Hourly klines (12-field arrays) from startTime; the newest one is still open."""
        step, start = 3_600_000, int(q.get("startTime", 0))
        end = min(int(q.get("endTime", now * 1000)), int(now * 1000))
        rows = []
        for t in range(start - start % step, end + 1, step):
            p = f"{100 + (t // step) % 1000}.0"
            rows.append([t, p, p, p, p, "1.0", t + step - 1, "0", 1, "0", "0", "0"])
            if len(rows) >= int(q.get("limit", 500)):
                break
        return 200, rows

    def coinbase(self, path, q, now):
        product = path.split("/")[2]
        price = self.prices.get("coinbase", {}).get(product)
        if price is None:
            return 404, {"message": "NotFound"}
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return 200, {
            "trade_id": 1,
            "price": price,
            "size": "0.1",
            "time": stamp,
            "bid": price,
            "ask": price,
            "volume": "1000",
        }

    def kraken(self, path, q, now):
        table = {}
        for s, p in self.prices.get("kraken", {}).items():
            base, quote = s.split("-")
            code = KRAKEN_CODES.get(base, base)
            key = f"X{code}Z{quote}" if quote in ("USD", "EUR") else f"{code}{quote}"
            table[f"{code}{quote}"] = (key, p)
        result = {}
        for pair in q["pair"].split(","):
            if pair not in table:
                return 200, {"error": ["EQuery:Unknown asset pair"], "result": {}}
            key, p = table[pair]
            result[key] = {"a": [p, "1", "1.0"], "b": [p, "1", "1.0"], "c": [p, "0.1"], "v": ["10.0", "20.0"]}
        return 200, {"error": [], "result": result}

    def coingecko(self, path, q, now):
        out: dict[str, dict] = {}
        for s, p in self.prices.get("coingecko", {}).items():
            base, quote = s.split("-")
            coin = COINGECKO_IDS[base]
            if coin in q["ids"].split(",") and quote.lower() in q["vs_currencies"].split(","):
                out.setdefault(coin, {"last_updated_at": int(now)})[quote.lower()] = float(p)
        return 200, out

    def yahoo(self, path, q, now):
        code = path.rsplit("/", 1)[1]
        price = self.prices.get("yahoo", {}).get(code)
        if price is None:
            return 404, {"chart": {"result": None, "error": {"code": "Not Found", "description": "No data found"}}}
        meta = {"currency": "USD", "symbol": code, "regularMarketPrice": float(price), "regularMarketTime": int(now)}
        return 200, {
            "chart": {"result": [{"meta": meta, "timestamp": [], "indicators": {"quote": [{}]}}], "error": None}
        }

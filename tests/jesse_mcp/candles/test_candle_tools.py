from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from mcp.shared.memory import create_connected_server_and_client_session as connect

from jesse_mcp.server import build_server
from tests.jesse_mcp.candles.test_binance_import import kline
from tests.mcp_helpers import payload, text_of

pytestmark = pytest.mark.anyio


class _Klines(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        start, end, limit = int(q["startTime"]), int(q["endTime"]), int(q["limit"])
        rows = [kline(t) for t in range(start, end + 1, 60_000)][:limit]
        body = json.dumps(rows).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_binance(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Klines)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("BINANCE_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
    yield
    server.shutdown()
    server.server_close()


async def test_import_candles_from_a_local_binance_and_list_them(deps, local_binance):
    async with connect(build_server(deps, warmup=())) as client:
        report = payload(
            await client.call_tool(
                "import_candles", {"symbol": "BTC-USDT", "start": "2021-10-22T23:03:00", "end": "2021-10-23T00:43:00"}
            )
        )
        listing = payload(await client.call_tool("list_candles", {}))
    assert report["fetched_rows"] == 100 and report["gaps"] == []
    assert listing["markets"][0]["symbol"] == "BTC-USDT" and listing["markets"][0]["synthetic"] is False


async def test_synthetic_import_is_labelled_synthetic(deps):
    async with connect(build_server(deps, warmup=())) as client:
        report = payload(
            await client.call_tool(
                "generate_synthetic_candles",
                {"symbol": "BTC-USDT", "start": "2025-01-01", "end": "2025-01-15"},
            )
        )
        listing = payload(await client.call_tool("list_candles", {"exchange": "synthetic"}))
    assert report["rows"] == 14 * 1440 and report["note"].startswith("SYNTHETIC")
    assert listing["markets"][0]["synthetic"] is True and listing["markets"][0]["sources"] == ["synthetic(seed=7)"]


async def test_csv_import_through_the_tool_and_gap_filling_on_request(deps, home):
    (home / "imports").mkdir()
    csv = home / "imports" / "btc.csv"
    t0 = 1_747_699_200_000
    lines = ["timestamp,open,high,low,close,volume"] + [
        f"{t0 + i * 60_000},100,101,99,100.5,1" for i in range(10) if i not in (3, 4)
    ]
    csv.write_text("\n".join(lines) + "\n")
    async with connect(build_server(deps, warmup=())) as client:
        report = payload(await client.call_tool("import_candles_csv", {"path": str(csv), "symbol": "BTC-USDT"}))
        filled = payload(await client.call_tool("fill_candle_gaps", {"exchange": "binance", "symbol": "BTC-USDT"}))
    assert report["imported_rows"] == 8 and report["market"]["gaps"][0]["missing_minutes"] == 2
    assert filled["gaps"] == [] and filled["filled"][0]["missing_minutes"] == 2 and filled["rows"] == 10


async def test_bad_ranges_and_missing_files_say_what_to_give(deps, home):
    async with connect(build_server(deps, warmup=())) as client:
        both = await client.call_tool(
            "import_candles", {"symbol": "BTC-USDT", "start": "2025-01-01", "end": "2025-01-05", "days": 3}
        )
        none = await client.call_tool("import_candles", {"symbol": "BTC-USDT"})
        missing = await client.call_tool("import_candles_csv", {"path": "nope.csv", "symbol": "X-Y"})
    assert "start with either end or days, not both" in text_of(both)
    assert "Give a start date" in text_of(none)
    assert f"No such file: {home / 'imports' / 'nope.csv'}. Give the path of a CSV file in" in text_of(missing)

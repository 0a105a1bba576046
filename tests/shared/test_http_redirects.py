"""The shared client's address policy: at most 3 redirects, never from a public address inwards, http(s) only."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from asset_price_mcp.providers.base import ProviderError
from asset_price_mcp.providers.runtime import Provider, ProviderClient
from discovery_mcp.news.sources import fetch_source
from shared.config.models import NewsSource
from shared.net.addresses import address_kind, literal_address
from shared.net.http import FetchRefused, HttpError, get_json, make_client
from tests.fake_news_server import FakeNews, Route, rss

pytestmark = pytest.mark.anyio

FEED = rss("Feed", [("Bitcoin rises", "https://news.example/1", "Fri, 12 Dec 2025 16:57:00 -0500", "up")])
DNS = {
    "feeds.example.com": ["93.184.216.34"],
    "cdn.example.com": ["93.184.216.35", "2606:2800:220:1::35"],
    "intranet.example.com": ["93.184.216.36", "192.168.1.5"],
    "nas.lan": ["192.168.1.2"],
}


class FakeDns:
    """A resolver from a table; records the names it was asked about."""

    def __init__(self, table: dict[str, list[str]] = DNS):
        self.table, self.asked = table, []

    async def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"unknown host {host}")
        return self.table[host]


def redirecting(location: str, seen: list[str]) -> httpx.MockTransport:
    """Every address answers a redirect to `location`, except the target itself, which answers 200."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if str(request.url) == location:
            return httpx.Response(200, text="inside")
        return httpx.Response(302, headers={"Location": location})

    return httpx.MockTransport(handler)


def chain(hops: int) -> dict[str, Route]:
    """/r1 -> /r2 -> ... -> /feed: `hops` redirects, then the feed."""
    routes = {f"/r{i}": Route(b"", status=302, headers={"Location": f"/r{i + 1}"}) for i in range(1, hops)}
    routes[f"/r{hops}"] = Route(b"", status=302, headers={"Location": "/feed"})
    return {**routes, "/feed": Route(FEED)}


async def test_three_redirects_within_loopback_are_followed_to_the_feed():
    with FakeNews(chain(3)) as news:
        async with make_client() as client:
            response = await client.get(news.url + "/r1")
    assert response.status_code == 200 and b"Bitcoin rises" in response.content
    assert len(response.history) == 3 and response.url.path == "/feed"


async def test_a_fourth_redirect_is_refused_and_its_target_never_fetched():
    with FakeNews(chain(4)) as news:
        async with make_client() as client:
            with pytest.raises(FetchRefused, match=r"Refused redirect 4 from .*/r4 to .*/feed: more than 3 redirects"):
                await client.get(news.url + "/r1")
    assert news.hits("/r4") and not news.hits("/feed")


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("http://127.0.0.1/admin", "loopback address (127.0.0.1)"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata address (169.254.169.254)"),
        ("http://10.0.0.1/", "private address (10.0.0.1)"),
        ("http://2130706433/", "loopback address (127.0.0.1)"),
        ("http://0x7f000001/", "loopback address (127.0.0.1)"),
        ("http://127.1/", "loopback address (127.0.0.1)"),
        ("http://[::ffff:127.0.0.1]/", "loopback address (127.0.0.1)"),
        ("http://[::ffff:a9fe:a9fe]/", "cloud metadata address (169.254.169.254)"),
        ("http://[fe80::1]/", "link-local address (fe80::1)"),
        ("http://[fd12::1]/", "private address (fd12::1)"),
        ("http://0.0.0.0/", "unspecified address (0.0.0.0)"),
        ("http://metadata.google.internal./computeMetadata/v1/", "cloud metadata address (metadata.google.internal)"),
    ],
)
async def test_a_public_address_cannot_redirect_inwards(location, kind):
    seen, dns = [], FakeDns()
    async with make_client(transport=redirecting(location, seen), resolver=dns) as client:
        with pytest.raises(FetchRefused) as refused:
            await client.get("https://feeds.example.com/rss")
    assert f"Refused redirect 1 from https://feeds.example.com/rss to {location.split('/', 3)[2]}" in str(
        refused.value
    ).replace("http://", "")
    assert f"it leads to a {kind}" in str(refused.value)
    assert seen == ["https://feeds.example.com/rss"]  # the inside address was never asked
    assert dns.asked in ([], ["feeds.example.com"])  # literals are read, never looked up


async def test_a_hostname_that_resolves_to_a_private_address_is_refused_after_a_public_origin():
    seen = []
    transport = redirecting("https://intranet.example.com/wiki", seen)
    async with make_client(transport=transport, resolver=FakeDns()) as client:
        with pytest.raises(FetchRefused, match=r"private address \(192\.168\.1\.5\), and only a private address"):
            await client.get("https://feeds.example.com/rss")
    assert seen == ["https://feeds.example.com/rss"]


async def test_a_redirect_to_another_public_host_is_followed():
    seen = []
    async with make_client(transport=redirecting("https://cdn.example.com/rss", seen), resolver=FakeDns()) as client:
        response = await client.get("https://feeds.example.com/rss")
    assert response.text == "inside" and seen == ["https://feeds.example.com/rss", "https://cdn.example.com/rss"]


async def test_a_private_address_may_redirect_within_private_networks_but_loopback_may_not_reach_them():
    seen = []
    async with make_client(transport=redirecting("http://192.168.1.3/feed", seen), resolver=FakeDns()) as client:
        assert (await client.get("http://nas.lan/feed")).text == "inside"
        with pytest.raises(FetchRefused, match="only a private address may redirect there"):
            await client.get("http://127.0.0.1/feed")


async def test_a_file_address_is_refused_before_anything_is_sent():
    seen = []
    async with make_client(transport=redirecting("https://cdn.example.com/", seen), resolver=FakeDns()) as client:
        with pytest.raises(FetchRefused, match="only http and https addresses are fetched"):
            await client.get("file:///etc/passwd")
    assert seen == []


async def test_a_redirect_to_a_file_address_is_refused():
    seen = []
    async with make_client(transport=redirecting("file:///etc/passwd", seen), resolver=FakeDns()) as client:
        with pytest.raises(FetchRefused, match=r"Refused redirect 1 .*: only http and https addresses .* not file:"):
            await client.get("https://feeds.example.com/rss")
    assert seen == ["https://feeds.example.com/rss"]


async def test_a_news_feed_redirected_to_the_metadata_address_is_an_error_that_names_the_redirect():
    routes = {"/feed": Route(b"", status=301, headers={"Location": "http://169.254.169.254/latest/meta-data/"})}
    with FakeNews(routes) as news:
        source = NewsSource(priority=1, weight=0.5, url=news.url + "/feed", type="rss")  # type: ignore[arg-type]
        async with make_client() as client:
            result = await fetch_source(client, "wire", source, None)
    assert result.status == "error" and result.message is not None
    assert "Refused redirect 1" in result.message and "169.254.169.254" in result.message


async def test_an_exchange_api_redirected_inwards_is_an_http_error_that_names_the_redirect():
    transport = redirecting("http://10.1.2.3/api/v3/klines", [])
    async with make_client("https://api.example.com", transport=transport, resolver=FakeDns()) as client:
        with pytest.raises(HttpError, match=r"Refused redirect 1 .* to http://10\.1\.2\.3/api/v3/klines"):
            await get_json(client, "/api/v3/klines", {"symbol": "BTCUSDT"})


async def test_a_price_provider_redirected_inwards_fails_at_once_with_the_reason():
    seen = []
    async with make_client(transport=redirecting("http://127.0.0.1:2375/", seen), resolver=FakeDns()) as client:
        provider = Provider(SimpleNamespace(NAME="p"), "https://feeds.example.com", retries=3)
        net = ProviderClient([provider], client, clock=lambda: 0.0)
        with pytest.raises(ProviderError, match=r"p: Refused redirect 1 .*loopback address \(127\.0\.0\.1\)"):
            await net.send(provider, httpx.Request("GET", "https://feeds.example.com/price"))
    assert len(seen) == 1  # not retried: the policy would refuse again


def test_every_spelling_of_an_address_is_read_as_that_address():
    spellings = ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "::ffff:127.0.0.1", "[::1]", "64:ff9b::7f00:1"]
    assert [address_kind(literal_address(s)) for s in spellings] == ["loopback"] * len(spellings)
    assert literal_address("feeds.example.com") is None and literal_address("cafe") is None

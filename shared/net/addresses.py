"""What kind of network place a host is: public, or one of the non-public kinds a redirect must not reach unawares.

Hostnames are judged by the addresses they resolve to (getaddrinfo in a thread, or an injected resolver in tests);
IP literals are recognised in every form a resolver would accept (`2130706433`, `0x7f000001`, `127.1`,
`::ffff:127.0.0.1`, NAT64 `64:ff9b::7f00:1`) before any resolver is asked.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable

import anyio.to_thread

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Awaitable[list[str]]]

PUBLIC = "public"
METADATA = "cloud metadata"
# Names and addresses of cloud instance-metadata services (GCP, AWS incl. ECS and IPv6, Alibaba, Tencent).
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_V4 = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)


def literal_address(host: str) -> IPAddress | None:
    """The IP address a host literally is (any notation a resolver would read as one), else None."""
    text = host.strip("[]").rstrip(".").replace("%25", "%")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _NUMERIC_V4.fullmatch(text):  # decimal, hex, octal and short forms: 2130706433, 0x7f.1, 0177.0.0.1, 127.1
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def effective(ip: IPAddress) -> IPAddress:
    """The address a connection really reaches: the IPv4 inside IPv4-mapped and NAT64 forms, without a zone."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(ip.packed)  # fe80::1%eth0 is fe80::1 on some interface
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(ip.packed[-4:])
    return ip


def address_kind(ip: IPAddress) -> str:
    """'public', or the non-public kind: cloud metadata, loopback, link-local, private, unspecified, multicast,
    reserved."""
    ip = effective(ip)
    if ip in METADATA_ADDRESSES:
        return METADATA
    for kind, test in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
    ):
        if test:
            return kind
    if any(ip in net for net in _PRIVATE_NETWORKS if net.version == ip.version):
        return "private"
    return PUBLIC if ip.is_global else "reserved"


async def system_resolver(host: str) -> list[str]:
    """The addresses getaddrinfo gives for a host, looked up in a worker thread (never on the event loop)."""
    lookup = functools.partial(socket.getaddrinfo, host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in await anyio.to_thread.run_sync(lookup)]


async def host_kinds(host: str, resolver: Resolver) -> dict[str, str]:
    """Each address the host is or resolves to, with its kind. Raises OSError when a name does not resolve."""
    name = host.lower().rstrip(".")
    if name in METADATA_HOSTS:
        return {name: METADATA}
    literal = literal_address(name)
    if literal is not None:
        return {str(effective(literal)): address_kind(literal)}
    addresses = [effective(ipaddress.ip_address(a)) for a in await resolver(name)]
    if not addresses:
        raise OSError(f"{name} resolves to no address")
    return {str(a): address_kind(a) for a in addresses}

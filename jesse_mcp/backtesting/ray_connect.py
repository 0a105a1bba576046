"""The one connection of this process to a Ray cluster, through Ray Client (ray://host:port), bounded in time.

Only Ray Client addresses are used. A bare cluster address (host:6379) would make this process a Ray driver, and Ray
ends a driver's process 60 s after losing the head, taking the MCP server with it; a client only loses its
connection, which becomes a WorkerError. Ray is imported by the functions, never at import time.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from jesse_mcp.backtesting.workers import WorkerError

log = logging.getLogger("jesse_mcp.backtesting.ray_connect")
ADDRESS_RE = re.compile(r"^ray://(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})$")
CONNECT_TIMEOUT_S = 120.0  # ray.init against a loaded head takes 5-20 s; a head just started, longer
CALL_TIMEOUT_S = 30.0  # any single Ray call (put, submit, get of a finished task, kill)

_connection_lock = threading.Lock()
_connected: str | None = None  # the address this process's Ray client is connected to


def check_address(address: str) -> tuple[str, int]:
    m = ADDRESS_RE.match(address.strip())
    if not m:
        raise WorkerError(
            f"The Ray address {address!r} is not a Ray Client address. Use ray://<head host>:<client port> (Ray's "
            "client server listens on 10001 by default; for KubeRay, the head service, e.g. "
            "ray://raycluster-head-svc:10001) in RAY_ADDRESS or backtest_config.ray_address, or unset both to run "
            "backtests in local worker processes."
        )
    return m["host"].strip("[]"), int(m["port"])


def bounded(call: Callable[[], Any], seconds: float, what: str) -> Any:
    """`call()` in a daemon thread, given up after `seconds` (a Ray call against a vanished cluster may not return)."""
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["value"] = call()
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e

    thread = threading.Thread(target=go, name="ray-call", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise WorkerError(f"{what} did not answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _unreachable(address: str, why: str) -> WorkerError:
    return WorkerError(
        f"Could not reach the Ray cluster at {address}: {why}. Check that the head node is running with its client "
        "server on that port (ray start --head --ray-client-server-port=<port>, or the KubeRay head service), that "
        "this machine can reach it, and that it runs the same Ray and Python versions; or unset RAY_ADDRESS and "
        "backtest_config.ray_address to run backtests locally."
    )


def connect(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Connect this process's Ray client to `address` (once; again after a lost connection), bounded in time."""
    global _connected
    host, port = check_address(address)
    # a Ray call without a connection would otherwise start a private local cluster (and token files in ~/.ray)
    os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")
    # and under `uv run`, Ray's client would upload the current folder and start the actors with `uv run` (which may
    # install packages on the nodes): the nodes run the environment installed there
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    import ray

    with _connection_lock:
        if _connected == address and ray.is_initialized():
            return
        try:
            socket.create_connection((host, port), timeout=min(5.0, timeout_s)).close()
        except OSError as e:
            raise _unreachable(address, f"nothing answers on {host}:{port} ({e})") from None
        if ray.is_initialized():
            bounded(ray.shutdown, CALL_TIMEOUT_S, "disconnecting from the previous Ray cluster")
        deadline = time.monotonic() + timeout_s
        while True:  # a head that just started answers on its port before its client server is ready
            try:
                bounded(
                    lambda: ray.init(address=address, log_to_driver=False, namespace="trading-mcp"),
                    max(1.0, deadline - time.monotonic()),
                    f"the Ray cluster at {address}",
                )
                break
            except (WorkerError, ConnectionError, RuntimeError, ValueError, Warning) as e:
                # Ray's client reports a connection timeout as a UserWarning (an error under -W error)
                if isinstance(e, WorkerError) or time.monotonic() >= deadline:
                    raise _unreachable(address, str(e)) from None
                log.info("the Ray cluster at %s is not ready yet (%s); connecting again", address, e)
        _connected = address
        log.info("connected to the Ray cluster at %s", address)


def disconnect() -> None:
    """Close this process's client connection (its session's actors end with it)."""
    global _connected
    import ray

    with _connection_lock:
        _connected = None
        if ray.is_initialized():
            bounded(ray.shutdown, CALL_TIMEOUT_S, "disconnecting from the Ray cluster")


def disconnected() -> None:
    """The client lost its cluster: the next connect() starts over."""
    global _connected
    with _connection_lock:
        _connected = None


def connected_ray() -> Any:
    """The ray module, connected: never let a call start a local cluster of its own."""
    import ray

    if not ray.is_initialized():
        raise WorkerError("the connection to the cluster was lost")
    return ray


def cluster_errors() -> tuple[type[BaseException], ...]:
    from ray.exceptions import RayError

    return (RayError, ConnectionError)

"""The base of the suite's local HTTP servers (the demo's sample feeds, the test fakes of providers): bound to
127.0.0.1 on an ephemeral port, served from a daemon thread, and stopped by themselves after a lifetime."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LocalHttpServer:
    server: ThreadingHTTPServer
    url: str

    def _serve(self, handler: type[BaseHTTPRequestHandler], lifetime_s: float, poll_interval: float = 0.5) -> None:
        """Bind now (so `url` is known); serving starts on `with`, and ends on exit or after `lifetime_s`."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True
        )
        self._timer = threading.Timer(lifetime_s, self.stop)
        self._timer.daemon = True

    def __enter__(self) -> Self:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()

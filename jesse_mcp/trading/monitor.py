"""The paper monitor: the background job that reconciles the paper ledger (stops, limit orders, timeouts, the kill
switch) on an interval while the server runs."""

from __future__ import annotations

import logging

import anyio

from jesse_mcp.trading.paper import PaperService

log = logging.getLogger(__name__)


class PaperMonitor:
    """Reconciles the paper ledger every `paper.monitor_interval_s` while the server runs.

    Over stdio the session's lifespan runs `session_loop`; over HTTP the server also runs it as a process-wide
    background job (deps.extras.background), so stops fire with no client connected. Of all running loops one
    at a time, the leader, does the work; another takes over when the leader's loop ends.
    """

    def __init__(self, paper: PaperService):
        self.paper = paper
        self._leader: object | None = None
        self.runs = 0

    async def session_loop(self) -> None:
        me = object()
        try:
            while True:
                try:
                    interval = self.paper.last_good_config().paper.monitor_interval_s
                except Exception:  # no valid configuration yet: try again soon
                    interval = 15.0
                await anyio.sleep(interval)
                if self._leader is None:
                    self._leader = me
                if self._leader is not me:
                    continue
                try:
                    await self.paper.reconcile(record_locks=True)
                    await anyio.to_thread.run_sync(self.paper.store.checkpoint)
                    self.runs += 1
                except Exception:  # the monitor must outlive a bad price, a locked database or a broken config
                    log.exception("paper monitor: reconciliation failed; trying again next interval")
        finally:
            if self._leader is me:
                self._leader = None

"""Every process follows the store's event log and feeds its own bus from it.

A case change is logged by the store with the write itself (dispatch/store: one event per
change, numbered globally), so nothing is published by the code that changed the case, nothing
is lost if a process dies after its write, and every process — whichever wrote the change —
delivers it to its own WebSocket clients under the same number. A client that reconnects to
another process resumes from that number.
"""

from __future__ import annotations

import asyncio
import logging

from dispatch.store import StoreUnavailable

log = logging.getLogger(__name__)


class LogTail:
    def __init__(self, events, bus, batch: int = 500, wait_seconds: float = 0.5):
        self.events = events
        self.bus = bus
        self.batch = batch
        self.wait_seconds = wait_seconds
        self.seq = 0  # the last event handed to the bus
        self._task: asyncio.Task | None = None
        self._stopped = False

    async def start(self) -> None:
        """Follow the log from its present end (older events are history, not news)."""
        self.seq = await self.events.last_seq()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while not self._stopped and not self.events.closed:
            try:
                events = await self.events.wait_after(self.seq, self.batch, self.wait_seconds)
            except StoreUnavailable:
                await asyncio.sleep(1)  # the database is away: the next round catches up
                continue
            except Exception:  # noqa: BLE001 - the tail must outlive any one failure
                log.exception("event log: reading failed")
                await asyncio.sleep(1)
                continue
            for event in events:
                self.seq = event["_id"]
                self.bus.publish(event["type"], event["case"], seq=event["_id"])

    async def caught_up(self, timeout: float = 10.0) -> None:
        """Wait until every event this process has logged or seen has reached its bus."""
        target = self.events.head
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        spins = 0
        while self.seq < target:
            if loop.time() > deadline:
                raise TimeoutError(f"event log: at {self.seq}, {target} logged")
            # The in-memory log wakes the tail at once: a few turns of the loop are enough.
            await asyncio.sleep(0 if spins < 50 else 0.005)
            spins += 1

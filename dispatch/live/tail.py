"""Every process follows the store's event log and feeds its own bus from it.

A case change is logged by the store with the write itself (dispatch/store: one event per
change, numbered globally), so nothing is published by the code that changed the case, nothing
is lost if a process dies after its write, and every process — whichever wrote the change —
delivers it to its own WebSocket clients under the same number. A client that reconnects to
another process resumes from that number.

A published city configuration version is logged too (`config.published`, dispatch/admin): it
goes to `on_config`, never to the bus, so live case clients never see it.
"""

from __future__ import annotations

import asyncio
import logging

from dispatch.background import cancel
from dispatch.store import StoreUnavailable

log = logging.getLogger(__name__)


class LogTail:
    def __init__(self, events, bus, batch: int = 500, wait_seconds: float = 0.5, on_config=None):
        self.events = events
        self.bus = bus
        self.on_config = on_config  # async (version) → None
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
        await cancel(self._task)
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
                if event["type"].startswith("config."):
                    if not await self._config(event):
                        break  # not past it: read again
                    self.seq = event["_id"]
                else:
                    self.seq = event["_id"]
                    self.bus.publish(event["type"], event["case"], seq=event["_id"])

    async def _config(self, event: dict) -> bool:
        """Hand a published configuration version to `on_config`; False to try it again."""
        if self.on_config is None:
            return True
        try:
            await self.on_config(event["version"])
        except StoreUnavailable:
            await asyncio.sleep(1)
            return False
        except Exception:  # noqa: BLE001 - the tail must outlive a version it cannot use
            log.exception("event log: following configuration version %s failed", event.get("version"))
        return True

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

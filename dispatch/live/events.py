"""In-process event bus: the log tail (`tail.py`) publishes each logged case change once; the
live feed and the demo simulator subscribe.

Subscribers are plain callables run synchronously in publish order, so a slow consumer must
queue work itself (the WebSocket handler writes without awaiting). Each event carries the
log's global sequence number (`id`), the same in every process.
"""

from __future__ import annotations

import logging
from typing import Callable

log = logging.getLogger(__name__)

Event = dict
Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self):
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe():
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event_type: str, case: dict, seq: int) -> None:
        event = {"id": seq, "type": event_type, "case": case}
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - one broken subscriber must not stop the others
                log.exception("event subscriber failed on %s", event_type)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

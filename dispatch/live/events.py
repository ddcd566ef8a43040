"""In-process event bus: intake and workflow publish case changes; the live feed subscribes.

Subscribers are plain callables run synchronously in publish order, so a slow consumer must
queue work itself (the WebSocket handler writes without awaiting). Across processes the same
events come from MongoDB change streams (see docs), fed into this bus.
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

    def publish(self, event_type: str, case: dict) -> None:
        event = {"type": event_type, "case": case}
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - one broken subscriber must not stop the others
                log.exception("event subscriber failed on %s", event_type)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

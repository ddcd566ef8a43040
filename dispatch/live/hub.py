"""Live feed: case events fanned out to WebSocket clients, each seeing only its own scope.

Like Zulip's event queues, every event gets a sequence number and the hub keeps the most recent
ones, so a client that reconnects with `since=<last id>` catches up what it missed; if it fell
further behind than the buffer reaches, it is told to reload (`resync`) instead of silently
missing changes. An event is serialised once and then only filtered per client.
"""

from __future__ import annotations

import collections
import json
import logging
from dataclasses import dataclass, field
from typing import Callable

from dispatch.access.auth import User
from dispatch.domain import to_feature
from dispatch.access.policy import can_read_case

log = logging.getLogger(__name__)


@dataclass
class LiveEvent:
    id: int
    type: str
    case: dict  # stored document, for the per-client scope check
    message: bytes  # the UTF-8 JSON frame payload, encoded once for every client


@dataclass(eq=False)
class Subscriber:
    user: User
    send: Callable[[bytes], None]
    sent: int = field(default=0)


class LiveHub:
    def __init__(self, bus, city_id: str, tz, buffer_size: int = 10000):
        self.city_id = city_id
        self.tz = tz
        self.sequence = 0
        self.recent: collections.deque[LiveEvent] = collections.deque(maxlen=buffer_size)
        self.subscribers: set[Subscriber] = set()
        bus.subscribe(self._on_event)

    def _on_event(self, event: dict) -> None:
        self.sequence += 1
        case = event["case"]
        # Features carry no caller data, so one serialisation serves every user.
        message = json.dumps(
            {"id": self.sequence, "type": event["type"], "case": to_feature(case, None, self.tz)},
            ensure_ascii=False, separators=(",", ":"),
        ).encode()
        live_event = LiveEvent(self.sequence, event["type"], case, message)
        self.recent.append(live_event)
        for subscriber in list(self.subscribers):
            self._deliver(subscriber, live_event)

    def _deliver(self, subscriber: Subscriber, event: LiveEvent) -> None:
        if can_read_case(subscriber.user, event.case, self.city_id):
            try:
                subscriber.send(event.message)
                subscriber.sent += 1
            except Exception:  # noqa: BLE001 - a closed socket must not break the fan-out
                log.debug("dropping live subscriber %s", subscriber.user.username)
                self.subscribers.discard(subscriber)

    def join(self, user: User, send: Callable[[bytes], None], since: int | None) -> Subscriber:
        """Register a client; replay what it missed after event `since`, or ask it to resync."""
        subscriber = Subscriber(user, send)
        if since is not None and since < self.sequence:
            oldest = self.recent[0].id if self.recent else self.sequence + 1
            if since + 1 < oldest:
                send(json.dumps({"type": "resync", "id": self.sequence}).encode())
            else:
                for event in self.recent:
                    if event.id > since:
                        self._deliver(subscriber, event)
        self.subscribers.add(subscriber)
        return subscriber

    def leave(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

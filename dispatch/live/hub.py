"""Live feed: case events fanned out to WebSocket clients, each seeing only its own scope.

Like Zulip's event queues, every event carries a sequence number — the event log's global one,
the same in every process — and the hub keeps the most recent ones, so a client that reconnects
with `since=<last id>`, to this process or another, catches up what it missed; if it fell
further behind than the buffer reaches, it is told to reload (`resync`) instead of silently
missing changes. An event is serialised once and then only filtered per client.

A subscription lasts as long as the session that opened it: every delivery checks the token's
expiry (a comparison), logout ends its sockets at once (`end_session`), and every few seconds
the sessions of all open sockets are checked again (`watch_sessions`: revocation, disabling,
password resets — also those made by another process).
"""

from __future__ import annotations

import collections
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from tornado.ioloop import PeriodicCallback

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
    session: dict | None = None  # the token's claims (`jti`, `exp`, ...)
    expires_at: float = math.inf  # the token's `exp`
    end: Callable[[str], None] | None = None  # closes the socket, saying why
    # The last event the client already has (`since`): a process whose tail is still behind it
    # publishes those events later, and they must not reach the client twice.
    seen: int = 0


class LiveHub:
    def __init__(self, bus, city_id: str, tz, buffer_size: int = 10000, timer=None):
        self.city_id = city_id
        self.tz = tz
        self.timer = timer  # case -> its stage clock as pages show it (Workflow.timer), or None
        self.sequence = 0  # the last event's number (the log's, set by the tail when it starts)
        self.recent: collections.deque[LiveEvent] = collections.deque(maxlen=buffer_size)
        self.subscribers: set[Subscriber] = set()
        self.per_user: collections.Counter[str] = collections.Counter()  # open subscriptions
        self.per_address: collections.Counter[str] = collections.Counter()  # open sockets
        self._watch: PeriodicCallback | None = None
        self._checking = False
        bus.subscribe(self._on_event)

    def _on_event(self, event: dict) -> None:
        self.sequence = event["id"]
        case = event["case"]
        # Features carry no caller data, so one serialisation serves every user.
        message = json.dumps(
            {"id": self.sequence, "type": event["type"], "case": to_feature(case, None, self.tz, self.timer(case) if self.timer else None)},
            ensure_ascii=False, separators=(",", ":"),
        ).encode()
        live_event = LiveEvent(self.sequence, event["type"], case, message)
        self.recent.append(live_event)
        now = time.time()
        for subscriber in list(self.subscribers):
            self._deliver(subscriber, live_event, now)

    def _deliver(self, subscriber: Subscriber, event: LiveEvent, now: float) -> None:
        if event.id <= subscriber.seen:
            return
        if subscriber.expires_at <= now:
            self._end(subscriber, "session_expired")
            return
        if can_read_case(subscriber.user, event.case, self.city_id):
            try:
                subscriber.send(event.message)
                subscriber.sent += 1
            except Exception:  # noqa: BLE001 - a closed socket must not break the fan-out
                log.debug("dropping live subscriber %s", subscriber.user.username)
                self.leave(subscriber)

    def join(self, user: User, send: Callable[[bytes], None], since: int | None, session: dict | None = None,
             end: Callable[[str], None] | None = None) -> Subscriber:
        """Register a client; replay what it missed after event `since`, or ask it to resync."""
        expires_at = float(session["exp"]) if session else math.inf
        subscriber = Subscriber(user, send, session=session, expires_at=expires_at, end=end, seen=since or 0)
        now = time.time()
        if since is not None and since < self.sequence:
            oldest = self.recent[0].id if self.recent else self.sequence + 1
            if since + 1 < oldest:
                send(json.dumps({"type": "resync", "id": self.sequence}).encode())
            else:
                for event in self.recent:
                    if event.id > since:
                        self._deliver(subscriber, event, now)
        self.subscribers.add(subscriber)
        self.per_user[user.username] += 1
        return subscriber

    def leave(self, subscriber: Subscriber) -> None:
        if subscriber in self.subscribers:
            self.subscribers.discard(subscriber)
            self.per_user[subscriber.user.username] -= 1
            if self.per_user[subscriber.user.username] <= 0:
                del self.per_user[subscriber.user.username]
        if not self.subscribers and self._watch is not None:
            self._watch.stop()  # nothing to watch; the next join starts it again
            self._watch = None

    def _end(self, subscriber: Subscriber, why: str) -> None:
        self.leave(subscriber)
        if subscriber.end is not None:
            subscriber.end(why)

    def end_session(self, jti: str) -> int:
        """Close every subscription opened with this token (logout); how many there were."""
        ended = [s for s in self.subscribers if s.session and s.session.get("jti") == jti]
        for subscriber in ended:
            self._end(subscriber, "session_ended")
        return len(ended)

    def watch_sessions(self, alive: Callable[[list[dict]], Awaitable[list[bool]]], seconds: float) -> None:
        """Check the sessions of all subscriptions every `seconds` with `alive` (one verdict per
        session); end those that no longer stand. Runs while there are subscribers."""
        if self._watch is None:
            self._watch = PeriodicCallback(lambda: self._check_sessions(alive), seconds * 1000)
            self._watch.start()

    async def _check_sessions(self, alive) -> None:
        if self._checking:
            return  # the previous round is still reading
        self._checking = True
        try:
            watched = [s for s in self.subscribers if s.session is not None]
            verdicts = await alive([s.session for s in watched]) if watched else []
            for subscriber, ok in zip(watched, verdicts):
                if not ok and subscriber in self.subscribers:
                    self._end(subscriber, "session_ended")
        except Exception:  # noqa: BLE001 - a failed round (database away) must not stop the watch
            log.exception("live feed: checking sessions failed")
        finally:
            self._checking = False

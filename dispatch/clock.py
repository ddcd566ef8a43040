"""Instants as the store keeps them: UTC, to the millisecond.

MongoDB (and FerretDB) keep datetimes to the millisecond. Every instant that goes into a case
is cut to that precision first, so what is hashed into the history chain, compared by the sweep
or returned to a client is the same before and after a round trip through any engine.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime, timedelta, timezone
from typing import Callable


def stored_instant(moment: datetime) -> datetime:
    """`moment` in UTC, truncated to milliseconds (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def utcnow() -> datetime:
    """Now, as the store keeps it."""
    return stored_instant(datetime.now(timezone.utc))


class Clock:
    """The application's one clock (`Context.clock`), handed to every service that stamps or
    compares instants: the workflow, intake, the sweep, the scheduler, the KPIs, the throttles.

    It reads real time unless something drives it: a test pins it (`set`, `advance`), the
    simulator makes it follow its simulated time (`following`). Services keep this object, so
    driving it changes the time for all of them at once and nothing else needs patching.
    """

    def __init__(self) -> None:
        self._source: Callable[[], datetime] | None = None

    def now(self) -> datetime:
        """Now, as the store keeps it (UTC, milliseconds)."""
        return utcnow() if self._source is None else stored_instant(self._source())

    def timestamp(self) -> float:
        """Now in seconds since the epoch (what the throttles count in)."""
        return time.time() if self._source is None else self.now().timestamp()

    def set(self, moment: datetime) -> None:
        """Stop the clock at `moment` (tests)."""
        if moment.tzinfo is None:
            raise ValueError("Clock.set needs an aware datetime")
        pinned = stored_instant(moment)
        self._source = lambda: pinned

    def advance(self, **delta) -> datetime:
        """Move a stopped (or real) clock forward by `timedelta(**delta)`; returns the new now."""
        self.set(self.now() + timedelta(**delta))
        return self.now()

    def release(self) -> None:
        """Back to real time."""
        self._source = None

    @contextlib.contextmanager
    def following(self, source: Callable[[], datetime]):
        """While inside, `now()` is `source()` (the simulator's clock); restored afterwards."""
        previous, self._source = self._source, source
        try:
            yield self
        finally:
            self._source = previous

    @property
    def driven(self) -> bool:
        return self._source is not None

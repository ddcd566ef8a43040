"""Instants as the store keeps them: UTC, to the millisecond.

MongoDB (and FerretDB) keep datetimes to the millisecond. Every instant that goes into a case
is cut to that precision first, so what is hashed into the history chain, compared by the sweep
or returned to a client is the same before and after a round trip through any engine.
"""

from __future__ import annotations

from datetime import datetime, timezone


def stored_instant(moment: datetime) -> datetime:
    """`moment` in UTC, truncated to milliseconds (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def utcnow() -> datetime:
    """Now, as the store keeps it."""
    return stored_instant(datetime.now(timezone.utc))

"""A bound on the writes one process has in flight, so FerretDB 1.24 cannot lock itself up.

FerretDB 1.24 on PostgreSQL runs an update, replace, findAndModify or delete statement as a
read (one connection of its PostgreSQL pool, 50 by default) and then a write in a transaction
(a second connection). When the read matched a document it keeps the first connection until
the whole command ends (internal/handler/msg_update.go: the statement's iterator is closed by a
`defer` in the loop over statements). So each such statement in flight holds one connection and
waits for another. Fifty of them at once, from all clients together, hold the whole pool and
wait for ever; from then on FerretDB answers nobody (measured on this project's FerretDB: 100
concurrent `update_one`, or one `bulk_write` of 120 replaces, and FerretDB stops for good. The
1,000,000-case sweep stalled this way: the KPI applier's bulk replaces of 200).

So here: at most `SLOTS` such statements of one process are in flight, and a bulk write sends
at most `BULK_STATEMENTS` of them per command. FerretDB's pool must hold more than `SLOTS` times
the processes sharing it (docs/FERRETDB.md); on MongoDB the bound only queues a burst.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

SLOTS = 12
BULK_STATEMENTS = 4

# The statements that read, keep what they read, and then write (inserts and finds do not).
GATED = ("update_one", "update_many", "replace_one", "delete_one", "delete_many",
         "find_one_and_update", "find_one_and_replace", "find_one_and_delete")


class WriteSlots:
    """`SLOTS` permits; a bulk write takes one per statement."""

    def __init__(self, size: int = SLOTS):
        self.size = size
        self._free = asyncio.Semaphore(size)
        # One taker of several permits at a time: two, each holding part of what it needs, would
        # wait for each other.
        self._several = asyncio.Lock()

    @asynccontextmanager
    async def hold(self, n: int = 1):
        if not 1 <= n <= self.size:
            raise ValueError(f"{n} write slots asked for, {self.size} exist")
        taken = 0
        try:
            if n == 1:
                await self._free.acquire()
                taken = 1
            else:
                async with self._several:
                    while taken < n:
                        await self._free.acquire()
                        taken += 1
            yield
        finally:
            for _ in range(taken):
                self._free.release()


class GatedCollection:
    """A PyMongo collection whose reading writes pass `WriteSlots`; everything else is the
    collection's own."""

    def __init__(self, collection, slots: WriteSlots):
        self._collection = collection
        self._slots = slots
        for name in GATED:
            setattr(self, name, self._gated(getattr(collection, name)))

    def _gated(self, method):
        async def call(*args, **kwargs):
            async with self._slots.hold():
                return await method(*args, **kwargs)
        call.__name__ = method.__name__
        return call

    async def bulk_write(self, requests: list, **kwargs):
        """At most `BULK_STATEMENTS` statements: callers send a long list in parts."""
        if len(requests) > BULK_STATEMENTS:
            raise ValueError(f"{len(requests)} statements in one bulk write; at most {BULK_STATEMENTS}")
        async with self._slots.hold(len(requests)):
            return await self._collection.bulk_write(requests, **kwargs)

    def __getattr__(self, name):
        return getattr(self._collection, name)


class GatedDatabase:
    """`database[name]` gives a `GatedCollection`; all of one store's collections share the slots."""

    def __init__(self, database, slots: WriteSlots):
        self._database = database
        self._slots = slots

    def __getitem__(self, name: str) -> GatedCollection:
        return GatedCollection(self._database[name], self._slots)

    def __getattr__(self, name):
        return getattr(self._database, name)

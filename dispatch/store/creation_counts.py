"""How many cases were created in each hour and each slice of it (server engine).

A list walk reads a busy hour a slice at a time and skips the hours no case was created in
(`buckets.hour_slices`); it learns which from these counts. A count may exceed the cases stored
(a slice read for nothing costs one read) but must never fall short of them (a slice or hour
counted empty is not read: its cases would be missing from the lists), so cases are counted
before they are stored, and no count is ever lost:

* FerretDB 1.24 loses concurrent updates of one document — it reads the document, applies `$inc`
  in Go and writes the whole document back (docs/FERRETDB.md) — so each process counts into
  documents of its own (`writer`: a new id each time a store is opened) and never has two
  updates of one document in flight: increments wait in `pending` while a write is under way and
  the next write carries all of them (one write for a burst of reports, not one each).
* A reader adds up every writer's documents of a day (`day`), of a month's days (`month`: a walk
  over weeks reads a month's counts at once, not each day's) or of an hour (`hour`), each one
  equality (GIN indexes: `dispatch/tools/tune_ferretdb.py`). Day documents written before they
  carried `month` get it when the store opens (`MongoCases.ensure_indexes`).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from bson import ObjectId

from dispatch.store import buckets


class CreationCounts:
    def __init__(self, collection):
        self.collection = collection
        self.writer = str(ObjectId())
        self._pending: dict[str, dict[str, int]] = {}  # document id → increments not yet written
        self._writing = asyncio.Lock()  # one write of this writer's documents at a time

    async def add(self, created: list[datetime]) -> None:
        """Count cases about to be stored; returns once a completed write holds their counts."""
        for doc_id, fields in buckets.created_counts(created).items():
            held = self._pending.setdefault(doc_id, {})
            for field, n in fields.items():
                held[field] = held.get(field, 0) + n
        async with self._writing:
            if not self._pending:
                return  # the write that just ended carried ours
            batch, self._pending = self._pending, {}
            try:
                await asyncio.gather(*(self._write(doc_id, fields) for doc_id, fields in batch.items()))
            except BaseException:
                # Not known to be written: counted again by the next write (a count written twice
                # only costs a read), or the reports waiting on it would be stored uncounted.
                for doc_id, fields in batch.items():
                    held = self._pending.setdefault(doc_id, {})
                    for field, n in fields.items():
                        held[field] = held.get(field, 0) + n
                raise

    async def _write(self, doc_id: str, fields: dict[str, int]) -> None:
        kind = {"day": doc_id, "month": month_of(doc_id)} if doc_id.startswith("d") else {"hour": doc_id}
        await self.collection.update_one({"_id": f"{doc_id}|{self.writer}"},
                                         {"$inc": fields, "$set": kind}, upsert=True)

    async def hours_of_day(self, day: str) -> dict[str, int]:
        """{"h01": cases, ...} for the day document id `day` (`buckets.day_count_key`)."""
        return _sum(await self.collection.find({"day": day}).to_list(None))

    async def hours_of_month(self, month: str) -> dict[str, dict[str, int]]:
        """{day document id: {"h01": cases, ...}} of the days of `month` (`month_of`) any case was
        counted in (a day missing had none)."""
        docs: dict[str, list[dict]] = {}
        for doc in await self.collection.find({"month": month}).to_list(None):
            docs.setdefault(doc["day"], []).append(doc)
        return {day: _sum(held) for day, held in docs.items()}

    async def mark_months(self, days: list[str]) -> None:
        """Give the day documents of `days` (written before they carried it) their `month`."""
        for day in days:
            await self.collection.update_many({"day": day}, {"$set": {"month": month_of(day)}})

    async def slices_of_hour(self, hour: str) -> dict[str, int]:
        """{"a3": cases, "b30": cases, ...} for the hour document id `hour` (`buckets.hour_count_id`)."""
        return _sum(await self.collection.find({"hour": hour}).to_list(None))


def _sum(docs: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for doc in docs:
        for field, value in doc.items():
            if isinstance(value, int) and not isinstance(value, bool):
                out[field] = out.get(field, 0) + value
    return out


def month_of(day: str) -> str:
    """The month of a day document id: "d20261129" → "m202611"."""
    return "m" + day[1:7]

"""The server engine: MongoDB 6.0+ or FerretDB 1.24 (on PostgreSQL) through PyMongo's async API.

Only what both servers implement, and implement safely under concurrency (docs/ARCHITECTURE.md,
"The store"): single-document inserts, replaces and finds with sort and limit; plain and
compound indexes, unique ones included. No multi-document transactions, no change streams, no
TTL index, no 2dsphere or `$geoWithin` (a box is a range on two indexed number fields,
`geo_lng`/`geo_lat`, kept beside the GeoJSON point), no `$slice` projection.

The one thing FerretDB 1.24 does not give is an atomic filtered update: two
`find_one_and_update({_id, version: 3})` calls racing may both report success while only one
write survives, and `$inc` loses increments (measured: 14 distinct values from 40 concurrent
increments). What it does give atomically is a unique index. So every guarded write here is an
**insert-once claim** followed by a plain write: a version-guarded update first inserts
`case_claims {_id: "<case>:<version+1>"}`; only the one caller whose insert succeeds replaces the
case (the new document computed in Python, `change.py`). Case numbers and scheduler lease terms
are claimed the same way. A claim left by a process that died before its write is abandoned
after `STALE_CLAIM` and taken over; `housekeeping` deletes old claims. On MongoDB the same code
is correct too, one round trip dearer than a `findAndModify`.

Durability is the server's: give the URI `w=majority&journal=true` on a replica set, so a case
is acknowledged only once the majority has it on disk. A server that cannot be reached or does
not answer in time raises `StoreUnavailable` (the API answers 503 with Retry-After).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import re
from datetime import datetime, timedelta, timezone

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReplaceOne, ReturnDocument
from pymongo.errors import BulkWriteError, ConnectionFailure, DuplicateKeyError, OperationFailure, PyMongoError

from dispatch.store import buckets
from dispatch.store.query import (
    BY_ID, EVERYTHING, NEWEST, OLDEST, After, CaseQuery, Change, DuplicateCase, PeriodQuery, Scope, StoreUnavailable,
    number_parts,
)
from dispatch.clock import stored_instant
from dispatch.store.change import apply_change, get_path
from dispatch.store.creation_counts import CreationCounts
from dispatch.store.walk import Walk, Window
from dispatch.store.packing import (
    WITHOUT_RECORDS, case_fields, pack_bucket, pack_case, unpack_bucket, unpack_case,
)
from dispatch.store.write_gate import BULK_STATEMENTS, GatedDatabase, WriteSlots
from dispatch.store.records import (
    AUDIT_KINDS, BUCKET_SHELF, CREATED, DUE_FIELDS, OPEN_STATUSES, PHOTO_FIELDS, UPDATED, bucket_shelf, case_event,
    client_key, shelf, last_history_only,
)

log = logging.getLogger(__name__)

# PyMongo's command log at DEBUG prints whole documents, callers' names and numbers included:
# it never goes below INFO, whatever the root logger's level.
logging.getLogger("pymongo").setLevel(logging.INFO)

# Server error codes that mean "not reachable / not now", not "your request is wrong".
_UNAVAILABLE_CODES = frozenset({
    6, 7, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436,
})


def _unavailable(exc: PyMongoError) -> bool:
    if isinstance(exc, ConnectionFailure) or getattr(exc, "timeout", False):
        return True
    if isinstance(exc, OperationFailure):
        if exc.code in _UNAVAILABLE_CODES or exc.has_error_label("RetryableWriteError"):
            return True
        # FerretDB answers with an internal error while its PostgreSQL is down.
        text = str(exc).lower()
        return any(word in text for word in ("connection refused", "failed to connect", "connect:",
                                             "no such host", "pool", "postgres"))
    return False


def guarded(method):
    """Database errors that mean the server is unavailable become `StoreUnavailable`."""

    @functools.wraps(method)
    async def wrapper(*args, **kwargs):
        try:
            return await method(*args, **kwargs)
        except DuplicateKeyError:
            raise
        except PyMongoError as exc:
            if _unavailable(exc):
                raise StoreUnavailable(str(exc)) from exc
            raise

    return wrapper


# --------------------------------------------------------------------------------------------
# Translating query values
# --------------------------------------------------------------------------------------------


def scope_filter(scope: Scope) -> dict:
    if scope.everything:
        return {}
    if scope.department is not None:
        return {"departments_seen": scope.department}
    clauses = []
    if scope.within is not None:
        clauses.append({"scope_path": scope.within})
    if scope.reporter is not None:
        clauses.append({"reporters": scope.reporter})
    if not clauses:
        return {"_id": {"$in": []}}  # a scope that names nothing sees nothing
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def _text_filter(search) -> dict:
    pattern = {"$regex": re.escape(search.text)}
    raw = {"$or": [{"number": pattern}, {"description": pattern}, {"address": pattern}]}
    if search.raw_for_all:
        return raw
    masked = {"search_masked": pattern}
    if search.raw_for_creator is not None:
        return {"$or": [{"$and": [{"created_by": search.raw_for_creator}, raw]},
                        {"$and": [{"created_by": {"$ne": search.raw_for_creator}}, masked]}]}
    return masked


def case_filter(q: CaseQuery) -> dict:
    clauses = [scope_filter(q.scope)]
    if q.statuses:
        clauses.append({"status": {"$in": list(q.statuses)}})
    if q.open_only:
        clauses.append({"status": {"$in": list(OPEN_STATUSES)}})
    if q.categories:
        clauses.append({"category.code": {"$in": list(q.categories)}})
    if q.departments:
        clauses.append({"assignment.department.id": {"$in": list(q.departments)}})
    for level, ids in q.jurisdictions:
        clauses.append({f"jurisdiction.{level}.id": {"$in": list(ids)}})
    if q.sources:
        clauses.append({"source": {"$in": list(q.sources)}})
    if q.overdue is not None:
        clauses.append({"flags.overdue": True} if q.overdue else {"flags.overdue": {"$ne": True}})
    if q.warning:
        clauses.append({"flags.warning": True, "flags.overdue": {"$ne": True}})
    if q.supervised:
        clauses.append({"flags.supervised": True})
    if q.return_pending:
        clauses.append({"flags.return_pending": True})
    if q.reporter is not None:
        clauses.append({"reporters": q.reporter})
    if q.box is not None:
        clauses.append({"geo_lng": {"$gte": q.box.west, "$lte": q.box.east},
                        "geo_lat": {"$gte": q.box.south, "$lte": q.box.north}})
    if q.created_from is not None or q.created_to is not None:
        span = {}
        if q.created_from is not None:
            span["$gte"] = q.created_from
        if q.created_to is not None:
            span["$lt"] = q.created_to
        clauses.append({"created_at": span})
    if q.text is not None:
        clauses.append(_text_filter(q.text))
    if q.after is not None:
        clauses.append(_after_filter(q))
    clauses = [c for c in clauses if c]
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _after_filter(q: CaseQuery) -> dict:
    after = q.after
    if q.order == BY_ID:
        return {"_id": {"$gt": after.case_id}}
    op = "$lt" if q.order == NEWEST else "$gt"
    return {"$or": [{"created_at": {op: after.created_at}},
                    {"created_at": after.created_at, "_id": {op: after.case_id}}]}


SORTS = {
    NEWEST: [("created_at", DESCENDING), ("_id", DESCENDING)],
    OLDEST: [("created_at", ASCENDING), ("_id", ASCENDING)],
    BY_ID: [("_id", ASCENDING)],
}


def period_filter(pq: PeriodQuery) -> dict:
    window = {"$gte": pq.start, "$lt": pq.end}
    touched = {"$or": [
        {"created_at": {"$lt": pq.end}, "$or": [
            {"created_at": window},
            {"updated_at": {"$gte": pq.start}},
            {"closed_at": {"$gte": pq.start}},
            {"deadlines.handle_by": window},
            {"status": {"$in": list(OPEN_STATUSES)}},
        ]},
        {"status": {"$in": list(OPEN_STATUSES)}, "flags.overdue": True},
    ]}
    clauses = [scope_filter(pq.scope), {"scope_path": pq.within} if pq.within else {}, touched]
    clauses = [c for c in clauses if c]
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _point_fields(location) -> dict:
    """The indexed coordinates kept beside a case's GeoJSON point (None while it has none)."""
    coordinates = (location or {}).get("coordinates") if isinstance(location, dict) else None
    if not coordinates:
        return {"geo_lng": None, "geo_lat": None}
    return {"geo_lng": float(coordinates[0]), "geo_lat": float(coordinates[1])}


def _query_fields(doc: dict, now: datetime) -> dict:
    """The equality buckets kept beside a case (`dispatch.store.buckets`): its query keys, the
    minute the deadline sweep finds it under and the slices of its hour a busy hour is read by."""
    return {"qk": buckets.query_keys(doc), "due_keys": buckets.due_keys(doc.get("next_due_at"), now),
            "slot": buckets.slots(doc["created_at"])}


_DERIVED = ("geo_lng", "geo_lat", "client_key", "qk", "due_keys", "slot")


def _as_utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def _stored(doc: dict, now: datetime) -> dict:
    """A case as written: its derived fields beside it, its record lists packed."""
    return pack_case({**doc, "client_key": client_key(doc)[1], **_point_fields(doc.get("location")),
                      **_query_fields(doc, now)})


def _out(doc: dict | None, fields=None) -> dict | None:
    """A case as read (with `fields`: read with `case_fields(fields)`)."""
    if doc is not None:
        unpack_case(doc, fields)
        for key in _DERIVED:
            doc.pop(key, None)
    return doc


# --------------------------------------------------------------------------------------------
# Repositories
# --------------------------------------------------------------------------------------------

CASE_INDEXES = [
    IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="created_id"),
    IndexModel([("status", ASCENDING), ("created_at", DESCENDING)], name="status_created"),
    IndexModel([("assignment.department.id", ASCENDING), ("created_at", DESCENDING)], name="department_created"),
    IndexModel([("departments_seen", ASCENDING), ("created_at", DESCENDING)], name="seen_created"),
    IndexModel([("scope_path", ASCENDING), ("created_at", DESCENDING)], name="scope_created"),
    IndexModel([("reporters", ASCENDING), ("created_at", DESCENDING)], name="reporters_created"),
    IndexModel([("category.code", ASCENDING), ("created_at", DESCENDING)], name="category_created"),
    IndexModel([("next_due_at", ASCENDING), ("_id", ASCENDING)], name="next_due"),
    IndexModel([("geo_lng", ASCENDING), ("geo_lat", ASCENDING)], name="geo"),
    IndexModel([("number", ASCENDING)], name="number", unique=True),  # a second line of defence
    IndexModel([("created_by", ASCENDING), ("client_key", ASCENDING)], name="intake_client", unique=True),
    # The equality buckets (dispatch/store/buckets.py). On MongoDB a multikey index that returns
    # a bucket in list order; on FerretDB 1.24 PostgreSQL needs GIN indexes on these fields
    # (dispatch/tools/tune_ferretdb.py), as FerretDB's own btree cannot serve its `@>` filters.
    IndexModel([("qk", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)], name="qk_created"),
    IndexModel([("due_keys", ASCENDING)], name="due_keys"),
    IndexModel([("caller.phone", ASCENDING)], name="caller_phone"),  # the assist's caller history
]

FERRETDB_SKIPS = ("qk_created", "due_keys")

# How long the start of the history (the oldest year holding cases) is remembered.
FLOOR_KEPT = timedelta(seconds=60)


_RELEASED = datetime(1970, 1, 1, tzinfo=timezone.utc)
# How long the event log keeps a change: enough for any client to catch up after a reconnect.
EVENTS_KEPT = timedelta(days=7)

# A claim older than this whose write never came belongs to a process that died mid-write.
STALE_CLAIM = timedelta(seconds=30)
# A claim not marked relayed after this long lost its writer between the write and the log.
RELAY_AFTER = timedelta(seconds=3)
# Claims are only needed while their write is under way; older ones are deleted.
CLAIM_KEPT = timedelta(hours=1)


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def claim(collection, claim_id: str, now: datetime, **fields) -> bool:
    """Insert-once: True for the one caller whose claim is stored. A stale claim (its owner died
    before writing) is removed and the claim tried once more."""
    for _ in range(2):
        try:
            await collection.insert_one({"_id": claim_id, "at": now, **fields})
            return True
        except DuplicateKeyError:
            held = await collection.find_one({"_id": claim_id})
            if held is None or held["at"] > now - STALE_CLAIM:
                return False
            await collection.delete_one({"_id": claim_id, "at": held["at"]})
    return False


async def ensure_indexes(collection, models: list[IndexModel]) -> None:
    """Create the indexes not there yet. (FerretDB 1.24 panics on `createIndexes` naming an
    index that already exists, so existing names are skipped rather than re-declared.)"""
    existing = {index["name"] async for index in await collection.list_indexes()}
    missing = [m for m in models if m.document["name"] not in existing]
    if missing:
        await collection.create_indexes(missing)


def _consume(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


class MongoEvents:
    """The event log (`events`): one document per case change, `_id` its global sequence
    1, 2, ..., taken insert-once (a competing writer takes the next), and `key`
    "<case>:<version>" unique, so a change is logged once even if its writer and the relay
    (`relay_pending`) both try. A sequence is only taken after the one before it exists, so the
    log has no holes and a reader of n+1, n+2, ... never sees n+2 before n+1.

    Readers and writers find their place by equality on `_id` (FerretDB 1.24 hands PostgreSQL
    equality filters, but scans the whole collection for a range or a sort): each process keeps
    the sequence it last saw, and reads only the highest sequence once, when it starts.
    """

    POLL_SECONDS = 0.1
    BATCH = 100  # events one insert carries (each holds its case, ~10 KB)

    def __init__(self, db):
        self.events = db["events"]
        self.meta = db["store_meta"]
        self._head: int | None = None  # the highest sequence this process has seen
        self.closed = False
        self._waiting: list[tuple[dict, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.events, [IndexModel([("key", ASCENDING)], name="key", unique=True),
                                           IndexModel([("at", ASCENDING)], name="at")])

    @guarded
    async def append(self, event: dict) -> int | None:
        """Log `event`; its sequence, or None if this change was logged already.

        The changes one process logs at the same time go into one ordered insert of consecutive
        sequences (a group commit). Each writing on its own, they would all try the same next
        sequence and all but one try again: n² inserts for n at once, which at 50 reports a
        second kept FerretDB busy with nothing else (docs/PERFORMANCE.md, "intake found")."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append((event, waiter))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_waiting())
        # Shielded: a caller that goes away does not take the others' insert with it (its change
        # is logged all the same, as the relay would).
        try:
            return await asyncio.shield(waiter)
        except asyncio.CancelledError:
            waiter.add_done_callback(_consume)  # nobody is left to hear how it went
            raise

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:self.BATCH], self._waiting[self.BATCH:]
            try:
                sequences = await self._insert_in_order([event for event, _ in batch])
            except BaseException as exc:  # noqa: BLE001 - handed to every caller waiting on it
                for _, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, waiter), seq in zip(batch, sequences):
                if not waiter.done():
                    waiter.set_result(seq)

    async def _insert_in_order(self, events: list[dict]) -> list[int | None]:
        """Give `events` the next free sequences, in order. A sequence is only taken after the
        one before it exists (the ordered insert stops at its first failure), so the log has no
        holes and a reader of n+1, n+2, ... never sees n+2 before n+1."""
        seq = self._head if self._head is not None else await self.last_seq()
        sequences: list[int | None] = [None] * len(events)
        todo = list(range(len(events)))
        for _ in range(10_000):
            if not todo:
                return sequences
            failed = None
            try:
                await self.events.insert_many([{"_id": seq + 1 + n, **events[i]} for n, i in enumerate(todo)],
                                              ordered=True)
                inserted = len(todo)
            except BulkWriteError as exc:
                failed = exc.details["writeErrors"][0]
                if failed.get("code") != 11000:
                    raise
                inserted = failed["index"]
            for n, i in enumerate(todo[:inserted]):
                sequences[i] = seq + 1 + n
            seq += inserted
            self._head = max(self._head or 0, seq)
            todo = todo[inserted:]
            if failed is not None:
                if await self.events.find_one({"key": events[todo[0]]["key"]}, {"_id": 1}) is not None:
                    todo = todo[1:]  # this change was logged already (its writer and the relay)
                else:
                    # Another process took the next number: step over the numbers taken since
                    # with a lookup each, rather than sending the whole batch again for each.
                    seq += 1
                    while await self.events.find_one({"_id": seq + 1}, {"_id": 1}) is not None:
                        seq += 1
                    self._head = max(self._head or 0, seq)
        raise StoreUnavailable("event log contended")

    async def record(self, event: dict) -> int | None:
        """Log an event that is no case change (a published configuration version): `key`
        unique, as a case change's."""
        return await self.append(event)

    @property
    def head(self) -> int:
        """The highest sequence this process has logged or read (no query)."""
        return self._head or 0

    # FerretDB 1.24 hands PostgreSQL only an equality or, with no filter and no sort, a limit: a
    # sorted `find` or a range reads and converts the whole log (34,000 events of 6 KB took over
    # 10 s, and a server on that store did not start). So the log's ends are found by `_id`
    # lookups: a gallop from a sequence known to exist, then halving.
    HOLE_REACH = 8  # a purge by time may leave a few holes near the oldest end (clocks a moment apart)
    PURGE_STEP = 2000  # events one purge looks at

    @guarded
    async def last_seq(self) -> int:
        start = self._head if self._head and await self._exists(self._head) else await self._any()
        seq = 0
        while start:
            seq = await self._run_end(start, 1)
            start = await self._first_logged(range(seq + 2, seq + 2 + self.HOLE_REACH))
        self._head = max(self._head or 0, seq)
        return self._head

    async def _first_logged(self, sequences: range) -> int | None:
        for seq in sequences:
            if await self._exists(seq):
                return seq
        return None

    async def _exists(self, seq: int) -> bool:
        return seq >= 1 and await self.events.find_one({"_id": seq}, {"_id": 1}) is not None

    async def _any(self) -> int | None:
        """Some logged sequence, or None for an empty log (a limit with no filter and no sort
        is the one FerretDB hands to PostgreSQL)."""
        found = await self.events.find({}, {"_id": 1}).limit(1).to_list(1)
        return found[0]["_id"] if found else None

    async def _run_end(self, start: int, step: int) -> int:
        """From `start` (logged), the last sequence of the unbroken run of logged ones towards
        `step` (+1: newer, -1: older), in about 2·log₂(run) lookups."""
        at, jump = start, step
        while await self._exists(at + jump):
            at += jump
            jump *= 2
        beyond = at + jump  # not logged
        while abs(beyond - at) > 1:
            middle = at + (beyond - at) // 2
            if await self._exists(middle):
                at = middle
            else:
                beyond = middle
        return at

    @guarded
    async def after(self, seq: int, limit: int) -> list[dict]:
        found = []
        while len(found) < limit:
            event = await self.events.find_one({"_id": seq + len(found) + 1})
            if event is None:
                break
            found.append(event)
        if found:
            self._head = max(self._head or 0, found[-1]["_id"])
        return found

    async def wait_after(self, seq: int, limit: int, timeout: float) -> list[dict]:
        """The events after `seq`, polling up to `timeout` seconds for one if there is none."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = await self.after(seq, limit)
            if found or self.closed or asyncio.get_running_loop().time() >= deadline:
                return found
            await asyncio.sleep(self.POLL_SECONDS)

    @guarded
    async def purge(self, before: datetime) -> int:
        """Forget events older than `before`, oldest first, never the newest (it carries the
        numbering): at most `PURGE_STEP` looked at, from where the last purge stopped
        (`store_meta` "events_floor"), each by `_id` (a `delete_many` by time read the whole log)."""
        last = await self.last_seq()
        held = await self.meta.find_one({"_id": "events_floor"})
        if held is not None:
            seq = held["seq"]
        else:
            oldest = await self._any()
            seq = await self._run_end(oldest, -1) if oldest else last
        deleted = 0
        for _ in range(self.PURGE_STEP):
            if seq >= last:
                break
            event = await self.events.find_one({"_id": seq}, {"at": 1})
            if event is not None:
                if _utc(event["at"]) >= before:
                    break
                await self.events.delete_one({"_id": seq})
                deleted += 1
            seq += 1
        await self.meta.replace_one({"_id": "events_floor"}, {"_id": "events_floor", "seq": seq}, upsert=True)
        return deleted


class MongoCases:
    def __init__(self, db, events: MongoEvents):
        self.cases = db["cases"]
        self.claims = db["case_claims"]
        self.numbers = db["case_numbers"]
        self.counts = CreationCounts(db["case_counts"])  # cases created per hour and per slice
        self._counted_from: datetime | None = None  # the first hour `counts` holds every case of
        self._events = events
        self._last_numbers: dict[str, int] = {}
        self._reading_numbers = asyncio.Lock()
        self.meta = db["store_meta"]
        self._floor: tuple[datetime, datetime] | None = None  # (start of history, read at)
        self._due_floor: str | None = None  # the earliest minute bucket the sweep may find

    async def ensure_indexes(self) -> None:
        models = CASE_INDEXES
        if "ferretdbVersion" in await self.cases.database.client.admin.command("buildInfo"):
            # FerretDB would build a btree over each whole array (its filters cannot use it, and
            # long arrays exceed a btree entry): its PostgreSQL gets GIN indexes instead.
            models = [m for m in models if m.document["name"] not in FERRETDB_SKIPS]
        await ensure_indexes(self.cases, models)
        await self._backfill_query_fields()
        await ensure_indexes(self.counts.collection, [IndexModel([("day", ASCENDING)], name="day"),
                                                      IndexModel([("month", ASCENDING)], name="month"),
                                                      IndexModel([("hour", ASCENDING)], name="hour")])
        await self._note_counted_from()
        await self._mark_count_months()
        await ensure_indexes(self.claims, [IndexModel([("relayed", ASCENDING), ("at", ASCENDING)], name="relayed_at")])
        await ensure_indexes(self.numbers, [IndexModel([("day", ASCENDING), ("seq", DESCENDING)], name="day_seq")])

    @guarded
    async def next_number(self, day: str) -> str:
        """The day's next case number, claimed insert-once. Each process remembers the last
        number it saw for the day and reads the day's highest only once (a sort FerretDB would
        answer by reading every number of the day); numbers taken meanwhile by other processes
        are stepped over by the unique `_id`."""
        if day not in self._last_numbers:
            # One read for the reports arriving together: each reading on its own (a burst after
            # a start, 50 a second) read the day's numbers once each, and each reset the counter
            # to what it read, so the others' numbers were tried again and refused — 220 reads of
            # 8,000 numbers and 1,174 refused inserts in 10 s kept FerretDB from anything else.
            async with self._reading_numbers:
                if day not in self._last_numbers:
                    last = await self.numbers.find({"day": day}, {"seq": 1}).sort([("seq", DESCENDING)]).limit(1).to_list(1)
                    self._last_numbers = {day: last[0]["seq"] if last else 0}  # only today's is kept
        for _ in range(10_000):
            seq = self._last_numbers[day] = self._last_numbers[day] + 1  # taken before awaiting
            try:
                await self.numbers.insert_one({"_id": f"{day}-{seq:06d}", "day": day, "seq": seq})
                return f"{day}-{seq:06d}"
            except DuplicateKeyError:
                continue  # another process took it: the next one
        raise StoreUnavailable("case numbers contended")

    @guarded
    async def insert(self, doc: dict) -> dict:
        """Store a new case and log its creation. The claim of version 1, carrying the event, is
        written first, so if this process dies after the insert the relay still logs it."""
        user, key = client_key(doc)
        now = _now()
        event = case_event(CREATED, doc, now)
        if not await claim(self.claims, event["key"], now, case_id=doc["_id"], version=doc["version"], event=event):
            raise DuplicateCase(doc["_id"])
        stored = _stored(doc, now)
        if self._floor is None or _utc(doc["created_at"]) < self._floor[0]:
            await self._note_history_start([doc["created_at"]])
        await self.counts.add([doc["created_at"]])
        try:
            await self.cases.insert_one(stored)
        except DuplicateKeyError:
            await self.claims.delete_one({"_id": event["key"]})
            raise DuplicateCase(doc["_id"]) from None
        await self._log(event)
        return doc

    async def _log(self, event: dict) -> None:
        """Log a written change and mark its claim relayed (the relay retries if this fails).
        The claim's copy of the event is dropped: only the relay reads it, and only until then
        (FerretDB rewrites the whole document, ~7 KB with the case, on every update of it)."""
        await self._events.append(event)
        await self.claims.update_one({"_id": event["key"]}, {"$set": {"relayed": True}, "$unset": {"event": ""}})

    async def relay_pending(self, now: datetime) -> int:
        """Log the changes whose writer died between the case write and the log; drop the claims
        whose write never happened. Returns how many were logged."""
        logged = 0
        quiet = now - RELAY_AFTER
        for held in await self.claims.find({"relayed": {"$ne": True}, "at": {"$lt": quiet},
                                            "event": {"$exists": True}}).to_list(1000):
            case = await self.cases.find_one({"_id": held["case_id"]}, {"version": 1})
            if case is not None and case.get("version", 0) >= held["version"]:
                await self._log(held["event"])
                logged += 1
            elif held["at"] < now - STALE_CLAIM:
                await self.claims.delete_one({"_id": held["_id"], "at": held["at"]})
        return logged

    @guarded
    async def update(self, case_id: str, version: int, change: Change) -> dict | None:
        """Version-guarded: the change applies only if the case is still at `version`, and of
        several callers on one version exactly one succeeds (the one whose claim is stored)."""
        current = _out(await self.cases.find_one({"_id": case_id}))
        if current is None or current.get("version") != version:
            return None
        apply_change(current, change)
        now = _now()
        event = case_event(UPDATED, current, now)
        if not await claim(self.claims, event["key"], now, case_id=case_id, version=version + 1, event=event):
            await self._until_written(case_id, version)
            return None
        stored = _stored(current, now)
        result = await self.cases.replace_one({"_id": case_id, "version": version}, stored)
        if not result.matched_count:
            return None
        await self._log(event)
        return current

    async def _until_written(self, case_id: str, version: int, attempts: int = 40) -> None:
        """After losing a claim, wait (briefly) until the winner's write lands, so the loser's
        next read shows the version it lost to (a 409 then names the current version)."""
        for _ in range(attempts):
            doc = await self.cases.find_one({"_id": case_id}, {"version": 1})
            if doc is None or doc.get("version") != version:
                return
            await asyncio.sleep(0.025)

    async def purge_claims(self, now: datetime) -> None:
        await self.claims.delete_many({"at": {"$lt": now - CLAIM_KEPT}, "relayed": True})

    @guarded
    async def get(self, case_id: str) -> dict | None:
        if not isinstance(case_id, str):
            return None
        return _out(await self.cases.find_one({"_id": case_id}))

    @guarded
    async def by_client_id(self, username: str, client_id: str) -> dict | None:
        return _out(await self.cases.find_one({"created_by": username, "client_key": client_id}))

    async def _backfill_query_fields(self) -> None:
        """Cases stored before the equality buckets existed, or filed under an older version
        of them (`buckets.QUERY_KEYS_VERSION`), get their keys again, once per database and
        version. A case changed meanwhile got its new keys from that change (the version guard
        skips it)."""
        held = await self.meta.find_one({"_id": "query_fields"})
        if held is not None and held.get("version", 1) >= buckets.QUERY_KEYS_VERSION:
            return
        now = _now()
        created = []
        todo = {} if held is not None else {"qk": {"$exists": False}}
        if held is not None:
            log.warning("存储: 案件查询键版本 %s → %s，正在为已存案件重建（每个数据库一次）",
                        held.get("version", 1), buckets.QUERY_KEYS_VERSION)
        # A case whose keys this version leaves as they were is not written again: a version that
        # adds a facet of open cases rewrites those, not a year of history. (The history, which
        # no key is made from, is not read.)
        rewritten = 0
        async for doc in self.cases.find(todo, WITHOUT_RECORDS):
            created.append(doc["created_at"])
            fields = _query_fields(doc, now)
            if fields["qk"] == doc.get("qk"):
                continue
            await self.cases.update_one({"_id": doc["_id"], "version": doc.get("version")}, {"$set": fields})
            rewritten += 1
        if held is not None:
            log.warning("存储: 查询键已更新，%s 件中改写 %s 件", len(created), rewritten)
        if created:
            await self._note_history_start(created)
        await self.mark_query_fields_current()

    async def mark_query_fields_current(self) -> None:
        """Record that every stored case carries this version's keys (after a backfill, or
        before loading history into a new database: each loaded case carries them, and is
        counted in its hour's slices)."""
        await self._note_counted_from()
        await self.meta.replace_one({"_id": "query_fields"},
                                    {"_id": "query_fields", "at": _now(), "version": buckets.QUERY_KEYS_VERSION},
                                    upsert=True)

    async def bulk_insert(self, docs: list[dict]) -> int:
        """Store many new cases at once (loading history: bench/scale.py, imports). Their
        creation is not put in the event log: nobody is watching history being loaded."""
        now = _now()
        stored = [_stored(doc, now) for doc in docs]
        empty_before = await self.history_start() is None
        await self.counts.add([doc["created_at"] for doc in docs])
        result = await self.cases.insert_many(stored, ordered=False)
        await self._note_history_start([doc["created_at"] for doc in docs])
        await self._lower_sweep_floor([k[1:] for doc in stored for k in doc["due_keys"] if k.startswith(buckets.DUE_MINUTE)],
                                      empty_before)
        await self._claim_numbers([doc.get("number") for doc in docs])
        return len(result.inserted_ids)

    async def _note_counted_from(self) -> None:
        """The first hour whose cases are all counted: any hour of a store that had no case when
        this version first started; otherwise the next full hour (an hour that began before
        that holds cases nobody counted, and is read whole)."""
        held = await self.meta.find_one({"_id": "case_counts"})
        if held is None:
            start = (_now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
            if await self.cases.find_one({}, {"_id": 1}) is None:
                start = datetime(1970, 1, 1, tzinfo=timezone.utc)
            try:
                await self.meta.insert_one({"_id": "case_counts", "from": start})
                held = {"from": start}
            except DuplicateKeyError:  # another process started at the same moment
                held = await self.meta.find_one({"_id": "case_counts"})
        self._counted_from = _utc(held["from"])

    async def _mark_count_months(self) -> None:
        """Once per database: give the day counts written before they carried `month` theirs (a
        list walk over weeks reads a month of them at once), one update per day of the history
        counted (a year: 365 updates, at the first start of this version)."""
        if await self.meta.find_one({"_id": "case_count_months"}) is not None:
            return
        start = await self.history_start()
        if start is not None and self._counted_from is not None:
            day = max(start, self._counted_from).date()
            last = (_now() + timedelta(days=1)).date()
            days = []
            while day <= last:
                days.append("d" + day.strftime("%Y%m%d"))
                day += timedelta(days=1)
            await self.counts.mark_months(days)
        await self.meta.replace_one({"_id": "case_count_months"}, {"_id": "case_count_months", "at": _now()}, upsert=True)

    async def _claim_numbers(self, numbers: list) -> None:
        """Claim the case numbers of loaded cases, so `next_number` never hands one out again
        (a report after a bulk load was refused with 500: its number was taken)."""
        claims = [{"_id": number, "day": parts[0], "seq": parts[1]}
                  for number, parts in ((n, number_parts(n)) for n in numbers) if parts]
        if not claims:
            return
        try:
            await self.numbers.insert_many(claims, ordered=False)
        except BulkWriteError as exc:  # already claimed: loaded twice, or taken by intake
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", ())):
                raise
        self._last_numbers = {}  # read the day's highest again

    @guarded
    async def find(self, query: CaseQuery) -> list[dict]:
        """Up to `query.limit` cases, all of them: where a walk stops at its read budget, the
        next walk resumes there (the loaders — the assist's nearby index, a rule's dry run, the
        category model — read every page and stop at the first short one; a page cut short by
        the budget ended them early, and open cases were missing from the nearby index)."""
        found: list[dict] = []
        while True:
            page, resume = await self.find_page(dataclasses.replace(query, limit=query.limit - len(found)))
            found += page
            if resume is None or len(found) >= query.limit:
                return found
            query = dataclasses.replace(query, after=resume)

    @guarded
    async def find_page(self, query: CaseQuery) -> tuple[list[dict], After | None]:
        """A page of `query` and, if the walk stopped at its bucket budget before the page was
        full, where to resume (the page may then be short or empty)."""
        if query.order == BY_ID:
            cursor = self.cases.find(case_filter(query)).sort(SORTS[query.order]).limit(query.limit)
            return [_out(doc) for doc in await cursor.to_list(query.limit)], None
        rest = case_filter(query)
        if query.text is not None and buckets.CASE_NUMBER.match(query.text.text):
            # A case number is unique: one equality, however old the case.
            docs = await self.cases.find({"number": query.text.text, "$and": [rest]}).to_list(None)
            return [_out(doc) for doc in docs][:query.limit], None
        window = await self._window(query)
        cases = self.cases

        async def read(qk: str, slot: str | None, limit: int) -> list[dict]:
            found = {"qk": qk, **({"slot": slot} if slot else {}), **({"$and": [rest]} if rest else {})}
            return await cases.find(found).sort(SORTS[query.order]).limit(limit).to_list(None)

        return await Walk(query, buckets.driving_facets(query), window, read, self.counts,
                          self._counted_from, _now(), decode=_out).run()

    async def _window(self, query: CaseQuery) -> Window:
        """The creation times a walk covers: from the cursor (or `to`, or now) back to `from`
        (or the start of the history)."""
        now = _now()
        window = Window(now + timedelta(minutes=5), await self.history_start() or now)  # (other processes' clocks may run a little ahead)
        if query.created_to is not None:
            window.newest, window.newest_is_now = min(window.newest, _utc(query.created_to)), False
        if query.created_from is not None:
            window.oldest, window.oldest_is_start = max(window.oldest, _utc(query.created_from)), False
        if query.after is not None and query.after.created_at is not None:
            if query.order == NEWEST:
                window.newest, window.newest_is_now = min(window.newest, _utc(query.after.created_at)), False
            else:
                window.oldest, window.oldest_is_start = max(window.oldest, _utc(query.after.created_at)), False
        return window

    @guarded
    async def history_start(self) -> datetime | None:
        """The oldest creation time on record, None before the first case (`store_meta`
        "history_start", kept by the inserts; read once a minute): where a walk back through
        the buckets stops."""
        now = _now()
        if self._floor is not None and now - self._floor[1] < FLOOR_KEPT:
            return self._floor[0]
        held = await self.meta.find_one({"_id": "history_start"})
        if held is None:
            return None
        self._floor = (_utc(held["at"]), now)
        return self._floor[0]

    async def _note_history_start(self, created: list[datetime]) -> None:
        """Lower `history_start` to the oldest of `created` where that is older (once per
        process for new cases; each bulk load of history)."""
        oldest = min(_utc(at) for at in created)
        if self._floor is not None and self._floor[0] <= oldest:
            return
        held = await self.meta.find_one({"_id": "history_start"})
        if held is None:
            try:
                await self.meta.insert_one({"_id": "history_start", "at": oldest})
            except DuplicateKeyError:
                held = await self.meta.find_one({"_id": "history_start"})
        if held is not None and _utc(held["at"]) > oldest:
            await self.meta.replace_one({"_id": "history_start"}, {"_id": "history_start", "at": oldest})
        self._floor = (min(oldest, _utc(held["at"])) if held is not None else oldest, _now())

    @guarded
    async def open_counts(self, query: CaseQuery, level: str) -> dict[str, dict]:
        """Open cases matching `query` per jurisdiction at `level`: {id: {open, overdue}}.
        One `$group` per month of history over that month's open bucket (FerretDB computes one
        accumulator per `$group`: the overdue split is part of the group key)."""
        open_query = dataclasses.replace(query, open_only=True, after=None)
        rest = case_filter(open_query)
        window = await self._window(open_query)
        # A small box is counted over the open cases of its cells (a case is in one cell only).
        facets = buckets.driving_facets(open_query, disjoint=True)
        out: dict[str, dict] = {}
        group = {"_id": {"j": f"$jurisdiction.{level}.id", "o": "$flags.overdue"}, "n": {"$sum": 1}}
        for month, facet in ((m, f) for m in buckets.months_between(window.newest, window.oldest) for f in facets):
            match = {"qk": buckets.key(facet, buckets.bucket(buckets.MONTH, month))}
            if rest:
                match["$and"] = [rest]
            async for row in await self.cases.aggregate([{"$match": match}, {"$group": group}]):
                jid = row["_id"].get("j")
                if jid is None:
                    continue
                counts = out.setdefault(jid, {"open": 0, "overdue": 0})
                counts["open"] += row["n"]
                if row["_id"].get("o") is True:
                    counts["overdue"] += row["n"]
        return out

    @guarded
    async def count(self, query: CaseQuery) -> int:
        """How many cases match: a count per month bucket of the driving facet (a badge of 待回访
        cases reads the few handled ones of each month, not a year of cases)."""
        rest = case_filter(dataclasses.replace(query, after=None))
        window = await self._window(dataclasses.replace(query, after=None))
        keys = [buckets.key(facet, buckets.bucket(buckets.MONTH, month))
                for month in buckets.months_between(window.newest, window.oldest)
                for facet in buckets.driving_facets(query, disjoint=True)]
        counts = await asyncio.gather(*(
            self.cases.count_documents({"qk": key, **({"$and": [rest]} if rest else {})}) for key in keys))
        return sum(counts)

    @guarded
    async def due(self, now: datetime, limit: int, exclude=()) -> list[dict]:
        """The cases whose `next_due_at` has come, by minute bucket (`due_minute`, an equality
        FerretDB hands PostgreSQL) from the sweep's floor up to now: a sweep with nothing due
        reads the one or two minutes since the last, whatever the number of open cases. Earliest
        first within a minute; a case already due when written is under its writing minute, so
        it comes after those of earlier minutes (the sweep takes them all, the order is moot)."""
        floor = await self._sweep_floor(now)
        excluded = set(exclude)
        # The whole history comes over the wire (FerretDB has no `$slice` projection); the
        # sweep needs only its last entry.
        projection = case_fields(DUE_FIELDS)
        out: list[dict] = []
        first_held: str | None = None  # the earliest minute still holding a due case
        # Cases are filed no earlier than their writer's clock minus DUE_SLACK: the walk reaches
        # the wall clock even when asked about an earlier `now` (the filter below decides).
        wall = _now()
        at, last = buckets.minute_start(floor), buckets.minute_start(buckets.minute(max(now, wall)))
        while at <= last and len(out) < limit:
            # Long stretches (a sweep after a pause, a test's future `now`) are skipped a day or
            # an hour at a time when that bucket is empty.
            step = None
            for grain, span in ((buckets.DUE_DAY, timedelta(days=1)), (buckets.DUE_HOUR, timedelta(hours=1))):
                if buckets.due_aligned(at, span) and at + span <= last + timedelta(minutes=1):
                    if await self.cases.find_one({"due_keys": buckets.due_key(grain, at)}, {"_id": 1}) is None:
                        step = span
                    break
            if step is not None:
                at += step
                continue
            docs = await self.cases.find({"due_keys": buckets.due_key(buckets.DUE_MINUTE, at)}, projection).to_list(None)
            due = sorted((d for d in docs if d.get("next_due_at") is not None and _utc(d["next_due_at"]) <= now),
                         key=lambda d: (d["next_due_at"], d["_id"]))
            if due and first_held is None:
                first_held = buckets.minute(at)
            out += [last_history_only(_out(d, DUE_FIELDS)) for d in due if d["_id"] not in excluded][:limit - len(out)]
            at += timedelta(minutes=1)
        behind = buckets.minute(min(now, wall) - buckets.DUE_SLACK)
        await self._advance_sweep_floor(min(first_held or behind, behind))
        return out

    async def _sweep_floor(self, now: datetime) -> str:
        if self._due_floor is None:
            held = await self.meta.find_one({"_id": "sweep_floor"})
            if held is not None:
                self._due_floor = held["minute"]
            else:
                # Once per database that holds cases but was never swept (a bulk load records
                # its floor): the earliest minute bucket holding a case, a full read streamed
                # in small batches so that no reply waits on the whole collection.
                earliest = None
                async for doc in self.cases.find({"next_due_at": {"$ne": None}}, {"due_keys": 1}, batch_size=200):
                    for k in doc.get("due_keys") or ():
                        if k.startswith(buckets.DUE_MINUTE) and (earliest is None or k[1:] < earliest):
                            earliest = k[1:]
                self._due_floor = earliest or buckets.minute(min(now, _now()) - buckets.DUE_SLACK)
        return self._due_floor

    async def _lower_sweep_floor(self, minutes: list[str], empty_before: bool) -> None:
        """Cases loaded in bulk: the sweep's floor goes down to the earliest minute they are
        filed under. Into an empty database the floor is set from them (so the first sweep
        reads no whole collection); otherwise only a floor already held is lowered."""
        if not minutes:
            return
        held = await self.meta.find_one({"_id": "sweep_floor"})
        if held is None and not empty_before:
            return  # the first sweep finds the floor among all the cases
        floor = min(minutes) if held is None else min(min(minutes), held["minute"])
        if held is None or floor != held["minute"]:
            await self.meta.replace_one({"_id": "sweep_floor"}, {"_id": "sweep_floor", "minute": floor}, upsert=True)
            self._due_floor = None  # read again at the next sweep

    async def _advance_sweep_floor(self, label: str) -> None:
        if label != self._due_floor:
            self._due_floor = label
            await self.meta.replace_one({"_id": "sweep_floor"}, {"_id": "sweep_floor", "minute": label}, upsert=True)

    @guarded
    async def period_cases(self, query: PeriodQuery, fields: tuple[str, ...]) -> list[dict]:
        docs = await self.cases.find(period_filter(query), case_fields(fields)).to_list(None)
        return [_out(doc, fields) for doc in docs]

    @guarded
    async def open_overdue(self, scope: Scope, within: str | None, fields: tuple[str, ...],
                           first: int | None = None) -> list[dict]:
        """The open cases flagged overdue, in `scope` (and inside `within`), for the KPI list:
        the `open_overdue` facet's month buckets over the history, each an equality on `qk`.
        With `first`: at least the `first` whose stage clock ran out earliest, with every case
        whose deadline comes before that of any left out (and those without a stage clock) —
        read from the oldest deadline month on (`overdue_by`), not every overdue case."""
        now = _now()
        fields = (*fields, "scope_path", "departments_seen", "reporters")
        projection = case_fields(fields)

        def kept(docs: list[dict]) -> list[dict]:
            return [_out(doc, fields) for doc in docs
                    if scope.admits(doc) and (within is None or within in (doc.get("scope_path") or ()))]

        # Top-level equalities beside `qk` go to PostgreSQL too: it then hands FerretDB only the
        # bucket's cases of this department or area, not every overdue case of the city to convert.
        narrowing = {}
        if scope.department is not None:
            narrowing["departments_seen"] = scope.department
        if within is not None:
            narrowing["scope_path"] = within
        elif scope.within is not None and scope.reporter is None:
            narrowing["scope_path"] = scope.within

        async def read(qk: str) -> list[dict]:
            return kept(await self.cases.find({"qk": qk, **narrowing}, projection).to_list(None))

        start = await self.history_start() or now
        if first is not None:
            out = await read(buckets.key(buckets.OVERDUE_BY, "none"))
            dated = 0
            # A deadline lies after the case's creation; one extended after it was flagged may
            # lie ahead: the walk goes a few months past now.
            for month in reversed(buckets.months_between(now + timedelta(days=92), start)):
                found = await read(buckets.key(buckets.OVERDUE_BY, buckets.bucket(buckets.MONTH, month)))
                out += found
                dated += len(found)
                if dated >= first:
                    return out
        gate = asyncio.Semaphore(4)  # the months at once, a few at a time

        async def month(at: datetime) -> list[dict]:
            async with gate:
                return await read(buckets.key("open_overdue", buckets.bucket(buckets.MONTH, at)))

        return [doc for part in await asyncio.gather(*(month(m) for m in buckets.months_between(now + timedelta(minutes=5), start)))
                for doc in part]

    @guarded
    async def uses_attachment(self, attachment_id: str, scope: Scope, fields: tuple[str, ...]) -> bool:
        """Whether a case in `scope` refers to the photo in one of `fields`: the cases filed under
        its key (an `$or` over the photo fields was a scan of every case on FerretDB, and on
        MongoDB without an index on them), then checked here."""
        read = (*fields, "scope_path", "departments_seen", "reporters")
        docs = [_out(doc, read) for doc in
                await self.cases.find({"qk": buckets.photo_key(attachment_id)}, case_fields(read)).to_list(None)]
        return any(scope.admits(doc) and any(attachment_id in (get_path(doc, f) or ()) for f in fields) for doc in docs)

    @guarded
    async def by_caller(self, phone: str, since: datetime, until: datetime, scope: Scope, limit: int) -> list[dict]:
        """The cases whose caller's number is `phone` (in any written form), created in
        [since, until], newest first, within `scope` (the operator assist's caller history).
        A walk over the number's month buckets (`buckets.caller_facet`), newest first: each an
        equality on `qk` (an index on both engines), never a scan of the history."""
        facet = buckets.caller_facet(phone)
        if facet is None:
            return []
        since, until = _as_utc(since), _as_utc(until)
        out: list[dict] = []
        for month in buckets.months_between(until, since):
            docs = await self.cases.find({"qk": buckets.key(facet, buckets.bucket(buckets.MONTH, month))}).to_list(None)
            found = [d for d in docs if since <= _as_utc(d["created_at"]) <= until and scope.admits(d)]
            found.sort(key=lambda d: (_as_utc(d["created_at"]), d["_id"]), reverse=True)
            out += [_out(d) for d in found[:limit - len(out)]]
            if len(out) >= limit:
                break
        return out


class MongoRollups:
    """KPI rollups (dispatch/kpi/rollups.py keeps them; docs/ARCHITECTURE.md, "KPI rollups").

    Only one applier writes them (under a lease), so plain replaces are safe on FerretDB. A
    report reads bucket documents by `_id` (one per bucket and district; FerretDB 1.24 uses an
    index for `_id` only, and scans the collection for any other filter); `pending_from` is a
    range over the small `kpi_pending` collection (facts waiting for a deadline, purged).
    """

    def __init__(self, db):
        self.buckets = db["kpi_rollups"]
        self.pending = db["kpi_pending"]
        self.contribs = db["kpi_contributions"]
        self.states = db["kpi_state"]
        self.cases_ = db["cases"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.pending, [IndexModel([("until", ASCENDING)], name="until"),
                                            IndexModel([("hour", ASCENDING)], name="hour")])
        await ensure_indexes(self.buckets, [IndexModel([(BUCKET_SHELF, ASCENDING)], name="shelf")])
        await self._shelve_older_buckets()

    async def _shelve_older_buckets(self) -> None:
        """Day and month buckets stored before they carried their `shelf` get it, once per
        database (a few thousand documents for a year of a city, each read once)."""
        if await self.states.find_one({"_id": "shelves"}) is not None:
            return
        async for doc in self.buckets.find({}, batch_size=100):
            filed = bucket_shelf(unpack_bucket(doc))
            if filed is not None and doc.get(BUCKET_SHELF) != filed:
                await self.buckets.update_one({"_id": doc["_id"]}, {"$set": {BUCKET_SHELF: filed}})
        await self.states.replace_one({"_id": "shelves"}, {"_id": "shelves", "at": _now()}, upsert=True)

    @guarded
    async def state(self) -> dict:
        return await self.states.find_one({"_id": "applier"}) or {}

    @guarded
    async def save_state(self, state: dict) -> None:
        await self.states.replace_one({"_id": "applier"}, {**state, "_id": "applier"}, upsert=True)

    @staticmethod
    async def _by_ids(collection, ids: list[str], projection: dict | None = None) -> dict[str, dict]:
        """One `find_one` by `_id` each, a few at a time: FerretDB 1.24 answers `_id` equality
        from its index but `{"_id": {"$in": [...]}}` by reading the whole collection."""
        gate = asyncio.Semaphore(16)

        async def one(doc_id):
            async with gate:
                return await collection.find_one({"_id": doc_id}, projection)

        found = await asyncio.gather(*(one(i) for i in dict.fromkeys(ids)))
        return {doc["_id"]: doc for doc in found if doc is not None}

    @guarded
    async def contributions(self, case_ids: list[str]) -> dict[str, dict]:
        return await self._by_ids(self.contribs, case_ids)

    @guarded
    async def save_contributions(self, docs: list[dict], new: bool = False) -> None:
        """`new`: after `clear` (a rebuild), plain inserts, far cheaper than upserts on FerretDB."""
        await (self._insert if new else self._replace)(self.contribs, docs)

    @guarded
    async def cases(self, case_ids: list[str], fields: tuple[str, ...]) -> dict[str, dict]:
        found = await self._by_ids(self.cases_, case_ids, case_fields(fields))
        return {key: _out(doc, fields) for key, doc in found.items()}

    async def all_cases(self, fields: tuple[str, ...], batch: int = 1000):
        """Every case (projected), in lists of `batch`: one streamed query (FerretDB would scan
        the whole collection for each page of a keyset walk)."""
        chunk = []
        # Small server batches: each `getMore` stays well inside the socket timeout on a busy server.
        async for doc in self.cases_.find({}, case_fields(fields), batch_size=200):
            chunk.append(_out(doc, fields))
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    @guarded
    async def buckets_by_id(self, ids: list[str]) -> dict[str, dict]:
        found = await self._by_ids(self.buckets, ids)
        return {key: unpack_bucket(doc) for key, doc in found.items()}

    @guarded
    async def buckets_within(self, within: str, district: str | None) -> dict[str, dict]:
        """The buckets one level down within `within` (a month "YYYY-MM": its day buckets; a
        year "YYYY": its month buckets) of `district`, by `_id`: one equality (a report over a
        period ending before today read each of its days by `_id`: 465 reads for the city's
        last 31 days)."""
        found = await self.buckets.find({BUCKET_SHELF: shelf(within, district)}).to_list(None)
        return {doc["_id"]: unpack_bucket(doc) for doc in found}

    @guarded
    async def pending_by_id(self, ids: list[str]) -> dict[str, dict]:
        return await self._by_ids(self.pending, ids)

    @staticmethod
    async def _insert(collection, docs: list[dict]) -> None:
        for i in range(0, len(docs), 500):
            if docs[i:i + 500]:
                await collection.insert_many(docs[i:i + 500], ordered=False)

    @staticmethod
    async def _replace(collection, docs: list[dict]) -> None:
        for i in range(0, len(docs), BULK_STATEMENTS):
            part = docs[i:i + BULK_STATEMENTS]
            if part:
                await collection.bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in part], ordered=False)

    @guarded
    async def save(self, buckets: list[dict], pending: list[dict], new: bool = False) -> None:
        write = self._insert if new else self._replace
        await write(self.buckets, [pack_bucket(doc) for doc in buckets])
        await write(self.pending, pending)

    @guarded
    async def pending_from(self, now: datetime) -> list[dict]:
        return await self.pending.find({"until": {"$gte": now}}).to_list(None)

    @guarded
    async def pending_in_hour(self, hour: str, now: datetime) -> list[dict]:
        """The pending facts whose deadline falls in `hour` and is not past `now`: an equality
        (`pending_from`'s range is not handed to PostgreSQL by FerretDB, which then reads them all)."""
        return [doc for doc in await self.pending.find({"hour": hour}).to_list(None) if _as_utc(doc["until"]) >= now]

    @guarded
    async def purge_pending(self, before: datetime) -> int:
        return (await self.pending.delete_many({"until": {"$lt": before}})).deleted_count

    @guarded
    async def clear(self) -> None:
        """Drop every rollup (a rebuild): the collections are dropped, not emptied — deleting a
        year of contributions one by one outlasted the client's socket timeout at 1,000,000 cases."""
        for collection in (self.buckets, self.pending, self.contribs, self.states):
            await collection.drop()
        await self.ensure_indexes()

    @guarded
    async def counts(self) -> dict:
        return {"buckets": await self.buckets.estimated_document_count(),
                "pending": await self.pending.estimated_document_count(),
                "contributions": await self.contribs.estimated_document_count()}


class MongoUsers:
    def __init__(self, db):
        self.users = db["users"]

    @guarded
    async def get(self, username: str) -> dict | None:
        if not isinstance(username, str):
            return None
        return await self.users.find_one({"_id": username})

    @guarded
    async def insert_if_absent(self, user: dict) -> bool:
        try:
            await self.users.insert_one(user)
            return True
        except DuplicateKeyError:
            return False

    @guarded
    async def update(self, username: str, fields: dict) -> dict | None:
        return await self.users.find_one_and_update(
            {"_id": username}, {"$set": fields}, return_document=ReturnDocument.AFTER)

    @guarded
    async def all(self) -> list[dict]:
        return await self.users.find({}).sort([("_id", ASCENDING)]).to_list(None)


class MongoAttachments:
    def __init__(self, db, cases: MongoCases):
        self.attachments = db["attachments"]
        self.meta = db["store_meta"]
        self._cases = cases

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.attachments, [IndexModel([("owner", ASCENDING), ("created_at", ASCENDING)], name="owner_created"),
                                                IndexModel([("created_at", ASCENDING)], name="created"),
                                                IndexModel([("referenced", ASCENDING), ("created_at", ASCENDING)],
                                                           name="referenced_created")])
        # Uploads stored before every upload carried `referenced` get it once (absent counted as
        # unreferenced): the quota and the expiry then ask for `referenced: False`, an equality.
        if await self.meta.find_one({"_id": "uploads_flagged"}) is None:
            await self.attachments.update_many({"referenced": {"$exists": False}}, {"$set": {"referenced": False}})
            await self.meta.replace_one({"_id": "uploads_flagged"}, {"_id": "uploads_flagged", "at": _now()}, upsert=True)

    @guarded
    async def insert(self, doc: dict) -> dict:
        await self.attachments.insert_one({**doc, "referenced": doc.get("referenced", False)})
        return doc

    @guarded
    async def get(self, attachment_id: str) -> dict | None:
        if not isinstance(attachment_id, str):
            return None
        return await self.attachments.find_one({"_id": attachment_id})

    # An upload holds its photo, so the collection is large: every command here names one `_id`
    # (FerretDB 1.24 hands PostgreSQL an equality, but answers an `$in` by reading every upload).

    @guarded
    async def owned_by(self, attachment_ids: list, username: str) -> set[str]:
        ids = list(dict.fromkeys(i for i in attachment_ids if isinstance(i, str)))
        found = await asyncio.gather(*(self.attachments.find_one({"_id": i}, {"owner": 1}) for i in ids))
        return {doc["_id"] for doc in found if doc is not None and doc.get("owner") == username}

    async def case_using(self, attachment_id: str, scope: Scope) -> bool:
        return await self._cases.uses_attachment(attachment_id, scope, PHOTO_FIELDS)

    # Bounded storage (dispatch.intake.attachments): `referenced` absent counts as unreferenced.

    async def in_use(self, attachment_id: str) -> bool:
        return await self.case_using(attachment_id, EVERYTHING)

    @guarded
    async def mark_referenced(self, attachment_ids: list[str], referenced: bool = True) -> None:
        for attachment_id in dict.fromkeys(attachment_ids):
            await self.attachments.update_one({"_id": attachment_id}, {"$set": {"referenced": referenced}})

    # The unused uploads are few (used ones are flagged, old unused ones deleted): both reads
    # below hand PostgreSQL their equalities (GIN indexes on `owner` and `referenced`), never
    # a range over every upload with its photo.

    @guarded
    async def pending_usage(self, owner: str, since: datetime) -> tuple[int, int]:
        docs = await self.attachments.find({"owner": owner, "referenced": False}, {"size": 1, "created_at": 1}).to_list(None)
        docs = [doc for doc in docs if _as_utc(doc["created_at"]) >= _as_utc(since)]
        return len(docs), sum(doc.get("size") or 0 for doc in docs)

    @guarded
    async def unreferenced_before(self, cutoff: datetime, limit: int) -> list[str]:
        docs = await self.attachments.find({"referenced": False}, {"created_at": 1}).to_list(None)
        docs = sorted((doc for doc in docs if _as_utc(doc["created_at"]) < _as_utc(cutoff)),
                      key=lambda doc: (_as_utc(doc["created_at"]), doc["_id"]))
        return [doc["_id"] for doc in docs[:limit]]

    @guarded
    async def delete(self, attachment_ids: list[str]) -> int:
        deleted = 0
        for attachment_id in dict.fromkeys(attachment_ids):
            deleted += (await self.attachments.delete_one({"_id": attachment_id})).deleted_count
        return deleted


class MongoLeases:
    """A lease is `{_id: name, holder, expires_at, term}`. Taking it (free, expired or already
    ours) claims the next term insert-once, so of two processes taking an expired lease at the
    same moment one gets it."""

    def __init__(self, db):
        self.leases = db["leases"]
        self.terms = db["lease_terms"]

    @guarded
    async def acquire(self, name: str, holder: str, now: datetime, ttl_seconds: float) -> bool:
        lease = await self.leases.find_one({"_id": name})
        if lease is not None and lease["holder"] != holder and lease["expires_at"] > now:
            return False
        term = (lease or {}).get("term", 0) + 1
        if not await claim(self.terms, f"{name}:{term}", now, holder=holder):
            return False
        await self.leases.replace_one(
            {"_id": name},
            {"_id": name, "holder": holder, "term": term, "expires_at": now + timedelta(seconds=ttl_seconds)},
            upsert=True)
        return True

    @guarded
    async def release(self, name: str, holder: str) -> None:
        """Expire our lease now; the document (and its term) stays, so the next taker claims
        the next term rather than one already claimed."""
        await self.leases.update_one({"_id": name, "holder": holder}, {"$set": {"expires_at": _RELEASED}})

    async def purge_terms(self, now: datetime) -> None:
        await self.terms.delete_many({"at": {"$lt": now - CLAIM_KEPT}})


class MongoRevocations:
    """Revoked token ids (`revoked_tokens`) until the token would have expired.

    FerretDB 1.24 has no TTL indexes, so expiry is in the read (`contains` checks the time)
    and `purge_expired` deletes what has lapsed (the scheduler calls it)."""

    def __init__(self, db):
        self.revoked = db["revoked_tokens"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.revoked, [IndexModel([("expires_at", ASCENDING)], name="expires")])

    @guarded
    async def purge_expired(self, now: datetime) -> int:
        return (await self.revoked.delete_many({"expires_at": {"$lte": now}})).deleted_count

    @guarded
    async def add(self, nonce: str, username: str, expires_epoch: int) -> None:
        expires = datetime.fromtimestamp(expires_epoch, timezone.utc)
        await self.revoked.update_one(
            {"_id": nonce}, {"$set": {"username": username, "expires_at": expires}}, upsert=True)

    @guarded
    async def contains(self, nonce: str) -> bool:
        if not isinstance(nonce, str):
            return False
        doc = await self.revoked.find_one({"_id": nonce}, {"expires_at": 1})
        if doc is None:
            return False
        expires = doc["expires_at"]
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=timezone.utc)
        return expires > datetime.now(timezone.utc)


# Rate-limit events older than this are deleted by `housekeeping`: the longest look-back any
# limit uses (a login back-off reads a day plus its cap).
LIMIT_EVENTS_KEPT = timedelta(days=2)


class MongoLimits:
    """Rate-limit events (`limit_events`): one small document per event, `{_id, key, at}`,
    shared by every process on the database. Counting by inserting (never `$inc`, which loses
    increments on FerretDB 1.24) and reading with an equality filter on `key`, which FerretDB
    pushes down to PostgreSQL; the time check is in Python. A given `event_id` is taken once
    (a unique `_id`): `record` returns False for the second taker. No TTL index on FerretDB:
    `housekeeping` purges old events."""

    def __init__(self, db):
        self.events = db["limit_events"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.events, [IndexModel([("key", ASCENDING)], name="key"),
                                           IndexModel([("at", ASCENDING)], name="at")])

    @guarded
    async def record(self, key: str, at: datetime, event_id: str | None = None) -> bool:
        try:
            await self.events.insert_one({"_id": event_id or str(ObjectId()), "key": key, "at": at})
            return True
        except DuplicateKeyError:
            return False

    @guarded
    async def count(self, key: str, after: datetime) -> int:
        return len(await self.times(key, after))

    @guarded
    async def times(self, key: str, after: datetime) -> list[datetime]:
        """When `key`'s events after `after` happened, oldest first."""
        after = _utc(after)
        docs = await self.events.find({"key": key}, {"at": 1}).to_list(None)
        return sorted(at for at in (_utc(d["at"]) for d in docs) if at > after)

    @guarded
    async def remove(self, event_id: str) -> None:
        await self.events.delete_one({"_id": event_id})

    @guarded
    async def clear(self, key: str) -> None:
        await self.events.delete_many({"key": key})

    @guarded
    async def purge(self, before: datetime) -> int:
        return (await self.events.delete_many({"at": {"$lt": before}})).deleted_count


_utc = stored_instant


class MongoAudit:
    """The audit logs (号码查看, 管理操作, 目录争议), newest first.

    Each entry carries its UTC day and hour (`day`, `hour`: equalities FerretDB hands
    PostgreSQL), and the days that hold entries of a kind are listed once each in `audit_days`
    (insert-once). A list walks those days newest first, a day's hours newest first, and stops
    when it has enough: a sort over the whole log (FerretDB sorts in Go after reading every
    entry — a year of a city's number reveals for each look at the page) is never sent. A list
    of one case's entries is one equality on `case_id`."""

    KINDS = AUDIT_KINDS

    def __init__(self, db):
        self.collections = {kind: db[kind] for kind in self.KINDS}
        self.days = db["audit_days"]
        self.meta = db["store_meta"]
        self._listed: set[str] = set()  # the (kind, day)s this process knows are listed

    async def ensure_indexes(self) -> None:
        for collection in self.collections.values():
            await ensure_indexes(collection, [IndexModel([("at", DESCENDING)], name="at_desc"),
                                              IndexModel([("day", ASCENDING)], name="day"),
                                              IndexModel([("hour", ASCENDING)], name="hour"),
                                              IndexModel([("case_id", ASCENDING)], name="case_id")])
        await ensure_indexes(self.days, [IndexModel([("kind", ASCENDING)], name="kind")])
        if await self.meta.find_one({"_id": "audit_days"}) is None:
            await self._date_older_entries()
            await self.meta.replace_one({"_id": "audit_days"}, {"_id": "audit_days", "at": _now()}, upsert=True)

    async def _date_older_entries(self) -> None:
        """Entries an earlier version wrote without `day` get it, once per database."""
        for kind, collection in self.collections.items():
            async for doc in collection.find({"day": {"$exists": False}}, {"at": 1}, batch_size=200):
                hour = _audit_hour(doc["at"])
                await collection.update_one({"_id": doc["_id"]}, {"$set": {"day": hour[:8], "hour": hour}})
                await self._list_day(kind, hour[:8])

    async def _list_day(self, kind: str, day: str) -> None:
        key = f"{kind}:{day}"
        if key in self._listed:
            return
        try:
            await self.days.insert_one({"_id": key, "kind": kind, "day": day})
        except DuplicateKeyError:
            pass  # listed by another process, or before a restart
        self._listed.add(key)

    @guarded
    async def record(self, kind: str, entry: dict) -> dict:
        doc = {"_id": str(ObjectId()), **entry}
        hour = _audit_hour(entry["at"])
        await self._list_day(kind, hour[:8])  # listed first: an entry is never on an unlisted day
        await self.collections[kind].insert_one({**doc, "day": hour[:8], "hour": hour})
        return doc

    @guarded
    async def recent(self, kind: str, limit: int, case_id: str | None = None,
                     username: str | None = None) -> list[dict]:
        collection = self.collections[kind]
        by = {"by": username} if username is not None else {}
        if case_id is not None:
            return _newest(await collection.find({"case_id": case_id, **by}).to_list(None), limit)
        days = sorted((d["day"] for d in await self.days.find({"kind": kind}, {"day": 1}).to_list(None)), reverse=True)
        out: list[dict] = []
        for day in days:
            # One user's entries of a day are few: one read. The whole log's may be thousands:
            # its hours, newest first, until the page is full.
            parts = [{"day": day, **by}] if by else [{"hour": f"{day}{h:02d}"} for h in range(23, -1, -1)]
            for query in parts:
                if len(out) >= limit:
                    return out
                out += _newest(await collection.find(query).to_list(None), limit - len(out))
        return out


def _newest(docs: list[dict], limit: int) -> list[dict]:
    docs.sort(key=lambda d: (_as_utc(d["at"]), d["_id"]), reverse=True)
    for doc in docs[:limit]:
        doc.pop("day", None)
        doc.pop("hour", None)
    return docs[:limit]


def _audit_hour(at: datetime) -> str:
    """The UTC hour an audit entry is filed under ("2026112814"); its first 8 digits, its day."""
    return _as_utc(at).strftime("%Y%m%d%H")


class MongoSnapshots:
    def __init__(self, db):
        self.snapshots = db["kpi_snapshots"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.snapshots, [IndexModel([("day", ASCENDING)], name="day")])

    @guarded
    async def save(self, snapshot: dict) -> None:
        await self.snapshots.replace_one({"_id": snapshot["_id"]}, snapshot, upsert=True)

    @guarded
    async def get(self, snapshot_id: str) -> dict | None:
        return await self.snapshots.find_one({"_id": snapshot_id})

    @guarded
    async def for_day(self, day: str) -> list[dict]:
        return await self.snapshots.find({"day": day}).sort([("_id", ASCENDING)]).to_list(None)


class MongoConfig:
    """Versions of the city configuration (dispatch/admin). `config_versions` {_id: number,
    changed: [kinds], by, at, note, diff, items: {kind: id}} is claimed insert-once on its number
    (a stale editor loses the claim and nothing of the winner's); the items of each kind are
    written first to `config_items` under ids no one else takes, so a loser's items are never
    read (they name no version) and a winner's are there before its version is. Items are kept
    as JSON text: FerretDB 1.24 refuses nested arrays, and GeoJSON coordinates are nothing else."""

    def __init__(self, db):
        self.versions = db["config_versions"]
        self.items_docs = db["config_items"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.versions, [IndexModel([("changed", ASCENDING)], name="changed")])

    @guarded
    async def head(self) -> int:
        last = await self.versions.find({}, {"_id": 1}).sort([("_id", DESCENDING)]).limit(1).to_list(1)
        return last[0]["_id"] if last else 0

    @guarded
    async def publish(self, version: dict, items: dict) -> bool:
        ids = {}
        for kind, value in items.items():
            ids[kind] = f"{version['_id']}:{kind}:{ObjectId()}"
            await self.items_docs.insert_one({"_id": ids[kind], "kind": kind,
                                              "json": json.dumps(value, ensure_ascii=False, default=str)})
        try:
            await self.versions.insert_one({**version, "changed": sorted(items), "items": ids})
        except DuplicateKeyError:
            await self.items_docs.delete_many({"_id": {"$in": list(ids.values())}})
            return False
        return True

    @guarded
    async def version(self, number: int) -> dict | None:
        doc = await self.versions.find_one({"_id": number})
        if doc is not None:
            doc.pop("items", None)
        return doc

    @guarded
    async def history(self, limit: int) -> list[dict]:
        docs = await self.versions.find({}).sort([("_id", DESCENDING)]).limit(limit).to_list(limit)
        for doc in docs:
            doc.pop("items", None)
        return docs

    @guarded
    async def items(self, kind: str, at: int) -> tuple[int, object] | None:
        # Equality on `changed` (pushed down to PostgreSQL by FerretDB); the few versions that
        # set the kind are compared here.
        docs = await self.versions.find({"changed": kind}, {"_id": 1, "items": 1}).to_list(None)
        set_at = [doc for doc in docs if doc["_id"] <= at]
        if not set_at:
            return None
        latest = max(set_at, key=lambda doc: doc["_id"])
        held = await self.items_docs.find_one({"_id": latest["items"][kind]})
        return latest["_id"], json.loads(held["json"])


class MongoStore:
    kind = "mongodb"
    persistent = True
    description = "mongodb"

    def __init__(self, uri: str, database: str, timeout_ms: int = 5000):
        # Bounded waits: a database that is down costs a request a few seconds and a 503, never
        # a hang. Retryable writes are on by default, so one failover is absorbed.
        self.client = AsyncMongoClient(
            uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
            socketTimeoutMS=2 * timeout_ms)
        self.db_name = database
        self._db = self.client[database]
        db = GatedDatabase(self._db, WriteSlots())
        self.events = MongoEvents(db)
        self.cases = MongoCases(db, self.events)
        self.users = MongoUsers(db)
        self.attachments = MongoAttachments(db, self.cases)
        self.leases = MongoLeases(db)
        self.revocations = MongoRevocations(db)
        self.limits = MongoLimits(db)
        self.config = MongoConfig(db)
        self.audit = MongoAudit(db)
        self.snapshots = MongoSnapshots(db)
        self.rollups = MongoRollups(db)
        from dispatch.store.assist_mongo import MongoKnowledge, MongoModels  # it imports this module

        self.models = MongoModels(db)
        self.knowledge = MongoKnowledge(db)

    async def ensure_indexes(self, attempts: int = 5) -> None:
        """Idempotent. Several processes starting at once may race to create the same indexes
        (FerretDB 1.24 may then drop a connection): each attempt lists again and creates only
        what is still missing."""
        for attempt in range(attempts):
            try:
                await self.cases.ensure_indexes()
                await self.events.ensure_indexes()
                await self.attachments.ensure_indexes()
                await self.revocations.ensure_indexes()
                await self.limits.ensure_indexes()
                await self.config.ensure_indexes()
                await self.audit.ensure_indexes()
                await self.snapshots.ensure_indexes()
                await self.rollups.ensure_indexes()
                await self.models.ensure_indexes()
                await self.knowledge.ensure_indexes()
                return
            except PyMongoError as exc:
                if attempt == attempts - 1:
                    raise StoreUnavailable(f"creating indexes failed: {exc}") from exc
                log.warning("creating indexes failed (another process at it?): %s; trying again", exc)
                await asyncio.sleep(0.5 * (attempt + 1))

    @guarded
    async def housekeeping(self, now: datetime) -> None:
        """Forget what has lapsed: revoked tokens past their expiry, finished claims."""
        await self.revocations.purge_expired(now)
        await self.limits.purge(now - LIMIT_EVENTS_KEPT)
        await self.cases.relay_pending(now)
        await self.cases.purge_claims(now)
        await self.leases.purge_terms(now)
        await self.events.purge(now - EVENTS_KEPT)

    async def ping(self) -> bool:
        try:
            await self._db.command("ping")
            return True
        except PyMongoError:
            log.warning("storage ping failed", exc_info=True)
            return False

    async def drop(self) -> None:
        """Remove this store's database (tests)."""
        await self.client.drop_database(self.db_name)

    async def close(self) -> None:
        self.events.closed = True
        await self.client.close()

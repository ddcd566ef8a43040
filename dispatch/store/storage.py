"""All database access lives here.

Two engines behind one set of call shapes (PyMongo's async API):

* a `mongodb://` URI opens a real server through `pymongo.AsyncMongoClient`;
* `embedded` opens an in-memory store: mongomock-ng behind a thin async facade. It keeps data
  only for the life of the process and says so (`Storage.persistent` is False).

Repository code (`CaseStore`, `UserStore`, ...) is written once against those call shapes, so it
runs unchanged on both.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import mongomock_ng
import mongomock_ng.collection
import mongomock_ng.store
from bson import ObjectId
from mongomock_ng.filtering import _get_compare_type as compare_type
from mongomock_ng.filtering import filter_applies
from mongomock_ng.helpers import create_index_list, patch_datetime_awareness_in_document
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError
from sortedcontainers import SortedKeyList

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Embedded engine: ordered single-field indexes
# --------------------------------------------------------------------------------------------
#
# mongomock answers every query by running its matcher over every document (~25 µs each), so
# the deadline sweep's `{"next_due_at": {"$lte": now}}` over 100,000 open cases would take
# seconds where MongoDB walks the `next_due` index in microseconds. The embedded engine
# therefore keeps, for each single-field ascending/descending index declared through
# `create_indexes`, a sorted list of (type, value, id) — what a B-tree index is — and answers
# equality and range conditions on that field from it: candidate ids come from the index, the
# documents by `_id`, and mongomock's own matcher still decides on the whole filter, so the
# results are exactly those of a full scan (tests/test_sweep.py checks it with hypothesis).
#
# The index is maintained at mongomock's `CollectionStore`, the one place every write goes
# through (`store[_id] = doc` after inserts, updates, replaces and rollbacks; `del store[_id]`
# for deletes): no write path can forget it. Like a MongoDB multikey index it must cope with
# arrays; it simply declines to answer (full scan) while any document holds an array, a
# sub-document or another value it cannot order under the indexed field.

_NOTHING = object()
_UNORDERABLE = object()


class _Top:
    """Compares greater than any id key: the upper end of an inclusive range."""

    def __lt__(self, other):
        return False

    def __gt__(self, other):
        return True


_TOP = _Top()


def _orderable(value) -> bool:
    if isinstance(value, float):
        return value == value  # NaN has no place in an order
    return isinstance(value, (bool, int, str, datetime, ObjectId))


def _naive_utc(value):
    """Stored datetimes are naive UTC (mongomock's convention); bounds are brought alike."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return (value - value.utcoffset()).replace(tzinfo=None)
    return value


def _field_value(doc, path: tuple[str, ...]):
    node = doc
    for part in path:
        if isinstance(node, list):
            return _UNORDERABLE
        if not isinstance(node, dict) or part not in node:
            return _NOTHING
        node = node[part]
    if node is None:
        return _NOTHING  # null sorts apart; range and equality queries on values never match it
    return node if _orderable(node) else _UNORDERABLE


class OrderedIndex:
    """Sorted (type rank, value, id) entries for one field of one collection."""

    def __init__(self, field: str):
        self.field = field
        self._path = tuple(field.split("."))
        self._entries = SortedKeyList(key=lambda entry: entry[:3])
        self._by_id: dict[Any, tuple] = {}
        self._unorderable: set = set()  # ids whose value the index cannot order

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, doc_id, doc) -> None:
        self.remove(doc_id)
        value = _field_value(doc, self._path)
        if value is _NOTHING:
            return
        if value is _UNORDERABLE:
            self._unorderable.add(doc_id)
            return
        value = _naive_utc(value)
        entry = (compare_type(value), value, f"{type(doc_id).__name__}:{doc_id}", doc_id)
        self._entries.add(entry)
        self._by_id[doc_id] = entry

    def remove(self, doc_id) -> None:
        entry = self._by_id.pop(doc_id, None)
        if entry is not None:
            self._entries.remove(entry)
        self._unorderable.discard(doc_id)

    def clear(self) -> None:
        self._entries.clear()
        self._by_id.clear()
        self._unorderable.clear()

    def candidates(self, condition, descending: bool = False):
        """Ids of documents that may satisfy `condition` on this field, in index order.

        None if the index cannot answer it (then the caller scans). The set returned is a
        superset of the matches: bounds are widened to inclusive and the caller re-checks
        every candidate with the full filter.
        """
        if self._unorderable:
            return None
        bounds = _range_of(condition)
        if bounds is None:
            return None
        rank, low, high = bounds
        entries = self._entries.irange_key(
            (rank, low) if low is not None else (rank,),
            (rank, high, _TOP) if high is not None else (rank, _TOP),
            reverse=descending,
        )
        return (entry[3] for entry in entries)


def _range_of(condition):
    """(type rank, low, high) for `value`, `{"$eq": v}` or `$gt/$gte/$lt/$lte` bounds of one type."""
    if not isinstance(condition, dict):
        condition = {"$eq": condition}
    if not condition or not set(condition) <= {"$eq", "$gt", "$gte", "$lt", "$lte"}:
        return None
    values = [_naive_utc(v) for v in condition.values()]
    if not all(_orderable(v) for v in values):
        return None
    ranks = {compare_type(v) for v in values}
    if len(ranks) != 1:
        return None  # type bracketing: such a filter is rare and a scan answers it correctly
    lows = [_naive_utc(condition[op]) for op in ("$eq", "$gt", "$gte") if op in condition]
    highs = [_naive_utc(condition[op]) for op in ("$eq", "$lt", "$lte") if op in condition]
    low = max(lows) if lows else None
    high = min(highs) if highs else None
    return ranks.pop(), low, high


class _IndexedCollectionStore(mongomock_ng.store.CollectionStore):
    """mongomock's per-collection store, keeping its `ordered` indexes in step with writes."""

    ordered: dict

    @classmethod
    def install(cls, store) -> "_IndexedCollectionStore":
        if not isinstance(store, cls):
            store.__class__ = cls
            store.ordered = {}
        return store

    def add_ordered(self, field: str) -> None:
        if field in self.ordered:
            return
        index = OrderedIndex(field)
        for doc_id, doc in self._documents.items():
            index.put(doc_id, doc)
        self.ordered[field] = index

    def __setitem__(self, key, val):
        super().__setitem__(key, val)
        for index in self.ordered.values():
            index.put(key, val)

    def __delitem__(self, key):
        super().__delitem__(key)
        for index in self.ordered.values():
            index.remove(key)

    def drop(self):
        super().drop()
        self.ordered = {}  # MongoDB drops a collection's indexes with it

    def abort_transaction(self):
        super().abort_transaction()
        for index in self.ordered.values():
            index.clear()
            for doc_id, doc in self._documents.items():
                index.put(doc_id, doc)


# --------------------------------------------------------------------------------------------
# Embedded engine: mongomock-ng behind PyMongo-async call shapes
# --------------------------------------------------------------------------------------------

_SCALAR_ID = (str, ObjectId, int)


class _IdFastCollection(mongomock_ng.collection.Collection):
    """mongomock scans every document for every query, `_id` lookups included.

    Cases are fetched and updated by `_id` on every action, so narrow those queries (`_id`
    equal to, or `$in`, given ids) to those documents first, and range/equality conditions on a
    field with an ordered index to the index's candidates; every other filter keeps mongomock's
    own (full-scan) semantics. mongomock's matcher always has the last word on each document.
    """

    def _iter_documents(self, filter):  # noqa: A002 - mongomock's signature
        if isinstance(filter, dict):
            plan = self.candidates(filter)
            if plan is not None:
                filter_applies(filter, {})  # rejects a malformed filter as a scan would
                # Materialized: callers may write to the collection while they go through it.
                return iter(list(self._matching(*plan)))
        return super()._iter_documents(filter)

    def candidates(self, filter, sort_field: str | None = None, descending: bool = False):  # noqa: A002
        """(ids that may match `filter`, the filter left to check on them), or None to scan.

        With `sort_field` the ids come in that field's order, or None if no index gives it.
        """
        key = filter.get("_id")
        if sort_field is None:
            rest = {k: v for k, v in filter.items() if k != "_id"}
            if isinstance(key, _SCALAR_ID):
                return (key,), rest
            if isinstance(key, dict) and set(key) == {"$in"} and isinstance(key["$in"], (list, tuple)) \
                    and all(isinstance(k, _SCALAR_ID) for k in key["$in"]):
                # mongomock matches `$in` by comparing with every listed id (O(n) per document)
                return tuple(dict.fromkeys(key["$in"])), rest
        ordered = getattr(self._store, "ordered", None)
        if not ordered:
            return None
        fields = [sort_field] if sort_field is not None else list(ordered)
        for field in fields:
            if field in filter and field in ordered:
                ids = ordered[field].candidates(filter[field], descending)
                if ids is not None:
                    return ids, filter
        return None

    def _matching(self, ids, filter):  # noqa: A002
        self._store._remove_expired_documents()  # TTL indexes, as a scan would
        documents = self._store._documents
        for doc_id in ids:
            doc = documents.get(doc_id)
            if doc is not None and filter_applies(filter, doc):
                yield doc

    def first_ids(self, filter, sort, count: int) -> list | None:  # noqa: A002
        """The first `count` matching ids in `sort` order, read from an ordered index.

        For `find(...).sort(field).limit(n)` on an indexed range: stop after n matches
        instead of matching, copying and sorting every document in the range. None if no
        ordered index serves this filter and sort.
        """
        if not sort or len(sort) != 1:
            return None  # unsorted or by several keys: the plain cursor (still index-narrowed)
        filter = patch_datetime_awareness_in_document(filter)  # noqa: A001 - as mongomock's cursor does
        (sort_field, direction), = sort
        plan = self.candidates(filter, sort_field, direction < 0)
        if plan is None:
            return None
        filter_applies(filter, {})
        out = []
        for doc in self._matching(*plan):
            out.append(doc["_id"])
            if len(out) >= count:
                break
        return out


class EmbeddedCursor:
    """A PyMongo-async-shaped cursor over a mongomock cursor (or any iterator).

    A find built with `collection` and `filter` is planned on first use: when its sort and
    limit can be served by an ordered index (see `_IdFastCollection.first_ids`), only the
    first `skip + limit` matching ids are looked up and handed to mongomock by `_id`. Results
    are then taken from mongomock as one list.
    """

    def __init__(self, cursor, collection=None, filter=None, projection=None):  # noqa: A002
        self._cursor = cursor
        self._collection = collection
        self._filter = filter
        self._projection = projection
        self._sort = None
        self._skip = 0
        self._limit = 0
        self._planned = False

    def sort(self, key_or_list, direction=None):
        self._sort = create_index_list(key_or_list, direction)
        self._cursor.sort(key_or_list, direction) if direction is not None else self._cursor.sort(key_or_list)
        return self

    def skip(self, n: int):
        self._skip = n
        self._cursor.skip(n)
        return self

    def limit(self, n: int):
        self._limit = n
        self._cursor.limit(n)
        return self

    def _plan(self) -> None:
        self._planned = True
        if self._collection is not None and self._limit and isinstance(self._filter, dict):
            ids = self._collection.first_ids(self._filter, self._sort, self._skip + abs(self._limit))
            if ids is not None:
                cursor = self._collection.find({"_id": {"$in": ids[self._skip:]}}, self._projection)
                if self._sort:
                    cursor.sort(self._sort)
                self._cursor = cursor
        # mongomock's cursor slices its whole result list on every `next` (quadratic in the
        # number of results: minutes for 100,000 documents); take the list once instead.
        if isinstance(self._cursor, mongomock_ng.collection.Cursor):
            self._cursor = iter(self._cursor._compute_results(with_limit_and_skip=True))

    async def to_list(self, length: int | None = None) -> list[dict]:
        if not self._planned:
            self._plan()
        out = []
        for doc in self._cursor:
            out.append(doc)
            if length is not None and len(out) >= length:
                break
        return out

    def __aiter__(self):
        return self

    async def __anext__(self):
        if not self._planned:
            self._plan()
        try:
            return next(self._cursor)
        except StopIteration:
            raise StopAsyncIteration from None


def _is_update_by_id_returning_after(filter, kw: dict) -> bool:  # noqa: A002
    return (
        isinstance(filter, dict) and isinstance(filter.get("_id"), _SCALAR_ID)
        and kw.get("return_document") is ReturnDocument.AFTER
        and not kw.get("upsert") and not kw.get("sort") and set(kw) <= {"return_document", "upsert", "sort", "projection"}
    )


class EmbeddedCollection:
    """Async methods with PyMongo's signatures, executed synchronously in memory.

    The work is CPU-only and short, so running it on the event loop is cheaper than a thread hop
    and keeps every operation atomic with respect to other coroutines.
    """

    def __init__(self, collection):
        collection.__class__ = _IdFastCollection
        self._c = collection
        self.name = collection.name

    async def insert_one(self, document, **kw):
        return self._c.insert_one(document, **kw)

    async def insert_many(self, documents, **kw):
        return self._c.insert_many(list(documents), **kw)

    async def find_one(self, filter=None, *args, **kw):  # noqa: A002
        return self._c.find_one(filter, *args, **kw)

    def find(self, filter=None, *args, **kw):  # noqa: A002
        cursor = self._c.find(filter, *args, **kw)
        if args[1:] or set(kw) - {"projection"}:
            return EmbeddedCursor(cursor)  # skip/limit/sort passed as arguments: no planning
        projection = args[0] if args else kw.get("projection")
        return EmbeddedCursor(cursor, self._c, filter, projection)

    async def update_one(self, filter, update, **kw):  # noqa: A002
        return self._c.update_one(filter, update, **kw)

    async def update_many(self, filter, update, **kw):  # noqa: A002
        return self._c.update_many(filter, update, **kw)

    async def replace_one(self, filter, replacement, **kw):  # noqa: A002
        return self._c.replace_one(filter, replacement, **kw)

    async def find_one_and_update(self, filter, update, **kw):  # noqa: A002
        if _is_update_by_id_returning_after(filter, kw):
            # mongomock reads the document before and after the update, copying it whole each
            # time; by `_id`, returning the new version, update-then-read is the same result
            # (nothing runs in between) with one copy fewer. Every versioned action takes this.
            if self._c.update_one(filter, update).matched_count == 0:
                return None
            return self._c.find_one({"_id": filter["_id"]}, kw.get("projection"))
        return self._c.find_one_and_update(filter, update, **kw)

    async def delete_one(self, filter, **kw):  # noqa: A002
        return self._c.delete_one(filter, **kw)

    async def delete_many(self, filter, **kw):  # noqa: A002
        return self._c.delete_many(filter, **kw)

    async def count_documents(self, filter, **kw):  # noqa: A002
        return self._c.count_documents(filter, **kw)

    async def bulk_write(self, requests, **kw):
        return self._c.bulk_write(list(requests), **kw)

    async def aggregate(self, pipeline, **kw):
        return EmbeddedCursor(iter(self._c.aggregate(pipeline, **kw)))

    async def create_indexes(self, indexes: list[IndexModel], **kw):
        names = []
        for model in indexes:
            doc = dict(model.document)
            keys = list(doc.pop("key").items())
            doc.pop("name", None)
            names.append(self._c.create_index(keys, **doc))
            if len(keys) == 1 and keys[0][1] in (ASCENDING, DESCENDING) and keys[0][0] != "_id":
                # A single-field B-tree index: keep an ordered index so range queries on the
                # field do not scan (see OrderedIndex).
                _IndexedCollectionStore.install(self._c._store).add_ordered(keys[0][0])
        return names

    async def drop(self):
        self._c.drop()


class EmbeddedDatabase:
    def __init__(self, db):
        self._db = db
        self._collections: dict[str, EmbeddedCollection] = {}

    def __getitem__(self, name: str) -> EmbeddedCollection:
        if name not in self._collections:
            self._collections[name] = EmbeddedCollection(self._db[name])
        return self._collections[name]

    __getattr__ = __getitem__

    async def command(self, name, *args, **kw):
        return {"ok": 1.0}


class EmbeddedClient:
    def __init__(self):
        self._client = mongomock_ng.MongoClient(tz_aware=True)
        self._dbs: dict[str, EmbeddedDatabase] = {}

    def __getitem__(self, name: str) -> EmbeddedDatabase:
        if name not in self._dbs:
            self._dbs[name] = EmbeddedDatabase(self._client[name])
        return self._dbs[name]

    def get_database(self, name: str) -> EmbeddedDatabase:
        return self[name]

    async def close(self):
        self._client.close()


# --------------------------------------------------------------------------------------------
# Opening a store
# --------------------------------------------------------------------------------------------


@dataclass
class Storage:
    client: Any
    db: Any
    kind: str  # "embedded" | "mongodb"
    persistent: bool

    @property
    def description(self) -> str:
        if self.persistent:
            return "mongodb"
        return "embedded (in-memory: data is lost when the server stops)"

    async def ping(self) -> bool:
        try:
            await self.db.command("ping")
            return True
        except Exception:  # noqa: BLE001 - health check reports any failure as down
            log.exception("storage ping failed")
            return False

    async def close(self):
        await self.client.close()


async def open_storage(uri: str, database: str) -> Storage:
    if uri in ("", "embedded"):
        client = EmbeddedClient()
        storage = Storage(client, client[database], "embedded", persistent=False)
        log.warning("存储: 内嵌内存库 (embedded) — 数据只保存在内存中，服务停止即丢失；生产环境请配置 MongoDB")
    elif uri.startswith(("mongodb://", "mongodb+srv://")):
        from pymongo import AsyncMongoClient

        client = AsyncMongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000)
        storage = Storage(client, client[database], "mongodb", persistent=True)
    else:
        raise ValueError(f"storage.uri 必须是 embedded 或 mongodb:// URI，收到 {uri!r}")
    await ensure_indexes(storage.db)
    return storage


CASE_INDEXES = [
    IndexModel([("location", "2dsphere")], name="location_2dsphere"),
    IndexModel([("status", ASCENDING), ("created_at", DESCENDING)], name="status_created"),
    IndexModel([("assignment.department.id", ASCENDING), ("status", ASCENDING)], name="department_status"),
    IndexModel([("scope_path", ASCENDING), ("created_at", DESCENDING)], name="scope_created"),
    IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="created_id"),
    IndexModel([("next_due_at", ASCENDING)], name="next_due", sparse=True),
    IndexModel([("category.code", ASCENDING), ("created_at", DESCENDING)], name="category_created"),
    IndexModel([("number", ASCENDING)], name="number"),
]


async def ensure_indexes(db) -> None:
    await db["cases"].create_indexes(CASE_INDEXES)


# --------------------------------------------------------------------------------------------
# Repositories
# --------------------------------------------------------------------------------------------


def new_case_id() -> str:
    return str(ObjectId())


def intake_case_id(username: str, client_id: str) -> str:
    """Idempotent intake: the case id is derived from (user, client_id).

    `_id` is unique on every engine, so a retried submission cannot create a second case, with
    no extra unique index (mongomock checks secondary unique indexes by scanning every document).
    """
    digest = hashlib.sha256(f"{username}\x00{client_id}".encode()).hexdigest()
    return digest[:24]


class DuplicateCase(Exception):
    pass


class CaseStore:
    def __init__(self, db):
        self.cases = db["cases"]
        self.counters = db["counters"]

    async def next_number(self, day: str) -> str:
        doc = await self.counters.find_one_and_update(
            {"_id": f"case:{day}"}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        return f"{day}-{doc['seq']:06d}"

    async def insert(self, doc: dict) -> dict:
        try:
            await self.cases.insert_one(doc)
        except DuplicateKeyError:
            raise DuplicateCase(doc["_id"]) from None
        return doc

    async def get(self, case_id: str) -> dict | None:
        if not isinstance(case_id, str):
            return None
        return await self.cases.find_one({"_id": case_id})

    async def find(self, query: dict, sort: list[tuple[str, int]], limit: int) -> list[dict]:
        return await self.cases.find(query).sort(sort).limit(limit).to_list(limit)

    async def count(self, query: dict) -> int:
        return await self.cases.count_documents(query)

    # What the deadline sweep reads of a due case: the last history entry is enough to chain
    # the next one, and leaving out the rest keeps a busy sweep from copying whole histories.
    DUE_PROJECTION = {
        "_id": 1, "version": 1, "status": 1, "clock": 1, "next_due_at": 1, "flags": 1,
        "assignment": 1, "scope_path": 1, "history": {"$slice": -1},
    }

    async def due(self, now: datetime, limit: int, exclude: list | tuple = ()) -> list[dict]:
        """Cases whose deadline sweep cursor `next_due_at` has come, earliest first.

        Partial documents (`DUE_PROJECTION`). Served by the `next_due` index (on the embedded
        engine: its ordered index), so the cost follows the due cases, not the open ones.
        `exclude`: ids to leave out (a sweep passes those it could not update, so it does not
        fetch them again).
        """
        query: dict = {"next_due_at": {"$lte": now}}
        if exclude:
            query["_id"] = {"$nin": list(exclude)}
        cursor = self.cases.find(query, self.DUE_PROJECTION).sort([("next_due_at", ASCENDING)]).limit(limit)
        return await cursor.to_list(limit)

    async def update(self, case_id: str, version: int, update: dict) -> dict | None:
        """Apply `update` only if the case is still at `version` (optimistic concurrency)."""
        update = dict(update)
        update.setdefault("$inc", {})["version"] = 1
        return await self.cases.find_one_and_update(
            {"_id": case_id, "version": version}, update, return_document=ReturnDocument.AFTER
        )


class AttachmentStore:
    """Photos: the bytes, sniffed type and owner, kept in the database with the cases."""

    # Where a case refers to photos: the report itself, the department's feedback, the check.
    PHOTO_FIELDS = ("photos", "result.photos", "check.photos")

    def __init__(self, db):
        self.attachments = db["attachments"]
        self.cases = db["cases"]

    async def insert(self, doc: dict) -> dict:
        await self.attachments.insert_one(doc)
        return doc

    async def get(self, attachment_id: str) -> dict | None:
        if not isinstance(attachment_id, str):
            return None
        return await self.attachments.find_one({"_id": attachment_id})

    async def owned_by(self, attachment_ids: list, username: str) -> set[str]:
        """The ids among `attachment_ids` that `username` uploaded."""
        ids = [i for i in attachment_ids if isinstance(i, str)]
        if not ids:
            return set()
        docs = await self.attachments.find({"_id": {"$in": ids}, "owner": username}, {"_id": 1}).to_list(None)
        return {doc["_id"] for doc in docs}

    async def case_using(self, attachment_id: str, read_filter: dict) -> bool:
        """True if a case the reader may see (`read_filter`) shows this photo."""
        uses = {"$or": [{field: attachment_id} for field in self.PHOTO_FIELDS]}
        query = {"$and": [read_filter, uses]} if read_filter else uses
        return await self.cases.find_one(query, {"_id": 1}) is not None

    # -- keeping storage bounded: uploads no case refers to are counted and expired ------------
    # `referenced` is absent on uploads stored before it existed: `$ne: True` treats those as
    # unreferenced, and the expiry checks the cases before deleting anything.

    async def in_use(self, attachment_id: str) -> bool:
        """True if any case shows this photo (whoever may read it)."""
        return await self.case_using(attachment_id, {})

    async def mark_referenced(self, attachment_ids: list[str], referenced: bool = True) -> None:
        """Set (or, to undo a lost write, clear) the `referenced` flag of these uploads."""
        if attachment_ids:
            await self.attachments.update_many({"_id": {"$in": list(attachment_ids)}},
                                               {"$set": {"referenced": referenced}})

    async def pending_usage(self, owner: str, since: datetime) -> tuple[int, int]:
        """(count, total bytes) of `owner`'s unreferenced uploads created at or after `since`."""
        query = {"owner": owner, "referenced": {"$ne": True}, "created_at": {"$gte": since}}
        docs = await self.attachments.find(query, {"size": 1}).to_list(None)
        return len(docs), sum(doc.get("size") or 0 for doc in docs)

    async def unreferenced_before(self, cutoff: datetime, limit: int) -> list[str]:
        """Ids of up to `limit` unreferenced uploads created before `cutoff`, oldest first."""
        query = {"referenced": {"$ne": True}, "created_at": {"$lt": cutoff}}
        cursor = self.attachments.find(query, {"_id": 1}).sort([("created_at", ASCENDING)]).limit(limit)
        return [doc["_id"] for doc in await cursor.to_list(limit)]

    async def delete(self, attachment_ids: list[str]) -> int:
        """Delete these uploads; returns how many were deleted."""
        if not attachment_ids:
            return 0
        result = await self.attachments.delete_many({"_id": {"$in": list(attachment_ids)}})
        return result.deleted_count


class LeaseStore:
    """Named leases: among several processes, only the holder of a live lease runs a job.

    SPEC §7: several Tornado processes, exactly one scheduler. A lease is one document
    `{_id: name, holder, expires_at}`; taking it succeeds when it is free, expired or already
    ours, atomically (a filtered upsert: a competing insert of the same `_id` fails).
    """

    def __init__(self, db):
        self.leases = db["leases"]

    async def acquire(self, name: str, holder: str, now: datetime, ttl_seconds: float) -> bool:
        try:
            doc = await self.leases.find_one_and_update(
                {"_id": name, "$or": [{"holder": holder}, {"expires_at": {"$lte": now}}]},
                {"$set": {"holder": holder, "expires_at": now + timedelta(seconds=ttl_seconds)}},
                upsert=True, return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False  # somebody else holds it
        return doc is not None and doc.get("holder") == holder

    async def release(self, name: str, holder: str) -> None:
        await self.leases.delete_one({"_id": name, "holder": holder})


class UserStore:
    def __init__(self, db):
        self.users = db["users"]

    async def get(self, username: str) -> dict | None:
        if not isinstance(username, str):
            return None
        return await self.users.find_one({"_id": username})

    async def insert_if_absent(self, user: dict) -> bool:
        try:
            await self.users.insert_one(user)
            return True
        except DuplicateKeyError:
            return False

    async def update(self, username: str, fields: dict) -> dict | None:
        return await self.users.find_one_and_update(
            {"_id": username}, {"$set": fields}, return_document=ReturnDocument.AFTER
        )

    async def all(self) -> list[dict]:
        return await self.users.find({}).sort([("_id", 1)]).to_list(None)



class StatsStore:
    """Reads for the KPIs and the daily KPI snapshots (`kpi_snapshots`, id "<day>:<scope>")."""

    def __init__(self, db):
        self.cases = db["cases"]
        self.snapshots = db["kpi_snapshots"]

    async def period_cases(self, query: dict, projection: dict) -> list[dict]:
        """Every case matching `query`, only the projected fields: one scan, aggregated by the caller.

        `projection` lists included fields (dotted paths allowed). On the embedded engine,
        mongomock deep-copies, re-projects and re-zones every matching document (~1 ms for a
        case with its history, most of a KPI request); here the documents are matched by
        mongomock's own filter and only the projected fields are copied.
        """
        embedded = getattr(self.cases, "_c", None)
        if embedded is None:
            return await self.cases.find(query, projection).to_list(None)
        tree = _projection_tree(projection)
        # Stored datetimes are naive UTC: bring the query's alike, as mongomock's find does.
        query = mongomock_ng.helpers.patch_datetime_awareness_in_document(query)
        return [_project(doc, tree) for doc in embedded._iter_documents(query)]

    async def save_snapshot(self, snapshot: dict) -> None:
        await self.snapshots.replace_one({"_id": snapshot["_id"]}, snapshot, upsert=True)

    async def get_snapshot(self, snapshot_id: str) -> dict | None:
        return await self.snapshots.find_one({"_id": snapshot_id})

    async def snapshots_for_day(self, day: str) -> list[dict]:
        return await self.snapshots.find({"day": day}).sort([("_id", 1)]).to_list(None)


def _projection_tree(projection: dict) -> dict:
    """{"a.b": 1, "c": 1} → {"a": {"b": {}}, "c": {}} (inclusion projections only)."""
    tree: dict = {}
    for path, included in projection.items():
        if not included:
            raise ValueError(f"only inclusion projections are supported: {path}")
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return tree


def _project(value, tree: dict):
    """A copy of the parts of `value` that `tree` names, with MongoDB's rules for arrays of
    sub-documents; datetimes come back UTC-aware, as from the `tz_aware` clients."""
    if not tree:
        return _plain(value)
    if isinstance(value, list):
        return [_project(item, tree) for item in value if isinstance(item, (dict, list))]
    return {key: _project(value[key], sub) for key, sub in tree.items() if key in value}


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


class RevokedTokenStore:
    """Logged-out tokens (`revoked_tokens`): the token's nonce until it would have expired.

    A TTL index on `expires_at` lets MongoDB forget them afterwards; the embedded engine applies
    the same TTL when it reads.
    """

    def __init__(self, db):
        self.revoked = db["revoked_tokens"]

    async def ensure_indexes(self) -> None:
        await self.revoked.create_indexes([
            IndexModel([("expires_at", ASCENDING)], name="expires_ttl", expireAfterSeconds=0),
        ])

    async def add(self, nonce: str, username: str, expires_epoch: int) -> None:
        expires = datetime.fromtimestamp(expires_epoch, timezone.utc)
        await self.revoked.update_one(
            {"_id": nonce}, {"$set": {"username": username, "expires_at": expires}}, upsert=True,
        )

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


class AuditStore:
    """Who looked at or changed what outside a case's own history.

    `reveals`: each unmasking of a caller's name and phone (who, when, which case, why, from
    where); `admin_audit`: each account change made by an administrator. Insert-only.
    """

    KINDS = ("reveals", "admin_audit")

    def __init__(self, db):
        self.collections = {kind: db[kind] for kind in self.KINDS}

    async def ensure_indexes(self) -> None:
        for collection in self.collections.values():
            await collection.create_indexes([IndexModel([("at", DESCENDING)], name="at_desc")])

    async def record(self, kind: str, entry: dict) -> dict:
        doc = {"_id": str(ObjectId()), **entry}
        await self.collections[kind].insert_one(doc)
        return doc

    async def recent(self, kind: str, limit: int, case_id: str | None = None,
                     username: str | None = None) -> list[dict]:
        query: dict = {}
        if case_id is not None:
            query["case_id"] = case_id
        if username is not None:
            query["by"] = username
        return await self.collections[kind].find(query).sort([("at", DESCENDING)]).limit(limit).to_list(limit)

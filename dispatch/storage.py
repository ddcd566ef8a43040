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
from typing import Any

import mongomock_ng
import mongomock_ng.collection
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Embedded engine: mongomock-ng behind PyMongo-async call shapes
# --------------------------------------------------------------------------------------------


class _IdFastCollection(mongomock_ng.collection.Collection):
    """mongomock scans every document for every query, `_id` lookups included.

    Cases are fetched and updated by `_id` on every action, so narrow those queries to the one
    document first; every other filter keeps mongomock's own (full-scan) semantics.
    """

    def _iter_documents(self, filter):  # noqa: A002 - mongomock's signature
        if isinstance(filter, dict):
            key = filter.get("_id")
            if isinstance(key, (str, ObjectId, int)):
                if key not in self._store:
                    return iter(())
                doc = self._store[key]
                applies = mongomock_ng.filtering.filter_applies
                return iter([doc] if applies(filter, doc) else [])
        return super()._iter_documents(filter)


class EmbeddedCursor:
    def __init__(self, cursor):
        self._cursor = cursor

    def sort(self, key_or_list, direction=None):
        self._cursor.sort(key_or_list, direction) if direction is not None else self._cursor.sort(key_or_list)
        return self

    def skip(self, n: int):
        self._cursor.skip(n)
        return self

    def limit(self, n: int):
        self._cursor.limit(n)
        return self

    async def to_list(self, length: int | None = None) -> list[dict]:
        out = []
        for doc in self._cursor:
            out.append(doc)
            if length is not None and len(out) >= length:
                break
        return out

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return next(self._cursor)
        except StopIteration:
            raise StopAsyncIteration from None


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
        return EmbeddedCursor(self._c.find(filter, *args, **kw))

    async def update_one(self, filter, update, **kw):  # noqa: A002
        return self._c.update_one(filter, update, **kw)

    async def update_many(self, filter, update, **kw):  # noqa: A002
        return self._c.update_many(filter, update, **kw)

    async def replace_one(self, filter, replacement, **kw):  # noqa: A002
        return self._c.replace_one(filter, replacement, **kw)

    async def find_one_and_update(self, filter, update, **kw):  # noqa: A002
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

    async def update(self, case_id: str, version: int, update: dict) -> dict | None:
        """Apply `update` only if the case is still at `version` (optimistic concurrency)."""
        update = dict(update)
        update.setdefault("$inc", {})["version"] = 1
        return await self.cases.find_one_and_update(
            {"_id": case_id, "version": version}, update, return_document=ReturnDocument.AFTER
        )


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


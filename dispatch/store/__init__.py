"""Store: the only package that speaks to the database.

Callers hand it the values of `query.py` (a reader's scope, the case list's filters, a case's
change) and get documents back. Two engines implement the same repositories:

* `memory.py` — the embedded default: in this process's memory, gone when it stops;
* `mongo.py` — MongoDB 6.0+ or FerretDB 1.24 on PostgreSQL, through PyMongo's async API.

tests/test_store_contract.py holds both to one contract.
"""

from __future__ import annotations

import logging

from bson import ObjectId

from dispatch.store.query import DuplicateCase, StoreUnavailable  # noqa: F401 - re-exported

log = logging.getLogger(__name__)


def new_case_id() -> str:
    return str(ObjectId())


async def open_store(uri: str, database: str):
    """The store for `storage.uri`, its indexes in place."""
    if uri in ("", "embedded"):
        from dispatch.store.memory import MemoryStore

        store = MemoryStore()
        log.warning("存储: 内嵌内存库 (embedded) — 数据只保存在内存中，服务停止即丢失；生产环境请配置 MongoDB 或 FerretDB")
    elif uri.startswith(("mongodb://", "mongodb+srv://")):
        from dispatch.store.mongo import MongoStore

        store = MongoStore(uri, database)
    else:
        raise ValueError(f"storage.uri 必须是 embedded 或 mongodb:// URI，收到 {uri!r}")
    await store.ensure_indexes()
    return store

"""The server engine's operator-assist repositories (`models`, `knowledge`), same contract as
`assist_memory.py`. Versions are insert-once `_id`s (FerretDB 1.24 has no atomic filtered
update); reads filter by equality and sort the few documents in Python."""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from dispatch.store.mongo import ensure_indexes, guarded

MODEL_FIELDS = ("name", "version", "examples", "trained_at", "meta")


class MongoModels:
    def __init__(self, db):
        self.models = db["assist_models"]
        self.live_state = db["assist_models_live"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.models, [IndexModel([("name", ASCENDING)], name="name")])
        await ensure_indexes(self.live_state, [IndexModel([("name", ASCENDING)], name="name")])

    @guarded
    async def save(self, doc: dict) -> bool:
        try:
            await self.models.insert_one({"_id": f"{doc['name']}:{doc['version']}", **doc})
            return True
        except DuplicateKeyError:
            return False

    async def _versions(self, name: str) -> list[dict]:
        return await self.models.find({"name": name}, {k: 1 for k in MODEL_FIELDS}).to_list(None)

    @guarded
    async def latest(self, name: str, with_blob: bool = True) -> dict | None:
        docs = await self._versions(name)
        if not docs:
            return None
        head = max(docs, key=lambda d: d["version"])
        return await self.models.find_one({"_id": head["_id"]}) if with_blob else head

    @guarded
    async def prune(self, name: str, keep: int) -> int:
        docs = sorted(await self._versions(name), key=lambda d: -d["version"])[keep:]
        if not docs:
            return 0
        result = await self.models.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
        return result.deleted_count

    @guarded
    async def report_live(self, name: str, process: str, version: int, at: datetime) -> None:
        await self.live_state.replace_one({"_id": f"{name}:{process}"},
                                          {"name": name, "process": process, "version": version, "at": at},
                                          upsert=True)

    @guarded
    async def live(self, name: str) -> list[dict]:
        docs = await self.live_state.find({"name": name}).to_list(None)
        return sorted(docs, key=lambda d: d["_id"])


class MongoKnowledge:
    def __init__(self, db):
        self.versions = db["knowledge_versions"]
        self.uses = db["knowledge_uses"]
        self.marks = db["knowledge_flags"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.versions, [IndexModel([("id", ASCENDING)], name="id")])
        await ensure_indexes(self.uses, [IndexModel([("article", ASCENDING)], name="article")])

    @guarded
    async def put(self, doc: dict) -> bool:
        try:
            await self.versions.insert_one({"_id": f"{doc['id']}:{doc['version']}", **doc})
            return True
        except DuplicateKeyError:
            return False

    @guarded
    async def heads(self) -> list[dict]:
        best: dict[str, dict] = {}
        async for d in self.versions.find({}):
            if d["id"] not in best or d["version"] > best[d["id"]]["version"]:
                best[d["id"]] = d
        return [best[k] for k in sorted(best)]

    @guarded
    async def history(self, article_id: str) -> list[dict]:
        return sorted(await self.versions.find({"id": article_id}).to_list(None), key=lambda d: d["version"])

    @guarded
    async def revision(self) -> int:
        return await self.versions.count_documents({}) + await self.marks.count_documents({})

    @guarded
    async def record_use(self, article_id: str, case_id: str, at: datetime) -> bool:
        try:
            await self.uses.insert_one({"_id": f"{case_id}:{article_id}", "article": article_id, "case": case_id,
                                        "at": at})
            return True
        except DuplicateKeyError:
            return False

    @guarded
    async def usage(self) -> dict[str, int]:
        out: dict[str, int] = {}
        async for d in self.uses.find({}, {"article": 1}):
            out[d["article"]] = out.get(d["article"], 0) + 1
        return out

    @guarded
    async def flag(self, article_id: str, by: str, note: str, at: datetime) -> None:
        await self.marks.insert_one({"_id": str(ObjectId()), "article": article_id, "by": by, "note": note, "at": at})

    @guarded
    async def flags(self) -> list[dict]:
        return sorted(await self.marks.find({}).to_list(None), key=lambda d: d["at"])

"""The embedded engine's operator-assist repositories: stored category models (`models`) and
the versioned knowledge base (`knowledge`). Same contract as `assist_mongo.py`."""

from __future__ import annotations

from datetime import datetime

from dispatch.store.change import copied, stored_value

MODEL_FIELDS = ("name", "version", "examples", "trained_at", "meta")


class MemoryModels:
    """Trained models, `_id` "<name>:<version>" taken once; and which version each process runs."""

    def __init__(self):
        self._docs: dict[str, dict] = {}
        self._live: dict[str, dict] = {}

    async def ensure_indexes(self) -> None:
        return None

    async def save(self, doc: dict) -> bool:
        key = f"{doc['name']}:{doc['version']}"
        if key in self._docs:
            return False
        self._docs[key] = stored_value({"_id": key, **doc})
        return True

    async def latest(self, name: str, with_blob: bool = True) -> dict | None:
        docs = [d for d in self._docs.values() if d["name"] == name]
        if not docs:
            return None
        doc = copied(max(docs, key=lambda d: d["version"]))
        return doc if with_blob else {k: doc[k] for k in ("_id", *MODEL_FIELDS) if k in doc}

    async def prune(self, name: str, keep: int) -> int:
        versions = sorted((d["version"] for d in self._docs.values() if d["name"] == name), reverse=True)
        gone = versions[keep:]
        for v in gone:
            del self._docs[f"{name}:{v}"]
        return len(gone)

    async def report_live(self, name: str, process: str, version: int, at: datetime) -> None:
        self._live[f"{name}:{process}"] = stored_value({"name": name, "process": process, "version": version, "at": at})

    async def live(self, name: str) -> list[dict]:
        return [copied(d) for k, d in sorted(self._live.items()) if d["name"] == name]


class MemoryKnowledge:
    """Knowledge base articles, every version kept (`_id` "<article>:<version>", taken once; a
    deletion is a version with `deleted: true`); which article answered which case; operators'
    marks that an article is wrong."""

    def __init__(self):
        self._versions: dict[str, dict] = {}
        self._uses: dict[str, dict] = {}
        self._flags: list[dict] = []

    async def ensure_indexes(self) -> None:
        return None

    async def put(self, doc: dict) -> bool:
        key = f"{doc['id']}:{doc['version']}"
        if key in self._versions:
            return False
        self._versions[key] = stored_value({"_id": key, **doc})
        return True

    async def heads(self) -> list[dict]:
        best: dict[str, dict] = {}
        for d in self._versions.values():
            if d["id"] not in best or d["version"] > best[d["id"]]["version"]:
                best[d["id"]] = d
        return [copied(best[k]) for k in sorted(best)]

    async def history(self, article_id: str) -> list[dict]:
        return [copied(d) for d in sorted((d for d in self._versions.values() if d["id"] == article_id),
                                          key=lambda d: d["version"])]

    async def revision(self) -> int:
        return len(self._versions) + len(self._flags)

    async def record_use(self, article_id: str, case_id: str, at: datetime) -> bool:
        key = f"{case_id}:{article_id}"
        if key in self._uses:
            return False
        self._uses[key] = stored_value({"_id": key, "article": article_id, "case": case_id, "at": at})
        return True

    async def usage(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self._uses.values():
            out[d["article"]] = out.get(d["article"], 0) + 1
        return out

    async def flag(self, article_id: str, by: str, note: str, at: datetime) -> None:
        self._flags.append(stored_value({"article": article_id, "by": by, "note": note, "at": at}))

    async def flags(self) -> list[dict]:
        return [copied(f) for f in sorted(self._flags, key=lambda f: f["at"])]

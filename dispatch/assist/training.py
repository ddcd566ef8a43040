"""Training the category suggestion and keeping every process on the newest stored model.

The training set is the city's own words — each category's name, `keywords` and `examples`
(categories.yaml), the `train` split of an optional labelled corpus in the city package
(`corpus.jsonl`, what a city brings from its old system; the demo ships one) — and every ticket
an operator or grid worker has classified (the store's cases with a description and a category
chosen for them, not the default category of a ticket type).

A model is stored with its version and training-set size (`store.models`, version taken
insert-once). Every process polls the newest version every POLL_SECONDS, loads it when it
changes, and reports the version it runs (`report_live`), so `train()` can return once the new
model is live everywhere. Scheduled retraining (`assist.retrain_minutes`, 0 = never) runs under
a lease, so one process trains per period. Fitting runs in a child process, so the serving
process's requests do not wait on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import multiprocessing
import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta

from dispatch.assist.classifier import CategoryModel, TooLittleData, category_texts, fit
from dispatch.background import cancel
from dispatch.store import StoreUnavailable
from dispatch.store.query import After, CaseQuery

log = logging.getLogger(__name__)

NAME = "category"
STORE_EXAMPLES = 20000  # newest classified cases read per training
KEEP_VERSIONS = 5
LEASE = "assist-train"

# Fitted models by training-set digest: several applications in one process (the tests) with the
# same data fit once. Bounded: a changed training set replaces the entry.
_FITTED: dict[str, tuple[bytes, int]] = {}


def corpus_rows(city_path: str) -> list[dict]:
    path = os.path.join(city_path, "corpus.jsonl")
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                log.warning("corpus.jsonl 第 %d 行不是 JSON，已跳过", n)
                continue
            rows.append(row)
    return rows


def package_examples(city) -> list[tuple[str, str]]:
    pairs = [(t, code) for code, c in city.categories.items() for t in category_texts(c)]
    for row in corpus_rows(city.path):
        if row.get("split", "train") == "train" and row.get("category") in city.categories and row.get("text"):
            pairs.append((str(row["text"]), row["category"]))
    return pairs


async def store_examples(cases, city, limit: int = STORE_EXAMPLES) -> list[tuple[str, str]]:
    """(description, category) of the newest classified cases."""
    defaults = {code for code, c in city.categories.items() if c.ticket_type}
    out, after = [], None
    while len(out) < limit:
        page = await cases.find(CaseQuery(limit=500, after=after))
        if not page:
            break
        for doc in page:
            code = (doc.get("category") or {}).get("code")
            text = (doc.get("description") or "").strip()
            if text and code in city.categories and code not in defaults and doc.get("status") != "void":
                out.append((text, code))
        last = page[-1]
        after = After(last["created_at"], last["_id"])
        if len(page) < 500:
            break
    return out[:limit]


class Suggester:
    """This process's category model, and the jobs that keep it current."""

    POLL_SECONDS = 2.0
    # A process that finds no stored model trains one this long after it starts: a server
    # that is stopped right away (tests, a failed start) never pays for it.
    FIRST_TRAINING_DELAY = 3.0

    def __init__(self, city, storage, clock, config: dict):
        self.city = city
        self.storage = storage
        self.repo = storage.models
        self.clock = clock
        conf = config.get("assist") or {}
        self.retrain_minutes = float(conf.get("retrain_minutes", 60) or 0)
        self.train_on_start = bool(conf.get("train_on_start", True))
        self.process = uuid.uuid4().hex
        self.model: CategoryModel | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._stopped = False
        self._next_training: datetime | None = None

    # -- serving -------------------------------------------------------------------------

    def suggest(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        model = self.model
        return model.suggest(text, k, allowed=self.city.categories) if model else []

    def status(self) -> dict:
        m = self.model
        return {"version": m.version if m else None, "examples": m.examples if m else 0,
                "trained_at": self.iso(m.trained_at) if m else None}

    def iso(self, moment: datetime | None) -> str | None:
        return moment.astimezone(self.city.tz).isoformat(timespec="seconds") if moment else None

    # -- following the store ---------------------------------------------------------------

    async def adopt_latest(self) -> bool:
        """Load the newest stored model if it is newer than ours; True if one was loaded."""
        head = await self.repo.latest(NAME, with_blob=False)
        if head is None or (self.model and self.model.version >= head["version"]):
            return False
        doc = await self.repo.latest(NAME)
        if doc is None:
            return False
        model = await asyncio.get_running_loop().run_in_executor(
            None, CategoryModel.from_bytes, doc["blob"], doc["version"], doc["examples"], doc.get("trained_at"))
        if self.model is None or model.version > self.model.version:
            self.model = model
            log.info("分类模型: 已加载第 %d 版（%d 条样本）", model.version, model.examples)
        return True

    async def report(self) -> None:
        if self.model is not None:
            await self.repo.report_live(NAME, self.process, self.model.version, self.clock())

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopped = True
        await cancel(self._task)

    def _closed(self) -> bool:
        return self._stopped or getattr(self.storage.events, "closed", False)

    async def _run(self) -> None:
        first = True
        started = time.monotonic()
        while not self._closed():
            try:
                await self.adopt_latest()
                if first and self.model is None and self.train_on_start:
                    await asyncio.sleep(max(0.0, self.FIRST_TRAINING_DELAY - (time.monotonic() - started)))
                    if self._closed():
                        return
                    await self.adopt_latest()  # another process may have trained meanwhile
                if first and self.model is None and self.train_on_start:
                    await self.train(by="启动时训练", wait=False)
                first = False
                await self.report()
                await self._scheduled()
            except (StoreUnavailable, TooLittleData) as exc:
                if first:
                    log.warning("分类模型: %s", exc)
                first = False
            except Exception:  # noqa: BLE001 - the loop must outlive any one failure
                if self._closed():
                    return
                log.exception("分类模型: 后台任务失败")
            await asyncio.sleep(self.POLL_SECONDS)

    async def _scheduled(self) -> None:
        if self.retrain_minutes <= 0:
            return
        now = self.clock()
        if self._next_training is None:
            self._next_training = now + timedelta(minutes=self.retrain_minutes)
            return
        if now < self._next_training:
            return
        self._next_training = now + timedelta(minutes=self.retrain_minutes)
        lease_seconds = self.retrain_minutes * 60 * 0.9
        if await self.storage.leases.acquire(LEASE, self.process, now, lease_seconds):
            try:
                await self.train(by="定时训练", wait=False)
            except TooLittleData as exc:
                log.info("分类模型定时训练: %s", exc)

    # -- training ------------------------------------------------------------------------

    async def train(self, by: str = "", wait: bool = True, timeout: float = 20.0) -> dict:
        """Train on the current data, store it as the next version and make it live here; with
        `wait`, return once every running process reports it. Raises TooLittleData (nothing
        changes: the previous model stays)."""
        async with self._lock:
            t0 = time.perf_counter()
            pairs = package_examples(self.city)
            from_store = await store_examples(self.storage.cases, self.city)
            pairs += from_store
            head = await self.repo.latest(NAME, with_blob=False)
            version = (head["version"] if head else 0) + 1
            blob, examples = await fit_elsewhere(pairs)
            now = self.clock()
            for _ in range(20):
                doc = {"name": NAME, "version": version, "examples": examples, "trained_at": now, "blob": blob,
                       "meta": {"from_store": len(from_store), "by": by, "process": self.process}}
                if await self.repo.save(doc):
                    break
                version += 1  # another process stored this version meanwhile: ours is newer
            self.model = CategoryModel.from_bytes(blob, version, examples, now)
            await self.repo.prune(NAME, KEEP_VERSIONS)
            await self.report()
            took = time.perf_counter() - t0
            log.info("分类模型: 第 %d 版已训练（%d 条样本，其中库内工单 %d 条，%.1f 秒，%s）", version, examples,
                     len(from_store), took, by or "手动")
        live = await self.wait_live(version, timeout) if wait else None
        return {"version": version, "examples": examples, "from_store": len(from_store),
                "categories": len(self.model.codes), "trained_at": self.iso(now), "seconds": round(took, 2),
                "processes": live}

    async def wait_live(self, version: int, timeout: float) -> int:
        """Wait until every process that reported lately runs `version` or newer; how many do.
        A process that stopped reporting (gone) is not waited for."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.clock()
            recent = [d for d in await self.repo.live(NAME)
                      if d["at"] >= now - timedelta(seconds=self.POLL_SECONDS * 4)]
            behind = [d for d in recent if d["version"] < version]
            if not behind or time.monotonic() > deadline:
                if behind:
                    log.warning("分类模型第 %d 版: %d 个进程尚未加载", version, len(behind))
                return len(recent) - len(behind)
            await asyncio.sleep(0.2)


def _fit_bytes(pairs: list[tuple[str, str]]) -> tuple[bytes, int]:
    model = fit([t for t, _ in pairs], [c for _, c in pairs], version=0)
    return model.to_bytes(), model.examples


async def fit_elsewhere(pairs: list[tuple[str, str]]) -> tuple[bytes, int]:
    """Fit in a child process: seconds of numpy/scipy under the GIL in a thread of this process
    would hold up every request meanwhile. The child lives for one training."""
    digest = hashlib.sha256(json.dumps(sorted(pairs), ensure_ascii=False).encode()).hexdigest()
    if digest in _FITTED:
        return _FITTED[digest]
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result = await asyncio.get_running_loop().run_in_executor(pool, _fit_bytes, pairs)
    _FITTED.clear()
    _FITTED[digest] = result
    return result

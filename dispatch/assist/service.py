"""`Assist`: the operator assist of one process — the category model, the knowledge base and
the caller/similar-case look-ups — and the one call behind `GET /api/assist` (SPEC §9)."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import timedelta

from dispatch.access.policy import case_scope
from dispatch.assist.callers import phone_forms, point_of, repeat_candidate, similar_score
from dispatch.assist.knowledge import KnowledgeBase
from dispatch.assist.nearby import NearbyIndex
from dispatch.assist.training import Suggester
from dispatch.background import cancel
from dispatch.domain import OPEN_STATUSES, to_api
from dispatch.rules import OutsideCity
from dispatch.store.query import Box, CaseQuery

log = logging.getLogger(__name__)

STOP_WAIT_SECONDS = 5.0

SUMMARY_FIELDS = ("id", "number", "status", "source", "type", "category", "address", "caller", "created_at",
                  "assignment", "merged_into")


class Assist:
    def __init__(self, ctx):
        self.ctx = ctx
        conf = ctx.config.get("assist") or {}
        self.recent_days = int(conf.get("caller_days", 90))
        self.repeat_days = int(conf.get("repeat_days", 30))
        self.radius_m = float(conf.get("similar_radius_m", 500))
        clock = ctx.clock.now  # the application's one clock
        self.clock = clock
        self.suggester = Suggester(ctx.city, ctx.storage, clock, ctx.config)
        self.knowledge = KnowledgeBase(ctx.city, ctx.storage.knowledge, clock)
        self.nearby = NearbyIndex(self.repeat_days)
        self._unsubscribe = None
        self._loader: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()  # use counts being written

    def adopt(self, city) -> None:
        """Follow a published city configuration: suggest its categories, seed its articles."""
        self.suggester.city = city
        self.knowledge.city = city

    async def start(self) -> None:
        await self.knowledge.seed()
        await self.suggester.start()
        self._unsubscribe = self.ctx.bus.subscribe(self._on_event)
        self._loader = asyncio.ensure_future(self._load_nearby())

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _load_nearby(self) -> None:
        try:
            await self.nearby.load(self.ctx.cases, self.clock())
        except Exception:  # noqa: BLE001 - without the index the store answers (slower)
            if not getattr(self.ctx.storage.events, "closed", False):
                log.exception("接线辅助: 载入近期案件位置失败，改为直接查询")

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        await cancel(self._loader)  # only reads: nothing is lost
        if self._tasks:  # writes of a use count each: let them land (briefly) rather than lose them
            await asyncio.wait(set(self._tasks), timeout=STOP_WAIT_SECONDS)
            for task in list(self._tasks):
                await cancel(task)
        await self.suggester.stop()

    # -- usage of articles: counted from the log of case changes ----------------------------

    def _on_event(self, event: dict) -> None:
        """Every case change moves the place index; an `answer` that names an article counts one
        use of it (every process sees the event; the store keeps one use per case and article)."""
        if event.get("case"):
            self.nearby.on_case(event["case"])
        answer = (event.get("case") or {}).get("answer") or {}
        article = answer.get("article")
        if event.get("type") != "case.updated" or not article:
            return
        self._spawn(self._count_use(article, event["case"]))

    async def _count_use(self, article: str, case: dict) -> None:
        try:
            await self.ctx.storage.knowledge.record_use(article, case.get("_id") or case.get("id"), self.clock())
        except Exception:  # noqa: BLE001 - a lost count must not break the feed
            log.exception("知识库: 记录文章 %s 的使用失败", article)

    # -- GET /api/assist ---------------------------------------------------------------------

    def categories(self, text: str, place, k: int = 3) -> list[dict]:
        out = []
        for code, score in self.suggester.suggest(text, k):
            category = self.ctx.city.categories[code]
            department = None
            if place:
                try:
                    decision = self.ctx.router.route(place[0], place[1], code, source="hotline", text=text,
                                                     at=self.clock())
                    department = decision.department
                except OutsideCity:
                    department = None
            out.append({"code": code, "name": category.name, "score": round(score, 4), "department": department})
        return out

    def summary(self, user, case: dict, **extra) -> dict:
        full = to_api(case, user, self.ctx.tz)  # masking by the privacy rules (masking.py)
        out = {k: full.get(k) for k in SUMMARY_FIELDS}
        out["summary"] = (full.get("description") or "")[:80]
        out["repeat_count"] = len(case.get("merged_from") or [])
        out.update(extra)
        return out

    async def answer(self, user, text: str, place, phone: str | None, category: str | None) -> dict:
        await self.knowledge.refresh()
        forms = phone_forms(phone)
        now = self.clock()
        scope = case_scope(user, self.ctx.city.id)
        categories = self.categories(text, place) if text else []
        knowledge = [{"id": a["id"], "title": a["title"], "answer": a["answer"], "score": a["score"],
                      "category": a.get("category"), "version": a.get("version")}
                     for a in self.knowledge.search(text, 5, on=now.astimezone(self.ctx.tz).date())] if text else []
        guess = category or (categories[0]["code"] if categories else None)
        # The place's cases and the caller's tickets are two independent reads: asked together,
        # the answer waits for the slower one only (on a server store each is a round trip).
        (similar, repeat_of), recent = await asyncio.gather(
            self._similar(user, scope, text, place, guess, now),
            self.ctx.cases.by_caller(phone, now - timedelta(days=self.recent_days), now, scope, 10) if forms else _nothing())
        caller = {"recent": [], "repeat_of": None}
        if forms:
            caller["recent"] = [self.summary(user, c) for c in recent]
            caller["repeat_of"] = await self._caller_repeat(recent, text, guess, now)
        if caller["repeat_of"] is None and repeat_of is not None:
            caller["repeat_of"] = repeat_of
        return {"categories": categories, "knowledge": knowledge, "similar": similar, "caller": caller,
                "model": self.suggester.status()}

    async def _master(self, case: dict) -> dict | None:
        """The open case a repeat should be merged into: the case, or the one it was merged into."""
        for _ in range(3):
            if case.get("status") in OPEN_STATUSES:
                return case
            into = (case.get("merged_into") or {}).get("id")
            if case.get("status") != "merged" or not into:
                return None
            case = await self.ctx.cases.get(into)
            if case is None:
                return None
        return None

    async def _caller_repeat(self, recent: list[dict], text: str, category, now) -> str | None:
        since = now - timedelta(days=self.repeat_days)
        for case in recent:
            if case["created_at"] < since or not repeat_candidate(text, None, category, case, same_caller=True):
                continue
            master = await self._master(case)
            if master is not None:
                return master["_id"]
        return None

    async def _similar(self, user, scope, text: str, place, category, now) -> tuple[list[dict], str | None]:
        if not place:
            return [], None
        dlat = self.radius_m / 110_540
        dlng = self.radius_m / (111_320 * max(0.2, math.cos(math.radians(place[1]))))
        since = now - timedelta(days=self.repeat_days)
        if self.nearby.ready:
            try:
                await self.ctx.tail.caught_up(timeout=1.0)  # this process's own last writes are in
            except TimeoutError:
                pass
            found = [c for c in self.nearby.near(place[0], place[1], self.radius_m, since) if scope.admits(c)]
        else:
            box = Box(place[0] - dlng, place[1] - dlat, place[0] + dlng, place[1] + dlat)
            found = await self.ctx.cases.find(CaseQuery(scope=scope, open_only=True, box=box, limit=200,
                                                        created_from=since))
        scored = []
        for case in found:
            if point_of(case) is None:
                continue
            score, parts = similar_score(text, place, category, case, self.radius_m)
            if parts["distance_m"] is not None and parts["distance_m"] <= self.radius_m:
                scored.append((score, parts, case))
        scored.sort(key=lambda s: -s[0])
        repeat_of = next((c["_id"] for _, _, c in scored if repeat_candidate(text, place, category, c, False)), None)
        return [self.summary(user, c, score=round(s, 3), distance_m=p["distance_m"], text_similarity=p["text"])
                for s, p, c in scored[:10]], repeat_of


async def _nothing() -> list:
    return []

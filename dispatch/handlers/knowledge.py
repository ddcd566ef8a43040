"""The knowledge base (知识库, SPEC §9).

* `GET /api/knowledge?q=&limit=` (operator, dispatcher, admin) → `{items: [article + score]}`,
  best first; without `q`, every current article with its `updated_at`, the newest change first.
* `GET /api/knowledge/{id}` → the current version. `POST /api/knowledge/{id}/flag` `{note}`
  (operator, dispatcher): the article is wrong or out of date; it goes on the review list.
* Admin: `POST /api/admin/knowledge` (article) → 201; `PUT /api/admin/knowledge/{id}`
  `{version, ...article}` → the next version, 409 if `version` is stale;
  `DELETE /api/admin/knowledge/{id}?version=`; `GET /api/admin/knowledge/{id}/history`;
  `GET /api/admin/knowledge/review` → articles past `valid_to`, never used, or marked wrong
  since their current version (a new version settles the marks made before it).
Every version is kept in the store; the city package's knowledge.yaml is version 1.
"""

from __future__ import annotations

from dispatch import validation as v
from dispatch.assist.knowledge import checked_article, public, valid_on
from dispatch.errors import ApiError, bad_request, conflict, not_found
from dispatch.handlers.base import BaseHandler
from geo.errors import CityPackageError

ARTICLE_ID = r"([A-Za-z0-9][A-Za-z0-9_.\-]{0,63})"


def iso(moment, tz) -> str | None:
    return moment.astimezone(tz).isoformat(timespec="seconds") if moment else None


def _invalid(exc: CityPackageError) -> ApiError:
    problems = [e.split(": ", 2)[-1] for e in exc.errors]
    return ApiError(422, "invalid_article", "知识条目有误：" + "；".join(problems), problems=problems)


class KnowledgeMixin:
    @property
    def kb(self):
        return self.ctx.assist.knowledge

    async def current(self, article_id: str) -> dict:
        await self.kb.refresh(force=True)
        head = self.kb.heads.get(article_id)
        if head is None or head.get("deleted"):
            raise not_found(f"知识条目 {article_id} 不存在", code="article_not_found")
        return head

    async def store_version(self, article: dict, version: int, note: str, deleted: bool = False) -> dict:
        doc = {**article, "version": version, "deleted": deleted, "at": self.ctx.clock.now(),
               "by": self.user.username, "note": note}
        if not await self.ctx.storage.knowledge.put(doc):
            raise conflict(f"知识条目 {article['id']} 已被他人修改（第 {version} 版已存在），请刷新后重试",
                           code="version_conflict")
        await self.kb.refresh(force=True)
        return public(doc)


class KnowledgeSearchHandler(KnowledgeMixin, BaseHandler):
    access = {"GET": ("knowledge", "read")}

    async def get(self):
        self.require_user()
        q = self.get_query_argument("q", "").strip()
        if len(q) > 500:
            raise bad_request("q 过长，最多 500 字", code="too_long", field="q")
        limit = v.query_int(self.get_query_argument("limit", None), "limit", default=10, low=1, high=100)
        await self.kb.refresh()
        today = self.ctx.clock.now().astimezone(self.ctx.tz).date()
        if q:
            items = self.kb.search(q, limit, on=today)
        else:
            # The newest change first (what an admin just wrote is on top), then by id.
            heads = sorted((d for d in self.kb.heads.values() if not d.get("deleted")), key=lambda d: d["id"])
            heads.sort(key=lambda d: d["at"], reverse=True)
            items = [{**public(d), "updated_at": iso(d["at"], self.ctx.tz)} for d in heads]
        self.send({"items": items})


class KnowledgeArticleHandler(KnowledgeMixin, BaseHandler):
    access = {"GET": ("knowledge", "read")}

    async def get(self, article_id: str):
        self.require_user()
        self.send(public(await self.current(article_id)))


class KnowledgeFlagHandler(KnowledgeMixin, BaseHandler):
    access = {"POST": ("knowledge", "flag")}

    async def post(self, article_id: str):
        self.require_user()
        await self.current(article_id)
        note = v.text(self.json_body(), "note", required=True, max_len=500, allow_empty=False)
        await self.ctx.storage.knowledge.flag(article_id, self.user.username, note, self.ctx.clock.now())
        self.send({"article": article_id, "flagged": True}, 201)


class AdminKnowledgeHandler(KnowledgeMixin, BaseHandler):
    access = {"POST": ("knowledge", "manage")}

    async def post(self):
        self.require_user()
        body = self.json_body()
        try:
            article = checked_article({k: val for k, val in body.items() if k != "note"}, self.ctx.city)
        except CityPackageError as exc:
            raise _invalid(exc) from None
        await self.kb.refresh(force=True)
        head = self.kb.heads.get(article["id"])
        if head is not None and not head.get("deleted"):
            raise conflict(f"知识条目 {article['id']} 已存在，请用 PUT 修改", code="article_exists")
        version = head["version"] + 1 if head else 1
        self.send(await self.store_version(article, version, str(body.get("note") or "新增")), 201)


class AdminKnowledgeArticleHandler(KnowledgeMixin, BaseHandler):
    access = {"PUT": ("knowledge", "manage"), "DELETE": ("knowledge", "manage")}

    async def put(self, article_id: str):
        self.require_user()
        body = self.json_body()
        version = body.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise bad_request("需要 version（当前版本号，整数）", code="missing_parameter", field="version")
        head = await self.current(article_id)
        if version != head["version"]:
            raise conflict(f"知识条目 {article_id} 已更新到第 {head['version']} 版，请刷新后重试", code="version_conflict")
        fields = {k: val for k, val in body.items() if k not in ("version", "note")}
        if fields.get("id", article_id) != article_id:
            raise bad_request("不能修改条目 id", code="invalid_value", field="id")
        try:
            article = checked_article({**fields, "id": article_id}, self.ctx.city)
        except CityPackageError as exc:
            raise _invalid(exc) from None
        self.send(await self.store_version(article, version + 1, str(body.get("note") or "修改")))

    async def delete(self, article_id: str):
        self.require_user()
        head = await self.current(article_id)
        version = v.query_int(self.get_query_argument("version", None), "version", default=head["version"], low=1,
                              high=10**9)
        if version != head["version"]:
            raise conflict(f"知识条目 {article_id} 已更新到第 {head['version']} 版，请刷新后重试", code="version_conflict")
        await self.store_version(public(head), version + 1, "删除", deleted=True)
        self.set_status(204)
        self.finish()


class AdminKnowledgeHistoryHandler(KnowledgeMixin, BaseHandler):
    access = {"GET": ("knowledge", "manage")}

    async def get(self, article_id: str):
        self.require_user()
        versions = await self.ctx.storage.knowledge.history(article_id)
        if not versions:
            raise not_found(f"知识条目 {article_id} 不存在", code="article_not_found")
        self.send({"items": [{**public(d), "deleted": bool(d.get("deleted")), "at": iso(d.get("at"), self.ctx.tz), "by": d.get("by"),
                              "note": d.get("note")} for d in versions]})


class AdminKnowledgeReviewHandler(KnowledgeMixin, BaseHandler):
    access = {"GET": ("knowledge", "manage")}

    async def get(self):
        self.require_user()
        await self.kb.refresh(force=True)
        usage = await self.ctx.storage.knowledge.usage()
        flags: dict[str, list] = {}
        for f in await self.ctx.storage.knowledge.flags():
            flags.setdefault(f["article"], []).append(f)
        today = self.ctx.clock.now().astimezone(self.ctx.tz).date()
        items = []
        for head in self.kb.heads.values():
            if head.get("deleted"):
                continue
            article = public(head)
            reasons = []
            if article.get("valid_to") and not valid_on(article, today) and article["valid_to"] < today.isoformat():
                reasons.append("expired")
            if not usage.get(article["id"]):
                reasons.append("never_used")
            # A mark is about the version the operator read: a newer version (the admin's answer
            # to it) settles it, so only the marks made since the current version keep it here.
            marks = [{"by": f["by"], "note": f["note"], "at": iso(f["at"], self.ctx.tz)}
                     for f in flags.get(article["id"], []) if f["at"] >= head["at"]]
            if marks:
                reasons.append("marked_wrong")
            if reasons:
                items.append({**article, "reasons": reasons, "uses": usage.get(article["id"], 0), "flags": marks})
        order = {"marked_wrong": 0, "expired": 1, "never_used": 2}
        items.sort(key=lambda a: (min(order[r] for r in a["reasons"]), a["id"]))
        self.send({"items": items, "uses": usage})


routes = [
    (r"/api/knowledge", KnowledgeSearchHandler),
    (rf"/api/knowledge/{ARTICLE_ID}", KnowledgeArticleHandler),
    (rf"/api/knowledge/{ARTICLE_ID}/flag", KnowledgeFlagHandler),
    (r"/api/admin/knowledge", AdminKnowledgeHandler),
    (r"/api/admin/knowledge/review", AdminKnowledgeReviewHandler),
    (rf"/api/admin/knowledge/{ARTICLE_ID}", AdminKnowledgeArticleHandler),
    (rf"/api/admin/knowledge/{ARTICLE_ID}/history", AdminKnowledgeHistoryHandler),
]

"""The knowledge base as one kind of the city configuration (SPEC §9: `GET/PUT
/api/admin/config/knowledge`): every article at once, for an administrator who imports or
exports the whole base (the package's knowledge.yaml is the same list).

The articles keep their own versions (dispatch/assist/knowledge.py: each article numbered 1, 2,
… and written insert-once), so this kind is a view over them rather than part of the numbered
city configuration: the knowledge base changes every day while rules and departments change
rarely, and an operator's article edit must not make an administrator's rule edit stale.

* `version` is the number of article versions stored so far (the sum of the articles' current
  version numbers: every write adds one). An editor who saw version V publishes only while the
  base is still at V; otherwise 409 `stale_version`.
* Publishing checks every article with the city-package loader and the API's limits (422
  `invalid_config` listing every problem, nothing written), then writes one new version of each
  article that is added, changed or removed (a removal is a deleted version), in id order. Two
  editors publishing at once cannot overwrite each other: the second to write a given article
  version gets 409, and what it wrote before stays as that article's newest version.
"""

from __future__ import annotations

from dispatch.admin.diff import diff, same_items
from dispatch.admin.versions import invalid, stale
from dispatch.assist.knowledge import FIELDS, article_problems, public
from dispatch.errors import conflict, unprocessable

KIND = "knowledge"


def _item(article: dict) -> dict:
    """An article as knowledge.yaml writes it: its fields, without the empty ones."""
    return {k: article[k] for k in FIELDS if article.get(k) not in (None, [], "")}


def package_items(heads) -> list[dict]:
    """The articles of the stored heads as knowledge.yaml lists them (deleted ones left out)."""
    live = [public(d) for d in heads if not d.get("deleted")]
    return [_item(a) for a in sorted(live, key=lambda a: a["id"])]


def current(kb) -> dict:
    """{version, items} of the base as this process last read it (refresh first)."""
    return {"version": version(kb), "items": package_items(kb.heads.values())}


def version(kb) -> int:
    return sum(int(d.get("version") or 0) for d in kb.heads.values())


async def get(kb) -> dict:
    await kb.refresh(force=True)
    return current(kb)


async def publish(kb, repository, clock, city, user, seen: int, proposed, note: str) -> dict:
    """Replace the base by `proposed` over version `seen`; the new version as the city
    configuration's publishing returns it: {version, at, by, note, kinds, diff}."""
    await kb.refresh(force=True)
    before = current(kb)
    if seen != before["version"]:
        raise stale(seen, before["version"])
    articles, problems = article_problems(proposed, city)
    if problems:
        raise invalid(problems)
    wanted = [_item(a) for a in articles]
    if same_items(before["items"], sorted(wanted, key=lambda a: a["id"])):
        raise unprocessable("与当前版本相同，没有需要发布的更改", code="no_change")
    changes = diff(KIND, before["items"], wanted)
    at = clock.now()
    new = {a["id"]: a for a in articles}
    for article_id in sorted({*new, *(a["id"] for a in before["items"])}):
        head = kb.heads.get(article_id)
        removed = article_id not in new
        if head is not None and not head.get("deleted") and not removed \
                and same_items(_item(public(head)), _item(new[article_id])):
            continue
        if removed and (head is None or head.get("deleted")):
            continue
        number = int(head["version"]) + 1 if head else 1
        article = public(head) if removed else new[article_id]
        doc = {**{k: article.get(k) for k in FIELDS}, "version": number, "deleted": removed, "at": at,
               "by": user.username, "note": note or "整体发布"}
        if not await repository.put(doc):
            await kb.refresh(force=True)
            raise conflict(f"知识条目 {article_id} 已被他人修改（第 {number} 版已存在），请刷新后重试",
                           code="stale_version", current=version(kb))
    await kb.refresh(force=True)
    return {"version": version(kb), "at": at.isoformat(timespec="seconds"), "by": user.username,
            "note": note or "", "kinds": [KIND], "diff": {KIND: changes}, "rollback_of": None}

"""The operator-assist repositories (`store.models`, `store.knowledge`) hold one contract on
both engines (the embedded one and a MongoDB-protocol server: FerretDB in CI), like
tests/test_store_contract.py does for the rest of the store."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone



T0 = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)


def model(version: int, examples: int = 500) -> dict:
    return {"name": "category", "version": version, "examples": examples, "trained_at": T0 + timedelta(minutes=version),
            "meta": {"categories": 3}, "blob": bytes(range(256)) * (version + 1)}


async def test_a_model_version_is_stored_once_and_the_newest_is_read_back(store):
    assert await store.models.latest("category") is None
    assert await store.models.save(model(1))
    assert await store.models.save(model(2))
    assert not await store.models.save(model(2, examples=9))  # taken: the first writer keeps it
    latest = await store.models.latest("category")
    assert (latest["version"], latest["examples"], latest["blob"]) == (2, 500, bytes(range(256)) * 3)
    head = await store.models.latest("category", with_blob=False)
    assert (head["version"], "blob" in head, head["trained_at"]) == (2, False, T0 + timedelta(minutes=2))


async def test_two_processes_saving_the_same_version_store_one(store):
    results = await asyncio.gather(*(store.models.save(model(5, examples=n)) for n in (100, 200, 300)))
    assert sorted(results) == [False, False, True]


async def test_old_model_versions_are_pruned(store):
    for v in range(1, 6):
        await store.models.save(model(v))
    assert await store.models.prune("category", keep=2) == 3
    assert (await store.models.latest("category"))["version"] == 5
    await store.models.prune("category", keep=1)
    assert (await store.models.latest("category", with_blob=False))["version"] == 5


async def test_each_process_reports_the_model_version_it_runs(store):
    await store.models.report_live("category", "p1", 1, T0)
    await store.models.report_live("category", "p2", 1, T0)
    await store.models.report_live("category", "p1", 2, T0 + timedelta(seconds=5))
    live = await store.models.live("category")
    assert [(d["process"], d["version"], d["at"]) for d in live] == [("p1", 2, T0 + timedelta(seconds=5)),
                                                                    ("p2", 1, T0)]


def article(aid: str, version: int, **fields) -> dict:
    return {"id": aid, "version": version, "title": f"{aid} 标题 v{version}", "questions": ["怎么办"],
            "answer": "这样办", "tags": [], "deleted": False, "at": T0, "by": "admin", **fields}


async def test_knowledge_versions_heads_and_history(store):
    assert await store.knowledge.heads() == []
    r0 = await store.knowledge.revision()
    assert await store.knowledge.put(article("KB-2", 1))
    assert await store.knowledge.put(article("KB-1", 1))
    assert await store.knowledge.put(article("KB-1", 2))
    assert not await store.knowledge.put(article("KB-1", 2, title="慢了一步"))
    assert await store.knowledge.put(article("KB-2", 2, deleted=True))
    heads = await store.knowledge.heads()
    assert [(d["id"], d["version"], d["deleted"], d["title"]) for d in heads] == [
        ("KB-1", 2, False, "KB-1 标题 v2"), ("KB-2", 2, True, "KB-2 标题 v2")]
    assert [d["version"] for d in await store.knowledge.history("KB-1")] == [1, 2]
    assert await store.knowledge.revision() == r0 + 4


async def test_an_article_answering_a_case_is_counted_once_per_case(store):
    assert await store.knowledge.record_use("KB-1", "case-a", T0)
    assert not await store.knowledge.record_use("KB-1", "case-a", T0)  # a retried answer
    assert await store.knowledge.record_use("KB-1", "case-b", T0)
    assert await store.knowledge.record_use("KB-2", "case-c", T0)
    assert await store.knowledge.usage() == {"KB-1": 2, "KB-2": 1}


async def test_operators_marks_are_kept_and_move_the_revision(store):
    r0 = await store.knowledge.revision()
    await store.knowledge.flag("KB-1", "op1", "电话号码已经变了", T0 + timedelta(minutes=1))
    await store.knowledge.flag("KB-3", "op2", "政策过期", T0)
    flags = await store.knowledge.flags()
    assert [(f["article"], f["by"], f["note"]) for f in flags] == [("KB-3", "op2", "政策过期"),
                                                                   ("KB-1", "op1", "电话号码已经变了")]
    assert await store.knowledge.revision() == r0 + 2


def ticket(n: int, phone: str | None, minutes: int, scope_path=("C", "D1", "S1")) -> dict:
    from dispatch.store import new_case_id

    return {"_id": new_case_id(), "number": f"20261123-{n:06d}", "source": "hotline", "status": "reported",
            "category": {"code": "H-noise", "name": "噪声扰民"}, "caller": {"name": "张三", "phone": phone},
            "description": f"第{n}次来电", "scope_path": list(scope_path), "departments_seen": [], "reporters": ["op1"],
            "created_by": "op1", "client_id": None, "created_at": T0 + timedelta(minutes=minutes),
            "updated_at": T0 + timedelta(minutes=minutes), "version": 1, "history": [],
            "flags": {"overdue": False}, "deadlines": {}}


async def test_a_callers_cases_are_found_by_number_newest_first_in_scope(store):
    from dispatch.store.query import EVERYTHING, Scope

    docs = [ticket(1, "13812345678", 1), ticket(2, "138-1234-5678", 2), ticket(3, "13900000000", 3),
            ticket(4, "13812345678", 4, scope_path=("C", "D2")), ticket(5, "13812345678", -600), ticket(6, None, 5)]
    for d in docs:
        await store.cases.insert(d)
    until = T0 + timedelta(minutes=60)
    for phone in ("13812345678", "138-1234-5678", "+86 138 1234 5678"):  # any written form finds them all
        found = await store.cases.by_caller(phone, T0, until, EVERYTHING, 10)
        assert [d["number"] for d in found] == ["20261123-000004", "20261123-000002", "20261123-000001"]
        assert all("qk" not in d for d in found)
    in_d1 = await store.cases.by_caller("13812345678", T0, until, Scope(within="D1"), 10)
    assert [d["number"] for d in in_d1] == ["20261123-000002", "20261123-000001"]
    assert [d["number"] for d in await store.cases.by_caller("13812345678", T0, until, EVERYTHING, 1)] == ["20261123-000004"]
    early = await store.cases.by_caller("13812345678", T0, T0 + timedelta(minutes=3), EVERYTHING, 10)
    assert [d["number"] for d in early] == ["20261123-000002", "20261123-000001"]  # created by `until`
    # Across months: a call at the end of last month is found from this month's walk.
    await store.cases.insert(ticket(7, "13812345678", -60 * 24 * 30))
    older = await store.cases.by_caller("13812345678", T0 - timedelta(days=40), until, EVERYTHING, 10)
    assert [d["number"] for d in older] == ["20261123-000004", "20261123-000002", "20261123-000001",
                                            "20261123-000005", "20261123-000007"]


async def test_cases_filed_under_older_query_keys_are_filed_again_at_start():
    """A database written before the caller and 当前超期在办 facets existed (query keys version
    1): the next start files its cases again, so the caller's history and the overdue list
    find them; the version is recorded, so later starts do not."""
    from dispatch.store import buckets
    from dispatch.store.query import EVERYTHING
    from engines import open_test_store

    store = await open_test_store("server")
    try:
        doc = {**ticket(1, "13812345678", 1), "status": "accepted", "flags": {"overdue": True}}
        await store.cases.insert(doc)
        old_keys = [k for k in buckets.query_keys(doc) if not k.startswith(("tel=", "open_overdue@", "overdue_by@"))]
        await store.cases.cases.update_one({"_id": doc["_id"]}, {"$set": {"qk": old_keys}})
        await store.cases.meta.replace_one({"_id": "query_fields"}, {"_id": "query_fields", "at": T0}, upsert=True)
        assert await store.cases.by_caller("13812345678", T0, T0 + timedelta(hours=1), EVERYTHING, 10) == []
        await store.cases.ensure_indexes()  # what every start runs
        found = await store.cases.by_caller("13812345678", T0, T0 + timedelta(hours=1), EVERYTHING, 10)
        assert [d["_id"] for d in found] == [doc["_id"]]
        assert [d["_id"] for d in await store.cases.open_overdue(EVERYTHING, None, ("_id",))] == [doc["_id"]]
        assert [d["_id"] for d in await store.cases.open_overdue(EVERYTHING, None, ("_id",), first=1)] == [doc["_id"]]
        assert (await store.cases.meta.find_one({"_id": "query_fields"}))["version"] == buckets.QUERY_KEYS_VERSION
    finally:
        await store.close_for_test()

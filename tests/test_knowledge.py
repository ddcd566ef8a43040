"""The knowledge base (知识库): knowledge.yaml and category keywords/examples in the city package
(a broken article is a clear loader error naming it), search, admin edits kept as versions,
usage counted from the `answer` action, and the review list."""

from __future__ import annotations

import pytest
from small_city import small_city_data, write_small_city

from dispatch.assist.knowledge import KnowledgeIndex
from geo.errors import CityPackageError
from geo.loader import load_city
from support import DEMO_CITY, login_as

GOOD = {"id": "KB-1", "title": "垃圾分类怎么分", "questions": ["垃圾怎么分类", "电池扔哪里"],
        "answer": "分四类：可回收物、有害垃圾、易腐垃圾、其他垃圾。", "category": "0101", "department": "city-um",
        "valid_from": "2026-01-01", "valid_to": "2026-12-31", "tags": ["垃圾分类"]}


def load_with_knowledge(tmp_path, articles, categories=None):
    data = small_city_data()
    data["knowledge.yaml"] = articles
    if categories:
        categories(data["categories.yaml"])
    return load_city(write_small_city(tmp_path, data))


def test_articles_and_category_words_load(tmp_path):
    def words(categories):
        categories[0]["keywords"] = ["垃圾", "乱扔"]
        categories[0]["examples"] = ["楼下垃圾堆了三天没人收"]
    city = load_with_knowledge(tmp_path, [GOOD], words)
    (article,) = city.knowledge
    assert (article.id, article.questions, article.valid_to.isoformat()) == ("KB-1", ("垃圾怎么分类", "电池扔哪里"),
                                                                              "2026-12-31")
    assert city.categories["0101"].keywords == ("垃圾", "乱扔")
    assert city.categories["0101"].examples == ("楼下垃圾堆了三天没人收",)


@pytest.mark.parametrize("change, fragments", [
    ({"questions": "垃圾怎么分类"}, ["article #1 (id KB-2)", "questions（问法）须为非空列表，列出来电人的各种问法"]),
    ({"answer": ""}, ["article #1 (id KB-2)", "缺少 'answer'（须为非空字符串）"]),
    ({"category": "9999"}, ["article #1 (id KB-2)", "类别 9999 不存在"]),
    ({"department": "nobody"}, ["article #1 (id KB-2)", "部门 nobody 不存在"]),
    ({"valid_to": "2026-13-40"}, ["article #1 (id KB-2)", "valid_to 须为日期（YYYY-MM-DD），实际为 '2026-13-40'"]),
    ({"valid_from": "2027-01-01"}, ["article #1 (id KB-2)", "valid_to（失效日期）早于 valid_from（生效日期）"]),
    ({"answr": "拼错的字段"}, ["article #1 (id KB-2)", "未知的字段 answr（允许：id、title、questions"]),
    ({"id": "KB-1"}, ["article #1 (id KB-1)", "id KB-1 重复"]),
])
def test_a_broken_article_is_a_loader_error_naming_it(tmp_path, change, fragments):
    broken = {**GOOD, "id": "KB-2", **change}
    with pytest.raises(CityPackageError) as info:
        load_with_knowledge(tmp_path, [GOOD, broken])
    message = str(info.value)
    assert message.startswith("knowledge.yaml: ")
    for fragment in fragments:
        assert fragment in message, message


def test_every_broken_article_is_listed_at_once(tmp_path):
    with pytest.raises(CityPackageError) as info:
        load_with_knowledge(tmp_path, [{**GOOD, "id": "A", "title": ""}, {**GOOD, "id": "B", "questions": []}])
    assert len(info.value.errors) == 2 and "(id A)" in info.value.errors[0] and "(id B)" in info.value.errors[1]


def test_category_keywords_must_be_a_list_of_words(tmp_path):
    def bad(categories):
        categories[0]["keywords"] = "垃圾"
    with pytest.raises(CityPackageError) as info:
        load_with_knowledge(tmp_path, [], bad)
    assert "category #0 (id 0101): keywords 须为非空字符串的列表" in str(info.value)


def test_the_demo_city_ships_articles_and_words_for_every_category():
    city = load_city(str(DEMO_CITY))
    assert len(city.knowledge) >= 40
    assert all(c.keywords and len(c.examples) >= 3 for c in city.categories.values())
    everyday = {w for c in city.categories.values() for w in c.keywords}
    assert {"违停", "乱停车", "共享单车", "摆摊", "路灯不亮", "坑"} <= everyday


def test_search_ranks_by_the_callers_words_and_leaves_out_lapsed_articles():
    import datetime

    articles = [
        {"id": "a", "title": "公积金提取", "questions": ["租房怎么提公积金"], "answer": "在浙里办办理", "tags": []},
        {"id": "b", "title": "社保补缴", "questions": ["社保断了怎么补"], "answer": "单位申请补缴", "tags": []},
        {"id": "c", "title": "旧社保政策", "questions": ["社保断了怎么补"], "answer": "已废止", "tags": [],
         "valid_to": "2020-01-01"},
    ]
    index = KnowledgeIndex(articles)
    assert [a["id"] for a in index.search("我的社保断了三个月能补吗", 3, on=datetime.date(2026, 1, 1))] == ["b"]
    assert index.search("公积金", 3)[0]["id"] == "a"
    assert index.search("   ", 3) == [] and index.search("火星移民", 3) == []


async def test_admins_edit_articles_as_versions(demo):
    admin = await login_as(demo, "admin")
    operator = await login_as(demo, "operator")
    article = {"id": "KB-NEW-1", "title": "犬只登记", "questions": ["养狗要办证吗", "狗证在哪里办"],
               "answer": "在小区所在地的犬类登记点办理。", "tags": ["养犬"]}
    status, created = await admin.post("/api/admin/knowledge", article)
    assert status == 201 and created["version"] == 1, created
    status, again = await admin.post("/api/admin/knowledge", article)
    assert status == 409, again
    status, denied = await operator.post("/api/admin/knowledge", {**article, "id": "KB-NEW-2"})
    assert status == 403, denied
    status, found = await operator.get("/api/knowledge?q=" + "狗证怎么办")
    assert found["items"][0]["id"] == "KB-NEW-1"
    changed = {**article, "answer": "在区农业农村局犬类登记点办理，可网上预约。", "version": 1}
    status, v2 = await admin.request("PUT", "/api/admin/knowledge/KB-NEW-1", changed)
    assert status == 200 and v2["version"] == 2, v2
    status, stale = await admin.request("PUT", "/api/admin/knowledge/KB-NEW-1", changed)
    assert status == 409 and stale["error"]["code"] == "version_conflict"
    status, broken = await admin.request("PUT", "/api/admin/knowledge/KB-NEW-1",
                                         {**changed, "version": 2, "questions": [], "category": "NOPE"})
    assert status == 422, broken
    assert "questions" in broken["error"]["message"] and "类别 NOPE 不存在" in broken["error"]["message"]
    status, _ = await admin.request("DELETE", "/api/admin/knowledge/KB-NEW-1?version=2")
    assert status == 204
    status, gone = await operator.get("/api/knowledge/KB-NEW-1")
    assert status == 404, gone
    status, history = await admin.get("/api/admin/knowledge/KB-NEW-1/history")
    assert [(h["version"], h["deleted"]) for h in history["items"]] == [(1, False), (2, False), (3, True)]
    assert history["items"][1]["answer"].startswith("在区农业农村局")


async def test_an_answer_names_its_article_which_is_counted_and_reviewed(demo):
    admin = await login_as(demo, "admin")
    operator = await login_as(demo, "operator")
    status, ticket = await operator.post("/api/tickets", {
        "channel": "12345", "type": "consultation", "content": "想问一下垃圾怎么分类", "caller": {"phone": "13800000000"}})
    assert status == 201, ticket
    status, answered = await operator.post(f"/api/cases/{ticket['id']}/actions/answer", {
        "answer": "分四类……", "article": "KB-LJ-001", "version": ticket["version"]})
    assert status == 200, answered
    assert answered["answer"]["article"] == "KB-LJ-001"

    async def counted():
        _, review = await admin.get("/api/admin/knowledge/review")
        return review if review["uses"].get("KB-LJ-001") == 1 else None

    from test_assist_api import poll
    review = await poll(counted, 10)
    reasons = {a["id"]: a["reasons"] for a in review["items"]}
    assert "KB-LJ-001" not in reasons  # used, current, not marked
    assert reasons["KB-OLD-001"] == ["expired", "never_used"]
    status, _ = await operator.post("/api/knowledge/KB-LJ-001/flag", {"note": "投放时间已调整"})
    assert status == 201
    _, review = await admin.get("/api/admin/knowledge/review")
    flagged = next(a for a in review["items"] if a["id"] == "KB-LJ-001")
    assert flagged["reasons"] == ["marked_wrong"] and flagged["flags"][0]["note"] == "投放时间已调整"
    assert review["items"][0]["id"] == "KB-LJ-001"  # marked wrong comes first


async def test_an_article_without_tags_may_send_an_empty_list(demo):
    # What the admin page's form sends when its tags field is empty; the API's schema allows it.
    admin = await login_as(demo, "admin")
    article = {"id": "KB-NOTAGS-1", "title": "没有标签的条目", "questions": ["怎么办"], "answer": "这样办。", "tags": []}
    status, created = await admin.post("/api/admin/knowledge", article)
    assert status == 201 and created["tags"] == [], created
    status, changed = await admin.request("PUT", "/api/admin/knowledge/KB-NOTAGS-1", {**article, "version": 1})
    assert status == 200 and changed["version"] == 2, changed


async def test_the_list_without_a_query_puts_the_newest_change_first(demo):
    admin = await login_as(demo, "admin")
    _, listed = await admin.get("/api/knowledge")
    oldest = listed["items"][-1]
    demo.ctx.clock.advance(minutes=5)
    status, changed = await admin.request("PUT", f"/api/admin/knowledge/{oldest['id']}", {
        **{k: oldest[k] for k in ("title", "questions", "answer", "tags")}, "version": oldest["version"]})
    assert status == 200, changed
    _, listed = await admin.get("/api/knowledge")
    assert listed["items"][0]["id"] == oldest["id"] and listed["items"][0]["version"] == oldest["version"] + 1
    assert listed["items"][0]["updated_at"] > listed["items"][1]["updated_at"]


async def test_a_new_version_settles_the_marks_made_before_it(demo):
    admin = await login_as(demo, "admin")
    operator = await login_as(demo, "operator")
    status, _ = await operator.post("/api/knowledge/KB-LJ-001/flag", {"note": "投放时间已调整"})
    assert status == 201

    async def review_of(article_id):
        _, review = await admin.get("/api/admin/knowledge/review")
        return next(a for a in review["items"] if a["id"] == article_id)

    assert (await review_of("KB-LJ-001"))["reasons"] == ["never_used", "marked_wrong"]
    demo.ctx.clock.advance(minutes=5)
    _, seen = await admin.get("/api/knowledge/KB-LJ-001")
    status, _ = await admin.request("PUT", "/api/admin/knowledge/KB-LJ-001", {
        **{k: seen[k] for k in ("title", "questions", "tags")}, "answer": seen["answer"] + "（已按新时间调整）",
        "version": seen["version"]})
    assert status == 200
    settled = await review_of("KB-LJ-001")
    assert settled["reasons"] == ["never_used"] and settled["flags"] == []
    demo.ctx.clock.advance(minutes=5)
    status, _ = await operator.post("/api/knowledge/KB-LJ-001/flag", {"note": "还是不对"})
    assert status == 201
    again = await review_of("KB-LJ-001")
    assert again["reasons"] == ["never_used", "marked_wrong"] and [f["note"] for f in again["flags"]] == ["还是不对"]


async def test_an_article_beyond_the_documented_limits_is_refused_with_every_problem(demo):
    # dispatch/openapi.py promises a title of at most 200 characters, an answer of 4000, at most
    # 20 tags: the server holds to it, listing these beside the loader's own problems.
    admin = await login_as(demo, "admin")
    article = {"id": "KB-LONG-1", "title": "长" * 201, "questions": ["怎么办"], "answer": "答" * 4001,
               "tags": [f"标签{i}" for i in range(21)], "category": "NOPE"}
    status, refused = await admin.post("/api/admin/knowledge", article)
    assert status == 422, refused
    assert refused["error"]["problems"] == ["类别 NOPE 不存在", "title 超过 200 个字符",
                                            "answer 超过 4000 个字符", "tags 超过 20 项"]
    status, _ = await admin.get("/api/knowledge/KB-LONG-1")
    assert status == 404
    status, stored = await admin.post("/api/admin/knowledge", {**article, "title": "长" * 200, "answer": "答" * 4000,
                                                               "tags": article["tags"][:20], "category": None})
    assert status == 201 and len(stored["title"]) == 200, stored

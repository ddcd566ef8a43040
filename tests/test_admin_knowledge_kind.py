"""The knowledge base as a kind of the city configuration (SPEC §9: `GET/PUT
/api/admin/config/knowledge`): the whole base read and published at once, checked like
knowledge.yaml (422 listing every problem, nothing written), 409 on a stale version, the
articles' own versions kept, search following the publication, every admin may keep it."""

from __future__ import annotations

import copy

from support import login_as

KIND = "/api/admin/config/knowledge"
DOG = {"id": "KB-DOG-1", "title": "犬只登记", "questions": ["养狗要办证吗", "狗证在哪里办"],
       "answer": "在小区所在地的犬类登记点办理。", "tags": ["养犬"]}


async def current(admin) -> dict:
    status, body = await admin.get(KIND)
    assert status == 200, body
    return body


async def publish(admin, version, items, note="整体更新"):
    return await admin.request("PUT", KIND, {"version": version, "items": items, "note": note})


async def test_the_base_is_read_whole_and_published_as_article_versions(demo):
    admin = await login_as(demo, "admin")
    operator = await login_as(demo, "operator")
    before = await current(admin)
    shipped = {a.id for a in demo.ctx.city.knowledge}
    assert {a["id"] for a in before["items"]} == shipped and before["editable"] is True
    assert before["version"] == len(shipped)  # each article at its first version

    items = copy.deepcopy(before["items"])
    changed, removed = items[0], items[1]
    changed["answer"] = "新的答复口径：请致电所在街道。"
    items.remove(removed)
    items.append(DOG)
    status, published = await publish(admin, before["version"], items)
    assert status == 201, published
    assert published["kinds"] == ["knowledge"] and published["by"] == "admin"
    assert published["diff"]["knowledge"]["added"] == ["KB-DOG-1"]
    assert published["diff"]["knowledge"]["removed"] == [removed["id"]]
    assert published["diff"]["knowledge"]["changed"] == [changed["id"]]
    assert published["version"] == before["version"] + 3  # one new article version each

    after = await current(admin)
    assert after["version"] == published["version"]
    assert sorted(a["id"] for a in after["items"]) == sorted(a["id"] for a in items)
    status, found = await operator.get("/api/knowledge?q=" + "狗证怎么办")
    assert status == 200 and found["items"][0]["id"] == "KB-DOG-1"
    status, gone = await operator.get(f"/api/knowledge/{removed['id']}")
    assert status == 404, gone
    status, history = await admin.get(f"/api/admin/knowledge/{changed['id']}/history")
    assert [(h["version"], h["by"], h["note"]) for h in history["items"]][-1] == (2, "admin", "整体更新")
    assert history["items"][-1]["answer"] == "新的答复口径：请致电所在街道。"


async def test_a_stale_version_gets_409_and_the_other_edit_stays(demo):
    admin = await login_as(demo, "admin")
    seen = await current(admin)
    # Meanwhile another admin edits one article through the article API.
    first = seen["items"][0]
    status, edited = await admin.request("PUT", f"/api/admin/knowledge/{first['id']}",
                                         {**first, "answer": "另一位管理员的修改。", "version": 1})
    assert status == 200, edited
    status, refused = await publish(admin, seen["version"], [*seen["items"], DOG])
    assert status == 409 and refused["error"]["code"] == "stale_version", refused
    assert refused["error"]["current"] == seen["version"] + 1
    now = await current(admin)
    assert "KB-DOG-1" not in {a["id"] for a in now["items"]}
    assert next(a for a in now["items"] if a["id"] == first["id"])["answer"] == "另一位管理员的修改。"


async def test_every_problem_is_listed_and_nothing_is_written(demo):
    admin = await login_as(demo, "admin")
    seen = await current(admin)
    broken = [*seen["items"],
              {**DOG, "category": "NOPE"},
              {**DOG, "id": "KB-DOG-2", "questions": [], "title": "长" * 201},
              {**DOG, "id": seen["items"][0]["id"]}]
    status, refused = await publish(admin, seen["version"], broken)
    assert status == 422 and refused["error"]["code"] == "invalid_config", refused
    problems = refused["error"]["problems"]
    assert {p["file"] for p in problems} == {"knowledge.yaml"}
    where = [p["item"] for p in problems]
    n = len(seen["items"])
    assert f"article #{n} (id KB-DOG-1)" in where  # the unknown category
    assert where.count(f"article #{n + 1} (id KB-DOG-2)") == 2  # no questions, and the title's length
    assert f"article #{n + 2} (id {seen['items'][0]['id']})" in where  # a second article with that id
    assert await current(admin) == seen
    status, same = await publish(admin, seen["version"], seen["items"])
    assert status == 422 and same["error"]["code"] == "no_change", same
    status, bad = await publish(admin, seen["version"], {"not": "a list"})
    assert status == 422 and bad["error"]["code"] == "invalid_config", bad


async def test_only_admins_keep_the_base_and_every_publication_is_audited(demo):
    admin = await login_as(demo, "admin")
    operator = await login_as(demo, "operator")
    status, denied = await operator.get(KIND)
    assert status == 403, denied
    seen = await current(admin)
    status, denied = await operator.request("PUT", KIND, {"version": seen["version"], "items": seen["items"]})
    assert status == 403, denied
    status, published = await publish(admin, seen["version"], [*seen["items"], DOG], note="新增养犬条目")
    assert status == 201, published
    status, audit = await admin.get("/api/admin/audit?kind=admin_audit")
    assert status == 200
    record = audit["items"][0]
    assert (record["action"], record["target"], record["version"], record["note"]) == \
        ("publish_config", "knowledge", published["version"], "新增养犬条目")

"""The history hash chain (SPEC §4 audit) and GET /api/audit/verify.

Tampering is done behind the API's back, straight in the store, the way a database user with
write access could: the verify endpoint must name the case and the first entry that no longer
follows from the ones before.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

import dispatch.handlers.audit as audit_handler
from dispatch.store.query import Change
from dispatch.workflow.audit import verify_chain
from test_workflow import B_POINT, World, city_dir, world  # noqa: F401 - fixtures

pytestmark = pytest.mark.asyncio


async def closed_case(world: World) -> dict:
    case = await world.accepted_case()
    cid = case["id"]
    await world.ok("a1so", cid, "feedback", {"result": "已处理"})
    await world.ok("gw1", cid, "check", {"passed": True})
    return await world.ok("disp-a", cid, "close")


async def tamper(world: World, case_id: str, sets: dict) -> None:
    """Rewrite stored fields behind the workflow's back, as someone with database access could."""
    case = await world.ctx.cases.get(case_id)
    await world.ctx.cases.update(case_id, case["version"], Change(sets=sets))


async def verify(world: World, username: str, case_id: str | None = None):
    path = "/api/audit/verify" + (f"?case={case_id}" if case_id else "")
    return await world.as_(username).get(path)


async def test_an_untouched_history_verifies(world):
    case = await closed_case(world)
    doc = await world.stored(case["id"])
    assert len(doc["history"]) == 7 and verify_chain(doc["history"]) is None
    status, body = await verify(world, "disp-a", case["id"])
    assert status == 200 and body == {"checked": 1, "ok": True, "broken": []}
    status, body = await verify(world, "admin")
    assert status == 200 and body["ok"] is True and body["checked"] == 1


async def test_an_edited_note_is_detected(world):
    case = await closed_case(world)
    clean = await world.report()
    await tamper(world, case["id"], {"history.3.note": "其实没签收"})
    status, body = await verify(world, "disp-a", case["id"])
    assert status == 200 and body["ok"] is False
    assert body["broken"] == [{"id": case["id"], "number": case["number"], "index": 3, "entries": 7}]
    status, body = await verify(world, "admin")
    assert body["checked"] == 2 and [b["id"] for b in body["broken"]] == [case["id"]]
    status, body = await verify(world, "disp-a", clean["id"])
    assert body["ok"] is True


async def test_edited_times_removed_and_reordered_entries_are_detected(world):
    first, second, third = [await closed_case(world) for _ in range(3)]
    doc = await world.stored(first["id"])
    await tamper(world, first["id"], {"history.2.at": doc["history"][2]["at"] - timedelta(hours=5)})
    history = (await world.stored(second["id"]))["history"]
    await tamper(world, second["id"], {"history": history[:2] + history[3:]})
    history = (await world.stored(third["id"]))["history"]
    await tamper(world, third["id"], {"history": [history[0], history[2], history[1], *history[3:]]})
    status, body = await verify(world, "admin")
    found = {b["id"]: b["index"] for b in body["broken"]}
    assert found == {first["id"]: 2, second["id"]: 2, third["id"]: 1}


async def test_actions_after_tampering_do_not_hide_it(world):
    case = await world.accepted_case()
    await tamper(world, case["id"], {"history.1.by": "someone-else"})
    await world.as_("cmd-a1").post(f"/api/cases/{case['id']}/actions/supervise", {})
    status, body = await verify(world, "disp-a", case["id"])
    assert body["broken"][0]["index"] == 1


async def test_the_scan_covers_the_callers_scope_only(world):
    inside = await world.report()
    outside = await world.ticket(point=B_POINT)
    for case in (inside, outside):
        await tamper(world, case["id"], {"history.0.note": "改过"})
    status, body = await verify(world, "disp-a")
    assert status == 200 and [b["id"] for b in body["broken"]] == [inside["id"]] and body["checked"] == 1
    status, body = await verify(world, "disp-b")
    assert [b["id"] for b in body["broken"]] == [outside["id"]]
    status, body = await verify(world, "cmd-a1")
    assert [b["id"] for b in body["broken"]] == [inside["id"]]
    status, body = await verify(world, "admin")
    assert body["checked"] == 2 and len(body["broken"]) == 2


async def test_the_scan_reads_the_store_page_by_page(world, monkeypatch):
    monkeypatch.setattr(audit_handler, "PAGE", 3)
    cases = [await world.report() for _ in range(7)]
    for case in cases[1::3]:
        await tamper(world, case["id"], {"history.0.by": "x"})
    status, body = await verify(world, "admin")
    assert body["checked"] == 7
    assert sorted(b["id"] for b in body["broken"]) == sorted(c["id"] for c in cases[1::3])


async def test_who_may_ask(world):
    case = await world.accepted_case()
    status, body = await verify(world, "gw1")
    assert status == 403 and body["error"]["code"] == "role_forbidden"
    status, body = await verify(world, "gw1", case["id"])
    assert status == 200 and body["ok"] is True
    status, _ = await verify(world, "a1so", case["id"])
    assert status == 200
    status, body = await verify(world, "gw2", case["id"])
    assert status == 404 and body["error"]["code"] == "case_not_found"
    status, _ = await verify(world, "disp-b", case["id"])
    assert status == 404
    status, _ = await world.client.get(f"/api/audit/verify?case={case['id']}")
    assert status == 401

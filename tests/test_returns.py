"""派单异议 (SPEC §4 `return` → `return_pending`, `approve_return` / `reject_return`): a
department's return waits for the dispatcher with the clock paused; approval sends the case back
for 改派 and flags the disputed catalogue entry, rejection sends it back to the department with
every paused deadline moved by the time the review took."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from dispatch.workflow.deadlines import Duration
from test_workflow import World, at, city_dir, utc, world  # noqa: F401  (fixtures)

pytestmark = pytest.mark.asyncio

REASON = {"reason": "河道漂浮物应由区林水局处置"}


async def names(world: World, username: str, case_id: str) -> list[str]:
    status, case = await world.as_(username).get(f"/api/cases/{case_id}")
    assert status == 200, case
    return [a["name"] for a in case["actions"]]


async def test_a_return_waits_for_review_with_the_clock_paused(world):
    case = await world.accepted_case()
    cid = case["id"]
    handle_by = case["deadlines"]["handle_by"]
    pending = await world.ok("a1so", cid, "return", REASON)
    assert pending["status"] == "accepted" and pending["flags"]["return_pending"] is True
    assert pending["counters"]["returns"] == 1 and pending["returns"][0]["reason"] == REASON["reason"]
    assert pending["return_request"]["department"]["id"] == "A1-so"
    assert pending["deadlines"]["handle_by"] == handle_by and pending["clock"]["paused_at"] is not None
    assert "next_due_at" not in await world.stored(cid)  # the sweep leaves it alone
    # The department waits; the dispatcher decides.
    assert not {"feedback", "return", "request_extension"} & set(await names(world, "a1so", cid))
    dispatcher = set(await names(world, "disp-a", cid))
    assert {"approve_return", "reject_return"} <= dispatcher and not {"dispatch", "suspend"} & dispatcher
    error = await world.refused(409, "return_pending", "a1so", cid, "feedback", {"result": "x"})
    assert "feedback" not in error["allowed"]
    await world.refused(409, "return_pending", "a1so", cid, "return", REASON)


async def test_the_review_queue_lists_exactly_the_pending_returns(world):
    """/command's 退单待审 asked for 500 dispatched or accepted cases and kept the pending ones:
    in a busy city a pending return fell beyond the first 500. The server now filters."""
    cid = (await world.accepted_case())["id"]
    await world.ok("a1so", cid, "return", REASON)
    others = [(await world.accepted_case())["id"] for _ in range(3)]  # newer: first in the list
    status, page = await world.as_("disp-a").get("/api/cases?return_pending=true&limit=1")
    assert status == 200, page
    assert [c["id"] for c in page["items"]] == [cid] and set(others).isdisjoint(c["id"] for c in page["items"])
    await world.ok("disp-a", cid, "reject_return", REASON)
    status, page = await world.as_("disp-a").get("/api/cases?return_pending=true")
    assert status == 200 and page["items"] == []


async def test_return_refusals(world):
    case = await world.accepted_case()
    cid = case["id"]
    await world.refused(400, "missing_field", "a1so", cid, "return", {})
    await world.refused(400, "missing_field", "a1so", cid, "return", {"reason": "  "})
    # No review to decide yet: the table's predicate refuses, naming what is allowed.
    error = await world.refused(409, "no_return_pending", "disp-a", cid, "approve_return")
    assert "approve_return" not in error["allowed"] and "suspend" in error["allowed"]
    await world.refused(409, "no_return_pending", "disp-a", cid, "reject_return", REASON)
    await world.ok("a1so", cid, "return", REASON)
    # Deciding is the dispatcher's, within scope; a rejection needs its reason.
    await world.refused(403, "role_forbidden", "a1so", cid, "approve_return")
    await world.refused(403, "role_forbidden", "cmd-a1", cid, "approve_return")
    await world.refused(404, "case_not_found", "disp-b", cid, "approve_return")
    await world.refused(400, "missing_field", "disp-a", cid, "reject_return", {})
    # A case in the wrong state: 409 with the actions allowed there.
    filed = await world.report()
    await world.ok("disp-a", filed["id"], "file")
    error = await world.refused(409, "transition_not_allowed", "disp-a", filed["id"], "approve_return")
    assert "dispatch" in error["allowed"]


async def test_an_approved_return_goes_back_for_dispatch_and_flags_the_catalogue(world):
    case = await world.accepted_case()
    cid = case["id"]
    await world.ok("a1so", cid, "return", REASON)
    approved = await world.ok("disp-a", cid, "approve_return")
    assert approved["status"] == "filed" and approved["assignment"]["department"] is None
    assert approved["flags"]["return_pending"] is False and "return_request" not in approved
    assert approved["counters"] == {**case["counters"], "returns": 1, "reassignments": 1}
    assert approved["clock"] is None and approved["deadlines"]["handle_by"] is None
    assert approved["return_reviews"][0]["approved"] is True
    doc = await world.stored(cid)
    assert doc["history"][-1]["catalogue_entry"] == "0105|fallback|street_office|street"
    assert "next_due_at" not in doc
    # 改派: dispatched again, to another department.
    again = await world.ok("disp-a", cid, "dispatch", {"department": "A-water"})
    assert again["assignment"]["department"]["id"] == "A-water"

    status, disputes = await world.as_("admin").get("/api/catalogue/disputes")
    assert status == 200, disputes
    [item] = disputes["items"]
    assert item["case_id"] == cid and item["reason"] == REASON["reason"] and item["returned_by"] == "a1so"
    assert (item["category"], item["rule"], item["department_type"], item["level"]) == (
        "0105", "fallback", "street_office", "street")
    status, catalogue = await world.as_("disp-a").get("/api/catalogue")
    assert status == 200
    disputed = [row for row in catalogue["items"] if row["disputed"]]
    assert [(row["category"], row["rule"], row["disputes"]) for row in disputed] == [("0105", "fallback", 1)]
    assert catalogue["disputes"]["total"] == 1


async def test_a_rejected_return_resumes_the_clock_moved_by_the_review(world):
    calendar = world.ctx.calendar
    case = await world.report()
    cid = case["id"]
    await world.ok("disp-a", cid, "file")
    start = at(2026, 3, 2, 9, 0)  # Monday
    world.set_clock(start)
    await world.ok("disp-a", cid, "dispatch")
    world.set_clock(start + timedelta(minutes=10))
    signed = await world.ok("a1so", cid, "sign")
    deadline = utc(signed["deadlines"]["handle_by"])
    returned_at, decided_at = at(2026, 3, 2, 11, 0), at(2026, 3, 2, 15, 0)  # lunch lies between
    world.set_clock(returned_at)
    await world.ok("a1so", cid, "return", REASON)
    world.set_clock(decided_at)
    rejected = await world.ok("disp-a", cid, "reject_return", {"reason": "岸边垃圾属街道保洁范围"})
    paused = calendar.working_seconds_between(returned_at, decided_at)
    assert paused == 2.5 * 3600  # 11:00–12:00 and 13:30–15:00
    expected = calendar.add(deadline, Duration.working(paused))
    assert utc(rejected["deadlines"]["handle_by"]) == expected
    assert rejected["clock"]["paused_at"] is None and rejected["clock"]["suspended_seconds"] == paused
    assert rejected["status"] == "accepted" and rejected["flags"]["return_pending"] is False
    assert rejected["counters"]["returns"] == 1 and rejected["counters"]["return_rejections"] == 1
    assert rejected["return_reviews"][0]["reason"] == "岸边垃圾属街道保洁范围"
    doc = await world.stored(cid)
    assert doc["next_due_at"] is not None and doc["history"][-1]["handle_by"].astimezone(timezone.utc) == expected
    # Back with the department: it carries on.
    assert "feedback" in await names(world, "a1so", cid)
    await world.ok("a1so", cid, "feedback", {"result": "已打捞"})


async def test_a_natural_clock_is_paused_by_the_review_on_a_weekend_night(world):
    case = await world.report("0201", text="井盖缺失")  # urgent: sign within 15m of natural time
    cid = case["id"]
    await world.ok("disp-a", cid, "file")
    start = at(2026, 3, 7, 22, 0)  # Saturday night
    world.set_clock(start)
    dispatched = await world.ok("disp-a", cid, "dispatch")
    assert utc(dispatched["deadlines"]["sign_by"]) == start + timedelta(minutes=15)
    world.set_clock(start + timedelta(minutes=5))
    await world.ok("a1um", cid, "return", {"reason": "井盖属燃气公司"})
    world.set_clock(start + timedelta(hours=1, minutes=5))
    rejected = await world.ok("disp-a", cid, "reject_return", {"reason": "雨水井盖属城管"})
    assert rejected["status"] == "dispatched"
    assert utc(rejected["deadlines"]["sign_by"]) == start + timedelta(hours=1, minutes=15)
    assert "sign" in await names(world, "a1um", cid)


async def test_a_return_on_a_joint_case_pauses_the_parts_too(world):
    calendar = world.ctx.calendar
    case = await world.report()
    cid = case["id"]
    await world.ok("disp-a", cid, "file")
    start = at(2026, 3, 2, 9, 0)
    world.set_clock(start)
    await world.ok("disp-a", cid, "dispatch", {"support": ["A1-um"]})
    world.set_clock(start + timedelta(minutes=10))
    await world.ok("a1so", cid, "return", REASON)
    # While the review runs the supporting department waits as well.
    await world.refused(409, "return_pending", "a1um", cid, "support_sign")
    world.set_clock(start + timedelta(minutes=40))
    rejected = await world.ok("disp-a", cid, "reject_return", {"reason": "请继续办理"})
    part = rejected["support"][0]
    assert utc(part["due"]) == calendar.add(start, "1wh") + timedelta(minutes=30)
    await world.ok("a1um", cid, "support_sign")
    # Approved instead: the parts go with the assignment.
    await world.ok("a1so", cid, "return", REASON)
    approved = await world.ok("disp-a", cid, "approve_return")
    assert approved["support"] == [] and (await world.stored(cid))["history"][-1]["support_dropped"] == ["A1-um"]


async def test_an_extension_request_waits_while_a_return_is_reviewed(world):
    case = await world.accepted_case()
    cid = case["id"]
    await world.ok("a1so", cid, "request_extension", {"duration": "1wd", "reason": "需协调产权单位"})
    await world.ok("a1so", cid, "return", REASON)
    listed = set(await names(world, "disp-a", cid))
    assert not {"approve_extension", "reject_extension"} & listed
    await world.refused(409, "no_extension_pending", "disp-a", cid, "approve_extension")
    rejected = await world.ok("disp-a", cid, "reject_return", {"reason": "请继续办理"})
    assert rejected["flags"]["extension_pending"] is True
    assert "approve_extension" in await names(world, "disp-a", cid)

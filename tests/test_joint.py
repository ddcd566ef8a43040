"""Joint handling (主办/协办, SPEC §4 `dispatch {support}` and `feedback` with parts): each
supporting department sees the case, signs its part and gives its part of the feedback against
its own clock; the lead's feedback completes the handling step once every part is in or past
its limit; the deadline sweep flags late parts per department."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from dispatch.sweep.sweeper import run_sweep
from dispatch.workflow.deadlines import Duration
from test_workflow import World, at, city_dir, utc, world  # noqa: F401  (fixtures)

pytestmark = pytest.mark.asyncio

MONDAY_9 = at(2026, 3, 2, 9, 0)
SUPPORT = ["A1-um", "A1a-cs"]


async def joint_case(world: World, support=SUPPORT) -> str:
    """A river report routed to 一街道办事处 (A1-so), dispatched Monday 09:00 with 协办 parts."""
    case = await world.report()
    await world.ok("disp-a", case["id"], "file")
    world.set_clock(MONDAY_9)
    await world.ok("disp-a", case["id"], "dispatch", {"support": support})
    return case["id"]


def part(case: dict, department: str) -> dict:
    return next(p for p in case["support"] if p["department"]["id"] == department)


async def names(world: World, username: str, case_id: str) -> list[str]:
    status, case = await world.as_(username).get(f"/api/cases/{case_id}")
    assert status == 200, case
    return [a["name"] for a in case["actions"]]


async def test_dispatch_gives_each_supporting_department_its_part(world):
    cid = await joint_case(world)
    status, case = await world.as_("disp-a").get(f"/api/cases/{cid}")
    assert status == 200
    sign_due = world.ctx.calendar.add(MONDAY_9, "1wh")
    assert case["assignment"]["department"]["id"] == "A1-so"
    assert [p["department"]["id"] for p in case["support"]] == SUPPORT
    assert {p["status"] for p in case["support"]} == {"dispatched"}
    assert {utc(p["due"]) for p in case["support"]} == {sign_due}
    doc = await world.stored(cid)
    assert set(doc["departments_seen"]) == {"A1-so", *SUPPORT}
    assert doc["history"][-1]["support"] == SUPPORT
    # Each department sees it; the parts' buttons go to the supporting ones only.
    assert "support_sign" in await names(world, "a1um", cid)
    assert not {"sign", "return", "feedback"} & set(await names(world, "a1um", cid))
    assert "sign" in await names(world, "a1so", cid) and "support_sign" not in await names(world, "a1so", cid)
    status, page = await world.as_("a1acs").get("/api/cases?open=true")
    assert status == 200 and cid in [c["id"] for c in page["items"]]


async def test_support_dispatch_refusals(world):
    case = await world.report()
    cid = case["id"]
    await world.ok("disp-a", cid, "file")
    await world.refused(422, "unknown_department", "disp-a", cid, "dispatch", {"support": ["nope"]})
    await world.refused(422, "support_is_lead", "disp-a", cid, "dispatch", {"support": ["A1-so"]})
    await world.refused(400, "invalid_type", "disp-a", cid, "dispatch", {"support": "A1-um"})


async def test_a_supporting_department_signs_and_gives_its_part(world):
    cid = await joint_case(world)
    world.set_clock(MONDAY_9 + timedelta(minutes=20))
    signed = await world.ok("a1um", cid, "support_sign")
    mine = part(signed, "A1-um")
    assert mine["status"] == "signed" and mine["stage"] == "handle"
    assert utc(mine["due"]) == world.ctx.calendar.add(MONDAY_9 + timedelta(minutes=20), "1wd")
    assert signed["status"] == "dispatched"  # the lead's own state is its own
    assert "support_feedback" in [a["name"] for a in signed["actions"]]
    world.set_clock(MONDAY_9 + timedelta(hours=1, minutes=30))
    done = await world.ok("a1um", cid, "support_feedback", {"result": "已配合清理河岸垃圾"})
    mine = part(done, "A1-um")
    assert mine["status"] == "done" and mine["feedback"]["text"] == "已配合清理河岸垃圾"
    assert mine["late"] is False and mine["feedback"]["by"] == "a1um"
    doc = await world.stored(cid)
    assert doc["history"][-1]["department"] == "A1-um"
    assert not {"support_sign", "support_feedback"} & set(await names(world, "a1um", cid))


async def test_support_part_refusals(world):
    cid = await joint_case(world)
    # The lead is not a supporting department; a supporter is not the lead.
    await world.refused(403, "not_supporting", "a1so", cid, "support_sign")
    await world.refused(403, "not_assigned", "a1um", cid, "sign")
    await world.refused(403, "not_assigned", "a1um", cid, "return", {"reason": "不是我们的"})
    # A department the case was never sent to does not see it at all.
    await world.refused(404, "case_not_found", "aum", cid, "support_sign")
    # A dispatcher has no part to sign.
    await world.refused(403, "role_forbidden", "disp-a", cid, "support_sign")
    # The part's own order: sign before feedback, once.
    error = await world.refused(409, "support_part_state", "a1um", cid, "support_feedback", {"result": "x"})
    assert error["part_status"] == "dispatched"
    await world.ok("a1um", cid, "support_sign")
    await world.refused(409, "support_part_state", "a1um", cid, "support_sign")
    await world.refused(400, "missing_field", "a1um", cid, "support_feedback", {})


async def test_the_leads_feedback_waits_for_every_part_or_its_limit(world):
    cid = await joint_case(world)
    world.set_clock(MONDAY_9 + timedelta(minutes=10))
    await world.ok("a1so", cid, "sign")
    await world.ok("a1um", cid, "support_sign")
    assert "feedback" not in await names(world, "a1so", cid)
    error = await world.refused(409, "support_pending", "a1so", cid, "feedback", {"result": "已处理"})
    assert "feedback" not in error["allowed"] and "一街道城管中队" in error["message"]
    await world.ok("a1um", cid, "support_feedback", {"result": "已配合"})
    # 一社区居委会 never signed: once its sign limit (1wh from 09:00) is past, the lead goes on.
    sign_due = world.ctx.calendar.add(MONDAY_9, "1wh")
    world.set_clock(sign_due - timedelta(minutes=1))
    await world.refused(409, "support_pending", "a1so", cid, "feedback", {"result": "已处理"})
    world.set_clock(sign_due)
    assert "feedback" in await names(world, "a1so", cid)
    handled = await world.ok("a1so", cid, "feedback", {"result": "已处理"})
    assert handled["status"] == "handled"
    assert part(handled, "A1a-cs")["status"] == "lapsed" and part(handled, "A1-um")["status"] == "done"
    doc = await world.stored(cid)
    assert doc["history"][-1]["support_lapsed"] == ["A1a-cs"]


async def test_a_case_without_support_is_unchanged(world):
    case = await world.accepted_case()
    assert "support" not in await world.stored(case["id"])
    handled = await world.ok("a1so", case["id"], "feedback", {"result": "已处理"})
    assert handled["status"] == "handled"


async def test_the_sweep_flags_each_departments_late_part(world):
    ctx, calendar = world.ctx, world.ctx.calendar
    cid = await joint_case(world)
    lead_signed, part_signed = MONDAY_9 + timedelta(minutes=10), MONDAY_9 + timedelta(minutes=30)
    world.set_clock(lead_signed)
    await world.ok("a1so", cid, "sign")
    world.set_clock(part_signed)
    await world.ok("a1um", cid, "support_sign")
    sign_due = calendar.add(MONDAY_9, "1wh").astimezone(timezone.utc)
    um_due = calendar.add(part_signed, "1wd").astimezone(timezone.utc)
    lead_due = calendar.add(lead_signed, "1wd").astimezone(timezone.utc)
    doc = await world.stored(cid)
    assert doc["next_due_at"].astimezone(timezone.utc) == sign_due  # the earliest part deadline

    # Just past the unsigned part's sign limit: only 一社区居委会 is late.
    await run_sweep(ctx, sign_due + timedelta(minutes=1))
    doc = await world.stored(cid)
    assert part(doc, "A1a-cs")["late"] is True and part(doc, "A1-um")["late"] is False
    assert doc["flags"]["overdue"] is False
    late = [e for e in doc["history"] if e["action"] == "support_overdue"]
    assert [e["department"] for e in late] == ["A1a-cs"] and late[0]["stage"] == "sign"
    # Run again at the same instant: nothing new (the state lives on the case).
    await run_sweep(ctx, sign_due + timedelta(minutes=1))
    assert len((await world.stored(cid))["history"]) == len(doc["history"])

    # The lead's handling deadline comes first, then 城管中队's own (signed 20 minutes later).
    assert lead_due < um_due
    await run_sweep(ctx, lead_due + timedelta(seconds=1))
    doc = await world.stored(cid)
    assert doc["flags"]["overdue"] is True and part(doc, "A1-um")["late"] is False
    assert doc["next_due_at"].astimezone(timezone.utc) <= um_due
    await run_sweep(ctx, um_due + timedelta(seconds=1))
    doc = await world.stored(cid)
    assert part(doc, "A1-um")["late"] is True
    late = [e for e in doc["history"] if e["action"] == "support_overdue"]
    assert [e["department"] for e in late] == ["A1a-cs", "A1-um"] and late[1]["stage"] == "handle"


async def test_a_suspension_moves_the_open_parts_deadlines(world):
    calendar = world.ctx.calendar
    cid = await joint_case(world, ["A1-um"])
    world.set_clock(MONDAY_9 + timedelta(minutes=10))
    await world.ok("a1so", cid, "sign")
    await world.ok("a1um", cid, "support_sign")
    due = utc(part(await world.ok("disp-a", cid, "supervise"), "A1-um")["due"])
    suspended_at, resumed_at = at(2026, 3, 2, 11, 0), at(2026, 3, 3, 10, 0)
    world.set_clock(suspended_at)
    await world.ok("disp-a", cid, "suspend", {"reason": "等待产权单位确认"})
    world.set_clock(resumed_at)
    resumed = await world.ok("disp-a", cid, "resume")
    stood = calendar.working_seconds_between(suspended_at, resumed_at)
    assert stood == 6.5 * 3600  # Monday 11:00–12:00 and 13:30–17:30, Tuesday 08:30–10:00
    assert utc(part(resumed, "A1-um")["due"]) == calendar.add(due, Duration.working(stood))


async def test_each_supporting_departments_part_counts_in_its_own_kpis(world):
    """协办 KPIs per department (issue 13): 协办任务数 and 协办按期反馈率 charged to the supporting
    department, the same from the rollups as from the cases."""
    from dispatch.kpi import stats
    from dispatch.store.query import EVERYTHING

    world.set_clock(MONDAY_9 - timedelta(minutes=30))  # reported the same day
    cid = await joint_case(world)
    world.set_clock(MONDAY_9 + timedelta(minutes=10))
    await world.ok("a1so", cid, "sign")
    await world.ok("a1um", cid, "support_sign")
    await world.ok("a1um", cid, "support_feedback", {"result": "已配合"})
    world.set_clock(world.ctx.calendar.add(MONDAY_9, "1wh"))  # 一社区居委会's part lapses
    await world.ok("a1so", cid, "feedback", {"result": "已处理"})
    ctx, day = world.ctx, MONDAY_9.astimezone(world.ctx.tz).date()
    reports = [await stats.compute(ctx, reader=EVERYTHING, scope=ctx.city.id, period=stats.Period.days(day, day, ctx.tz),
                                   group_by="department", now=ctx.clock.now(), scan=scan)
               for scan in (True, False)]
    for report in reports:
        rows = {r["group"]["id"]: {k["key"]: k for k in r["kpis"]} for r in report["rows"]}
        assert rows["A1-um"]["support_tasks"]["value"] == 1
        assert rows["A1-um"]["support_on_time_rate"]["value"] == 1.0
        assert rows["A1a-cs"]["support_tasks"]["value"] == 1
        rate = rows["A1a-cs"]["support_on_time_rate"]
        assert (rate["value"], rate["numerator"], rate["denominator"]) == (0.0, 0, 1)
        assert rows["A1-so"]["support_tasks"]["value"] == 0  # the lead's row counts its own work
    assert reports[0]["rows"] == reports[1]["rows"] and reports[0]["total"] == reports[1]["total"]

"""The closed loop over real HTTP (SPEC §4): every action's allowed path and its refusals.

Runs on the small made-up city (tests/small_city.py) with a few more accounts, one per party
the loop needs. Every successful action is followed by a look at the stored case: its history
chain must verify and its last entry must be the action just taken.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from support import serving
from dispatch.access.auth import User
from dispatch.workflow.audit import verify_chain
from dispatch.workflow.deadlines import Duration
from small_city import A, A1, CITY_ID, G1
from world import B_POINT, G1_POINT, World, write_city  # noqa: F401 - B_POINT, G1_POINT: re-exported
from dispatch.store.query import Change

pytestmark = pytest.mark.asyncio

SH = ZoneInfo("Asia/Shanghai")
def at(y, mo, d, h=0, mi=0):
    """A Shanghai wall-clock instant, as UTC (what actions are stamped with)."""
    return datetime(y, mo, d, h, mi, tzinfo=SH).astimezone(timezone.utc)


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(timezone.utc)


@pytest.fixture(scope="session")
def city_dir(tmp_path_factory):
    return write_city(tmp_path_factory.mktemp("loop-city"))


@pytest.fixture
async def world(city_dir):
    async with serving(city_dir) as client:
        yield World(client)


def actions_of(doc: dict) -> list[str]:
    return [entry["action"] for entry in doc["history"]]


# -- the happy paths --------------------------------------------------------------------------


async def test_grid_case_goes_round_the_loop(world):
    case = await world.report()
    cid = case["id"]
    assert case["status"] == "reported" and case["assignment"]["department"]["id"] == "A1-so"

    filed = await world.ok("disp-a", cid, "file", {"note": "属实，立案"})
    assert filed["status"] == "filed"
    dispatched = await world.ok("disp-a", cid, "dispatch")
    assert dispatched["status"] == "dispatched"
    assert dispatched["assignment"]["department"] == {"id": "A1-so", "name": "一街道办事处"}
    assert dispatched["deadlines"]["sign_by"] and dispatched["clock"]["stage"] == "sign"
    doc = await world.stored(cid)
    assert "A1-so" in doc["departments_seen"] and doc["next_due_at"] == doc["clock"]["warn_at"]

    signed = await world.ok("a1so", cid, "sign")
    assert signed["status"] == "accepted" and signed["clock"]["stage"] == "handle"
    assert signed["deadlines"]["handle_by"]
    photos = [await world.photo("a1so"), await world.photo("a1so")]
    handled = await world.ok("a1so", cid, "feedback", {"result": "已打捞清理", "photos": photos})
    assert handled["status"] == "handled" and handled["clock"]["stage"] == "check"
    assert handled["result"]["text"] == "已打捞清理" and handled["result"]["photos"] == photos
    checked = await world.ok("gw1", cid, "check", {"passed": True, "note": "现场已清理"})
    assert checked["status"] == "checked" and checked["clock"] is None
    closed = await world.ok("disp-a", cid, "close")
    assert closed["status"] == "closed" and closed["closed_at"]

    doc = await world.stored(cid)
    assert actions_of(doc) == ["report", "file", "dispatch", "sign", "feedback", "check", "close"]
    states = [(e["from"], e["to"]) for e in doc["history"][1:]]
    assert states == [("reported", "filed"), ("filed", "dispatched"), ("dispatched", "accepted"),
                      ("accepted", "handled"), ("handled", "checked"), ("checked", "closed")]
    assert doc["history"][1]["note"] == "属实，立案"
    assert doc["history"][2]["department"] == "A1-so"
    assert "next_due_at" not in doc and doc["clock"] is None
    assert doc["counters"] == {"returns": 0, "reworks": 0, "extensions": 0}


async def test_hotline_ticket_with_callback(world):
    ticket = await world.ticket()
    cid = ticket["id"]
    assert ticket["assignment"]["department"]["id"] == "A1a-cs"
    await world.ok("disp-a", cid, "file")
    await world.ok("disp-a", cid, "dispatch")
    await world.ok("a1acs", cid, "sign")
    await world.ok("a1acs", cid, "feedback", {"result": "已上门走访并联系社工"})

    # A hotline check is the operator's callback (回访), not the grid worker's.
    await world.refused(403, "role_forbidden", "gw1", cid, "check", {"passed": True})
    error = await world.refused(400, "missing_field", "op1", cid, "check", {"passed": True, "resolved": True})
    assert error["field"] == "satisfaction"
    await world.refused(400, "invalid_value", "op1", cid, "check",
                        {"passed": True, "satisfaction": "great", "resolved": True})

    checked = await world.ok("op1", cid, "check", {"passed": True, "satisfaction": "satisfied", "resolved": True,
                                                     "note": "市民表示满意"})
    assert checked["status"] == "checked"
    assert checked["callback"]["satisfaction"] == "satisfied" and checked["callback"]["resolved"] is True
    assert checked["callback"]["contacted"] is True and len(checked["callbacks"]) == 1
    closed = await world.ok("disp-a", cid, "close")
    assert closed["status"] == "closed"
    doc = await world.stored(cid)
    assert actions_of(doc) == ["report", "file", "dispatch", "sign", "feedback", "check", "close"]
    assert doc["history"][-2]["satisfaction"] == "satisfied"


async def test_unreached_caller_is_recorded_without_satisfaction(world):
    ticket = await world.ticket()
    cid = ticket["id"]
    for username, action, body in [("disp-a", "file", {}), ("disp-a", "dispatch", {}), ("a1acs", "sign", {}),
                                   ("a1acs", "feedback", {"result": "已处理"})]:
        await world.ok(username, cid, action, body)
    checked = await world.ok("op1", cid, "check", {"passed": True, "contacted": False})
    assert checked["callback"]["contacted"] is False and checked["callback"]["satisfaction"] is None


async def test_grid_case_is_not_checked_by_an_operator(world):
    case = await world.accepted_case()
    await world.ok("a1so", case["id"], "feedback", {"result": "已清理"})
    await world.refused(403, "role_forbidden", "op1", case["id"], "check", {"passed": True})
    # A grid worker of another grid cannot even see it.
    await world.refused(404, "case_not_found", "gw2", case["id"], "check", {"passed": True})


async def test_auto_dispatched_report_can_be_signed_straight_away(world):
    case = await world.report("0101", text="路边暴露垃圾")
    assert case["status"] == "dispatched"
    signed = await world.ok("a1so", case["id"], "sign")
    assert signed["status"] == "accepted"


# -- refusals ---------------------------------------------------------------------------------


async def test_wrong_role_is_403(world):
    case = await world.report()
    cid = case["id"]
    await world.refused(403, "role_forbidden", "gw1", cid, "file")
    await world.refused(403, "role_forbidden", "op1", cid, "void", {"reason": "重复"})
    await world.refused(403, "role_forbidden", "cmd-a1", cid, "file")
    await world.refused(403, "role_forbidden", "admin", cid, "file")
    await world.ok("disp-a", cid, "file")
    await world.ok("disp-a", cid, "dispatch")
    await world.refused(403, "role_forbidden", "disp-a", cid, "sign")
    await world.refused(403, "role_forbidden", "a1so", cid, "close")
    await world.refused(403, "role_forbidden", "a1so", cid, "supervise")


async def test_department_acts_only_on_cases_assigned_to_it(world):
    case = await world.dispatched_case()
    cid = case["id"]
    # Never assigned: the case does not exist for that department.
    await world.refused(404, "case_not_found", "a1um", cid, "sign")
    # Re-dispatched elsewhere: the first department still reads it but may not act.
    moved = await world.ok("disp-a", cid, "dispatch", {"department": "A1-um"})
    assert moved["assignment"]["department"]["id"] == "A1-um" and moved["assignment"]["manual"] is True
    status, _ = await world.as_("a1so").get(f"/api/cases/{cid}")
    assert status == 200
    await world.refused(403, "not_assigned", "a1so", cid, "sign")
    await world.refused(409, "already_assigned", "disp-a", cid, "dispatch", {"department": "A1-um"})
    signed = await world.ok("a1um", cid, "sign")
    assert signed["status"] == "accepted"
    doc = await world.stored(cid)
    assert set(doc["departments_seen"]) == {"A1-so", "A1-um"}


async def test_outside_scope_is_404(world):
    case = await world.report()
    cid = case["id"]
    await world.refused(404, "case_not_found", "disp-b", cid, "file")
    await world.refused(404, "case_not_found", "gw2", cid, "verify", {"valid": True})
    ticket = await world.ticket(point=B_POINT)
    await world.refused(404, "case_not_found", "disp-a", ticket["id"], "file")
    await world.refused(404, "case_not_found", "cmd-a1", ticket["id"], "supervise")
    await world.ok("disp-b", ticket["id"], "file")


async def test_wrong_state_is_409_with_the_allowed_actions(world):
    case = await world.report()
    cid = case["id"]
    error = await world.refused(409, "transition_not_allowed", "disp-a", cid, "close")
    assert error["state"] == "reported"
    assert sorted(error["allowed"]) == sorted(["relocate", "file", "void", "merge", "supervise", "escalate"])
    assert "已上报" in error["message"] and "结案" in error["message"]
    error = await world.refused(409, "transition_not_allowed", "op1", cid, "reopen", {"reason": "x"})
    assert sorted(error["allowed"]) == sorted(["relocate", "merge"])  # answer is for hotline consultations
    await world.ok("disp-a", cid, "file")
    await world.ok("disp-a", cid, "dispatch")
    error = await world.refused(409, "transition_not_allowed", "a1so", cid, "feedback", {"result": "x"})
    assert sorted(error["allowed"]) == ["escalate", "return", "sign"]


async def test_unknown_action_case_and_bad_bodies(world):
    case = await world.report()
    cid = case["id"]
    status, body = await world.act("disp-a", cid, "teleport")
    assert status == 404 and body["error"]["code"] == "unknown_action"
    status, body = await world.act("disp-a", "000000000000000000000000", "file")
    assert status == 404 and body["error"]["code"] == "case_not_found"
    client = world.as_("disp-a")
    status, body = await client.post(f"/api/cases/{cid}/actions/file", raw=b"{not json")
    assert status == 400 and body["error"]["code"] == "malformed_json"
    status, body = await client.post(f"/api/cases/{cid}/actions/file", raw=b"[1]")
    assert status == 400
    await world.refused(400, "invalid_type", "disp-a", cid, "file", {"version": "1"})
    await world.refused(400, "invalid_type", "disp-a", cid, "file", {"version": True})
    await world.refused(400, "invalid_type", "disp-a", cid, "file", {"version": 1.5})
    await world.refused(400, "invalid_type", "disp-a", cid, "file", {"note": {"$ne": 1}})
    await world.refused(400, "too_long", "disp-a", cid, "file", {"note": "长" * 501})
    status, body = await world.client.post(f"/api/cases/{cid}/actions/file", {})
    assert status == 401


async def test_a_version_written_as_a_whole_number_with_a_fraction_is_that_integer(world):
    """JSON has one number type and the OpenAPI document declares `version` an integer, which
    1.0 is (schemathesis found 81.0 refused)."""
    case = await world.report()
    status, body = await world.act("disp-a", case["id"], "file", {"version": float(case["version"])})
    assert status == 200 and body["status"] == "filed", body


async def test_missing_or_malformed_fields_are_400(world):
    case = await world.report()
    cid = case["id"]
    await world.refused(400, "missing_field", "disp-a", cid, "void")
    await world.refused(400, "missing_field", "disp-a", cid, "void", {"reason": "   "})
    await world.refused(400, "missing_field", "gw1", cid, "verify")
    await world.refused(400, "invalid_type", "gw1", cid, "verify", {"valid": "no"})
    await world.refused(400, "missing_field", "disp-a", cid, "merge")
    await world.refused(400, "missing_field", "disp-a", cid, "escalate")
    await world.refused(400, "invalid_value", "disp-a", cid, "escalate", {"to": "down"})
    await world.refused(400, "invalid_value", "disp-a", cid, "escalate", {"departments": ["A-um"], "within": "soon"})
    await world.refused(400, "missing_field", "disp-a", cid, "escalate", {"to": "up", "departments": ["A-um"]})
    await world.refused(400, "invalid_location", "op1", cid, "relocate", {"location": {"type": "Point"}})
    await world.ok("disp-a", cid, "file")
    await world.refused(400, "invalid_type", "disp-a", cid, "dispatch", {"department": ["A1-so"]})
    await world.ok("disp-a", cid, "dispatch")
    await world.refused(400, "missing_field", "a1so", cid, "return")
    await world.ok("a1so", cid, "sign")
    await world.refused(400, "missing_field", "a1so", cid, "feedback")
    await world.refused(400, "invalid_type", "a1so", cid, "feedback", {"result": "ok", "photos": "p1"})
    await world.refused(400, "missing_field", "a1so", cid, "request_extension", {"duration": "1wd"})
    await world.refused(400, "missing_field", "a1so", cid, "request_extension", {"reason": "材料未到"})
    await world.refused(400, "invalid_value", "a1so", cid, "request_extension", {"reason": "x", "duration": "2 weeks"})
    await world.refused(400, "invalid_value", "a1so", cid, "request_extension", {"reason": "x", "until": "tomorrow"})
    await world.refused(400, "missing_field", "disp-a", cid, "suspend")
    await world.ok("a1so", cid, "feedback", {"result": "已处理"})
    await world.refused(400, "missing_field", "gw1", cid, "check")
    await world.ok("gw1", cid, "check", {"passed": True})
    await world.ok("disp-a", cid, "close")
    await world.refused(400, "missing_field", "disp-a", cid, "reopen")


async def test_stale_version_is_409_and_the_right_one_passes(world):
    case = await world.report()
    cid = case["id"]
    error = await world.refused(409, "version_conflict", "disp-a", cid, "file", {"version": case["version"] + 5})
    assert error["version"] == case["version"]
    filed = await world.ok("disp-a", cid, "file", {"version": case["version"]})
    assert filed["version"] == case["version"] + 1
    error = await world.refused(409, "version_conflict", "disp-a", cid, "dispatch", {"version": case["version"]})
    assert error["version"] == filed["version"]


async def test_each_action_publishes_the_updated_case(world):
    case = await world.report()
    await world.ctx.tail.caught_up()  # the report's own event is past
    events = []
    world.ctx.bus.subscribe(events.append)
    updated = await world.ok("disp-a", case["id"], "file")
    await world.ctx.tail.caught_up()
    assert [e["type"] for e in events] == ["case.updated"]
    assert events[0]["case"]["_id"] == case["id"] and events[0]["case"]["version"] == updated["version"]
    await world.refused(403, "role_forbidden", "gw1", case["id"], "void", {"reason": "x"})
    await world.ctx.tail.caught_up()
    assert len(events) == 1


# -- each action ------------------------------------------------------------------------------


async def test_verify_marks_valid_reports_and_voids_false_ones(world):
    good, bad = await world.ticket(), await world.ticket()
    verified = await world.ok("gw1", good["id"], "verify", {"valid": True, "note": "现场属实"})
    assert verified["status"] == "reported" and verified["flags"]["verified"] is True
    voided = await world.ok("gw1", bad["id"], "verify", {"valid": False, "note": "现场无此情况"})
    assert voided["status"] == "void" and voided["void_reason"] == "现场无此情况"
    doc = await world.stored(bad["id"])
    assert doc["history"][-1]["valid"] is False and doc["history"][-1]["to"] == "void"


async def test_void_needs_a_reason_and_ends_the_case(world):
    first, second = await world.report(), await world.report()
    voided = await world.ok("disp-a", first["id"], "void", {"reason": "重复上报"})
    assert voided["status"] == "void" and voided["void_reason"] == "重复上报"
    await world.ok("disp-a", second["id"], "file")
    assert (await world.ok("disp-a", second["id"], "void", {"reason": "非城管事项"}))["status"] == "void"
    error = await world.refused(409, "transition_not_allowed", "disp-a", first["id"], "file")
    assert error["allowed"] == []
    doc = await world.stored(first["id"])
    assert doc["history"][-1]["reason"] == "重复上报"


async def test_dispatch_to_a_named_department_and_unknown_ones(world):
    case = await world.report()
    cid = case["id"]
    await world.ok("disp-a", cid, "file")
    await world.refused(422, "unknown_department", "disp-a", cid, "dispatch", {"department": "nope"})
    dispatched = await world.ok("disp-a", cid, "dispatch", {"department": "A-water"})
    assert dispatched["assignment"]["department"]["id"] == "A-water"
    assert "人工派遣" in dispatched["assignment"]["reason"]
    doc = await world.stored(cid)
    assert doc["departments_seen"] == ["A-water"] and doc["history"][-1]["department"] == "A-water"


async def test_return_goes_back_to_the_dispatcher_and_is_counted(world):
    case = await world.accepted_case()
    cid = case["id"]
    pending = await world.ok("a1so", cid, "return", {"reason": "不属于本街道职责"})
    assert pending["status"] == "accepted" and pending["flags"]["return_pending"] is True
    returned = await world.ok("disp-a", cid, "approve_return")
    assert returned["status"] == "filed" and returned["counters"]["returns"] == 1
    assert returned["assignment"]["department"] is None and returned["assignment"]["rule"] == "fallback"
    assert returned["clock"] is None and returned["deadlines"]["handle_by"] is None
    assert returned["returns"][0]["reason"] == "不属于本街道职责"
    doc = await world.stored(cid)
    assert "next_due_at" not in doc and "A1-so" in doc["departments_seen"]
    # It can still read the case, but it is no longer its to act on.
    await world.refused(403, "not_assigned", "a1so", cid, "sign")
    again = await world.ok("disp-a", cid, "dispatch", {"department": "A1-um"})
    assert again["status"] == "dispatched"
    await world.ok("a1um", cid, "return", {"reason": "不是井盖问题"})
    returned = await world.ok("disp-a", cid, "approve_return")
    assert returned["counters"]["returns"] == 2 and returned["counters"]["reassignments"] == 2
    # With no department given, dispatch falls back to the routed one.
    back = await world.ok("disp-a", cid, "dispatch")
    assert back["assignment"]["department"]["id"] == "A1-so"


async def test_failed_check_sends_the_case_back_for_rework(world):
    case = await world.accepted_case()
    cid = case["id"]
    world.set_clock(at(2026, 3, 2, 9, 0))
    await world.ok("a1so", cid, "feedback", {"result": "已处理"})
    world.set_clock(at(2026, 3, 3, 10, 0))
    rework = await world.ok("gw1", cid, "check", {"passed": False, "note": "仍有垃圾",
                                                  "photos": [await world.photo("gw1")]})
    assert rework["status"] == "accepted" and rework["counters"]["reworks"] == 1
    assert rework["clock"]["stage"] == "handle"
    # The handle limit (1wd) starts again from the failed check.
    expected = world.ctx.calendar.add(at(2026, 3, 3, 10, 0), "1wd")
    assert utc(rework["deadlines"]["handle_by"]) == expected
    await world.ok("a1so", cid, "feedback", {"result": "再次清理"})
    passed = await world.ok("gw1", cid, "check", {"passed": True})
    assert passed["status"] == "checked" and passed["counters"]["reworks"] == 1


async def test_extension_by_duration_moves_the_handle_deadline(world):
    calendar = world.ctx.calendar
    case = await world.dispatched_case()
    cid = case["id"]
    world.set_clock(at(2026, 3, 2, 9, 0))  # Monday
    signed = await world.ok("a1so", cid, "sign")
    handle_by = utc(signed["deadlines"]["handle_by"])
    assert handle_by == at(2026, 3, 3, 9, 0)  # 1wd = 7.5 working hours

    await world.refused(409, "no_extension_pending", "disp-a", cid, "approve_extension")
    pending = await world.ok("a1so", cid, "request_extension", {"duration": "1wd", "reason": "需协调供电部门"})
    assert pending["flags"]["extension_pending"] is True and pending["extension_request"]["duration"] == "1wd"
    await world.refused(409, "extension_pending", "a1so", cid, "request_extension",
                        {"duration": "2wd", "reason": "再延"})
    await world.refused(403, "role_forbidden", "a1so", cid, "approve_extension")

    approved = await world.ok("disp-a", cid, "approve_extension", {"note": "同意"})
    expected = calendar.add(handle_by, "1wd")
    assert utc(approved["deadlines"]["handle_by"]) == expected == at(2026, 3, 4, 9, 0)
    assert utc(approved["clock"]["deadline"]) == expected
    assert approved["flags"]["extension_pending"] is False and "extension_request" not in approved
    assert approved["counters"]["extensions"] == 1
    assert approved["extensions"][0]["approved"] is True
    # The warning instant follows: 80 % of the whole (now 2wd) limit from the sign.
    warn = calendar.fraction_instant(at(2026, 3, 2, 9, 0), expected, 0.8, "1wd")
    assert utc(approved["clock"]["warn_at"]) == warn
    assert (await world.stored(cid))["next_due_at"].astimezone(timezone.utc) == warn


async def test_extension_until_an_instant_and_its_rejection(world):
    case = await world.accepted_case()
    cid = case["id"]
    handle_by = utc(case["deadlines"]["handle_by"])
    too_early = (handle_by - timedelta(hours=1)).isoformat()
    await world.refused(422, "invalid_extension", "a1so", cid, "request_extension",
                        {"until": too_early, "reason": "x"})
    until = (handle_by + timedelta(days=3)).astimezone(SH).replace(microsecond=0)
    await world.ok("a1so", cid, "request_extension", {"until": until.isoformat(), "reason": "等待配件"})
    rejected = await world.ok("disp-a", cid, "reject_extension", {"note": "时限内可完成"})
    assert rejected["flags"]["extension_pending"] is False
    assert utc(rejected["deadlines"]["handle_by"]) == handle_by and rejected["counters"]["extensions"] == 0
    assert rejected["extensions"][0]["approved"] is False
    await world.ok("a1so", cid, "request_extension", {"until": until.isoformat(), "reason": "等待配件"})
    approved = await world.ok("disp-a", cid, "approve_extension")
    assert utc(approved["deadlines"]["handle_by"]) == until.astimezone(timezone.utc)
    assert approved["counters"]["extensions"] == 1


async def test_suspension_stops_a_working_hours_clock(world):
    calendar = world.ctx.calendar
    case = await world.dispatched_case()
    cid = case["id"]
    world.set_clock(at(2026, 3, 2, 9, 0))  # Monday 09:00
    signed = await world.ok("a1so", cid, "sign")
    deadline = utc(signed["deadlines"]["handle_by"])

    world.set_clock(at(2026, 3, 2, 10, 0))
    suspended = await world.ok("disp-a", cid, "suspend", {"reason": "等待产权单位确认"})
    assert suspended["status"] == "suspended" and suspended["suspension"]["reason"] == "等待产权单位确认"
    doc = await world.stored(cid)
    assert "next_due_at" not in doc  # the deadline sweep leaves a suspended case alone
    # While suspended the department cannot hand in a result; supervision still works.
    await world.refused(409, "transition_not_allowed", "a1so", cid, "feedback", {"result": "x"})
    await world.ok("cmd-a1", cid, "supervise", {"note": "尽快协调"})

    world.set_clock(at(2026, 3, 2, 15, 0))
    resumed = await world.ok("disp-a", cid, "resume")
    assert resumed["status"] == "accepted"
    spent = calendar.working_seconds_between(at(2026, 3, 2, 10, 0), at(2026, 3, 2, 15, 0))
    assert spent == 3.5 * 3600  # 10:00-12:00 and 13:30-15:00
    expected = calendar.add(deadline, Duration.working(spent))
    assert utc(resumed["deadlines"]["handle_by"]) == expected == at(2026, 3, 3, 14, 0)
    assert resumed["suspensions"][0]["reason"] == "等待产权单位确认" and "suspension" not in resumed
    doc = await world.stored(cid)
    assert doc["next_due_at"] is not None and doc["clock"]["paused_at"] is None
    # The warning comes at 80 % of the 7.5h actually worked: 6h → Tuesday 08:30 + 2.5h + 1h.
    assert utc(resumed["clock"]["warn_at"]) == at(2026, 3, 3, 11, 0)
    assert doc["history"][-1]["handle_by"].astimezone(timezone.utc) == expected


async def test_suspension_over_a_weekend_costs_only_working_time(world):
    calendar = world.ctx.calendar
    case = await world.accepted_case()
    cid = case["id"]
    # Re-sign the clock at a known instant: return and dispatch again.
    await world.ok("a1so", cid, "return", {"reason": "重新派遣"})
    await world.ok("disp-a", cid, "approve_return")
    await world.ok("disp-a", cid, "dispatch")
    world.set_clock(at(2026, 3, 6, 16, 0))  # Friday 16:00
    signed = await world.ok("a1so", cid, "sign")
    deadline = utc(signed["deadlines"]["handle_by"])
    world.set_clock(at(2026, 3, 6, 17, 0))
    await world.ok("disp-a", cid, "suspend", {"reason": "周末无法施工"})
    world.set_clock(at(2026, 3, 9, 9, 0))  # Monday 09:00: only 30 working minutes went by
    resumed = await world.ok("disp-a", cid, "resume")
    expected = calendar.add(deadline, Duration.working(calendar.working_seconds_between(
        at(2026, 3, 6, 17, 0), at(2026, 3, 9, 9, 0))))
    assert utc(resumed["deadlines"]["handle_by"]) == expected
    assert expected - deadline < timedelta(days=1)


async def test_the_timer_counts_down_on_the_working_clock(world):
    """Issue 12 bug 12: the countdown beside 临期 ran on calendar time. The case's `timer`
    counts the limit's own clock (1wd = 7.5 working hours here), as the sweep does."""
    case = await world.dispatched_case()
    cid = case["id"]
    world.set_clock(at(2026, 3, 6, 16, 0))  # Friday 16:00
    await world.ok("a1so", cid, "sign")  # 1.5 h on Friday, 6 h on Monday: due Monday 16:00

    async def timer():
        status, shown = await world.as_("a1so").get(f"/api/cases/{cid}")
        assert status == 200
        return shown["timer"]

    world.set_clock(at(2026, 3, 6, 18, 0))  # Friday evening: the working clock stands still
    evening = await timer()
    assert (evening["stage"], evening["unit"], evening["level"], evening["paused"]) == ("handle", "working", "ok", False)
    assert utc(evening["due_at"]) == at(2026, 3, 9, 16, 0)
    assert evening["remaining_seconds"] == 6 * 3600  # not the 70 calendar hours to Monday 16:00
    assert evening["runs_until"] == evening["as_of"]  # nothing for a page to count down

    world.set_clock(at(2026, 3, 9, 9, 0))  # Monday morning, in the 08:30-12:00 period
    morning = await timer()
    assert morning["remaining_seconds"] == 5.5 * 3600
    assert utc(morning["runs_until"]) == at(2026, 3, 9, 12, 0)

    world.set_clock(at(2026, 3, 9, 15, 0))  # past warn_at (80 %): 临期 and the countdown agree
    late = await timer()
    assert (late["level"], late["remaining_seconds"]) == ("warning", 3600)

    await world.ok("disp-a", cid, "suspend", {"reason": "等待产权单位确认"})
    world.set_clock(at(2026, 3, 9, 16, 30))
    paused = await timer()
    assert (paused["level"], paused["paused"], paused["remaining_seconds"]) == ("paused", True, 3600)
    assert paused["runs_until"] == paused["as_of"]


async def test_suspension_stops_a_natural_clock(world):
    # 0201 井盖缺失 is urgent: handle within 2h of natural time.
    case = await world.report("0201", text="井盖缺失")
    cid = case["id"]
    assert case["priority"] == "urgent" and case["assignment"]["department"]["id"] == "A1-um"
    await world.ok("disp-a", cid, "file")
    await world.ok("disp-a", cid, "dispatch")
    start = at(2026, 3, 7, 22, 0)  # a Saturday night: natural time still runs
    world.set_clock(start)
    signed = await world.ok("a1um", cid, "sign")
    assert utc(signed["deadlines"]["handle_by"]) == start + timedelta(hours=2)
    world.set_clock(start + timedelta(minutes=30))
    await world.ok("disp-a", cid, "suspend", {"reason": "等待燃气公司到场"})
    world.set_clock(start + timedelta(hours=3, minutes=30))
    resumed = await world.ok("disp-a", cid, "resume")
    assert utc(resumed["deadlines"]["handle_by"]) == start + timedelta(hours=5)
    assert resumed["clock"]["suspended_seconds"] == 3 * 3600
    # Warning at 80 % of 2h = 96 min of running time: 30 min before, 66 min after resuming.
    assert utc(resumed["clock"]["warn_at"]) == start + timedelta(hours=3, minutes=30 + 66)


URGENT_START = at(2026, 3, 7, 22, 0)


async def urgent_signed(world: World, **flags) -> str:
    """An urgent case (0201 井盖缺失: 2h of natural time to handle) signed at URGENT_START, with
    the flags the deadline sweep would have set by now (the sweep itself is not under test)."""
    case = await world.dispatched_case("0201", text="井盖缺失")
    world.set_clock(URGENT_START)
    await world.ok("a1um", case["id"], "sign")
    doc = await world.ctx.cases.get(case["id"])
    await world.ctx.cases.update(case["id"], doc["version"],
                                 Change(sets={f"flags.{name}": value for name, value in flags.items()}))
    return case["id"]


async def suspended_between(world: World, cid: str, suspend_at: datetime, resume_at: datetime) -> tuple[dict, dict]:
    """Suspend at one instant, resume at another: the resumed case and its stored document."""
    world.set_clock(suspend_at)
    await world.ok("disp-a", cid, "suspend", {"reason": "等待"})
    world.set_clock(resume_at)
    resumed = await world.ok("disp-a", cid, "resume")
    return resumed, await world.stored(cid)


async def test_resuming_a_warned_case_keeps_the_warning_it_still_deserves(world):
    start = URGENT_START
    cid = await urgent_signed(world, warning=True)  # past 96 min of the 2h limit
    resumed, doc = await suspended_between(world, cid, start + timedelta(minutes=110), start + timedelta(minutes=170))
    assert utc(resumed["deadlines"]["handle_by"]) == start + timedelta(hours=3)
    assert resumed["flags"]["warning"] is True and resumed["flags"]["overdue"] is False
    # The warning is behind: the sweep's next step is the (moved) deadline.
    assert doc["next_due_at"].astimezone(timezone.utc) == start + timedelta(hours=3)


async def test_resuming_a_case_still_overdue_does_not_replay_the_sweep(world):
    start = URGENT_START
    cid = await urgent_signed(world, warning=True, overdue=True)
    resumed, doc = await suspended_between(world, cid, start + timedelta(hours=3), start + timedelta(hours=4))
    assert utc(resumed["deadlines"]["handle_by"]) == start + timedelta(hours=3)  # still overdue by 1h
    assert resumed["flags"]["warning"] is True and resumed["flags"]["overdue"] is True
    assert doc["next_due_at"].astimezone(timezone.utc) == start + timedelta(hours=4)


async def test_an_extension_past_an_overdue_deadline_clears_the_flags(world):
    start = URGENT_START
    cid = await urgent_signed(world, warning=True, overdue=True)
    world.set_clock(start + timedelta(hours=3))
    await world.ok("a1um", cid, "request_extension", {"duration": "4h", "reason": "需要调集设备"})
    approved = await world.ok("disp-a", cid, "approve_extension")
    assert utc(approved["deadlines"]["handle_by"]) == start + timedelta(hours=6)
    assert approved["flags"]["overdue"] is False
    # 80 % of the 6h now allowed is 4h48m: still ahead, so the warning starts over too.
    assert approved["flags"]["warning"] is False
    assert utc(approved["clock"]["warn_at"]) == start + timedelta(hours=4, minutes=48)


async def test_close_and_reopen_within_the_window(world):
    case = await world.accepted_case()
    cid = case["id"]
    await world.ok("a1so", cid, "feedback", {"result": "已处理"})
    await world.ok("gw1", cid, "check", {"passed": True})
    closed_at = at(2026, 3, 2, 10, 0)
    world.set_clock(closed_at)
    await world.ok("disp-a", cid, "close")
    await world.refused(403, "role_forbidden", "gw1", cid, "reopen", {"reason": "又有垃圾"})
    world.set_clock(closed_at + timedelta(days=31))
    await world.refused(409, "reopen_window_closed", "disp-a", cid, "reopen", {"reason": "市民再次反映"})
    world.set_clock(closed_at + timedelta(days=29))
    reopened = await world.ok("op1", cid, "reopen", {"reason": "市民再次反映"})
    assert reopened["status"] == "accepted" and reopened["counters"]["reopens"] == 1
    assert reopened["clock"]["stage"] == "handle" and reopened["closed_at"] is None
    assert utc(reopened["deadlines"]["handle_by"]) == world.ctx.calendar.add(closed_at + timedelta(days=29), "1wd")


async def test_reopen_window_is_configurable(world):
    world.ctx.config["workflow"] = {"reopen_days": 1}
    ticket = await world.ticket(type_="consultation", category="H02")
    world.set_clock(at(2026, 3, 2, 10, 0))
    await world.ok("op1", ticket["id"], "answer", {"answer": "已告知办理流程"})
    world.set_clock(at(2026, 3, 3, 11, 0))
    await world.refused(409, "reopen_window_closed", "op1", ticket["id"], "reopen", {"reason": "再问"})
    world.set_clock(at(2026, 3, 3, 9, 0))
    reopened = await world.ok("op1", ticket["id"], "reopen", {"reason": "市民补充诉求"})
    # Settled on the phone and never assigned: it goes to the dispatcher to be sent somewhere.
    assert reopened["status"] == "filed" and reopened["clock"] is None


async def test_answer_settles_a_consultation_on_the_phone(world):
    consultation = await world.ticket(type_="consultation")
    await world.refused(403, "role_forbidden", "disp-a", consultation["id"], "answer", {"answer": "x"})
    await world.refused(400, "missing_field", "op1", consultation["id"], "answer")
    closed = await world.ok("op1", consultation["id"], "answer", {"answer": "已告知社保卡补办地点"})
    assert closed["status"] == "closed" and closed["answer"]["text"] == "已告知社保卡补办地点"
    assert closed["closed_at"]
    help_ticket = await world.ticket(type_="help")
    await world.refused(409, "not_answerable", "op1", help_ticket["id"], "answer", {"answer": "x"})
    grid = await world.report()
    await world.refused(409, "not_answerable", "op1", grid["id"], "answer", {"answer": "x"})


async def test_merge_moves_the_reporters_to_the_master(world):
    master = await world.report()
    source = await world.ticket()
    await world.refused(422, "merge_target_invalid", "disp-a", source["id"], "merge", {"into": source["id"]})
    await world.refused(422, "merge_target_invalid", "disp-a", source["id"], "merge",
                        {"into": "000000000000000000000000"})
    merged = await world.ok("disp-a", source["id"], "merge", {"into": master["id"], "note": "同一事件"})
    assert merged["status"] == "merged" and merged["merged_into"]["id"] == master["id"]
    doc = await world.stored(master["id"])
    assert set(doc["reporters"]) == {"gw1", "op1"}
    assert doc["merged_from"][0]["id"] == source["id"]
    assert doc["history"][-1]["action"] == "merge_in" and doc["history"][-1]["source"] == source["id"]
    assert verify_chain(doc["history"]) is None and doc["version"] == master["version"] + 1
    # A merged case is neither a source nor a target any more.
    third = await world.report()
    await world.refused(422, "merge_target_invalid", "disp-a", third["id"], "merge", {"into": source["id"]})
    await world.refused(409, "transition_not_allowed", "disp-a", source["id"], "merge", {"into": third["id"]})


async def test_merge_target_must_be_open_and_readable(world):
    source = await world.report()
    closed = await world.ticket(type_="consultation")
    await world.ok("op1", closed["id"], "answer", {"answer": "已答复"})
    await world.refused(422, "merge_target_invalid", "disp-a", source["id"], "merge", {"into": closed["id"]})
    elsewhere = await world.ticket(point=B_POINT)
    await world.refused(422, "merge_target_invalid", "disp-a", source["id"], "merge", {"into": elsewhere["id"]})


async def test_a_merge_that_loses_its_race_leaves_the_master_untouched(world):
    """The merged case is written first: when its version guard fails nothing else is written."""
    master, source = await world.report(), await world.ticket()
    store = world.ctx.cases
    real_update = store.update

    async def losing_update(case_id, version, update):
        if case_id == source["id"]:
            return None  # somebody else changed the source in between
        return await real_update(case_id, version, update)

    store.update = losing_update
    try:
        status, body = await world.act("disp-a", source["id"], "merge", {"into": master["id"]})
    finally:
        store.update = real_update
    assert status == 409 and body["error"]["code"] == "version_conflict"
    doc = await world.stored(master["id"])
    assert doc["version"] == master["version"] and doc.get("merged_from", []) == []
    assert (await world.stored(source["id"]))["status"] == "reported"


async def test_a_merge_cut_off_before_the_master_is_finished_by_a_retry(world):
    """Two cases, two changes: if the second (the master) never happens, the same request again
    links the master once, with the merge's own time and actor, and the merged case stays as it was."""
    master, source = await world.report(), await world.ticket()
    store = world.ctx.cases
    real_update = store.update

    async def master_unreachable(case_id, version, update):
        if case_id == master["id"]:
            raise RuntimeError("process stopped here")
        return await real_update(case_id, version, update)

    world.set_clock(at(2026, 3, 2, 9, 0))
    store.update = master_unreachable
    try:
        with pytest.raises(RuntimeError):
            await world.ctx.workflow.act(User("disp-a", "dispatcher", A), source["id"], "merge",
                                         {"into": master["id"], "note": "同一事件"})
    finally:
        store.update = real_update
    cut = await world.stored(source["id"])
    assert cut["status"] == "merged" and (await world.stored(master["id"]))["version"] == master["version"]

    world.set_clock(at(2026, 3, 2, 9, 5))
    status, retried = await world.as_("disp-a").post(f"/api/cases/{source['id']}/actions/merge", {"into": master["id"]})
    assert status == 200 and retried["version"] == cut["version"]
    status, again = await world.as_("disp-a").post(f"/api/cases/{source['id']}/actions/merge", {"into": master["id"]})
    assert status == 200
    doc = await world.stored(master["id"])
    assert [link["id"] for link in doc["merged_from"]] == [source["id"]]
    assert set(doc["reporters"]) == {"gw1", "op1"}
    merge_in = doc["history"][-1]
    assert (merge_in["action"], merge_in["by"], merge_in["note"]) == ("merge_in", "disp-a", "同一事件")
    assert merge_in["at"].astimezone(timezone.utc) == at(2026, 3, 2, 9, 0)
    assert verify_chain(doc["history"]) is None and doc["version"] == master["version"] + 1


async def test_supervise_flags_any_open_case(world):
    case = await world.report()
    cid = case["id"]
    supervised = await world.ok("cmd-a1", cid, "supervise", {"note": "群众反映强烈，限期办结"})
    assert supervised["flags"]["supervised"] is True
    again = await world.ok("disp-a", cid, "supervise")
    assert len(again["supervisions"]) == 2 and again["supervisions"][0]["note"] == "群众反映强烈，限期办结"
    await world.refused(403, "role_forbidden", "gw1", cid, "supervise")
    await world.ok("disp-a", cid, "void", {"reason": "重复"})
    await world.refused(409, "transition_not_allowed", "cmd-a1", cid, "supervise")


async def test_escalate_up_the_command_levels(world):
    """三级联动: from the level of the department in charge (a street office here) up to the
    district and the city; communities and grids have no command centre to escalate to."""
    case = await world.report()
    cid = case["id"]
    served = world.ctx.city.departments[case["assignment"]["department"]["id"]].jurisdiction
    assert served == A1  # routed to the street office of A1
    seen = []
    for _ in range(2):
        escalated = await world.ok("cmd-a1", cid, "escalate", {"to": "up", "note": "街道无法协调"})
        seen.append((escalated["flags"]["escalated_to"], escalated["escalation"]["level"]))
    assert seen == [(A, "district"), (CITY_ID, "city")]
    await world.refused(409, "already_top", "cmd-a1", cid, "escalate", {"to": "up"})
    doc = await world.stored(cid)
    assert [e["escalated_to"] for e in doc["history"][-2:]] == [A, CITY_ID]
    assert G1 in doc["scope_path"]


async def test_assigned_department_may_escalate_but_not_others(world):
    case = await world.accepted_case()
    cid = case["id"]
    escalated = await world.ok("a1so", cid, "escalate", {"to": "up"})
    assert escalated["flags"]["escalated_to"] == A
    await world.refused(404, "case_not_found", "a1um", cid, "escalate", {"to": "up"})


async def test_whistle_summons_departments_who_check_in(world):
    calendar = world.ctx.calendar
    case = await world.accepted_case()
    cid = case["id"]
    await world.refused(404, "case_not_found", "cityum", cid, "checkin")
    await world.refused(422, "unknown_department", "cmd-a1", cid, "escalate", {"departments": ["nope"]})
    whistle = at(2026, 3, 2, 9, 0)
    world.set_clock(whistle)
    summoned = await world.ok("cmd-a1", cid, "escalate",
                              {"departments": ["city-um", "A-um", "city-um"], "within": "2h", "note": "吹哨报到"})
    assert [s["department"]["id"] for s in summoned["summons"]] == ["city-um", "A-um"]
    assert all(utc(s["due_at"]) == calendar.add(whistle, "2h") for s in summoned["summons"])
    assert summoned["status"] == "accepted"
    doc = await world.stored(cid)
    assert {"city-um", "A-um"} <= set(doc["departments_seen"])
    assert doc["history"][-1]["departments"] == ["city-um", "A-um"]

    # Summoned departments can read the case now, and report in.
    status, _ = await world.as_("cityum").get(f"/api/cases/{cid}")
    assert status == 200
    world.set_clock(whistle + timedelta(hours=1))
    checked_in = await world.ok("cityum", cid, "checkin", {"note": "已到场"})
    entry = next(s for s in checked_in["summons"] if s["department"]["id"] == "city-um")
    assert entry["checked_in_at"] and entry["late"] is False
    await world.refused(403, "not_summoned", "cityum", cid, "checkin")
    # Summoned is not assigned: they may not act on the case itself.
    await world.refused(403, "not_assigned", "cityum", cid, "feedback", {"result": "x"})
    world.set_clock(whistle + timedelta(hours=3))
    late = await world.ok("aum", cid, "checkin")
    entry = next(s for s in late["summons"] if s["department"]["id"] == "A-um")
    assert entry["late"] is True
    assert (await world.stored(cid))["history"][-1]["late"] is True
    await world.refused(403, "not_summoned", "a1so", cid, "checkin")


async def test_relocate_gives_a_ticket_its_place_and_its_department(world):
    ticket = await world.ticket(point=None, address="某个登记簿里没有的地址")
    cid = ticket["id"]
    assert ticket["flags"]["needs_location"] is True and ticket["location"] is None
    await world.refused(409, "needs_location", "disp-city", cid, "file")
    await world.refused(422, "outside_city", "op1", cid, "relocate",
                        {"location": {"type": "Point", "coordinates": [120.0, 30.0]}})
    located = await world.ok("op1", cid, "relocate",
                             {"location": {"type": "Point", "coordinates": G1_POINT}, "address": "幸福路1号"})
    assert located["flags"]["needs_location"] is False
    assert located["jurisdiction"]["grid"]["id"] == G1
    assert located["assignment"]["department"]["id"] == "A1a-cs" and located["address"] == "幸福路1号"
    doc = await world.stored(cid)
    assert G1 in doc["scope_path"] and A in doc["scope_path"]
    # Now inside district A: its dispatcher takes over.
    await world.ok("disp-a", cid, "file")
    dispatched = await world.ok("disp-a", cid, "dispatch")
    assert dispatched["assignment"]["department"]["id"] == "A1a-cs"


async def test_every_history_entry_chains_through_a_long_life(world):
    case = await world.accepted_case()
    cid = case["id"]
    steps = [
        ("cmd-a1", "supervise", {}), ("a1so", "request_extension", {"duration": "4wh", "reason": "材料"}),
        ("disp-a", "approve_extension", {}), ("disp-a", "suspend", {"reason": "等待"}),
        ("disp-a", "resume", {}), ("a1so", "feedback", {"result": "好了"}),
        ("gw1", "check", {"passed": False}), ("a1so", "feedback", {"result": "真好了"}),
        ("gw1", "check", {"passed": True}), ("disp-a", "close", {}), ("disp-a", "reopen", {"reason": "反复"}),
        ("a1so", "feedback", {"result": "第三次"}), ("gw1", "check", {"passed": True}), ("disp-a", "close", {}),
    ]
    for username, action, body in steps:
        await world.ok(username, cid, action, body)
    doc = await world.stored(cid)
    assert verify_chain(doc["history"]) is None
    assert len(doc["history"]) == 4 + len(steps)
    assert doc["counters"] == {"returns": 0, "reworks": 1, "extensions": 1, "reopens": 1}


async def test_actions_use_the_injected_clock(world):
    case = await world.report()
    moment = at(2026, 5, 6, 10, 30)
    world.set_clock(moment)
    filed = await world.ok("disp-a", case["id"], "file")
    doc = await world.stored(case["id"])
    assert doc["history"][-1]["at"].astimezone(timezone.utc) == moment
    assert utc(filed["updated_at"]) == moment


async def test_allowed_actions_follow_role_and_state(world):
    case = await world.report()
    doc = await world.stored(case["id"])
    workflow = world.ctx.workflow

    dispatcher = User("disp-a", "dispatcher", A)
    worker = User("gw1", "grid_worker", G1)
    stranger = User("disp-b", "dispatcher", "990102")
    assert set(workflow.allowed_actions(dispatcher, doc)) == {"relocate", "file", "void", "merge", "supervise",
                                                              "escalate"}
    assert workflow.allowed_actions(worker, doc) == ["verify"]
    assert workflow.allowed_actions(stranger, doc) == []


async def test_simultaneous_merges_of_one_source_link_it_once(world):
    master, source = await world.report(), await world.ticket()
    results = await asyncio.gather(
        world.act("disp-a", source["id"], "merge", {"into": master["id"], "version": source["version"]}),
        world.act("op1", source["id"], "merge", {"into": master["id"], "version": source["version"]}),
    )
    assert sorted(status for status, _ in results) == [200, 409]
    doc = await world.stored(master["id"])
    assert len(doc["merged_from"]) == 1 and verify_chain(doc["history"]) is None


# -- the demo city ----------------------------------------------------------------------------


async def test_demo_city_round_trip(demo):
    """The demo city's own accounts take a grid report and a hotline ticket round the loop."""
    world = World(demo)
    ctx = demo.ctx
    users = {u["username"]: u for u in ctx.city.users}
    worker, office = users["grid01"], users["dept_hubin"]
    grid = ctx.city.jurisdictions[str(worker["scope"])]
    point = grid.geometry.representative_point()
    code = next(c.code for c in ctx.city.categories.values() if c.kind == "event" and not c.auto_dispatch)
    case = await world.report(code, point=[round(point.x, 6), round(point.y, 6)], username="grid01",
                              text="路面有一处破损")
    cid = case["id"]
    await world.ok("dispatcher01", cid, "file")
    await world.ok("dispatcher01", cid, "dispatch", {"department": office["department"]})
    await world.ok("dept_hubin", cid, "sign")
    await world.ok("dept_hubin", cid, "feedback", {"result": "已修复", "photos": [await world.photo("dept_hubin")]})
    await world.ok("grid01", cid, "check", {"passed": True})
    closed = await world.ok("dispatcher01", cid, "close")
    assert closed["status"] == "closed"
    assert actions_of(await world.stored(cid))[-6:] == ["file", "dispatch", "sign", "feedback", "check", "close"]

    status, ticket = await world.as_("operator01").post("/api/tickets", {
        "channel": "12345", "type": "consultation", "content": "请问居住证怎么办理", "category": "H-consultation",
        "caller": {"name": "李四", "phone": "13900001111"},
        "location": {"type": "Point", "coordinates": [round(point.x, 6), round(point.y, 6)]},
    })
    assert status == 201, ticket
    answered = await world.ok("operator01", ticket["id"], "answer", {"answer": "已告知所需材料和办理地点"})
    assert answered["status"] == "closed"
    status, body = await world.as_("admin").get("/api/audit/verify")
    assert status == 200 and body["ok"] is True and body["checked"] == 2

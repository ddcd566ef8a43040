"""`case.actions` (SPEC §3) is the truth: for several roles × states, every listed action
succeeds and every action of the table that is not listed is refused.

Each attempt runs on a fresh copy of the case (inserted under a new id), so one attempt never
changes the state the next one starts from. Bodies are minimal and valid: a listed action that
fails on one would mean the list promised something the server then refuses.
"""

from __future__ import annotations

import copy
import uuid
from datetime import timedelta

import pytest

from dispatch.workflow.transitions import TABLE
from test_workflow import G1_POINT, World, city_dir, world  # noqa: F401  (fixtures)

pytestmark = pytest.mark.asyncio

USERS = ("disp-a", "disp-b", "disp-city", "op1", "gw1", "cmd-a1", "a1so", "a1um")

BODIES = {
    "verify": {"valid": True},
    "relocate": {"location": {"type": "Point", "coordinates": G1_POINT}},
    "void": {"reason": "重复上报"},
    "dispatch": {"department": "A1-um"},
    "return": {"reason": "不属于本部门职责"},
    "request_extension": {"duration": "1wd", "reason": "需协调产权单位"},
    "suspend": {"reason": "需等待汛期结束"},
    "feedback": {"result": "已清理"},
    "check": {"passed": True, "satisfaction": "satisfied", "resolved": True},
    "reopen": {"reason": "群众反映仍未解决"},
    "answer": {"answer": "已电话答复"},
    "escalate": {"departments": ["A1-um"]},  # 吹哨 is open on any open case; "up" ends at the top
    "reject_return": {"reason": "属于本部门职责，请继续办理"},
    "support_feedback": {"result": "已配合清理"},
}
REFUSED = (403, 404, 409)


async def states(world: World) -> dict[str, str]:
    """One case in each state (and flag) worth listing actions for: name → case id."""
    out = {}
    out["grid reported"] = (await world.report())["id"]
    out["consultation reported"] = (await world.ticket(type_="consultation"))["id"]
    out["ticket without a place"] = (await world.ticket(point=None))["id"]
    filed = await world.report()
    await world.ok("disp-a", filed["id"], "file")
    out["filed"] = filed["id"]
    dispatched = await world.report()
    await world.ok("disp-a", dispatched["id"], "file")
    await world.ok("disp-a", dispatched["id"], "dispatch")
    out["dispatched"] = dispatched["id"]
    out["accepted"] = (await world.accepted_case())["id"]
    pending = await world.accepted_case()
    await world.ok("a1so", pending["id"], "request_extension", BODIES["request_extension"])
    out["extension pending"] = pending["id"]
    summoned = await world.accepted_case()
    await world.ok("disp-a", summoned["id"], "escalate", {"departments": ["A1-um"]})
    out["summoned"] = summoned["id"]
    handled = await world.accepted_case()
    await world.ok("a1so", handled["id"], "feedback", BODIES["feedback"])
    out["handled"] = handled["id"]
    checked = await world.accepted_case()
    await world.ok("a1so", checked["id"], "feedback", BODIES["feedback"])
    await world.ok("gw1", checked["id"], "check", {"passed": True})
    out["checked"] = checked["id"]
    closed = await world.accepted_case()
    await world.ok("a1so", closed["id"], "feedback", BODIES["feedback"])
    await world.ok("gw1", closed["id"], "check", {"passed": True})
    await world.ok("disp-a", closed["id"], "close")
    out["closed"] = closed["id"]
    suspended = await world.accepted_case()
    await world.ok("disp-a", suspended["id"], "suspend", BODIES["suspend"])
    out["suspended"] = suspended["id"]
    returning = await world.accepted_case()
    await world.ok("a1so", returning["id"], "return", BODIES["return"])
    out["return pending"] = returning["id"]
    # 主办 A1-so with 协办 A1-um: its part waiting to be signed, then signed.
    joint = await world.report()
    await world.ok("disp-a", joint["id"], "file")
    await world.ok("disp-a", joint["id"], "dispatch", {"support": ["A1-um"]})
    out["joint dispatched"] = joint["id"]
    await world.ok("a1so", joint["id"], "sign")
    out["joint, lead signed"] = joint["id"] = await fresh_copy(world, joint["id"])
    await world.ok("a1um", joint["id"], "support_sign")
    out["joint, part signed"] = joint["id"]
    return out


async def fresh_copy(world: World, case_id: str) -> str:
    doc = copy.deepcopy(await world.stored(case_id))
    doc["_id"] = uuid.uuid4().hex
    doc["number"] = await world.ctx.cases.next_number(doc["number"].split("-")[0])  # numbers are unique
    doc.pop("client_id", None)
    await world.ctx.cases.insert(doc)
    return doc["_id"]


async def listed(world: World, username: str, case_id: str) -> list[str] | None:
    status, case = await world.as_(username).get(f"/api/cases/{case_id}")
    if status == 404:
        return None  # not readable: nothing may be done to it either
    assert status == 200, case
    assert all(a["label"] for a in case["actions"]), case["actions"]
    return [a["name"] for a in case["actions"]]


async def check_list_matches_outcomes(world: World, cases: dict[str, str], merge_into: str) -> int:
    tried = 0
    for state, case_id in cases.items():
        for username in USERS:
            names = await listed(world, username, case_id) or []
            for transition in TABLE:
                action = transition.action
                body = {"into": merge_into} if action == "merge" else BODIES.get(action, {})
                status, payload = await world.as_(username).post(
                    f"/api/cases/{await fresh_copy(world, case_id)}/actions/{action}", body)
                tried += 1
                if action in names:
                    assert status == 200, (state, username, action, payload)
                else:
                    assert status in REFUSED, (state, username, action, status, payload)
    return tried


async def test_listed_actions_are_exactly_those_that_succeed(world):
    cases = await states(world)
    master = (await world.report())["id"]
    tried = await check_list_matches_outcomes(world, cases, master)
    assert tried == len(cases) * len(USERS) * len(TABLE)


async def test_flags_narrow_the_list(world):
    """The flags the effects refuse on are already applied to the list."""
    cases = await states(world)
    assert "file" not in await listed(world, "disp-city", cases["ticket without a place"])
    assert "file" in await listed(world, "disp-a", cases["grid reported"])
    assert "answer" in await listed(world, "op1", cases["consultation reported"])
    assert "answer" not in await listed(world, "op1", cases["ticket without a place"])
    assert {"approve_extension", "reject_extension"} <= set(await listed(world, "disp-a", cases["extension pending"]))
    assert "request_extension" not in await listed(world, "a1so", cases["extension pending"])
    assert not {"approve_extension", "reject_extension"} & set(await listed(world, "disp-a", cases["accepted"]))
    assert "checkin" in await listed(world, "a1um", cases["summoned"])
    assert "checkin" not in await listed(world, "a1so", cases["accepted"])


async def test_reopen_leaves_the_list_when_its_window_closes(world):
    cases = await states(world)
    assert "reopen" in await listed(world, "disp-a", cases["closed"])
    world.ctx.clock.advance(days=31)
    assert "reopen" not in await listed(world, "disp-a", cases["closed"])
    status, payload = await world.act("disp-a", cases["closed"], "reopen", BODIES["reopen"])
    assert status == 409 and payload["error"]["code"] == "reopen_window_closed"


async def test_every_response_that_carries_a_case_lists_its_actions(world):
    report = await world.report()
    assert [a["name"] for a in report["actions"]] == ["verify"]
    assert all(a["label"] == "核实" for a in report["actions"])
    ticket = await world.ticket()
    assert "merge" in [a["name"] for a in ticket["actions"]]
    filed = await world.ok("disp-a", report["id"], "file")
    assert "dispatch" in [a["name"] for a in filed["actions"]]
    status, page = await world.as_("disp-a").get("/api/cases?limit=50")
    assert status == 200
    item = next(i for i in page["items"] if i["id"] == report["id"])
    assert item["actions"] == filed["actions"]


async def test_labels_come_from_the_table(world):
    status, labels = await world.as_("gw1").get("/api/labels")
    assert status == 200
    assert labels["statuses"]["reported"] == "已上报"
    assert {t.action: t.label for t in TABLE}.items() <= labels["actions"].items()
    assert labels["actions"]["report"] == "上报"
    assert labels["stages"] == {"sign": "签收", "handle": "处置", "check": "核查"}

"""KPIs (SPEC §5): hand-computed figures on a small constructed data set, scope, exports, snapshot.

The cases are built directly (history in the §4 contract format) so every figure below can be
checked by hand; times are city time (Asia/Shanghai) in March 2026 on the small city's clock
(08:30-12:00, 13:30-17:30; Saturday 2026-02-28 is a make-up workday, 调休).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from support import start_server
from dispatch.kpi import stats
from dispatch.workflow.audit import chain_entry
from dispatch.workflow.deadlines import BusinessCalendar
from dispatch.domain import scope_path
from small_city import A, A1, A1A, A2, B, B1, CITY_ID, small_city_data, write_small_city
from dispatch.store.query import PeriodQuery

TZ = ZoneInfo("Asia/Shanghai")
MARCH = "from=2026-03-01&to=2026-03-31"

PLACES = {
    A1: ({"id": A, "name": "甲区"}, {"id": A1, "name": "一街道"}),
    A2: ({"id": A, "name": "甲区"}, {"id": A2, "name": "二街道"}),
    B1: ({"id": B, "name": "乙区"}, {"id": B1, "name": "北街道"}),
}
DEPARTMENTS = {"A-water": "甲区林水局", "A1-so": "一街道办事处", "A2-so": "二街道办事处", "B1-so": "北街道办事处"}
TO_STATUS = {"report": "reported", "file": "filed", "dispatch": "dispatched", "sign": "accepted",
             "return": "filed", "feedback": "handled", "close": "closed", "void": "void", "answer": "closed"}


def t(text: str) -> datetime:
    """City time "2026-03-02 09:00" → aware UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ).astimezone(timezone.utc)


def day(d: str, *steps):
    """Steps on one day: (action, "HH:MM", extra...) → (action, "d HH:MM", extra...)."""
    return [(s[0], f"{d} {s[1]}", *s[2:]) for s in steps]


def make_case(cid, street, steps, *, source="grid", category=("0105", "河道漂浮物"), deadlines=None,
              callback=None, overdue=False, clock=None):
    """A stored case whose history follows `steps`: (action, time, {extra fields}?)."""
    history, status, seen, department = [], None, [], None
    for step in steps:
        action, at, extra = step[0], t(step[1]), (step[2] if len(step) > 2 else {})
        if action == "dispatch":
            department = extra["department"]
            if department not in seen:
                seen.append(department)
            extra = {"department": {"id": department, "name": DEPARTMENTS[department]}}
        to = TO_STATUS.get(action, status)
        if action == "check":
            to = "checked" if extra.get("passed", True) else "accepted"
        history.append(chain_entry(history, {"at": at, "by": "tester", "action": action, "from": status,
                                             "to": to, "note": "", **extra}))
        status = to
    jurisdiction = None
    if street:
        district, street_node = PLACES[street]
        jurisdiction = {"district": district, "street": street_node, "community": None, "grid": None}
    closed = [e["at"] for e in history if e["action"] in ("close", "answer")]
    doc = {
        "_id": cid, "number": f"2026-{cid}", "source": source,
        "category": {"code": category[0], "name": category[1], "kind": "event"},
        "status": status, "priority": "normal", "jurisdiction": jurisdiction,
        "scope_path": scope_path(CITY_ID, jurisdiction),
        "assignment": {"department": {"id": department, "name": DEPARTMENTS[department]} if department else None},
        "deadlines": {"sign_by": None, "handle_by": None, "check_by": None,
                      **{k: t(v) for k, v in (deadlines or {}).items()}},
        "clock": clock,
        "flags": {"warning": False, "overdue": overdue, "supervised": False, "escalated_to": None},
        "counters": {"returns": 0, "reworks": 0, "extensions": 0},
        "departments_seen": seen, "callback": callback,
        "created_at": history[0]["at"], "updated_at": history[-1]["at"], "version": len(history),
        "history": history,
    }
    if status == "closed":
        doc["closed_at"] = closed[-1]
    return doc


def opened(d, hhmm, department):
    """report, file and dispatch at the same minute."""
    return day(d, ("report", hhmm), ("file", hhmm), ("dispatch", hhmm, {"department": department}))


HOTLINE = {"source": "hotline", "category": ("H01", "噪音扰民")}


def data_set() -> list[dict]:
    return [
        # C1 one-street, water: signed, handled and closed on time.
        make_case("c01", A1, day("2026-03-02", ("report", "09:00"), ("file", "09:05"),
                                 ("dispatch", "09:10", {"department": "A-water"}), ("sign", "09:40"),
                                 ("feedback", "15:00"), ("check", "16:00", {"passed": True}), ("close", "16:30")),
                  deadlines={"sign_by": "2026-03-02 10:10", "handle_by": "2026-03-03 09:40"}),
        # C2 returned by water, re-dispatched to the street office, reworked once, handled late.
        make_case("c02", A1, opened("2026-03-02", "10:00", "A-water") + day(
            "2026-03-02", ("return", "10:30"), ("dispatch", "11:00", {"department": "A1-so"}), ("sign", "11:30"),
        ) + day("2026-03-03", ("feedback", "10:00"), ("check", "11:00", {"passed": False}),
                ("feedback", "14:00"), ("check", "15:00", {"passed": True}), ("close", "15:30")),
                  deadlines={"sign_by": "2026-03-02 12:00", "handle_by": "2026-03-03 11:30"}),
        # C3 street office, on time.
        make_case("c03", A1, opened("2026-03-03", "09:00", "A1-so") + day(
            "2026-03-03", ("sign", "09:30"), ("feedback", "11:00"), ("check", "12:00", {"passed": True}),
            ("close", "14:00")),
                  deadlines={"sign_by": "2026-03-03 10:00", "handle_by": "2026-03-04 09:30"}),
        # C4 two-street: signed late, went overdue, handled late, closed.
        make_case("c04", A2, opened("2026-03-04", "09:00", "A2-so") + day("2026-03-04", ("sign", "11:00"))
                  + day("2026-03-05", ("overdue", "11:00"), ("feedback", "16:00"),
                        ("check", "17:00", {"passed": True}))
                  + day("2026-03-06", ("close", "09:00")),
                  deadlines={"sign_by": "2026-03-04 10:00", "handle_by": "2026-03-05 11:00"}),
        # C5 north street: signed, never handled, overdue and still open.
        make_case("c05", B1, opened("2026-03-05", "09:00", "B1-so") + day("2026-03-05", ("sign", "09:20"))
                  + day("2026-03-06", ("overdue", "09:20")),
                  deadlines={"sign_by": "2026-03-05 10:00", "handle_by": "2026-03-06 09:20"}, overdue=True,
                  clock={"stage": "handle", "deadline": t("2026-03-06 09:20")}),
        # C6-C9 hotline tickets with callbacks: satisfied+resolved, basic, unsatisfied, not reached.
        make_case("c06", A1, opened("2026-03-09", "09:00", "A-water") + day(
            "2026-03-09", ("sign", "09:10"), ("feedback", "10:00"), ("check", "11:00", {"passed": True}),
            ("close", "11:30")), **HOTLINE,
                  deadlines={"sign_by": "2026-03-09 10:00", "handle_by": "2026-03-10 09:10"},
                  callback={"satisfaction": "satisfied", "resolved": True, "contacted": True}),
        make_case("c07", A1, opened("2026-03-10", "09:00", "A-water") + day(
            "2026-03-10", ("sign", "09:10"), ("feedback", "10:00"), ("check", "11:00", {"passed": True}),
            ("close", "11:30")), **HOTLINE,
                  deadlines={"sign_by": "2026-03-10 10:00", "handle_by": "2026-03-11 09:10"},
                  callback={"satisfaction": "basic", "resolved": False, "contacted": True}),
        make_case("c08", B1, opened("2026-03-10", "09:00", "B1-so") + day(
            "2026-03-10", ("sign", "09:10"), ("feedback", "10:00"), ("check", "11:00", {"passed": True}),
            ("close", "11:30")), **HOTLINE,
                  deadlines={"sign_by": "2026-03-10 10:00", "handle_by": "2026-03-11 09:10"},
                  callback={"satisfaction": "unsatisfied", "resolved": False, "contacted": True}),
        make_case("c09", A2, opened("2026-03-11", "09:00", "A2-so") + day(
            "2026-03-11", ("sign", "09:10"), ("feedback", "10:00"), ("check", "11:00", {"passed": True})),
                  **HOTLINE, deadlines={"sign_by": "2026-03-11 10:00", "handle_by": "2026-03-12 09:10"},
                  callback={"satisfaction": None, "resolved": None, "contacted": False}),
        # C10 one-street case sent to the wrong street office: signed, returned, then voided.
        make_case("c10", A1, opened("2026-03-12", "09:30", "B1-so") + day(
            "2026-03-12", ("sign", "09:40"), ("return", "10:00"), ("void", "10:30")),
                  deadlines={"sign_by": "2026-03-12 10:30", "handle_by": "2026-03-13 09:40"}),
        # C11 reported and dispatched before March (Friday), handled Monday 2 March, closed.
        make_case("c11", B1, opened("2026-02-27", "16:00", "B1-so") + day("2026-02-27", ("sign", "16:30"))
                  + day("2026-03-02", ("feedback", "10:00"), ("check", "10:30", {"passed": True}),
                        ("close", "11:00")),
                  deadlines={"sign_by": "2026-02-27 17:00", "handle_by": "2026-03-02 16:30"}),
        # C12 April: open and overdue now, so only in the overdue list and "当前超期在办数".
        make_case("c12", A1, opened("2026-04-02", "09:00", "A-water") + day("2026-04-02", ("overdue", "10:00")),
                  deadlines={"sign_by": "2026-04-02 10:00"}, overdue=True,
                  clock={"stage": "sign", "deadline": t("2026-04-02 10:00")}),
        # C13 a hotline ticket without a location, waiting in the manual queue.
        make_case("c13", None, day("2026-03-13", ("report", "09:00")), **HOTLINE),
    ]


EXTRA_USERS = [
    {"username": "cmd-city", "password": "x", "role": "commander", "scope": CITY_ID},
    {"username": "disp-city", "password": "x", "role": "dispatcher", "scope": CITY_ID},
    {"username": "so-a1", "password": "x", "role": "department", "scope": A1, "department": "A1-so"},
]


@pytest.fixture
async def kpi(tmp_path_factory):
    data = small_city_data()
    data["users.yaml"] = data["users.yaml"] + EXTRA_USERS
    path = write_small_city(tmp_path_factory.mktemp("city"), data)
    server, client = await start_server(Path(path))
    for doc in data_set():
        await client.ctx.cases.insert(doc)
    yield client
    server.stop()
    await client.ctx.storage.close()


async def stats_as(client, username, query=MARCH, path="/api/stats"):
    user = client.as_user()
    await user.login(username, "admin-pass" if username == "admin" else "x")
    return await user.get(f"{path}?{query}" if query else path)


def figures(row: dict) -> dict:
    return {k["key"]: k for k in row["kpis"]}


def values(row: dict) -> dict:
    return {k["key"]: k["value"] for k in row["kpis"]}


def row_of(body: dict, group_id) -> dict:
    return next(r for r in body["rows"] if r["group"]["id"] == group_id)


# --------------------------------------------------------------------------------------------
# The figures, by hand
# --------------------------------------------------------------------------------------------

# C1 4h20m/5h50m, C2 6.5/23, C3 2/2, C4 13/31, C6-C9 1/1 each, C11 10.5/66 (Fri 16:00 → Mon 10:00
# with the make-up Saturday): 9 first feedbacks after a dispatch.
WORKING_HOURS = 4 + 1 / 3 + 6.5 + 2 + 13 + 4 + 10.5
NATURAL_HOURS = 5 + 5 / 6 + 23 + 2 + 31 + 4 + 66


async def test_city_totals_match_hand_computed_figures(kpi):
    status, body = await stats_as(kpi, "cmd-city")
    assert status == 200, body
    total = figures(body["total"])
    assert {k: total[k]["value"] for k in ("reported", "filed", "closed", "overdue", "open_overdue", "due")} == {
        "reported": 11,      # C1-C10, C13 (C11 February, C12 April)
        "filed": 10,         # C1-C10
        "closed": 8,         # C1-C4, C6-C8, C11
        "overdue": 2,        # C4, C5 went overdue in March
        "open_overdue": 2,   # C5, C12 now
        "due": 10,           # handle_by in March: C1-C9, C11 (C10 is void)
    }

    def ratio(key, num, den):
        assert (total[key]["numerator"], total[key]["denominator"]) == (num, den), key
        assert total[key]["value"] == round(num / den, 4), key

    ratio("close_rate", 8, 10)
    ratio("on_time_close_rate", 6, 10)         # C2 and C4 handled late, C5 not handled, C9 not closed
    ratio("on_time_handle_rate", 7, 10)        # C1, C3, C6-C9, C11
    ratio("rework_rate", 1, 10)                # 10 feedbacks (C2 twice), C2's first one failed the check
    ratio("return_rate", 2, 11)                # 11 dispatches (C2 twice); C2's first and C10 returned
    ratio("accurate_dispatch_rate", 9, 11)
    ratio("response_rate", 9, 11)              # C2's first dispatch returned unsigned, C4 signed late
    ratio("satisfaction_rate", 2, 3)           # C9 not reached
    ratio("resolution_rate", 1, 3)
    assert total["avg_handle_hours_working"]["denominator"] == 9
    assert total["avg_handle_hours_working"]["value"] == round(WORKING_HOURS / 9, 2) == 4.48
    assert total["avg_handle_hours_natural"]["value"] == round(NATURAL_HOURS / 9, 2) == 14.65
    assert body["total"]["by_status"]["closed"] == 7          # reported in March and closed now
    assert body["total"]["by_status"]["accepted"] == 1        # C5
    assert body["total"]["by_status"]["void"] == 1
    assert sum(body["total"]["by_status"].values()) == 11
    for item in body["total"]["kpis"]:
        assert item["formula"] and item["name"]
    assert total["close_rate"]["name"] == "结案率"
    assert body["period"]["first_day"] == "2026-03-01" and body["period"]["last_day"] == "2026-03-31"
    assert body["scope"] == {"id": CITY_ID, "name": "示例市", "level": "city"}


async def test_rows_per_department_charge_each_event_to_the_department_responsible_then(kpi):
    status, body = await stats_as(kpi, "cmd-city", MARCH + "&group_by=department")
    assert status == 200, body
    water, street_office = values(row_of(body, "A-water")), values(row_of(body, "A1-so"))
    # C1, C6, C7 and C2 up to its return.
    assert water["reported"] == 4 and figures(row_of(body, "A-water"))["return_rate"]["denominator"] == 4
    assert water["closed"] == 3 and water["due"] == 3 and water["open_overdue"] == 1  # C12
    assert water["return_rate"] == 0.25 and water["response_rate"] == 0.75
    assert water["satisfaction_rate"] == 1.0 and water["resolution_rate"] == 0.5
    # C2 after its re-dispatch, and C3.
    assert street_office["reported"] == 1 and street_office["closed"] == 2 and street_office["due"] == 2
    assert street_office["on_time_close_rate"] == 0.5
    assert street_office["rework_rate"] == round(1 / 3, 4)
    assert street_office["return_rate"] == 0.0
    assert street_office["satisfaction_rate"] is None          # no callbacks: no basis, not 0
    unassigned = row_of(body, None)
    assert unassigned["group"]["name"] == "未派遣" and values(unassigned)["reported"] == 1  # C13
    # Departments serving the city with nothing to count still get a row.
    assert values(row_of(body, "city-gas"))["reported"] == 0
    assert sum(values(r)["reported"] for r in body["rows"]) == 11


async def test_rows_per_district_and_street(kpi):
    status, body = await stats_as(kpi, "cmd-city", MARCH + "&group_by=district")
    assert status == 200
    assert {r["group"]["id"]: values(r)["reported"] for r in body["rows"]} == {A: 8, B: 2, None: 1}
    status, body = await stats_as(kpi, "cmd-city", MARCH + "&group_by=street")
    streets = {r["group"]["id"]: r for r in body["rows"]}
    assert values(streets[A1])["reported"] == 6 and values(streets[A2])["reported"] == 2
    assert streets[A1]["group"]["district"] == "甲区"
    assert values(streets[B1])["closed"] == 2       # C8, C11


async def test_overdue_list_is_current_open_overdue_cases_most_overdue_first(kpi):
    status, body = await stats_as(kpi, "disp-city")
    assert status == 200
    items = body["overdue"]["items"]
    assert [i["id"] for i in items] == ["c05", "c12"]
    assert items[0] | {"overdue_hours": None} == {
        "id": "c05", "number": "2026-c05", "status": "accepted", "category": "河道漂浮物",
        "department": "北街道办事处", "district": "乙区", "street": "北街道",
        "deadline": "2026-03-06T09:20:00+08:00", "overdue_hours": None,
    }
    assert items[0]["overdue_hours"] > 24 * 200
    status, body = await stats_as(kpi, "disp-city", MARCH + "&top=1")
    assert [i["id"] for i in body["overdue"]["items"]] == ["c05"] and body["overdue"]["count"] == 2


async def test_empty_period_gives_zero_counts_and_null_ratios(kpi):
    status, body = await stats_as(kpi, "cmd-city", "from=2025-01-01&to=2025-01-31&group_by=street")
    assert status == 200
    total = figures(body["total"])
    assert total["reported"]["value"] == 0 and total["open_overdue"]["value"] == 2
    for key in ("close_rate", "on_time_close_rate", "on_time_handle_rate", "rework_rate", "return_rate",
                "accurate_dispatch_rate", "response_rate", "satisfaction_rate", "resolution_rate",
                "avg_handle_hours_working", "avg_handle_hours_natural"):
        assert total[key]["value"] is None, key
        assert total[key]["denominator"] == 0
    # Every street of the scope is listed, empty or not.
    assert {A1, A2, B1} <= {r["group"]["id"] for r in body["rows"]}


# --------------------------------------------------------------------------------------------
# Who sees what
# --------------------------------------------------------------------------------------------


async def test_street_commander_sees_only_their_street(kpi):
    status, body = await stats_as(kpi, "cmd-a1", MARCH + "&group_by=street")
    assert status == 200
    assert body["scope"]["id"] == A1
    assert values(body["total"])["reported"] == 6           # C1, C2, C3, C6, C7, C10
    assert [r["group"]["id"] for r in body["rows"]] == [A1]
    assert [i["id"] for i in body["overdue"]["items"]] == ["c12"]
    # A community inside the street is fine; the district, the city or another street is not.
    status, _ = await stats_as(kpi, "cmd-a1", MARCH + f"&scope={A1A}")
    assert status == 200
    for scope in (A, CITY_ID, A2, B1):
        status, body = await stats_as(kpi, "cmd-a1", MARCH + f"&scope={scope}")
        assert status == 403 and body["error"]["code"] == "scope_forbidden", scope


async def test_district_dispatcher_narrows_to_a_street(kpi):
    status, body = await stats_as(kpi, "disp-a", MARCH + f"&scope={A2}")
    assert status == 200 and values(body["total"])["reported"] == 2     # C4, C9
    status, body = await stats_as(kpi, "disp-a", MARCH + "&group_by=street")
    assert {r["group"]["id"] for r in body["rows"]} == {A1, A2}
    status, body = await stats_as(kpi, "disp-a", MARCH + f"&scope={B}")
    assert status == 403


async def test_department_sees_only_its_own_share(kpi):
    status, body = await stats_as(kpi, "water-a")
    assert status == 200
    assert [r["group"]["id"] for r in body["rows"]] == ["A-water"]
    assert values(body["total"]) == values(body["rows"][0])
    total = values(body["total"])
    assert total["reported"] == 4 and total["closed"] == 3
    assert total["return_rate"] == 0.25
    assert [i["id"] for i in body["overdue"]["items"]] == ["c12"]

    status, body = await stats_as(kpi, "so-a1")
    total = figures(body["total"])
    assert total["closed"]["value"] == 2 and total["reported"]["value"] == 1
    assert (total["rework_rate"]["numerator"], total["rework_rate"]["denominator"]) == (1, 3)
    assert total["return_rate"]["denominator"] == 2    # C2's second dispatch (not water's first), C3
    assert body["overdue"]["items"] == []


def moved_on(cid, d):
    """Dispatched to water, returned, sent to the street office, which signed and let it run over."""
    next_day = f"2026-03-{int(d[-2:]) + 1:02d}"
    return make_case(cid, A1, opened(d, "09:00", "A-water") + day(
        d, ("return", "09:30"), ("dispatch", "10:00", {"department": "A1-so"}), ("sign", "10:10"))
        + day(next_day, ("overdue", "10:10")), overdue=True,
        clock={"stage": "handle", "deadline": t(f"{next_day} 10:10")})


def held_by_water(cid, d):
    next_day = f"2026-05-{int(d[-2:]) + 1:02d}"
    return make_case(cid, A1, opened(d, "09:00", "A-water") + day(d, ("sign", "09:10"))
                     + day(next_day, ("overdue", "09:10")), overdue=True,
                     clock={"stage": "handle", "deadline": t(f"{next_day} 09:10")})


async def test_a_department_s_overdue_list_passes_over_the_cases_it_no_longer_holds(tmp_path_factory):
    """A department's list of its most overdue is read by stage deadline, oldest months first
    (the server store stops once it has read enough): cases the department once held that ran
    over earlier than its own, and are now another's, make it read further, not answer short."""
    data = small_city_data()
    data["users.yaml"] = data["users.yaml"] + EXTRA_USERS
    server, client = await start_server(Path(write_small_city(tmp_path_factory.mktemp("city"), data)))
    try:
        for doc in [moved_on(f"m{n}", f"2026-03-0{n + 2}") for n in range(5)] + \
                   [held_by_water(f"w{n}", f"2026-05-0{n + 4}") for n in range(3)]:
            await client.ctx.cases.insert(doc)
        status, body = await stats_as(client, "water-a", MARCH + "&top=2")
        assert status == 200, body
        assert [i["id"] for i in body["overdue"]["items"]] == ["w0", "w1"]
        status, body = await stats_as(client, "so-a1", MARCH + "&top=2")
        assert [i["id"] for i in body["overdue"]["items"]] == ["m0", "m1"]
        status, body = await stats_as(client, "disp-city", MARCH + "&top=3")
        assert [i["id"] for i in body["overdue"]["items"]] == ["m0", "m1", "m2"]
    finally:
        server.stop()
        await client.ctx.storage.close()


async def test_roles_and_bad_parameters(kpi):
    for username in ("gw1", "op1"):
        status, body = await stats_as(kpi, username)
        assert status == 403 and body["error"]["code"] == "role_forbidden"
    status, body = await kpi.get("/api/stats")
    assert status == 401
    status, body = await stats_as(kpi, "admin", MARCH + "&scope=nowhere")
    assert status == 422 and body["error"]["code"] == "unknown_scope"
    status, body = await stats_as(kpi, "admin", "from=2026-13-01")
    assert status == 400 and body["error"]["field"] == "from"
    status, body = await stats_as(kpi, "admin", "from=2026-03-31&to=2026-03-01")
    assert status == 400
    status, body = await stats_as(kpi, "admin", MARCH + "&group_by=category")
    assert status == 400
    status, body = await stats_as(kpi, "admin", MARCH + "&scope[$ne]=1")
    assert status == 200      # an unknown parameter is ignored, never passed to the store


async def test_default_period_is_the_current_month(kpi):
    status, body = await stats_as(kpi, "admin", None)
    assert status == 200
    today = datetime.now(TZ).date()
    assert body["period"]["first_day"] == today.replace(day=1).isoformat()
    assert body["period"]["last_day"][:7] == today.isoformat()[:7]


# --------------------------------------------------------------------------------------------
# Exports
# --------------------------------------------------------------------------------------------


async def fetch_export(client, username, fmt, query=MARCH):
    user = client.as_user()
    await user.login(username, "x")
    return await user.http.fetch(f"{user.base}/api/stats.{fmt}?{query}", raise_error=False,
                                 headers={"Authorization": f"Bearer {user.token}"})


async def test_csv_export_has_bom_chinese_headers_and_the_same_rows(kpi):
    response = await fetch_export(kpi, "cmd-city", "csv", MARCH + "&group_by=district")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="kpi-{CITY_ID}-2026-03-01-2026-03-31-district.csv"')
    assert response.body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.body.decode("utf-8-sig"))))
    header = rows[0]
    assert header[:2] == ["区县", "编码"] and "上报数" in header and "结案率(%)" in header
    assert "平均处置时长（工作小时）" in header
    by_name = {r[0]: dict(zip(header, r)) for r in rows[1:]}
    assert list(by_name)[-1] == "合计"
    assert by_name["合计"]["上报数"] == "11" and by_name["合计"]["结案率(%)"] == "80.0"
    assert by_name["甲区"]["编码"] == A and by_name["甲区"]["上报数"] == "8"
    assert by_name["未定位"]["满意率(%)"] == ""          # no basis: empty, not 0


async def test_xlsx_export_opens_with_openpyxl(kpi):
    response = await fetch_export(kpi, "disp-a", "xlsx", MARCH + "&group_by=street")
    assert response.code == 200
    assert response.headers["Content-Type"] == stats_xlsx_type()
    assert response.headers["Content-Disposition"].endswith('-street.xlsx"')
    book = load_workbook(io.BytesIO(response.body))
    sheet = book["KPI"]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0][:3] == ["街道", "编码", "所属区县"]
    header = rows[0]
    lines = {r[0]: dict(zip(header, r)) for r in rows[1:]}
    assert list(lines) == ["一街道", "二街道", "合计"]
    assert lines["一街道"]["上报数"] == 6 and lines["一街道"]["所属区县"] == "甲区"
    assert lines["合计"]["上报数"] == 8
    assert lines["二街道"]["满意率(%)"] is None          # C9's callback did not reach the caller
    notes = [list(r) for r in book["口径说明"].iter_rows(values_only=True)]
    assert ["结案率", stats.FIGURE_BY_KEY["close_rate"].formula] in notes


def stats_xlsx_type():
    from dispatch.handlers.stats import XLSX_TYPE
    return XLSX_TYPE


async def test_export_checks_scope_like_the_json(kpi):
    response = await fetch_export(kpi, "cmd-a1", "csv", MARCH + f"&scope={A}")
    assert response.code == 403
    response = await fetch_export(kpi, "gw1", "xlsx")
    assert response.code == 403


# --------------------------------------------------------------------------------------------
# Daily snapshot
# --------------------------------------------------------------------------------------------


async def test_snapshot_day_stores_city_and_districts_idempotently(kpi):
    ctx = kpi.ctx
    store = ctx.storage.snapshots
    first = await stats.snapshot_day(ctx, date(2026, 3, 2))
    assert first == [f"2026-03-02:{CITY_ID}", f"2026-03-02:{A}", f"2026-03-02:{B}"]
    again = await stats.snapshot_day(ctx, date(2026, 3, 2))
    assert again == first
    stored = await store.for_day("2026-03-02")
    assert [s["_id"] for s in stored] == sorted(first)

    city = await store.get(f"2026-03-02:{CITY_ID}")
    kpis = city["total"]["kpis"]
    assert kpis["reported"]["value"] == 2          # C1, C2
    assert kpis["closed"]["value"] == 2            # C1, C11
    assert kpis["due"]["value"] == 1               # C11 (handle_by 16:30)
    assert kpis["return_rate"] == {"value": round(1 / 3, 4), "numerator": 1, "denominator": 3}
    assert kpis["satisfaction_rate"]["value"] is None
    assert city["group_by"] == "district" and {r["group"]["id"] for r in city["rows"]} == {A, B}
    district_b = await store.get(f"2026-03-02:{B}")
    assert district_b["group_by"] == "street"
    assert district_b["total"]["kpis"]["closed"]["value"] == 1    # C11
    assert district_b["total"]["kpis"]["avg_handle_hours_working"]["value"] == 10.5


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------


def test_period_parsing():
    now = t("2026-11-25 10:00")
    period = stats.parse_period(None, None, TZ, now)
    assert (period.first_day, period.last_day) == (date(2026, 11, 1), date(2026, 11, 30))
    assert period.start == t("2026-11-01 00:00") and period.end == t("2026-12-01 00:00")
    period = stats.parse_period("2026-03-02", "2026-03-02", TZ, now)
    assert period.start == t("2026-03-02 00:00") and period.end == t("2026-03-03 00:00")
    period = stats.parse_period("2026-02-10", None, TZ, now)
    assert period.last_day == date(2026, 2, 28)
    period = stats.parse_period(None, "2026-02-10", TZ, now)
    assert period.first_day == date(2026, 2, 1) and period.last_day == date(2026, 2, 10)
    period = stats.parse_period("2026-03-02T08:00:00+08:00", "2026-03-02T12:00", TZ, now)
    assert period.end == t("2026-03-02 12:00")          # a time is an exclusive instant
    with pytest.raises(stats.PeriodError):
        stats.parse_period("2026-03-05", "2026-03-04", TZ, now)
    with pytest.raises(stats.PeriodError):
        stats.parse_period("yesterday", None, TZ, now)


def test_zero_denominators_are_null():
    for item in stats.figure_values(Counter()):
        kind = stats.FIGURE_BY_KEY[item["key"]].kind
        assert item["value"] == (0 if kind == "count" else None), item


def aggregate(cases, now, period=None, **kw):
    calendar = BusinessCalendar("Asia/Shanghai", ["08:30-12:00", "13:30-17:30"])
    aggregator = stats.KpiAggregator(
        period=period or stats.Period.days(date(2026, 3, 1), date(2026, 3, 31), TZ), group_by="department",
        now=now, calendar=calendar, sign_deadline=stats.category_sign_deadline({}, calendar),
        department_names=DEPARTMENTS, **kw)
    for case in cases:
        aggregator.add(case)
    return aggregator


def test_a_dispatch_still_within_its_sign_limit_is_not_counted_for_the_response_rate():
    case = make_case("p1", A1, opened("2026-03-02", "09:00", "A-water"), deadlines={"sign_by": "2026-03-02 10:00"})
    pending = aggregate([case], now=t("2026-03-02 09:30")).total
    assert pending["dispatched"] == 1 and pending["sign_settled"] == 0
    late = aggregate([case], now=t("2026-03-02 10:01")).total
    assert late["sign_settled"] == 1 and late["signed_on_time"] == 0


def test_handle_deadline_in_the_future_is_not_due_yet():
    case = make_case("p2", A1, opened("2026-03-02", "09:00", "A-water") + day("2026-03-02", ("sign", "09:10")),
                     deadlines={"sign_by": "2026-03-02 10:00", "handle_by": "2026-03-03 09:10"})
    assert aggregate([case], now=t("2026-03-03 09:00")).total["due"] == 0
    assert aggregate([case], now=t("2026-03-03 09:11")).total["due"] == 1


def test_earlier_dispatch_sign_deadline_is_recomputed_from_the_category():
    class Category:
        code, limits, urgent_limits = "0105", {"sign": "1wh"}, None

    calendar = BusinessCalendar("Asia/Shanghai", ["08:30-12:00", "13:30-17:30"])
    deadline = stats.category_sign_deadline({"0105": Category()}, calendar)
    case = make_case("p3", A1, opened("2026-03-02", "11:30", "A-water"), deadlines={"sign_by": "2026-03-02 14:00"})
    assert deadline(case, t("2026-03-02 11:30"), True) == t("2026-03-02 14:00")     # stored, latest
    assert deadline(case, t("2026-03-02 11:30"), False) == t("2026-03-02 14:00")    # 30 min + lunch + 30 min
    assert deadline(case, t("2026-03-02 09:00"), False) == t("2026-03-02 10:00")


def test_department_filter_keeps_only_that_departments_events():
    cases = [c for c in data_set() if c["_id"] == "c02"]
    water = aggregate(cases, now=t("2026-11-25 10:00"), department="A-water").total
    assert (water["dispatched"], water["returned"], water["handled"], water["due"]) == (1, 1, 0, 0)
    office = aggregate(cases, now=t("2026-11-25 10:00"), department="A1-so").total
    assert (office["dispatched"], office["returned"], office["handled"], office["due"]) == (1, 0, 2, 1)


# --------------------------------------------------------------------------------------------
# End to end: the figures of cases moved through the closed loop by the actions API
# --------------------------------------------------------------------------------------------


async def logged_in(client, username):
    user = client.as_user()
    await user.login(username, "x")
    return user


async def test_figures_follow_cases_moved_by_the_actions_api(kpi):
    gw, op = await logged_in(kpi, "gw1"), await logged_in(kpi, "op1")
    disp, office, water = [await logged_in(kpi, u) for u in ("disp-city", "so-a1", "water-a")]

    async def act(user, case_id, action, body=None):
        status, case = await user.post(f"/api/cases/{case_id}/actions/{action}", body or {})
        assert status == 200, (action, case)
        return case

    point = {"type": "Point", "coordinates": [110.0025, 20.0025]}
    status, grid = await gw.post("/api/reports", {"category": "0105", "description": "水面漂浮垃圾", "location": point})
    assert status == 201, grid
    await act(disp, grid["id"], "file")
    await act(disp, grid["id"], "dispatch")                       # routed: 一街道办事处
    await act(office, grid["id"], "return", {"reason": "河道归林水局"})
    await act(disp, grid["id"], "approve_return")                # 改派
    await act(disp, grid["id"], "dispatch", {"department": "A-water"})
    await act(water, grid["id"], "sign")
    await act(water, grid["id"], "feedback", {"result": "已打捞"})
    await act(gw, grid["id"], "check", {"passed": False, "note": "仍有漂浮物"})
    await act(water, grid["id"], "feedback", {"result": "已全部打捞"})
    await act(gw, grid["id"], "check", {"passed": True})
    await act(disp, grid["id"], "close")

    status, ticket = await op.post("/api/tickets", {"channel": "12345", "type": "help", "content": "河边护栏松动",
                                                   "category": "H02", "location": point,
                                                   "caller": {"name": "张三", "phone": "13800000000"}})
    assert status == 201, ticket
    await act(disp, ticket["id"], "file")
    await act(disp, ticket["id"], "dispatch", {"department": "A-water"})
    await act(water, ticket["id"], "sign")
    await act(water, ticket["id"], "feedback", {"result": "已加固"})
    await act(op, ticket["id"], "check", {"passed": True, "satisfaction": "basic", "resolved": True})
    await act(disp, ticket["id"], "close")

    status, body = await stats_as(kpi, "admin", None)
    assert status == 200, body
    total = figures(body["total"])
    assert {k: total[k]["value"] for k in ("reported", "filed", "closed", "due")} == {
        "reported": 2, "filed": 2, "closed": 2, "due": 0}
    assert total["close_rate"]["value"] is None        # both handling deadlines are still ahead
    assert (total["return_rate"]["numerator"], total["return_rate"]["denominator"]) == (1, 3)
    assert (total["response_rate"]["numerator"], total["response_rate"]["denominator"]) == (2, 3)
    assert (total["rework_rate"]["numerator"], total["rework_rate"]["denominator"]) == (1, 3)
    assert total["satisfaction_rate"]["value"] == 1.0 and total["resolution_rate"]["value"] == 1.0
    assert total["avg_handle_hours_natural"]["denominator"] == 2
    office_row, water_row = figures(row_of(body, "A1-so")), figures(row_of(body, "A-water"))
    assert (office_row["return_rate"]["numerator"], office_row["return_rate"]["denominator"]) == (1, 1)
    assert (water_row["return_rate"]["numerator"], water_row["return_rate"]["denominator"]) == (0, 2)
    assert water_row["closed"]["value"] == 2


def test_a_threshold_counts_when_it_fell_due_not_when_the_sweep_saw_it():
    case = make_case("p4", A1, opened("2026-03-31", "09:00", "A-water") + day("2026-03-31", ("sign", "09:10")))
    case["history"].append({"at": t("2026-04-01 00:00"), "by": "system", "action": "overdue", "from": "accepted",
                            "to": "accepted", "stage": "handle", "due_at": t("2026-03-31 23:59")})
    assert aggregate([case], now=t("2026-04-02 00:00")).total["overdue"] == 1


async def test_period_cases_reads_the_cases_touching_the_period_projected(kpi):
    period = stats.Period.days(date(2026, 3, 1), date(2026, 3, 31), TZ)
    query = PeriodQuery(period.start, period.end, within=A)
    found = await kpi.ctx.cases.period_cases(query, stats.PROJECTION)
    assert {d["_id"] for d in found} == {"c01", "c02", "c03", "c04", "c06", "c07", "c09", "c10", "c12"}
    assert all(e["at"].tzinfo is not None for d in found for e in d["history"])
    assert all("description" not in d and set(d["history"][0]) <= {"at", "action", "to", "passed", "department",
                                                                   "due_at"} for d in found)


def test_an_automatic_dispatch_is_charged_to_the_department_that_returned_it():
    case = make_case("p5", A1, opened("2026-03-02", "09:00", "A1-so") + day(
        "2026-03-02", ("return", "09:30", {"department": "A1-so"}), ("dispatch", "10:00", {"department": "A-water"})))
    del case["history"][2]["department"]       # intake's auto-dispatch entry names no department
    aggregator = aggregate([case], now=t("2026-03-02 10:30"))
    rows = {row.group["id"]: row.tally for row in aggregator.rows.values()}
    assert (rows["A1-so"]["dispatched"], rows["A1-so"]["returned"]) == (1, 1)
    assert (rows["A-water"]["dispatched"], rows["A-water"]["returned"]) == (1, 0)
    assert rows["A1-so"]["reported"] == 1      # before the first dispatch: its department

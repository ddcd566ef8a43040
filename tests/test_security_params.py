"""Hostile query parameters get a 400 with the JSON error body, never a 500; a property test
fuzzes every query parameter of the read endpoints. Also two intake rules a hostile client
probes: a grid worker reports only inside its own jurisdiction, and a client_id is not a way
to get somebody's case back with a different body.
"""

from __future__ import annotations

import base64
import json
import string
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.store.query import CaseQuery
from security_world import B_POINT, G1_POINT, world  # noqa: F401 - world: the fixture


def cursor_of(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


YEAR_1 = "0001-01-01T00:00:00+14:00"
YEAR_9999 = "9999-12-31T23:59:59-12:00"

# All but three of these were a 500 with a traceback (the others are their neighbours).
HOSTILE = [
    "/api/cases?near=110,20,",  # a missing radius
    "/api/cases?near=110,20, ",
    "/api/cases.geojson?near=110,,500",
    "/api/cases?near=0,89.99,5000",  # the box around the circle passes the pole
    "/api/cases.geojson?near=179.99,20,5000",  # ... or the antimeridian
    "/api/cases?near=-179.999,-30,100",
    f"/api/cases?cursor={cursor_of([10 ** 20, 'x'])}",  # a cursor that decodes to a huge number
    f"/api/cases?cursor={cursor_of([-10 ** 20, 'x'])}",
    f"/api/cases?cursor={cursor_of([2 ** 63, 'x'])}",
    f"/api/cases?cursor={cursor_of([[[[[]]]], 'x'])}",
    "/api/cases?cursor=" + base64.urlsafe_b64encode(b"[" * 5000).decode(),  # nested past the parser
    f"/api/cases?from={YEAR_1}",
    f"/api/cases?to={YEAR_9999}",
    f"/api/cases.geojson?from={YEAR_1}",
    f"/api/cases.geojson?to={YEAR_9999}",
    f"/api/stats?from={YEAR_1}",
    f"/api/stats?to={YEAR_9999}",
    "/api/stats?to=9999-12-31",
    "/api/stats?from=0001-01-01",
    f"/api/stats.csv?from={YEAR_1}",
    f"/api/stats.xlsx?to={YEAR_9999}",
    "/api/stats.xlsx?from=9999-12-31",
]


async def test_hostile_parameters_get_400_with_the_error_body(world):
    client = world.as_("disp-city")
    for path in HOSTILE:
        status, body = await client.get(quote(path, safe="/?=&,:"))
        assert status == 400, (path, status, body)
        assert body["error"]["code"] == "invalid_parameter" and body["error"]["message"], path


async def test_the_same_parameters_in_range_still_work(world):
    client = world.as_("disp-city")
    for path in ("/api/cases?near=110.0025,20.0025,500", "/api/cases?from=1900-01-01T00:00:00%2B14:00",
                 "/api/cases?to=2999-12-31T23:59:59-12:00", "/api/stats?from=2026-01-01&to=2999-12-31",
                 f"/api/cases?cursor={cursor_of([0, 'x'])}"):
        status, body = await client.get(path)
        assert status == 200, (path, body)


# -- every query parameter, fuzzed ------------------------------------------------------------

CASE_PARAMS = ("status", "open", "mine", "near", "category", "department", "district", "street", "community",
               "grid", "source", "overdue", "return_pending", "bbox", "q", "from", "to", "limit")
STATS_PARAMS = ("scope", "from", "to", "group_by", "top")
ENDPOINTS = {
    "/api/cases": CASE_PARAMS + ("cursor",),
    "/api/cases.geojson": CASE_PARAMS,
    "/api/stats": STATS_PARAMS,
    "/api/stats.csv": STATS_PARAMS,
    "/api/stats.xlsx": STATS_PARAMS,
    "/api/route": ("lng", "lat", "category", "source", "text"),
    "/api/addresses": ("q", "limit"),
}

offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
numbers = st.one_of(st.integers(-10 ** 20, 10 ** 20).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["", "-0", "1e309", "nan", "-inf", "0x10", "１２"]))
# Arbitrary text, and text shaped like what the parameters expect, so the fuzz gets past the
# first check: number lists (near, bbox), dates and times at the ends of the calendar, cursors.
values = st.one_of(
    st.text(max_size=40),
    st.lists(numbers, min_size=0, max_size=5).map(",".join),
    st.dates().map(str),
    st.builds(lambda d, tz: d.replace(tzinfo=tz).isoformat(),
              st.one_of(st.datetimes(), st.sampled_from([datetime.min, datetime.max])), offsets),
    st.sampled_from([str(datetime.min.date()), str(datetime.max.date())]),
    st.tuples(st.integers(-10 ** 25, 10 ** 25), st.text(string.hexdigits, max_size=30)).map(list).map(cursor_of),
    st.text(string.printable, max_size=12),
)


@settings(max_examples=600, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_no_query_parameter_makes_a_server_error(world, data):
    path = data.draw(st.sampled_from(sorted(ENDPOINTS)), label="endpoint")
    params = data.draw(st.dictionaries(st.sampled_from(ENDPOINTS[path]), values, max_size=4), label="params")
    status, body = await world.as_("disp-city").get(f"{path}?{urlencode(params)}")
    assert status < 500, (path, params, status, body)
    assert status < 400 or bool(body["error"]["code"] and body["error"]["message"]), (path, params, body)


# -- intake: a grid worker reports in its own jurisdiction -----------------------------------

REPORT = {"category": "0105", "description": "河面有漂浮物"}


async def test_grid_worker_reports_only_inside_its_scope(world):
    before = await world.ctx.cases.count(CaseQuery())
    status, body = await world.as_("gw1").post("/api/reports", {
        **REPORT, "location": {"type": "Point", "coordinates": B_POINT}})
    assert status == 403 and body["error"]["code"] == "outside_scope", body
    # The message names the place and the worker's own jurisdiction.
    assert "北社区第1网格" in body["error"]["message"] and "一社区第1网格" in body["error"]["message"]
    assert await world.ctx.cases.count(CaseQuery()) == before
    status, body = await world.as_("gw1").post("/api/reports", {
        **REPORT, "location": {"type": "Point", "coordinates": G1_POINT}})
    assert status == 201, body
    # The worker of the other grid reports there.
    status, body = await world.as_("gw-b").post("/api/reports", {
        **REPORT, "location": {"type": "Point", "coordinates": B_POINT}})
    assert status == 201, body


def test_demo_grid_workers_and_the_browser_tests_report_inside_their_scopes():
    """The demo accounts and the fixed points the tests report at: each point lies in the scope
    of the worker who reports it (grid01 in 东坡路社区)."""
    from support import DEMO_CITY, loaded_city

    city, router = loaded_city(str(DEMO_CITY))
    workers = {u["username"]: str(u["scope"]) for u in city.users if u["role"] == "grid_worker"}
    assert workers and all(scope in city.jurisdictions for scope in workers.values())
    for point in ([120.1584, 30.2560],):  # tests/browser: test_report_page, test_end_to_end, test_command_page
        chain = router.locate(*point)
        assert workers["grid01"] in {node["id"] for node in chain.values() if node}, point


# -- intake: a client_id names one submission -------------------------------------------------

async def test_same_client_id_with_another_body_is_a_conflict(world):
    worker = world.as_("gw1")
    before = await world.ctx.cases.count(CaseQuery(reporter="gw1"))
    first = {**REPORT, "location": {"type": "Point", "coordinates": G1_POINT}, "client_id": "offline-42"}
    status, created = await worker.post("/api/reports", first)
    assert status == 201, created
    # The same submission again (a retry after a lost response): the case, not a second one.
    status, again = await worker.post("/api/reports", dict(first))
    assert status == 200 and again["id"] == created["id"]
    for change in ({"description": "另一件事"}, {"category": "0101"},
                   {"location": {"type": "Point", "coordinates": [G1_POINT[0] + 0.0001, G1_POINT[1]]}}):
        status, body = await worker.post("/api/reports", {**first, **change})
        assert status == 409 and body["error"]["code"] == "client_id_conflict", (change, body)
        assert body["error"]["case_id"] == created["id"]
    assert await world.ctx.cases.count(CaseQuery(reporter="gw1")) == before + 1
    # The digest is bookkeeping: never shown.
    assert "intake_digest" not in again


async def test_same_client_id_on_a_ticket_with_another_caller_is_a_conflict(world):
    op = world.as_("op1")
    ticket = {"type": "complaint", "category": "H01", "content": "噪声", "client_id": "call-7",
              "caller": {"name": "王五", "phone": "13700000000"},
              "location": {"type": "Point", "coordinates": G1_POINT}}
    status, created = await op.post("/api/tickets", ticket)
    assert status == 201, created
    status, body = await op.post("/api/tickets", {**ticket, "caller": {"name": "赵六", "phone": "13700000001"}})
    assert status == 409 and body["error"]["case_id"] == created["id"]
    status, again = await op.post("/api/tickets", {**ticket, "content": " 噪声 "})  # same after trimming
    assert status == 200 and again["id"] == created["id"]

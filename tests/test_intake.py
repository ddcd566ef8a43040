"""Intake and the case query API over real HTTP: reports, tickets, idempotency, bad input."""

from __future__ import annotations

import re

import geojson
import pytest

from dispatch.workflow.audit import verify_chain
from support import DEMO_CITY, login_as, start_server, user_of
from dispatch.store.query import CaseQuery

pytestmark = pytest.mark.asyncio


# -- helpers that read the city instead of hard-coding it ---------------------------------------


def grid_point(ctx, scope: str | None = None) -> tuple[float, float]:
    """A point well inside a grid (inside `scope` if given)."""
    for jurisdiction in sorted(ctx.city.jurisdictions.values(), key=lambda j: j.id):
        if jurisdiction.level != "grid":
            continue
        if scope and scope not in ctx.city.jurisdictions and scope != ctx.city.id:
            continue
        if scope and scope != ctx.city.id and jurisdiction.id not in ctx.city.descendants(scope):
            continue
        p = jurisdiction.geometry.representative_point()
        return (round(p.x, 6), round(p.y, 6))
    raise AssertionError("city has no grid")


def category(ctx, kind: str, auto: bool | None = False):
    for c in ctx.city.categories.values():
        if c.kind in kind.split("|") and (auto is None or c.auto_dispatch == auto):
            return c
    pytest.skip(f"city has no {kind} category with auto_dispatch={auto}")


def report_body(ctx, **extra):
    worker = user_of(ctx, "grid_worker")
    lng, lat = grid_point(ctx, worker["scope"])
    body = {
        "category": category(ctx, "event|component").code,
        "description": "人行道上有一堆暴露垃圾",
        "location": {"type": "Point", "coordinates": [lng, lat]},
    }
    body.update(extra)
    return body


async def case_count(ctx) -> int:
    return await ctx.cases.count(CaseQuery())


# -- login --------------------------------------------------------------------------------------


async def test_login_and_bad_credentials(demo):
    worker = user_of(demo.ctx, "grid_worker")
    user = await demo.login(worker["username"], str(worker["password"]))
    assert user["role"] == "grid_worker" and user["scope"] == str(worker["scope"])
    anon = demo.as_user()
    status, body = await anon.post("/api/login", {"username": worker["username"], "password": "wrong"})
    assert status == 401 and body["error"]["code"] == "invalid_credentials"
    status, body = await anon.post("/api/login", {"username": {"$ne": 1}, "password": "x"})
    assert status == 400 and body["error"]["code"] == "invalid_type"
    status, body = await anon.get("/api/cases")
    assert status == 401
    anon.token = "forged.token"
    status, body = await anon.get("/api/cases")
    assert status == 401 and body["error"]["code"] == "invalid_token"


# -- grid reports -------------------------------------------------------------------------------


async def test_report_is_located_routed_and_stored(demo):
    worker = await login_as(demo, "grid_worker")
    body = report_body(demo.ctx)
    status, case = await worker.post("/api/reports", body)
    assert status == 201, case
    assert re.fullmatch(r"\d{8}-\d{6}", case["number"])
    assert case["source"] == "grid" and case["status"] == "reported"
    lng, lat = body["location"]["coordinates"]
    expected = demo.ctx.router.route(lng, lat, body["category"], source="grid", text=body["description"])
    assert case["jurisdiction"] == expected.jurisdiction
    assert case["jurisdiction"]["grid"] is not None
    assert case["assignment"]["department"] == expected.department
    assert case["assignment"]["rule"] == expected.rule and case["assignment"]["reason"]
    assert case["history"][0]["action"] == "report"
    stored = await demo.ctx.cases.get(case["id"])
    assert verify_chain(stored["history"]) is None
    status, fetched = await worker.get(f"/api/cases/{case['id']}")
    assert status == 200 and fetched["number"] == case["number"]


async def test_client_supplied_state_is_ignored(demo):
    worker = await login_as(demo, "grid_worker")
    body = report_body(demo.ctx, status="closed", assignment={"department": {"id": "x"}},
                       history=[], version=99, flags={"overdue": True})
    status, case = await worker.post("/api/reports", body)
    assert status == 201
    assert case["status"] == "reported" and case["version"] == 1
    assert case["assignment"]["department"] != {"id": "x"}
    assert case["flags"]["overdue"] is False and len(case["history"]) == 1


async def test_auto_dispatch_category_is_dispatched_with_sign_deadline(demo):
    auto = category(demo.ctx, "event|component", auto=True)
    worker = await login_as(demo, "grid_worker")
    status, case = await worker.post("/api/reports", report_body(demo.ctx, category=auto.code))
    assert status == 201
    assert case["assignment"]["department"] is not None
    assert case["status"] == "dispatched"
    assert [h["action"] for h in case["history"]] == ["report", "file", "dispatch"]
    assert case["deadlines"]["sign_by"] is not None


async def test_idempotent_intake_by_client_id(demo):
    worker = await login_as(demo, "grid_worker")
    body = report_body(demo.ctx, client_id="phone-7f3a-0001")
    first_status, first = await worker.post("/api/reports", body)
    again_status, again = await worker.post("/api/reports", body)
    assert (first_status, again_status) == (201, 200)
    assert again["id"] == first["id"] and again["number"] == first["number"]
    assert await case_count(demo.ctx) == 1
    # The same client_id from another user is another case.
    second_worker = [u for u in demo.ctx.city.users if u["role"] == "grid_worker"][1]
    other = demo.as_user()
    await other.login(second_worker["username"], str(second_worker["password"]))
    body2 = dict(body, location={"type": "Point", "coordinates": list(grid_point(demo.ctx, second_worker["scope"]))})
    status, case = await other.post("/api/reports", body2)
    assert status == 201 and case["id"] != first["id"]


async def test_only_grid_workers_report(demo):
    operator = await login_as(demo, "operator")
    status, body = await operator.post("/api/reports", report_body(demo.ctx))
    assert status == 403 and body["error"]["code"] == "role_forbidden"
    anon = demo.as_user()
    status, body = await anon.post("/api/reports", report_body(demo.ctx))
    assert status == 401


@pytest.mark.parametrize(
    "mutate, status, code",
    [
        (lambda b: b.update(category=102), 400, "invalid_type"),
        (lambda b: b.update(category={"$ne": 1}), 400, "invalid_type"),
        (lambda b: b.update(category="NO-SUCH-CODE"), 422, "unknown_category"),
        (lambda b: b.pop("category"), 400, "missing_field"),
        (lambda b: b.pop("location"), 400, "missing_field"),
        (lambda b: b.update(location={"type": "Point", "coordinates": [200, 30]}), 400, "invalid_location"),
        (lambda b: b.update(location={"type": "Point", "coordinates": ["120", "30"]}), 400, "invalid_location"),
        (lambda b: b.update(location={"type": "Polygon", "coordinates": [[0, 0]]}), 400, "invalid_location"),
        (lambda b: b.update(location=[120.1, 30.2]), 400, "invalid_location"),
        (lambda b: b.update(location={"type": "Point", "coordinates": [0.0, 0.0]}), 422, "outside_city"),
        (lambda b: b.update(description=["x"]), 400, "invalid_type"),
        (lambda b: b.update(description="长" * 5000), 400, "too_long"),
        (lambda b: b.update(photos="abc"), 400, "invalid_type"),
        (lambda b: b.update(client_id={"$gt": ""}), 400, "invalid_type"),
    ],
)
async def test_bad_reports_get_clear_errors_and_change_nothing(demo, mutate, status, code):
    worker = await login_as(demo, "grid_worker")
    body = report_body(demo.ctx)
    mutate(body)
    got_status, got = await worker.post("/api/reports", body)
    assert got_status == status, got
    assert got["error"]["code"] == code and got["error"]["message"]
    assert await case_count(demo.ctx) == 0


async def test_outside_city_message_names_the_city(demo):
    worker = await login_as(demo, "grid_worker")
    status, body = await worker.post("/api/reports", report_body(
        demo.ctx, location={"type": "Point", "coordinates": [116.40, 39.90]}))
    assert status == 422 and demo.ctx.city.name in body["error"]["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b""])
async def test_malformed_bodies(demo, raw):
    worker = await login_as(demo, "grid_worker")
    status, body = await worker.request("POST", "/api/reports", raw=raw)
    assert status == 400 and body["error"]["code"] == "malformed_json"


async def test_huge_body_is_413(demo):
    worker = await login_as(demo, "grid_worker")
    raw = b'{"description": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    status, body = await worker.request("POST", "/api/reports", raw=raw)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    assert await case_count(demo.ctx) == 0


# -- hotline tickets ----------------------------------------------------------------------------


def ticket_body(ctx, **extra):
    lng, lat = grid_point(ctx)
    body = {
        "channel": "12345", "type": "complaint", "content": "小区门口夜间施工噪声扰民",
        "caller": {"name": "张三丰", "phone": "13812345678"},
        "location": {"type": "Point", "coordinates": [lng, lat]},
    }
    body.update(extra)
    return body


async def test_ticket_with_location_is_routed_and_phone_masked_for_others(demo):
    operator = await login_as(demo, "operator")
    status, case = await operator.post("/api/tickets", ticket_body(demo.ctx))
    assert status == 201, case
    assert case["source"] == "hotline" and case["channel"] == "12345" and case["type"] == "complaint"
    assert case["category"]["kind"] == "hotline"
    assert case["caller"] == {"name": "张三丰", "phone": "13812345678"}  # the operator who took it
    dispatcher = await login_as(demo, "dispatcher")
    status, seen = await dispatcher.get(f"/api/cases/{case['id']}")
    assert status == 200 and seen["caller"] == {"name": "张**", "phone": "138****5678"}
    status, listed = await dispatcher.get("/api/cases?source=hotline")
    assert listed["items"][0]["caller"]["phone"] == "138****5678"


async def test_ticket_geocoded_from_door_plate(demo):
    address = demo.ctx.city.addresses.entries[0][0]  # the demo city's first door plate
    operator = await login_as(demo, "operator")
    body = ticket_body(demo.ctx, address=address)
    body.pop("location")
    status, case = await operator.post("/api/tickets", body)
    assert status == 201
    assert case["location"] is not None and case["flags"]["needs_location"] is False
    assert case["jurisdiction"]["district"] is not None


async def test_ticket_without_location_is_accepted_and_flagged(demo):
    operator = await login_as(demo, "operator")
    body = ticket_body(demo.ctx, address="某个查不到的地方 999 号")
    body.pop("location")
    status, case = await operator.post("/api/tickets", body)
    assert status == 201
    assert case["location"] is None and case["flags"]["needs_location"] is True
    assert case["assignment"]["department"] is None and case["status"] == "reported"


@pytest.mark.parametrize(
    "mutate, code",
    [
        (lambda b: b.update(channel="110"), "invalid_value"),
        (lambda b: b.update(type="rant"), "invalid_value"),
        (lambda b: b.pop("type"), "missing_field"),
        (lambda b: b.update(content=""), "missing_field"),
        (lambda b: b.update(caller="张三"), "invalid_type"),
        (lambda b: b.update(caller={"name": "张三", "phone": "call-me"}), "invalid_value"),
    ],
)
async def test_bad_tickets(demo, mutate, code):
    operator = await login_as(demo, "operator")
    body = ticket_body(demo.ctx)
    mutate(body)
    status, got = await operator.post("/api/tickets", body)
    assert status == 400 and got["error"]["code"] == code
    assert await case_count(demo.ctx) == 0


async def test_only_operators_create_tickets(demo):
    worker = await login_as(demo, "grid_worker")
    status, _ = await worker.post("/api/tickets", ticket_body(demo.ctx))
    assert status == 403


# -- routing preview ----------------------------------------------------------------------------


async def test_route_preview(demo):
    operator = await login_as(demo, "operator")
    lng, lat = grid_point(demo.ctx)
    code = category(demo.ctx, "event|component").code
    status, decision = await operator.get(f"/api/route?lng={lng}&lat={lat}&category={code}")
    assert status == 200
    expected = demo.ctx.router.route(lng, lat, code).as_dict()
    assert decision["jurisdiction"] == expected["jurisdiction"]
    assert decision["department"] == expected["department"] and decision["reason"]
    assert (await operator.get(f"/api/route?lng=0&lat=0&category={code}"))[0] == 422
    assert (await operator.get(f"/api/route?lng=abc&lat=1&category={code}"))[0] == 400
    assert (await operator.get(f"/api/route?lng={lng}&lat={lat}&category=NOPE"))[0] == 422
    assert (await operator.get(f"/api/route?lat={lat}&category={code}"))[0] == 400


# -- querying -----------------------------------------------------------------------------------


async def seed(demo, n: int = 7) -> list[dict]:
    worker = await login_as(demo, "grid_worker")
    operator = await login_as(demo, "operator")
    cases = []
    for i in range(n):
        status, case = await worker.post("/api/reports", report_body(demo.ctx, description=f"井盖缺失 第{i}处"))
        assert status == 201
        cases.append(case)
    status, case = await operator.post("/api/tickets", ticket_body(demo.ctx, content="路灯不亮已经一周"))
    cases.append(case)
    return cases


async def test_list_filters_and_cursor_pagination(demo):
    cases = await seed(demo)
    dispatcher = await login_as(demo, "dispatcher")
    seen, path = [], "/api/cases?limit=3"
    while path:  # page after page, until the list says there is no next one
        status, page = await dispatcher.get(path)
        assert status == 200
        seen += [c["id"] for c in page["items"]]
        path = page["next"] and f"/api/cases?limit=3&cursor={page['next']}"
    assert sorted(seen) == sorted(c["id"] for c in cases) and len(seen) == len(set(seen))

    status, page = await dispatcher.get("/api/cases?source=hotline")
    assert [c["id"] for c in page["items"]] == [cases[-1]["id"]]
    status, page = await dispatcher.get("/api/cases?q=" + "路灯")
    assert [c["id"] for c in page["items"]] == [cases[-1]["id"]]
    district = cases[0]["jurisdiction"]["district"]["id"]
    status, page = await dispatcher.get(f"/api/cases?district={district}&source=grid&limit=100")
    assert len(page["items"]) == 7
    status, page = await dispatcher.get(f"/api/cases?category={cases[0]['category']['code']}&status=reported,filed")
    assert len(page["items"]) == 7
    lng, lat = cases[0]["location"]["coordinates"]
    status, page = await dispatcher.get(f"/api/cases?bbox={lng - 0.001},{lat - 0.001},{lng + 0.001},{lat + 0.001}")
    assert cases[0]["id"] in [c["id"] for c in page["items"]]
    status, page = await dispatcher.get("/api/cases?bbox=1,1,2,2")
    assert page["items"] == []
    status, page = await dispatcher.get("/api/cases?from=2000-01-01&to=2000-01-02")
    assert page["items"] == []
    status, page = await dispatcher.get("/api/cases?overdue=false&limit=100")
    assert len(page["items"]) == 8


@pytest.mark.parametrize("query", [
    "status=bogus", "limit=0", "limit=abc", "cursor=!!!", "bbox=1,2,3", "bbox=3,3,1,1",
    "from=yesterday", "overdue=maybe", "source=fax",
])
async def test_bad_list_queries(demo, query):
    dispatcher = await login_as(demo, "dispatcher")
    status, body = await dispatcher.get("/api/cases?" + query)
    assert status == 400 and body["error"]["code"] in ("invalid_parameter", "bad_request")


async def test_cases_geojson_is_valid(demo):
    await seed(demo, 3)
    dispatcher = await login_as(demo, "dispatcher")
    status, collection = await dispatcher.get("/api/cases.geojson")
    assert status == 200
    parsed = geojson.loads(__import__("json").dumps(collection))
    assert parsed.is_valid and parsed["type"] == "FeatureCollection"
    assert len(collection["features"]) == 4
    feature = collection["features"][0]
    assert feature["geometry"]["type"] == "Point" and feature["properties"]["status"]


async def test_unknown_case_is_404(demo):
    dispatcher = await login_as(demo, "dispatcher")
    status, body = await dispatcher.get("/api/cases/000000000000000000000000")
    assert status == 404 and body["error"]["code"] == "case_not_found"
    status, body = await dispatcher.get("/api/nothing-here")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_scope_limits_what_a_grid_worker_lists(demo):
    await seed(demo, 2)
    worker = await login_as(demo, "grid_worker")
    status, page = await worker.get("/api/cases?limit=100")
    scope = user_of(demo.ctx, "grid_worker")["scope"]
    ids = {c["jurisdiction"][lvl]["id"] for c in page["items"] for lvl in ("district", "street", "community")
           if c["jurisdiction"] and c["jurisdiction"].get(lvl)}
    assert scope in ids and len(page["items"]) >= 2


# -- reference data and health ------------------------------------------------------------------


async def test_reference_endpoints(demo):
    dispatcher = await login_as(demo, "dispatcher")
    status, districts = await dispatcher.get("/api/jurisdictions.geojson?level=district")
    assert status == 200 and districts["features"]
    assert {f["properties"]["level"] for f in districts["features"]} == {"district"}
    assert geojson.loads(__import__("json").dumps(districts)).is_valid
    status, departments = await dispatcher.get("/api/departments")
    assert status == 200 and len(departments["items"]) == len(demo.ctx.city.departments)
    status, categories = await dispatcher.get("/api/categories")
    assert status == 200 and {c["code"] for c in categories["items"]} == set(demo.ctx.city.categories)
    assert (await dispatcher.get("/api/jurisdictions.geojson?level=planet"))[0] == 400


@pytest.mark.parametrize("engine, kind, persistent, note", [
    ("embedded", "embedded", False, "内嵌内存库：数据仅保存在内存中，服务停止即丢失"),
    ("server", "mongodb", True, None),
])
async def test_healthz_says_whether_the_store_keeps_the_data(engine, kind, persistent, note):
    server, client = await start_server(DEMO_CITY, engine=engine)
    try:
        status, health = await client.get("/healthz")
    finally:
        server.stop()
        await client.ctx.storage.close()
    assert status == 200 and health["status"] == "ok"
    assert (health["storage"], health["persistent"], health["storage_note"]) == (kind, persistent, note)


# -- another city -------------------------------------------------------------------------------


async def test_another_city_package_is_served(small):
    ctx = small.ctx
    assert ctx.city.id != "330100"
    worker = await login_as(small, "grid_worker")
    body = report_body(ctx)
    status, case = await worker.post("/api/reports", body)
    assert status == 201, case
    lng, lat = body["location"]["coordinates"]
    assert case["jurisdiction"] == ctx.router.locate(lng, lat)
    assert case["assignment"]["department"]["id"] in ctx.city.departments


async def test_near_mine_and_open_filters(demo):
    cases = await seed(demo, 3)
    worker = await login_as(demo, "grid_worker")
    lng, lat = cases[0]["location"]["coordinates"]
    status, page = await worker.get(f"/api/cases?near={lng},{lat},300&open=true")
    assert status == 200 and {c["id"] for c in cases[:3]} <= {c["id"] for c in page["items"]}
    assert all(c["distance_m"] <= 300 for c in page["items"])
    far = (lng + 0.05, lat)  # ~4.8 km east
    status, page = await worker.get(f"/api/cases?near={far[0]},{far[1]},300")
    assert page["items"] == []
    status, page = await worker.get("/api/cases?mine=true&limit=100")
    assert {c["id"] for c in page["items"]} == {c["id"] for c in cases[:3]}
    assert (await worker.get(f"/api/cases?near={lng},{lat},99999"))[0] == 400


async def test_ticket_without_category_takes_its_types_default(demo):
    operator = await login_as(demo, "operator")
    defaults = {c.ticket_type: c for c in demo.ctx.city.categories.values() if c.ticket_type}
    assert {"consultation", "complaint", "help"} <= set(defaults)
    for ticket_type in ("complaint", "consultation", "help"):
        status, case = await operator.post("/api/tickets", ticket_body(demo.ctx, type=ticket_type))
        assert status == 201
        assert case["category"]["code"] == defaults[ticket_type].code


async def test_ticket_type_without_default_needs_a_category(small):
    operator = await login_as(small, "operator")
    body = ticket_body(small.ctx, type="suggestion")
    status, error = await operator.post("/api/tickets", body)
    assert status == 422 and error["error"]["code"] == "category_required"

"""Authorization: one declared permission per handler, and every role's view of the cases.

The world (tests/security_world.py) places four cases so that each account sees a different
subset; `VISIBLE` writes the expected subsets out by hand. Every read path — the list, its
filters, GeoJSON, a single case, the audit scan, KPIs, the live feed — is checked against it,
and the actions against role, scope and assignment.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import tornado.httpclient
import tornado.web
import tornado.websocket

from dispatch.handlers import routes
from dispatch.handlers.base import BaseHandler
from dispatch.access.policy import PERMISSIONS, PUBLIC, authorize, can_read_case, case_scope, permitted
from dispatch.store.memory import matches
from dispatch.store.query import CaseQuery
from dispatch.access.auth import ROLES, User
from dispatch.errors import ApiError
from security_world import B, B1, CITY_ID, VISIBLE, world  # noqa: F401 - world: the fixture

HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


def implemented_methods(handler) -> list[str]:
    base = tornado.web.RequestHandler
    return [m.upper() for m in HTTP_METHODS if getattr(handler, m) is not getattr(base, m)]


# -- the choke point ---------------------------------------------------------------------------


def test_every_handler_declares_a_known_permission_for_every_method_it_serves():
    seen = 0
    for spec in routes():
        handler = spec[1]
        methods = implemented_methods(handler)
        assert methods, handler
        access = getattr(handler, "access", None)
        assert isinstance(access, dict), f"{handler.__name__} declares no `access`"
        for method in methods:
            assert method in access, f"{handler.__name__}.{method.lower()} has no declared (resource, action)"
            assert access[method] in PERMISSIONS, f"{handler.__name__}: {access[method]} not in dispatch.access.policy"
            seen += 1
        assert set(access) <= set(methods), f"{handler.__name__} declares methods it does not serve"
    assert seen >= 30


def test_only_login_logout_health_openapi_and_page_shells_are_public():
    public = {key for key, roles in PERMISSIONS.items() if roles == PUBLIC}
    assert public == {("session", "login"), ("session", "logout"), ("health", "read"), ("openapi", "read"),
                      ("page", "view")}
    for key, roles in PERMISSIONS.items():
        assert roles == PUBLIC or set(roles) <= set(ROLES), key


def test_authorize_refuses_anonymous_wrong_role_and_undeclared():
    worker = User("w", "grid_worker", CITY_ID)
    with pytest.raises(ApiError) as err:
        authorize(None, "case", "read")
    assert err.value.status_code == 401
    with pytest.raises(ApiError) as err:
        authorize(worker, "user", "manage")
    assert err.value.status_code == 403
    with pytest.raises(ApiError) as err:
        authorize(worker, "case", "delete_everything")
    assert err.value.code == "undeclared_permission"
    authorize(None, "session", "login")
    assert permitted(worker, "report", "create") and not permitted(worker, "ticket", "create")


def test_read_filter_and_single_case_rule_agree():
    """case_scope (the query) and can_read_case (one document) are the same rule."""

    cases = [
        {"scope_path": [CITY_ID, "990101", "990101001"], "departments_seen": ["A1-so"], "reporters": ["gw1"]},
        {"scope_path": [CITY_ID, B, B1], "departments_seen": [], "reporters": ["gw1"]},
        {"scope_path": [CITY_ID, B, B1], "departments_seen": ["B1-so", "A1-so"], "reporters": ["op1"]},
        {"scope_path": [CITY_ID], "departments_seen": [], "reporters": ["op2"]},
    ]
    users = [User("admin", "admin", CITY_ID), User("gw1", "grid_worker", "990101001"),
             User("op2", "operator", B), User("d", "department", B1, "A1-so"), User("n", "department", B1, None),
             User("c", "commander", B1), User("x", "dispatcher", CITY_ID)]
    for user in users:
        query = CaseQuery(scope=case_scope(user, CITY_ID))
        for case in cases:
            assert matches(case, query) == can_read_case(user, case, CITY_ID), (user, case)


# -- every role's view of the cases ------------------------------------------------------------


async def labels_of(world, username: str, path: str) -> set[str]:
    status, body = await world.as_(username).get(path)
    assert status == 200, (username, path, body)
    if body.get("type") == "FeatureCollection":
        ids = [f["id"] for f in body["features"]]
    else:
        ids = [c["id"] for c in body["items"]]
    return {world.label(i) for i in ids}


async def test_every_role_lists_exactly_its_cases(world):
    for username, expected in VISIBLE.items():
        assert await labels_of(world, username, "/api/cases") == expected, username
        assert await labels_of(world, username, "/api/cases.geojson") == expected, username


async def test_list_filters_never_widen_the_scope(world):
    """Asking for another district, department or grid by filter returns nothing extra."""
    for username in ("disp-a", "cmd-a1", "a1so", "gw1"):
        expected = VISIBLE[username]
        for query in (f"district={B}", f"street={B1}", "department=B1-so", "source=hotline,grid",
                      "status=reported,filed,dispatched", "open=true", "overdue=false",
                      "bbox=109.9,19.9,110.1,20.1", "q=噪声"):
            got = await labels_of(world, username, f"/api/cases?{query}")
            assert got <= expected, (username, query, got)
            got = await labels_of(world, username, f"/api/cases.geojson?{query}")
            assert got <= expected, (username, query, got)
    assert await labels_of(world, "disp-a", f"/api/cases?district={B}") == set()
    assert await labels_of(world, "admin", f"/api/cases?district={B}") == {"cB", "cO"}


async def test_single_case_outside_scope_is_404_not_403(world):
    for username, expected in VISIBLE.items():
        for label, case_id in world.cases.items():
            status, body = await world.as_(username).get(f"/api/cases/{case_id}")
            visible = label in expected
            assert status == {True: 200, False: 404}[visible], (username, label, body)
            assert body.get("error", {"code": "case_not_found"})["code"] == "case_not_found", (username, label)


async def test_audit_scan_covers_only_the_scope(world):
    for username in ("admin", "disp-a", "disp-b", "cmd-a1", "cmd-b1"):
        status, body = await world.as_(username).get("/api/audit/verify")
        assert status == 200 and body["checked"] == len(VISIBLE[username]), (username, body)
    for username in ("gw1", "op1", "a1so"):
        status, body = await world.as_(username).get("/api/audit/verify")
        assert status == 403, username
    status, _ = await world.as_("a1so").get(f"/api/audit/verify?case={world.cases['cB']}")
    assert status == 404


async def test_stats_are_scoped_to_the_reader(world):
    async def reported(username, query=""):
        status, body = await world.as_(username).get("/api/stats?" + query)
        assert status == 200, (username, body)
        return sum(body["total"]["by_status"].values())

    assert await reported("admin") == 4
    assert await reported("disp-city") == 4
    assert await reported("disp-a") == 2
    assert await reported("cmd-a1") == 2
    assert await reported("cmd-b1") == 2
    assert await reported("a1so") <= 1
    # Narrowing inside one's scope is fine; widening beyond it is refused, not silently clipped.
    assert await reported("cmd-city", f"scope={B}") == 2
    for username, scope in (("cmd-a1", B), ("cmd-a1", CITY_ID), ("disp-b", "990101")):
        status, body = await world.as_(username).get(f"/api/stats?scope={scope}")
        assert status == 403, (username, scope, body)
        status, _ = await world.as_(username).get(f"/api/stats.csv?scope={scope}")
        assert status == 403
    for username in ("gw1", "op1"):
        status, _ = await world.as_(username).get("/api/stats")
        assert status == 403, username


async def connect(world, username):
    url = world.client.base.replace("http://", "ws://") + "/ws/live"
    request = tornado.httpclient.HTTPRequest(url, headers={"Authorization": f"Bearer {world.as_(username).token}"})
    ws = await tornado.websocket.websocket_connect(request)
    hello = json.loads(await asyncio.wait_for(ws.read_message(), 5))
    assert hello["type"] == "hello"
    return ws


async def drain(ws, seconds=0.5) -> list[dict]:
    out = []
    while True:
        try:
            raw = await asyncio.wait_for(ws.read_message(), seconds)
        except asyncio.TimeoutError:
            return out
        if raw is None:
            return out
        out.append(json.loads(raw))


async def test_live_feed_carries_only_cases_in_scope(world):
    sockets = {username: await connect(world, username) for username in VISIBLE}
    for case_id in world.cases.values():  # 督办 on all four: one case.updated each
        status, body = await world.as_("disp-city").post(f"/api/cases/{case_id}/actions/supervise", {"note": "督办"})
        assert status == 200, body
    for username, ws in sockets.items():
        messages = await drain(ws)
        got = {world.label(m["case"]["id"]) for m in messages if m["type"] == "case.updated"}
        assert got == VISIBLE[username], username
        ws.close()


async def test_actions_check_role_scope_and_assignment(world):
    cA, cB, cO = world.cases["cA"], world.cases["cB"], world.cases["cO"]

    async def act(username, case_id, action, body=None):
        status, payload = await world.as_(username).post(f"/api/cases/{case_id}/actions/{action}", body or {})
        return status, (payload or {}).get("error", {}).get("code")

    assert await act("disp-b", cA, "supervise") == (404, "case_not_found")  # other district: absent
    assert await act("b1so", cA, "sign") == (404, "case_not_found")  # never assigned: absent
    assert await act("water-a", cA, "sign") == (404, "case_not_found")
    assert await act("cmd-a1", cA, "file") == (403, "role_forbidden")  # in scope, wrong role
    assert await act("gw1", cO, "verify", {"valid": True}) == (403, "scope_forbidden")  # reads it, cannot act
    assert await act("op1", cA, "sign") == (403, "role_forbidden")
    assert (await act("a1so", cA, "sign"))[0] == 200  # the assigned department
    assert (await act("cmd-a1", cA, "supervise"))[0] == 200
    assert (await act("disp-b", cB, "supervise"))[0] == 200  # its own district
    status, body = await world.as_("gw1").get(f"/api/cases/{cO}")
    assert status == 200 and body["id"] == cO


async def test_reassigned_department_reads_but_cannot_act(world):
    cB = world.cases["cB"]
    status, body = await world.as_("disp-city").post(f"/api/cases/{cB}/actions/dispatch", {"department": "A1-so"})
    assert status == 200, body
    status, _ = await world.as_("b1so").get(f"/api/cases/{cB}")
    assert status == 200  # assigned before: still visible
    status, body = await world.as_("b1so").post(f"/api/cases/{cB}/actions/sign", {})
    assert (status, body["error"]["code"]) == (403, "not_assigned")
    status, body = await world.as_("a1so").post(f"/api/cases/{cB}/actions/sign", {})
    assert status == 200, body


# -- what each role may call at all -------------------------------------------------------------

# (method, path, body) → the roles that get past authorization (anything but 401/403).
ENDPOINTS = [
    ("POST", "/api/reports", {}, {"grid_worker"}),
    ("POST", "/api/tickets", {}, {"operator"}),
    ("GET", "/api/stats", None, {"commander", "dispatcher", "admin", "department"}),
    ("GET", "/api/stats.csv", None, {"commander", "dispatcher", "admin", "department"}),
    ("GET", "/api/audit/verify", None, {"admin", "commander", "dispatcher"}),
    ("GET", "/api/addresses?q=幸福路", None, {"operator", "dispatcher", "admin"}),
    ("GET", "/api/admin/users", None, {"admin"}),
    ("POST", "/api/admin/users", {}, {"admin"}),
    ("GET", "/api/admin/users/op1", None, {"admin"}),
    ("PATCH", "/api/admin/users/op1", {}, {"admin"}),
    ("GET", "/api/admin/audit", None, {"admin"}),
    ("POST", "/api/cases/CASE/reveal", {"reason": "回访"}, {"operator", "admin"}),  # op1 took the call
    ("POST", "/api/attachments", {}, {"grid_worker", "department", "operator", "dispatcher"}),
    ("GET", "/api/cases", None, set(ROLES)),
    ("GET", "/api/cases.geojson", None, set(ROLES)),
    ("GET", "/api/me", None, set(ROLES)),
    ("GET", "/api/departments", None, set(ROLES)),
    ("GET", "/api/categories", None, set(ROLES)),
    ("GET", "/api/jurisdictions.geojson?level=district", None, set(ROLES)),
    ("GET", "/api/route?lng=110.0025&lat=20.0025&category=0105", None, set(ROLES)),
]
ONE_PER_ROLE = {"grid_worker": "gw1", "operator": "op1", "dispatcher": "disp-city", "department": "a1so",
                "commander": "cmd-city", "admin": "admin"}


async def test_role_matrix_for_every_endpoint(world):
    checked = 0
    for method, path, body, allowed in ENDPOINTS:
        path = path.replace("CASE", world.cases["cA"])
        anonymous = world.client.as_user()
        status, _ = await anonymous.request(method, path, body)
        assert status == 401, (method, path, status)
        for role, username in ONE_PER_ROLE.items():
            status, payload = await world.as_(username).request(method, path, body)
            refused = status in (401, 403)
            assert refused != (role in allowed), (role, method, path, status, payload)
            assert refused <= (status == 403 and payload["error"]["code"] == "role_forbidden"), (role, method, path, status)
            checked += 1
    assert checked == len(ENDPOINTS) * len(ONE_PER_ROLE)


async def test_public_endpoints_ignore_a_dead_session(world):
    """A stale cookie or token must not stand between a user and the login form."""
    client = world.client.as_user()
    client.token = "not-a-token"
    status, _ = await client.get("/healthz")
    assert status == 200
    status, _ = await client.post("/api/login", {"username": "op1", "password": "x"})
    assert status == 200
    status, _ = await client.get("/api/me")
    assert status == 401


class Sneaky(BaseHandler):
    """A handler somebody forgot to declare: it must be refused, whoever asks."""

    async def get(self):  # pragma: no cover - must never run
        self.send({"leak": True})


async def test_a_handler_without_declaration_is_refused(world):
    world.client.app.wildcard_router.add_rules([(r"/api/sneaky", Sneaky)])
    for username in ("admin", "op1"):
        status, body = await world.as_(username).get("/api/sneaky")
        assert (status, body["error"]["code"]) == (403, "undeclared_permission")
    status, body = await world.as_("admin").post("/api/sneaky", {})
    assert status == 405

"""GET /api/openapi.json: it describes every route, with the permission its handler declares,
and schemathesis, run against it on a live server, finds no 5xx and no response that breaks it.

Schemathesis generates valid and invalid requests (positive and negative modes) for every
/api operation, `MAX_EXAMPLES` each, authenticated as a city-level dispatcher (intake again as
a grid worker and an operator), on a server holding a few real cases, with every check of
`schemathesis run --checks all` that judges one response (`ALL_CHECKS`): not_a_server_error,
status_code_conformance (ST103: every status documented), content_type_conformance,
response_headers_conformance, response_schema_conformance, negative_data_rejection (ST201: a
schema-violating request is refused), positive_data_acceptance (ST202: a schema-valid request
is accepted), missing_required_header, unsupported_method (ST204: an undeclared method answers
405) and allow_header_conformance (with `Allow`).

ST202 accepts its defaults (2xx, 3xx, 401, 403, 404, 409, 429) and, per operation, only the
refusals in `SEMANTIC_REJECTIONS`, each matched by status, error code and field: what the SPEC
makes the server refuse and a schema cannot state — a point outside the city (422
outside_city), a bbox whose minimum is not below its maximum (400), an id of the right shape
the city or store does not have (422 unknown_scope / unknown_jurisdiction / unknown_attachment),
a cursor that no earlier page gave (400), lng without lat (400), a duration over ten years
(400), a latitude beyond ±90 (400),
a ticket type without a default category in this city (422). Every other refusal of
schema-valid data fails. The document is the one the server serves, with the city's categories
and departments as enums and jurisdiction ids as a pattern; an optional query parameter sent
empty is absent (the pages' forms send `scope=`), and the document says so (`or_empty`).
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
import collections
import json
import re
import threading
from pathlib import Path

import pytest
import schemathesis
import tornado.web
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks as openapi_checks

from dispatch.handlers import routes
from geo.loader import load_city
from dispatch.openapi import OPERATIONS, document
from dispatch.access.policy import PERMISSIONS

MAX_EXAMPLES = 10

# Every check of `schemathesis run --checks all` that judges one response. Not the ones that
# re-send the request with other credentials or hunt for deleted resources (ignored_auth,
# use_after_free, ensure_resource_availability, object_level_authorization): the run holds one
# token per operation, and tests/test_security_*.py cover authorization.
# Schema-valid requests the SPEC has the server refuse for what a schema cannot state, per
# operation: (status, error code, field or None). Each is documented on the operation (a 400 or
# 422 in its responses); any other refusal of schema-valid data fails ST202.
SEMANTIC_REJECTIONS = {
    # A point outside the city is "a clear 422" (SPEC §3); the schema can only bound degrees, and
    # only to ±180 for both coordinates (a latitude beyond ±90 is a 400 invalid_location: the
    # tuple form that could say so breaks schemathesis 4.32's response validator). A photo id of
    # the right shape that is not the reporter's upload is a 422.
    "GET /api/route": {(422, "outside_city", None)},
    "POST /api/reports": {(422, "outside_city", "location"), (422, "unknown_attachment", "photos"),
                          (400, "invalid_location", "location")},
    # A ticket without a category takes the city's default for its type; a city may have none.
    "POST /api/tickets": {(422, "outside_city", "location"), (400, "invalid_location", "location"),
                          (422, "category_required", "category")},
    # A box's minimum must be below its maximum: a pattern cannot compare two numbers. A list's
    # cursor is opaque: only the `next` of an earlier page is one.
    "GET /api/cases": {(400, "invalid_parameter", "bbox"), (400, "invalid_parameter", "cursor")},
    "GET /api/cases.geojson": {(400, "invalid_parameter", "bbox")},
    "GET /api/cases/map": {(400, "invalid_parameter", "bbox")},
    # lng and lat come together: OpenAPI has no "both or neither" for query parameters.
    "GET /api/assist": {(400, "missing_parameter", "lng"), (400, "missing_parameter", "lat")},
    "GET /api/jurisdictions.geojson": {(400, "invalid_parameter", "bbox"), (422, "unknown_jurisdiction", "within")},
    # A duration is at most ten years (geo/durations.MAX_DURATION_SECONDS) whatever its unit; a
    # pattern bounds the digits, not the amount times its unit.
    "GET /api/calendar/add": {(400, "invalid_parameter", "duration")},
    # An id of the right shape (a case, a photo, a jurisdiction) that the city does not have (the ids are a pattern, not an enum).
    "GET /api/stats": {(422, "unknown_scope", "scope")},
    "GET /api/stats.{format}": {(422, "unknown_scope", "scope")},
    "GET /api/stats/trend": {(422, "unknown_scope", "scope")},
}


def semantic_rejection(label: str, response) -> tuple | None:
    """The (status, code, field) of a refusal listed for this operation in SEMANTIC_REJECTIONS."""
    allowed = SEMANTIC_REJECTIONS.get(label, set())
    error = response.json().get("error", {}) if response.status_code in (400, 422) else {}
    found = (response.status_code, error.get("code"), error.get("field"))
    return found if found in allowed else None


@schemathesis.check
def positive_data_accepted_unless_semantic(ctx, response, case):
    """Schemathesis' ST202 (positive_data_acceptance), except for the refusals listed above."""
    return None if semantic_rejection(case.operation.label, response) else \
        openapi_checks.positive_data_acceptance(ctx, response, case)


# Every check of `schemathesis run --checks all` that judges one response. Not the ones that
# re-send the request with other credentials or hunt for deleted resources (ignored_auth,
# use_after_free, ensure_resource_availability, object_level_authorization): the run holds one
# token per operation, and tests/test_security_*.py cover authorization.
ALL_CHECKS = [
    not_a_server_error, openapi_checks.status_code_conformance, openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance, openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection, positive_data_accepted_unless_semantic,
    openapi_checks.missing_required_header, openapi_checks.unsupported_method,
    openapi_checks.allow_header_conformance,
]

SAMPLES = {"id": "6b06d6176e264dd1bc2a5028", "username": "op1", "format": "csv"}


def route_patterns() -> list[tuple[re.Pattern, type]]:
    out = []
    for spec in routes():
        pattern, handler = spec[0], spec[1]
        out.append((re.compile(pattern + "$"), handler))
    return out


def sample_path(template: str, parameters: list[dict]) -> str:
    """A concrete path for a template: each {param} replaced by a value its schema accepts."""
    def value(match):
        name = match.group(1)
        for p in parameters:
            if p["in"] == "path" and p["name"] == name and "enum" in p["schema"]:
                return p["schema"]["enum"][0]
        return SAMPLES[name]

    return re.sub(r"\{(\w+)\}", value, template)


def implemented(handler) -> set[str]:
    return {m.upper() for m in ("get", "post", "put", "patch", "delete")
            if getattr(handler, m) is not getattr(tornado.web.RequestHandler, m)}


def test_every_route_and_method_is_described_with_its_declared_permission():
    patterns = route_patterns()
    described: dict[type, set[str]] = {}
    for op in OPERATIONS:
        concrete = sample_path(op.path, op.parameters)
        matches = [handler for regex, handler in patterns if regex.fullmatch(concrete)]
        assert matches, f"{op.method} {op.path} is described but no route serves it"
        handler = matches[0]
        assert handler.access.get(op.method) == op.permission, (op.path, op.method, handler.access)
        described.setdefault(handler, set()).add(op.method)
    missing = [f"{method} {handler.__module__}.{handler.__name__}" for _, handler in patterns
               for method in implemented(handler) if method not in described.get(handler, set())]
    assert not missing, "routes missing from dispatch/openapi.py: " + ", ".join(sorted(set(missing)))


def test_document_is_openapi_3_1_and_names_every_permission():
    doc = document()
    assert doc["openapi"] == "3.1.0"
    used = {tuple(op["x-permission"]) for item in doc["paths"].values() for op in item.values()}
    used |= {tuple(extra) for item in doc["paths"].values() for op in item.values()
             for extra in op.get("x-permission-also", [])}
    assert used == set(PERMISSIONS), set(PERMISSIONS) ^ used
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    api_ops = [op for item in doc["paths"].values() for op in item.values()
               if op["x-permission"][0] not in ("page", "live")]
    assert api_ops and all("default" in op["responses"] for op in api_ops)


async def test_served_document_is_the_described_one(small):
    status, body = await small.get("/api/openapi.json")
    assert status == 200 and body == json.loads(json.dumps(document(small.ctx.city)))
    # Without a city the same operations, with the ids as plain strings.
    assert body["paths"].keys() == document()["paths"].keys()


async def test_jurisdiction_ids_are_a_pattern_and_an_unknown_one_is_a_documented_422(demo):
    """The demo city has thousands of grids: the document names them by pattern (it was 430 KB
    of enumerated ids, it is about 100 KB now), and an id that fits the pattern but is not in the city is a 422 the
    document lists."""
    status, served = await demo.get("/api/openapi.json")
    text = json.dumps(served, ensure_ascii=False)
    grids = [j.id for j in demo.ctx.city.jurisdictions.values() if j.level == "grid"]
    assert status == 200 and not [g for g in grids if f'"{g}"' in text]
    pattern = served["components"]["schemas"]["JurisdictionId"]["pattern"]
    assert "enum" not in served["components"]["schemas"]["JurisdictionId"]
    assert re.fullmatch(pattern, "999999999")
    admin = demo.as_user()
    await admin.login("admin", str(next(u for u in demo.ctx.city.users if u["username"] == "admin")["password"]))
    for path, code in (("/api/stats?scope=999999999", "unknown_scope"),
                       ("/api/jurisdictions.geojson?within=999999999", "unknown_jurisdiction")):
        status, body = await admin.get(path)
        assert (status, body["error"]["code"]) == (422, code), (path, body)
        documented = served["paths"][path.split("?")[0]]["get"]["responses"]
        assert "422" in documented or "422 语义错误" in documented["default"]["description"], path


async def test_undeclared_method_answers_405_with_allow(small):
    for method, path, allow in (("DELETE", "/api/cases", "GET"), ("TRACE", "/api/admin/users", "GET, POST"),
                                ("PUT", "/api/login", "POST"), ("TRACE", "/login", "GET"), ("TRACE", "/ws/live", "GET"),
                                ("DELETE", "/favicon.ico", "GET"), ("TRACE", "/static/js/dom.js", "GET, HEAD")):
        response = await fetch(small, method, path)
        assert response.code == 405, (method, path, response.code)
        assert response.headers.get("Allow") == allow, (method, path, dict(response.headers))
    assert (await fetch(small, "TRACE", "/api/no-such-thing")).code == 404


async def test_favicon_is_served_by_its_handler(small):
    """Tornado's static_path setting put its own /favicon.ico route first: a 404 (no such file)
    that hid FaviconHandler."""
    response = await fetch(small, "GET", "/favicon.ico")
    assert (response.code, response.headers["Content-Type"]) == (200, "image/svg+xml")


async def fetch(client, method: str, path: str):
    return await client.http.fetch(client.base + path, method=method, body=b"" if method in ("PUT", "POST") else None,
                                   allow_nonstandard_methods=True, raise_error=False)


# -- schemathesis ---------------------------------------------------------------------------------


class LiveServer:
    """A server on its own thread and event loop, for a synchronous HTTP client (schemathesis)."""

    def __init__(self, city_path: Path):
        self.city_path = city_path
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def start(self) -> "LiveServer":
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(120), "server did not start"
        if self.error:
            raise self.error
        return self

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        from security_world import World
        from support import start_server

        self.server, client = await start_server(self.city_path, "auth.reveals_per_hour=100000")
        self.world = World(client, self.server)
        await self.world.populate()  # real cases for the id-taking operations to find
        self.base = client.base
        self.token = client.ctx.tokens.issue("disp-city")

    def stop(self) -> None:
        async def shut():
            self.server.stop()
            await self.world.ctx.storage.close()

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def _city_path() -> Path:
    """The test city, written once at import: the parametrized schemas need its ids."""
    from security_world import city_data
    from small_city import write_small_city

    where = Path(tempfile.mkdtemp(prefix="openapi-city-"))
    atexit.register(shutil.rmtree, where, True)
    return Path(write_small_city(where, city_data()))


CITY_PATH = _city_path()
CITY = load_city(str(CITY_PATH))


@pytest.fixture(scope="module")
def live():
    server = LiveServer(CITY_PATH).start()
    yield server
    server.stop()


# /api operations and /healthz; not logout (it would revoke the token the run uses), nor the
# WebSocket and the HTML pages (no JSON API). The account changes run as an admin of their own.
schema = (
    schemathesis.openapi.from_dict(document(CITY))
    .include(path_regex=r"^/(api/|healthz)")
    .exclude(path="/api/logout")
)


# What the run did, per operation and status: checked at the end so that a run in which
# every request bounced off authentication (all 401) cannot pass unnoticed.
SEEN: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


@schemathesis.check
def record_status(ctx, response, case):
    SEEN[case.operation.label][response.status_code] += 1
    return None


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_api_conforms_to_its_description(case, live):
    case.call_and_validate(
        base_url=live.base,
        headers={"Authorization": f"Bearer {live.token}"},
        checks=[*ALL_CHECKS, record_status],
        timeout=30,
    )


# Intake again, as the roles that may use it (as the dispatcher it is all 403).
intake_schema = schemathesis.openapi.from_dict(document(CITY)).include(path_regex=r"^/api/(reports|tickets)$")
INTAKE_ACCOUNT = {"/api/reports": "gw1", "/api/tickets": "op1"}


@intake_schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_intake_conforms_to_its_description(case, live):
    token = live.world.ctx.tokens.issue(INTAKE_ACCOUNT[case.path])
    case.call_and_validate(
        base_url=live.base,
        headers={"Authorization": f"Bearer {token}"},
        checks=[*ALL_CHECKS, record_status],
        timeout=30,
    )


def require_schemathesis_run() -> None:
    """Skip when the schemathesis tests were deselected (`-k`): there is nothing to sum up."""
    if not SEEN:
        pytest.skip("the schemathesis run was not selected")


def test_schemathesis_run_reached_the_handlers():
    require_schemathesis_run()
    total = sum(sum(c.values()) for c in SEEN.values())
    statuses = collections.Counter()
    for counter in SEEN.values():
        statuses.update(counter)
    print(f"\nschemathesis: {len(SEEN)} operations, {total} requests, statuses {dict(sorted(statuses.items()))}")
    assert not any(code >= 500 for code in statuses)
    assert statuses[200] > 0 and sum(n for code, n in statuses.items() if code in (400, 404, 422)) > 0
    ok = [op for op, counter in SEEN.items() if counter[200] or counter[201]]
    assert len(ok) >= 10, json.dumps({op: dict(c) for op, c in SEEN.items()}, ensure_ascii=False)

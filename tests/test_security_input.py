"""Hostile input: every probe gets a clear 4xx with the error body, and changes nothing.

`PROBES` is the catalogue counted in docs/SECURITY.md: operator injection in every body field
that reaches a query, wrong types, oversized values and bodies, malformed JSON, bad GeoJSON and
coordinates, and hostile query strings. After each probe the store is compared with its state
before: same documents, same case versions, same accounts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from security_world import world  # noqa: F401 - world: the fixture

ROOT = Path(__file__).resolve().parent.parent
POINT = {"type": "Point", "coordinates": [110.0025, 20.0025]}
TICKET = {"type": "complaint", "content": "噪声", "category": "H01", "caller": {"name": "王五", "phone": "13700000000"},
          "location": POINT}
REPORT = {"category": "0105", "description": "漂浮物", "location": POINT}


def with_(base: dict, **changes) -> dict:
    out = dict(base)
    out.update(changes)
    return out


# (who, method, path, body or raw bytes, expected status). CASE stands for case cA's id (dispatched),
# GRIDCASE for cG's (reported).
PROBES = [
    # operator injection: an operator where a value belongs
    ("anon", "POST", "/api/login", {"username": {"$ne": None}, "password": {"$ne": None}}, 400),
    ("anon", "POST", "/api/login", {"username": "admin", "password": {"$gt": ""}}, 400),
    ("anon", "POST", "/api/login", {"username": {"$regex": ".*"}, "password": "x"}, 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, category={"$ne": None}), 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, client_id={"$exists": True}), 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, photos=[{"$ne": None}]), 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, location={"type": "Point", "coordinates": [{"$gt": 0}, 20]}), 400),
    ("op1", "POST", "/api/tickets", with_(TICKET, caller={"name": "x", "phone": {"$regex": ".*"}}), 400),
    ("op1", "POST", "/api/tickets", with_(TICKET, category={"$in": ["H01"]}), 400),
    ("op1", "POST", "/api/tickets", with_(TICKET, client_id={"$gt": ""}), 400),
    ("disp-a", "POST", "/api/cases/CASE/actions/supervise", {"version": {"$gt": 0}}, 400),
    ("disp-a", "POST", "/api/cases/CASE/actions/dispatch", {"department": {"$ne": None}}, 400),
    ("disp-a", "POST", "/api/cases/CASE/actions/escalate", {"departments": [{"$ne": 1}]}, 400),
    ("op1", "POST", "/api/cases/GRIDCASE/actions/merge", {"into": {"$ne": None}}, 400),
    ("op1", "POST", "/api/cases/CASE/reveal", {"reason": {"$ne": None}}, 400),
    ("admin", "POST", "/api/admin/users", {"username": {"$ne": None}, "password": "Lake-Breeze-2048!",
                                           "role": "admin", "scope": "990100"}, 400),
    ("admin", "POST", "/api/admin/users", {"username": "x.y", "password": "Lake-Breeze-2048!",
                                           "role": {"$ne": None}, "scope": "990100"}, 400),
    ("admin", "PATCH", "/api/admin/users/op1", {"disabled": {"$ne": False}}, 400),
    ("admin", "PATCH", "/api/admin/users/op1", {"password": {"$ne": None}}, 400),
    # wrong types
    ("anon", "POST", "/api/login", {"username": ["admin"], "password": "x"}, 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, description=123), 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, photos="abc"), 400),
    ("op1", "POST", "/api/tickets", with_(TICKET, caller="王五 13700000000"), 400),
    ("op1", "POST", "/api/tickets", with_(TICKET, type="bogus"), 400),
    ("op1", "POST", "/api/tickets", with_(TICKET, channel=["12345"]), 400),
    ("op1", "POST", "/api/tickets", with_(TICKET, caller={"phone": "not a phone; drop table"}), 400),
    ("disp-a", "POST", "/api/cases/CASE/actions/supervise", {"version": "3"}, 400),
    ("disp-a", "POST", "/api/cases/CASE/actions/supervise", {"version": True}, 400),
    ("disp-a", "POST", "/api/cases/CASE/actions/supervise", {"version": 1.5}, 400),
    ("disp-a", "POST", "/api/cases/GRIDCASE/actions/void", {"reason": ["x"]}, 400),
    ("disp-a", "POST", "/api/cases/CASE/actions/escalate", {"within": "forever"}, 400),
    ("admin", "PATCH", "/api/admin/users/op1", {"disabled": "yes"}, 400),
    # oversized values
    ("gw1", "POST", "/api/reports", with_(REPORT, description="长" * 2001), 400),
    ("op1", "POST", "/api/tickets", with_(TICKET, content="长" * 4001), 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, photos=["a" * 24] * 10), 400),
    ("anon", "POST", "/api/login", {"username": "u" * 65, "password": "x"}, 400),
    ("op1", "POST", "/api/cases/CASE/reveal", {"reason": "理" * 201}, 400),
    # bad GeoJSON and coordinates
    ("gw1", "POST", "/api/reports", with_(REPORT, location={"type": "Point", "coordinates": [200, 20]}), 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, location={"type": "Point", "coordinates": [110, 95]}), 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, location={"type": "Point", "coordinates": [110]}), 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, location={"type": "Point", "coordinates": "110,20"}), 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, location={"type": "Polygon", "coordinates": [[[0, 0]]]}), 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, location={"coordinates": [110, 20]}), 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, location=[110.0025, 20.0025]), 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, location={"type": "Point", "coordinates": [True, 20]}), 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, location={"type": "Point", "coordinates": [1e400, 20]}), 400),
    ("gw1", "POST", "/api/reports", with_(REPORT, location={"type": "Point", "coordinates": [100.0, 30.0]}), 422),
    ("disp-a", "POST", "/api/cases/GRIDCASE/actions/relocate", {"location": {"type": "Point", "coordinates": [0, 999]}}, 400),
    # malformed bodies
    ("gw1", "POST", "/api/reports", b"{not json", 400),
    ("gw1", "POST", "/api/reports", b"[1, 2, 3]", 400),
    ("gw1", "POST", "/api/reports", b'"a string"', 400),
    ("gw1", "POST", "/api/reports", b"", 400),
    ("gw1", "POST", "/api/reports", b"\xff\xfe\x00garbage", 400),
    ("gw1", "POST", "/api/reports", b"[" * 100_000 + b"]" * 100_000, 400),
    ("gw1", "POST", "/api/reports", b'{"category": "0105", "description": "\\ud800", "location": '
                                    b'{"type": "Point", "coordinates": [110.0025, 20.0025]}}', 400),
    ("gw1", "POST", "/api/reports", b'{"category": "0105", "location": {"type": "Point", "coordinates": [NaN, 20]}}', 400),
    ("gw1", "POST", "/api/reports", b"category=0105&description=x", 400),
    ("gw1", "POST", "/api/reports", b"{" + b'"a": 1,' * 200_000 + b'"b": 2}', 413),
    ("op1", "POST", "/api/tickets", json.dumps(with_(TICKET, content="x" * 2_000_000)).encode(), 413),
    ("gw1", "POST", "/api/attachments", b"\xff\xd8\xff" + b"\x00" * (5 * 1024 * 1024 + 1), 413),
    ("gw1", "POST", "/api/attachments", b"<html><script>alert(1)</script></html>", 415),
    ("gw1", "POST", "/api/attachments", b"GIF89a" + b"\x00" * 100, 415),
    ("gw1", "POST", "/api/attachments", b"", 400),
    # hostile query strings and paths
    ("disp-a", "GET", "/api/cases?status[$ne]=closed&status=bogus", None, 400),
    ("disp-a", "GET", "/api/cases?limit=-1", None, 400),
    ("disp-a", "GET", "/api/cases?limit=1e9", None, 400),
    ("disp-a", "GET", "/api/cases?bbox=1,2,3", None, 400),
    ("disp-a", "GET", "/api/cases?bbox=0,0,999,1", None, 400),
    ("disp-a", "GET", "/api/cases?near=110,20,999999", None, 400),
    ("disp-a", "GET", "/api/cases?from=yesterday", None, 400),
    ("disp-a", "GET", "/api/cases?cursor=eyIkbmUiOiAxfQ", None, 400),
    ("disp-a", "GET", "/api/cases?q=" + "x" * 101, None, 400),
    ("disp-a", "GET", "/api/cases?overdue=maybe", None, 400),
    ("disp-a", "GET", "/api/cases.geojson?limit=100000", None, 400),
    ("disp-a", "GET", "/api/cases/%24where", None, 404),
    ("disp-a", "GET", "/api/cases/" + "a" * 65, None, 404),
    ("disp-a", "GET", "/api/route?lng=abc&lat=20&category=0105", None, 400),
    ("disp-a", "GET", "/api/route?lng=inf&lat=20&category=0105", None, 400),
    ("disp-a", "GET", "/api/route?lng=110&lat=20&category=%7B%22%24ne%22%3A1%7D", None, 422),
    ("disp-a", "GET", "/api/stats?from=2026-13-45", None, 400),
    ("disp-a", "GET", "/api/stats?group_by=password_hash", None, 400),
    ("disp-a", "GET", "/api/jurisdictions.geojson?level=$where", None, 400),
    ("admin", "GET", "/api/admin/users/%24ne", None, 404),
    ("admin", "GET", "/api/admin/audit?kind=users", None, 400),
    ("disp-a", "GET", "/api/audit/verify?case=%7B%22%24ne%22%3A1%7D", None, 404),
]


async def test_every_hostile_probe_is_refused_cleanly_and_changes_nothing(world):
    before = await world.counts()
    held = 0
    for who, method, path, body, expected in PROBES:
        client = world.client.as_user() if who == "anon" else world.as_(who)
        path = path.replace("GRIDCASE", world.cases["cG"]).replace("CASE", world.cases["cA"])
        raw = isinstance(body, bytes)  # a probe's body: raw bytes, or JSON
        status, payload = await client.request(method, path, None if raw else body, raw=body if raw else None)
        label = (who, method, path[:80], (body[:60] if isinstance(body, bytes) else body))
        assert status == expected, (label, status, payload)
        assert isinstance(payload, dict) and payload["error"]["code"] and payload["error"]["message"], label
        assert await world.counts() == before, label
        held += 1
    assert held == len(PROBES) >= 80


async def test_injection_in_query_values_is_just_text(world):
    """Query values are strings compared for equality: an operator in one matches nothing."""
    for query in ('category={"$ne":1}', 'q={"$where":"1"}', "q=.*", "q=(a+)+$"):
        status, body = await world.as_("admin").get(f"/api/cases?{query}")
        assert (status, body["items"]) == (200, []), (query, body)
    # An operator in a parameter's name is another (unknown) parameter: ignored, not applied.
    status, body = await world.as_("admin").get("/api/cases?department[$ne]=x")
    assert status == 200, body


async def test_api_responses_carry_security_headers(world):
    response = await world.client.http.fetch(world.client.base + "/api/cases", raise_error=False)
    headers = response.headers
    assert response.code == 401 and headers["Content-Type"].startswith("application/json")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"


async def test_pages_carry_a_strict_csp(world):
    response = await world.client.http.fetch(world.client.base + "/login", raise_error=False)
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_photos_are_served_sandboxed(world):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    status, body = await world.as_("gw1").post("/api/attachments", raw=png)
    assert status == 201 and body["content_type"] == "image/png"
    response = await world.client.http.fetch(world.client.base + body["url"], raise_error=False,
                                             headers={"Authorization": f"Bearer {world.as_('gw1').token}"})
    assert response.headers["Content-Type"] == "image/png"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# -- user text is rendered as text ------------------------------------------------------------

HTML_SINKS = re.compile(r"\.(innerHTML|outerHTML)\s*[+]?=(?!=)|insertAdjacentHTML\s*\(|document\.write\s*\(|"
                        r"\beval\s*\(|new\s+Function\s*\(|setTimeout\s*\(\s*['\"`]")


def front_end_files() -> list[Path]:
    static = ROOT / "static"
    return [p for p in static.rglob("*") if p.suffix in (".js", ".html") and "vendor" not in p.parts]


def html_sinks(path: Path) -> list[str]:
    """`file:line` of each HTML/code sink in a front-end file; clearing an element (assigning
    an empty string) is harmless and not listed."""
    text = path.read_text(encoding="utf-8")
    return [f"{path.relative_to(ROOT)}:{text[: match.start()].count(chr(10)) + 1}"
            for match in HTML_SINKS.finditer(text)
            if not (match.group(1) and text[match.end(): match.end() + 3].strip().startswith(('""', "''", "``")))]


def test_front_end_never_parses_strings_as_html_or_code():
    offenders = [where for path in front_end_files() for where in html_sinks(path)]
    assert not offenders, "HTML/code sinks in the front end (build DOM with el()/textContent): " + ", ".join(offenders)


def test_pages_have_no_inline_script_or_handlers():
    for path in (ROOT / "static" / "pages").glob("*.html"):
        text = path.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text, re.I):
            assert "src=" in tag, (path.name, tag)
        assert not re.search(r"\son[a-z]+\s*=", text, re.I), path.name
        assert "javascript:" not in text.lower(), path.name

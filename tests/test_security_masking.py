"""Numbers typed into free text are masked in every field and every output for readers who may
not see the caller: mobile numbers in any usual spelling (+86/0086/86- prefixes, dashes, spaces),
landlines with an area code, and resident ID-card numbers (18 with an X check digit, old 15).
The platform's own numbers (case numbers, dates, times, amounts) are left alone.

Every row of FORMATS goes through a hotline ticket's whole loop — content, address, client_id,
history notes, the department's result, the callback, and a consultation's answer — and is then
read as a single case, as a list item, as a GeoJSON feature and from the live feed.
"""

from __future__ import annotations

import json

import pytest

from dispatch.access.masking import mask_text
from security_world import G1_POINT, close_world, make_world
from test_security_policy import connect, drain

# (label, as typed, as a reader who may not see the caller gets it)
FORMATS = [
    ("mobile", "13912345678", "139****5678"),
    ("+86", "+86 13912345678", "+86 139****5678"),
    ("+86 glued", "+8613912345678", "+86139****5678"),
    ("0086", "0086-13912345678", "0086-139****5678"),
    ("86-", "86-13912345678", "86-139****5678"),
    ("dashed", "139-1234-5678", "139-****-5678"),
    ("spaced", "139 1234 5678", "139 **** 5678"),
    ("spaced and dashed", "139 1234-5678", "139 ****-5678"),
    ("landline", "0571-8765 4321", "0571-****4321"),
    ("landline dashed", "0571-87654321", "0571-****4321"),
    ("landline in brackets", "(0571)87654321", "(0571)****4321"),
    ("landline, full-width brackets", "（010）65123456", "（010）****3456"),
    ("ID card", "330102199001011234", "330***********1234"),
    ("ID card, X", "33010219900101123X", "330***********123X"),
    ("ID card, x", "33010219900101123x", "330***********123x"),
    ("old ID card", "330102900101123", "330********1123"),
]

# The platform's own numbers: never masked.
NOT_NUMBERS = [
    "案件编号 20261122-000123",
    "2026-11-22T08:30:00+08:00",
    "2026-11-22 08:30",
    "2026年11月22日 8:30 到 17:45",
    "金额 12345.67 元，共 1,380,000 元",
    "20261122",
    "第 3 次，编号 No.2026-0012345",
]


@pytest.mark.parametrize("label, typed, masked", FORMATS, ids=[f[0] for f in FORMATS])
def test_each_number_format_is_masked_in_text(label, typed, masked):
    assert mask_text(f"请回拨{typed}，谢谢") == f"请回拨{masked}，谢谢"
    assert mask_text(f"电话: {typed} (张)") == f"电话: {masked} (张)"


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_case_numbers_dates_times_and_amounts_are_left_alone(text):
    assert mask_text(text) == text


def test_the_callers_own_number_is_masked_in_any_spelling():
    caller = {"name": "王五", "phone": "13700000000"}
    assert mask_text("王五 137-0000-0000", caller) == "王* 137-****-0000"


@pytest.fixture
async def world(tmp_path_factory):
    w = await make_world(tmp_path_factory, populate=False)
    yield w
    await close_world(w)


async def run_loop(world, label: str, typed: str) -> tuple[str, str]:
    """A complaint taken round the whole loop and a consultation answered on the phone, the
    number typed into every free-text field; returns the two case ids."""
    op, disp, dept = world.as_("op1"), world.as_("disp-a"), world.as_("a1so")
    text = f"{label}：请回拨 {typed}"
    status, case = await op.post("/api/tickets", {
        "type": "complaint", "category": "H01", "content": text, "address": f"一街道 8 号 {typed}",
        "caller": {"name": "王五", "phone": "13700000000"}, "client_id": f"c {typed}",
        "location": {"type": "Point", "coordinates": G1_POINT},
    })
    assert status == 201, case
    cid = case["id"]
    for who, action, body in (
        (disp, "file", {"note": text}),
        (disp, "dispatch", {"department": "A1-so", "note": text}),
        (dept, "sign", {"note": text}),
        (dept, "feedback", {"result": text, "note": text}),
        (op, "check", {"passed": True, "satisfaction": "satisfied", "resolved": True, "note": text}),
    ):
        status, body = await who.post(f"/api/cases/{cid}/actions/{action}", body)
        assert status == 200, (action, body)
    status, answered = await op.post("/api/tickets", {
        "type": "consultation", "category": "H01", "content": text, "client_id": f"a {typed}",
        "address": f"一街道 9 号 {typed}", "location": {"type": "Point", "coordinates": G1_POINT},
    })
    assert status == 201, answered
    status, body = await op.post(f"/api/cases/{answered['id']}/actions/answer", {"answer": text, "note": text})
    assert status == 200, body
    return cid, answered["id"]


def free_text(case: dict) -> dict[str, str]:
    """Every free-text field of a case as the API shows it."""
    fields = {
        "description": case["description"], "address": case["address"], "client_id": case["client_id"],
        "history notes": " | ".join(e.get("note") or "" for e in case["history"]),
    }
    if "result" in case:
        fields.update({"result": case["result"]["text"], "callback note": case["callback"]["note"],
                       "check note": case["check"]["note"]})
    if "answer" in case:
        fields["answer"] = case["answer"]["text"]
    return fields


def feature_text(feature: dict) -> dict[str, str]:
    return {"summary": feature["properties"]["summary"], "address": feature["properties"]["address"] or ""}


def assert_masked(fields: dict[str, str], typed: str, masked: str, where: str) -> None:
    for name, value in fields.items():
        assert typed not in value and masked in value, (where, name, value)


@pytest.mark.parametrize("label, typed, masked", FORMATS, ids=[f[0] for f in FORMATS])
async def test_every_field_of_every_output_is_masked(world, label, typed, masked):
    ws = await connect(world, "disp-city")
    cid, answered = await run_loop(world, label, typed)
    reader = world.as_("disp-city")  # may read both cases, may not see their caller

    for case_id in (cid, answered):
        status, case = await reader.get(f"/api/cases/{case_id}")
        assert status == 200
        assert_masked(free_text(case), typed, masked, "GET /api/cases/{id}")
        assert typed not in json.dumps(case, ensure_ascii=False)
    status, listed = await reader.get("/api/cases?limit=500")
    assert status == 200 and {c["id"] for c in listed["items"]} == {cid, answered}
    for item in listed["items"]:
        assert_masked(free_text(item), typed, masked, "GET /api/cases")
    status, collection = await reader.get("/api/cases.geojson")
    assert status == 200 and len(collection["features"]) == 2
    for feature in collection["features"]:
        assert_masked(feature_text(feature), typed, masked, "GET /api/cases.geojson")
    messages = await drain(ws)
    ws.close()
    assert len(messages) >= 8
    for message in messages:
        assert_masked(feature_text(message["case"]), typed, masked, f"live {message['type']}")

    # Masking is for those who may not see the caller: the operator who took the call reads it all.
    status, case = await world.as_("op1").get(f"/api/cases/{cid}")
    assert typed in case["description"] and typed in case["address"] and typed in case["client_id"]


async def test_platform_numbers_reach_every_reader_unchanged(world):
    text = "；".join(NOT_NUMBERS)
    status, case = await world.as_("op1").post("/api/tickets", {
        "type": "complaint", "category": "H01", "content": text, "address": "一街道 2026-11-22 号",
        "location": {"type": "Point", "coordinates": G1_POINT},
    })
    assert status == 201, case
    status, seen = await world.as_("disp-city").get(f"/api/cases/{case['id']}")
    assert seen["description"] == text and seen["address"] == "一街道 2026-11-22 号"
    assert seen["number"] == case["number"] and seen["id"] == case["id"]
    status, collection = await world.as_("disp-city").get("/api/cases.geojson")
    assert collection["features"][0]["properties"]["summary"] == text[:80]

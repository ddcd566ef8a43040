"""Photos: attached only by their uploader wherever a case takes photos (report, feedback,
check), and ids that cannot be guessed."""

from __future__ import annotations

import re
import pytest

from security_world import G1_POINT, close_world, make_world

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def upload(client, data: bytes = PNG):
    return await client.request("POST", "/api/attachments", raw=data, headers={"Content-Type": "image/png"})


async def photo_of(client) -> str:
    status, body = await upload(client)
    assert status == 201, body
    return body["id"]


@pytest.fixture
async def world(tmp_path_factory):
    w = await make_world(tmp_path_factory)
    yield w
    await close_world(w)


async def handled_case(world) -> str:
    """cA (dispatched to A1-so) signed and handled by a1so, waiting for the operator's check."""
    cid = world.cases["cA"]
    for action, body in (("sign", {}), ("feedback", {"result": "已处理"})):
        status, payload = await world.as_("a1so").post(f"/api/cases/{cid}/actions/{action}", body)
        assert status == 200, payload
    return cid


async def test_feedback_cannot_attach_somebody_elses_photo(world):
    theirs = await photo_of(world.as_("gw1"))
    dept = world.as_("a1so")
    cid = world.cases["cA"]
    assert (await dept.post(f"/api/cases/{cid}/actions/sign", {}))[0] == 200
    version = (await world.ctx.cases.get(cid))["version"]
    status, body = await dept.post(f"/api/cases/{cid}/actions/feedback", {"result": "已处理", "photos": [theirs]})
    assert status == 422 and body["error"]["code"] == "unknown_attachment", body
    assert (await world.ctx.cases.get(cid))["version"] == version
    # ... so the photo stays out of the department's reach.
    assert (await dept.get(f"/api/attachments/{theirs}"))[0] == 404
    mine = await photo_of(dept)
    status, body = await dept.post(f"/api/cases/{cid}/actions/feedback", {"result": "已处理", "photos": [mine]})
    assert status == 200 and body["result"]["photos"] == [mine]


async def test_check_cannot_attach_somebody_elses_photo(world):
    cid = await handled_case(world)
    theirs = await photo_of(world.as_("a1so"))
    op = world.as_("op1")
    check = {"passed": True, "satisfaction": "satisfied", "resolved": True}
    status, body = await op.post(f"/api/cases/{cid}/actions/check", {**check, "photos": [theirs]})
    assert status == 422 and body["error"]["code"] == "unknown_attachment", body
    mine = await photo_of(op)
    status, body = await op.post(f"/api/cases/{cid}/actions/check", {**check, "photos": [mine]})
    assert status == 200 and body["check"]["photos"] == [mine]


async def test_attachment_ids_are_random_and_routable(world):
    client = world.as_("gw1")
    ids = [await photo_of(client) for _ in range(3)]
    for photo_id in ids:
        # token_urlsafe(24): 32 URL-safe characters, 192 random bits; no ObjectId counter.
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", photo_id), photo_id
        status, data = await client.get(f"/api/attachments/{photo_id}")
        assert status == 200 and data == PNG
    assert len({i[:8] for i in ids}) == 3  # sequential ObjectIds share their timestamp prefix
    status, case = await client.post("/api/reports", {
        "category": "0105", "description": "漂浮物", "photos": ids[:1],
        "location": {"type": "Point", "coordinates": G1_POINT}})
    assert status == 201 and case["photos"] == ids[:1]

"""Photos: attached only by their uploader wherever a case takes photos (report, feedback,
check), ids that cannot be guessed, and bounded storage — a per-user quota on uploads no case
uses, and their expiry."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from dispatch.domain import utcnow
from dispatch.intake.attachments import expire_unreferenced
from security_world import G1_POINT, close_world, make_world, world  # noqa: F401 - world: the fixture

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def upload(client, data: bytes = PNG):
    return await client.request("POST", "/api/attachments", raw=data, headers={"Content-Type": "image/png"})


async def photo_of(client) -> str:
    status, body = await upload(client)
    assert status == 201, body
    return body["id"]


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


# -- bounded storage: a quota on uploads no case uses, and their expiry -----------------------

@pytest.fixture
async def tight(tmp_path_factory):
    w = await make_world(tmp_path_factory, "attachments.pending_max_count=4", "attachments.pending_max_mb=1")
    yield w
    await close_world(w)


async def test_unused_uploads_are_limited_per_user(tight):
    gw1 = tight.as_("gw1")
    ids = [await photo_of(gw1) for _ in range(4)]  # attachments.pending_max_count=4
    status, body = await upload(gw1)
    assert status == 429 and body["error"]["code"] == "upload_quota_exceeded", body
    assert "照片" in body["error"]["message"]
    assert (await tight.ctx.attachments.pending_usage("gw1", utcnow() - timedelta(days=1)))[0] == 4
    # The quota is per user ...
    assert (await upload(tight.as_("a1so")))[0] == 201
    # ... and photos a case uses no longer count.
    status, case = await gw1.post("/api/reports", {
        "category": "0105", "description": "漂浮物", "photos": ids[:2],
        "location": {"type": "Point", "coordinates": G1_POINT}})
    assert status == 201, case
    assert (await upload(gw1))[0] == 201


async def test_unused_upload_volume_is_limited_per_user(tight):
    big = b"\xff\xd8\xff" + b"\x00" * (600 * 1024)  # attachments.pending_max_mb=1
    dept = tight.as_("a1so")
    assert (await upload(dept, big))[0] == 201
    status, body = await upload(dept, big)
    assert status == 429 and body["error"]["code"] == "upload_quota_exceeded", body


async def test_unreferenced_uploads_expire_and_used_ones_stay(world):
    ctx, gw1, dept = world.ctx, world.as_("gw1"), world.as_("a1so")
    reported, feedback, unused, unflagged = (await photo_of(gw1), await photo_of(dept), await photo_of(gw1),
                                             await photo_of(gw1))
    status, case = await gw1.post("/api/reports", {
        "category": "0105", "description": "漂浮物", "photos": [reported, unflagged],
        "location": {"type": "Point", "coordinates": G1_POINT}})
    assert status == 201
    cid = world.cases["cA"]
    assert (await dept.post(f"/api/cases/{cid}/actions/sign", {}))[0] == 200
    assert (await dept.post(f"/api/cases/{cid}/actions/feedback", {"result": "好", "photos": [feedback]}))[0] == 200
    # A photo a case shows but whose flag was lost (an upload from before the flag, a crash
    # between the case write and the flag): the expiry asks the cases and keeps it.
    await ctx.attachments.mark_referenced([unflagged], False)

    assert await expire_unreferenced(ctx, utcnow()) == 0  # nothing is old enough yet
    later = utcnow() + timedelta(hours=25)  # attachments.expire_unreferenced_hours=24
    assert await expire_unreferenced(ctx, later) == 1
    assert await ctx.attachments.get(unused) is None
    for kept in (reported, feedback, unflagged):
        doc = await ctx.attachments.get(kept)
        assert doc is not None and doc["referenced"] is True, kept
    assert (await gw1.get(f"/api/attachments/{reported}"))[0] == 200

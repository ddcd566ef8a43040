"""Photo attachments: sniffed type, size limit, ownership and scoped reads."""

import pytest

from support import login_as
from test_intake import report_body
from dispatch.store.query import CaseQuery

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


async def upload(client, data: bytes, content_type="image/jpeg"):
    return await client.request("POST", "/api/attachments", raw=data, headers={"Content-Type": content_type})


async def test_upload_and_attach_to_report(demo):
    worker = await login_as(demo, "grid_worker")
    status, photo = await upload(worker, JPEG)
    assert status == 201 and photo["content_type"] == "image/jpeg" and photo["size"] == len(JPEG)
    status, case = await worker.post("/api/reports", report_body(demo.ctx, photos=[photo["id"]]))
    assert status == 201 and case["photos"] == [photo["id"]]
    status, _ = await worker.get(photo["url"])
    assert status == 200
    # The dispatcher can read it through the case; a grid worker of another community cannot.
    dispatcher = await login_as(demo, "dispatcher")
    assert (await dispatcher.get(photo["url"]))[0] == 200
    other = await login_as(demo, "grid_worker", 1)
    assert (await other.get(photo["url"]))[0] == 404


@pytest.mark.parametrize("data, status, code", [
    (b"GIF89a" + b"\x00" * 10, 415, "unsupported_media_type"),
    (b"<script>alert(1)</script>", 415, "unsupported_media_type"),
    (b"", 400, "empty_upload"),
    (b"\xff\xd8\xff" + b"\x00" * (6 * 1024 * 1024), 413, "attachment_too_large"),
])
async def test_bad_uploads(demo, data, status, code):
    worker = await login_as(demo, "grid_worker")
    got_status, body = await upload(worker, data)
    assert got_status == status and body["error"]["code"] == code


async def test_photos_must_be_own_uploads(demo):
    worker = await login_as(demo, "grid_worker")
    other = await login_as(demo, "grid_worker", 1)
    _, photo = await upload(other, PNG, "image/png")
    status, body = await worker.post("/api/reports", report_body(demo.ctx, photos=[photo["id"]]))
    assert status == 422 and body["error"]["code"] == "unknown_attachment"
    status, body = await worker.post("/api/reports", report_body(demo.ctx, photos=["0" * 24]))
    assert status == 422
    assert await demo.ctx.cases.count(CaseQuery()) == 0


async def test_commanders_cannot_upload(demo):
    commander = await login_as(demo, "commander")
    assert (await upload(commander, JPEG))[0] == 403

"""WS /ws/live: authenticated, scoped, and able to catch up after a reconnect."""

from __future__ import annotations

import asyncio
import json

import pytest
import tornado.httpclient
import tornado.websocket

from support import login_as
from test_intake import report_body

pytestmark = pytest.mark.asyncio


async def connect(client, since=None, token=True):
    url = client.base.replace("http://", "ws://") + "/ws/live" + (f"?since={since}" if since is not None else "")
    headers = {"Authorization": f"Bearer {client.token}"} if token else {}
    return await tornado.websocket.websocket_connect(tornado.httpclient.HTTPRequest(url, headers=headers))


async def next_message(ws, timeout=5.0):
    raw = await asyncio.wait_for(ws.read_message(), timeout)
    return json.loads(raw) if raw is not None else None


async def test_created_case_reaches_users_in_scope_only(demo):
    worker = await login_as(demo, "grid_worker")
    commander = await login_as(demo, "commander")
    other_worker = demo.as_user()
    second = [u for u in demo.ctx.city.users if u["role"] == "grid_worker"][1]
    await other_worker.login(second["username"], second["password"])

    ws_commander = await connect(commander)
    ws_other = await connect(other_worker)
    assert (await next_message(ws_commander))["type"] == "hello"
    assert (await next_message(ws_other))["type"] == "hello"

    status, case = await worker.post("/api/reports", report_body(demo.ctx))
    assert status == 201
    event = await next_message(ws_commander)
    assert event["type"] == "case.created" and event["case"]["id"] == case["id"]
    assert event["case"]["type"] == "Feature" and event["case"]["geometry"]["type"] == "Point"
    # A grid worker of another community does not see it.
    with pytest.raises(asyncio.TimeoutError):
        await next_message(ws_other, timeout=0.5)
    ws_commander.close()
    ws_other.close()


async def test_reconnect_with_since_catches_up(demo):
    worker = await login_as(demo, "grid_worker")
    dispatcher = await login_as(demo, "dispatcher")
    ws = await connect(dispatcher)
    hello = await next_message(ws)
    ws.close()
    for i in range(3):
        await worker.post("/api/reports", report_body(demo.ctx, description=f"补发 {i}"))
    ws = await connect(dispatcher, since=hello["id"])
    assert (await next_message(ws))["type"] == "hello"
    missed = [await next_message(ws) for _ in range(3)]
    assert [m["type"] for m in missed] == ["case.created"] * 3
    assert [m["id"] for m in missed] == [hello["id"] + 1, hello["id"] + 2, hello["id"] + 3]
    ws.close()


async def test_auth_by_first_message_and_bad_token(demo):
    dispatcher = await login_as(demo, "dispatcher")
    ws = await connect(dispatcher, token=False)
    await ws.write_message(json.dumps({"type": "auth", "token": dispatcher.token}))
    assert (await next_message(ws))["type"] == "hello"
    ws.close()
    ws = await connect(dispatcher, token=False)
    await ws.write_message(json.dumps({"type": "auth", "token": "forged.token"}))
    error = await next_message(ws)
    assert error["type"] == "error" and error["error"]["code"] == "invalid_token"
    assert await next_message(ws) is None  # closed by the server


async def test_healthz_counts_live_clients(demo):
    dispatcher = await login_as(demo, "dispatcher")
    assert (await demo.get("/healthz"))[1]["live_clients"] == 0
    ws = await connect(dispatcher)
    await next_message(ws)
    assert (await demo.get("/healthz"))[1]["live_clients"] == 1
    ws.close()


async def test_a_client_ahead_of_this_process_gets_nothing_twice(demo):
    """Regression (a CI run of tests/test_multiprocess.py): a client resuming with `since` on a
    process whose log tail has not reached that event yet got the events up to `since` again
    when the tail published them."""
    from dispatch.access.auth import User

    worker = await login_as(demo, "grid_worker")
    hub = demo.ctx.live
    start = hub.sequence
    frames: list[dict] = []
    # The client already has the next change (it saw it on another process).
    subscriber = hub.join(User("watcher", "admin", demo.ctx.city.id), lambda b: frames.append(json.loads(b)),
                          since=start + 1)
    try:
        for i in range(2):
            await worker.post("/api/reports", report_body(demo.ctx, description=f"领先 {i}"))

        async def both_published():
            return hub.sequence >= start + 2
        for _ in range(250):
            if await both_published():
                break
            await asyncio.sleep(0.02)
        assert hub.sequence >= start + 2
        assert [f["id"] for f in frames] == [start + 2]
    finally:
        hub.leave(subscriber)

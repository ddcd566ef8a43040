"""WS /ws/live pings its clients: a client that stops answering (a closed laptop, a dead
network) is dropped, so dead sockets and their subscriptions do not pile up."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from support import DEMO_CITY, login_as, start_server
from test_live import connect, next_message


@pytest.fixture
async def pinging():
    server, client = await start_server(DEMO_CITY, "live.ping_seconds=0.3", "live.ping_timeout_seconds=0.3")
    yield client
    server.stop()
    await client.ctx.storage.close()


async def silent_client(client, token: str):
    """A WebSocket client that completes the handshake and then never answers anything."""
    port = int(client.base.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((
        f"GET /ws/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode())
    await writer.drain()
    status = await reader.readline()
    return reader, writer, status


async def live_clients(client) -> int:
    return (await client.get("/healthz"))[1]["live_clients"]


async def poll(condition, seconds: float = 10.0):
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_client_that_never_answers_pings_is_dropped(pinging):
    dispatcher = await login_as(pinging, "dispatcher")
    reader, writer, status = await silent_client(pinging, dispatcher.token)
    assert b" 101 " in status
    await poll(lambda: _equals(live_clients(pinging), 1))
    # The server pings every 0.3 s and gives up 0.3 s after a ping with no pong.
    await poll(lambda: _equals(live_clients(pinging), 0))
    writer.close()


async def test_a_client_that_answers_pings_stays(pinging):
    dispatcher = await login_as(pinging, "dispatcher")
    ws = await connect(dispatcher)
    assert (await next_message(ws))["type"] == "hello"
    await asyncio.sleep(1.5)  # several ping intervals and more than one timeout
    assert await live_clients(pinging) == 1
    ws.close()


async def _equals(value, expected) -> bool:
    return (await value) == expected

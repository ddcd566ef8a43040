"""Against a real MongoDB server: set MONGODB_URI (e.g. mongodb://localhost:27017) to run.

The embedded store cannot show what only a server guarantees: that an acknowledged case
survives a restart, and that the same repository code holds its promises (idempotent intake,
version-guarded actions) on the real engine. No server can be installed on the build machines,
so these skip there.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from support import DEMO_CITY, login_as, start_server
from test_intake import report_body

MONGODB_URI = os.environ.get("MONGODB_URI")

pytestmark = pytest.mark.skipif(not MONGODB_URI, reason="needs a MongoDB server: set MONGODB_URI")


@pytest.fixture
async def database():
    name = f"citydispatch_test_{uuid.uuid4().hex[:8]}"
    yield name
    from pymongo import AsyncMongoClient

    client = AsyncMongoClient(MONGODB_URI)
    await client.drop_database(name)
    await client.close()


async def server_on(database: str):
    return await start_server(DEMO_CITY, f"storage.uri={MONGODB_URI}", f"storage.database={database}",
                              "auth.allow_demo_passwords=true")


async def test_acknowledged_case_survives_a_restart(database):
    server, client = await server_on(database)
    worker = await login_as(client, "grid_worker")
    status, case = await worker.post("/api/reports", report_body(client.ctx, client_id="restart-1"))
    assert status == 201 and client.ctx.storage.persistent
    server.stop()
    await client.ctx.storage.close()

    server, client = await server_on(database)  # a new process would see the same
    try:
        dispatcher = await login_as(client, "dispatcher")
        status, again = await dispatcher.get(f"/api/cases/{case['id']}")
        assert status == 200 and again["number"] == case["number"] and again["history"] == case["history"]
        worker = await login_as(client, "grid_worker")
        status, same = await worker.post("/api/reports", report_body(client.ctx, client_id="restart-1"))
        assert status == 200 and same["id"] == case["id"]
    finally:
        server.stop()
        await client.ctx.storage.close()


async def test_concurrent_actions_apply_once(database):
    server, client = await server_on(database)
    try:
        worker = await login_as(client, "grid_worker")
        dispatcher = await login_as(client, "dispatcher")
        _, case = await worker.post("/api/reports", report_body(client.ctx))
        results = await asyncio.gather(*(
            dispatcher.post(f"/api/cases/{case['id']}/actions/supervise", {"note": f"督办 {i}", "version": 1})
            for i in range(10)
        ))
        assert sorted(status for status, _ in results).count(200) == 1
        assert all(status == 409 for status, _ in results if status != 200)
        stored = await client.ctx.cases.get(case["id"])
        assert stored["version"] == 2 and [h["action"] for h in stored["history"]] == ["report", "supervise"]
    finally:
        server.stop()
        await client.ctx.storage.close()

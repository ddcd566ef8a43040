"""Security state is shared by every server process (SPEC §7): two servers on one database count
login failures and reveals together, so N processes give an attacker the attempts of one.

Needs the server engine (MONGODB_URI): embedded stores cannot be shared between processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engines import TEST_SECRET, new_database_name, server_uri
from security_world import World, city_data
from small_city import write_small_city
from support import start_server


@pytest.fixture
async def pair(tmp_path_factory):
    """Two servers (as two processes would be) on one database, and how to build them."""
    made = []

    async def make(*overrides: str) -> tuple[World, World]:
        path = Path(write_small_city(tmp_path_factory.mktemp("shared-city"), city_data()))
        shared = [f"storage.uri={server_uri()}", f"storage.database={new_database_name()}",
                  f"auth.secret={TEST_SECRET}", "auth.allow_demo_passwords=true", *overrides]
        for _ in range(2):
            server, client = await start_server(path, *shared, engine="embedded")  # our storage.uri wins
            made.append(World(client, server))
        return made[0], made[1]

    yield make
    for i, world in enumerate(made):
        world.server.stop()
        if i == 0:
            await world.ctx.storage.drop()
        await world.ctx.storage.close()


async def login(world: World, username: str, password: str) -> tuple[int, dict, dict]:
    client = world.client.as_user()
    response = await client.http.fetch(
        client.base + "/api/login", method="POST", raise_error=False,
        headers={"Content-Type": "application/json"},
        body=json.dumps({"username": username, "password": password}).encode())
    return response.code, response.headers, json.loads(response.body or b"{}")


async def test_login_failures_on_two_processes_lock_the_pair_as_on_one(pair):
    a, b = await pair("auth.login_max_failures=3")
    assert a.ctx.storage.persistent and a.ctx.storage.db_name == b.ctx.storage.db_name
    statuses = [(await login(world, "disp-a", "wrong"))[0] for world in (a, b, a)]
    assert statuses == [401, 401, 401]  # two failures here, one there: three on the pair
    for world in (b, a):
        status, headers, body = await login(world, "disp-a", "x")
        assert (status, body["error"]["code"]) == (429, "too_many_attempts")
        assert int(headers["Retry-After"]) == 30
    assert (await login(b, "op1", "x"))[0] == 200  # other accounts are not affected
    # The lock passes on both; a success on one clears the pair for both.
    for world in (a, b):
        world.ctx.clock.advance(seconds=31)
    assert (await login(b, "disp-a", "x"))[0] == 200
    assert (await a.ctx.throttle.failures("disp-a", "127.0.0.1"))["pair"] == 0


async def test_the_address_limit_is_shared(pair):
    a, b = await pair("auth.address_max_failures=4")
    statuses = [(await login(world, f"nobody{i}", "wrong"))[0] for i, world in enumerate((a, b, a, b, a))]
    assert statuses == [401, 401, 401, 401, 429]
    assert (await login(b, "fresh", "wrong"))[0] == 429


async def test_reveals_on_two_processes_share_the_hourly_limit(pair):
    a, b = await pair("auth.reveals_per_hour=3")
    await a.populate()
    case_id = a.cases["cA"]
    statuses = []
    for world in (a, b, a, b, a):
        status, body = await world.as_("op1").post(f"/api/cases/{case_id}/reveal", {"reason": "回访"})
        statuses.append((status, body.get("error", {}).get("code")))
    assert statuses == [(200, None)] * 3 + [(429, "too_many_reveals")] * 2
    status, _ = await b.as_("admin").post(f"/api/cases/{case_id}/reveal", {"reason": "回访"})
    assert status == 200  # per user

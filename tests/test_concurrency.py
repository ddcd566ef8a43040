"""No lost update under concurrent actions (SPEC §4, §6): one success per version, 409 for the rest.

Requests go over real HTTP at the same time (asyncio.gather) through an HTTP client with room
for all of them at once. Some tests also slow down the case read so every request has read the
same version before any of them writes: the version guard, not luck, must decide.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
import tornado.httpclient

from dispatch.workflow.audit import verify_chain
from test_workflow import World, city_dir, world  # noqa: F401 - fixtures

pytestmark = pytest.mark.asyncio

N = 20


def wide(world: World, username: str):
    """A client for `username` that can keep N requests in flight (the shared one queues at 10)."""
    client = world.client.as_user()
    client.token = world.ctx.tokens.issue(username)
    client.http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=N * 2)
    return client


def slow_reads(world: World, readers: int = N, timeout: float = 5.0):
    """Hold every case read until `readers` reads are in (or `timeout` passes), so concurrent
    actions all read the same version before any of them writes, on any engine's speed."""
    store = world.ctx.cases
    real_get = store.get
    arrived = 0
    everyone = asyncio.Event()

    async def get(case_id):
        nonlocal arrived
        doc = await real_get(case_id)
        arrived += 1
        if arrived >= readers:
            everyone.set()
        try:
            await asyncio.wait_for(everyone.wait(), timeout)
        except asyncio.TimeoutError:
            pass  # fewer readers than expected: let them through rather than hang
        return doc

    store.get = get
    return lambda: setattr(store, "get", real_get)


async def fire(requests):
    """Run (client, case_id, action, body) requests at once; returns [(status, payload)]."""
    return await asyncio.gather(*(
        client.post(f"/api/cases/{case_id}/actions/{action}", body) for client, case_id, action, body in requests
    ))


def codes(results) -> Counter:
    return Counter(payload["error"]["code"] if status != 200 else "ok" for status, payload in results)


async def assert_history(world: World, case_id: str, before: dict, successes: int) -> dict:
    after = await world.stored(case_id)
    assert verify_chain(after["history"]) is None
    assert len(after["history"]) == len(before["history"]) + successes
    assert after["version"] == before["version"] + successes
    return after


async def test_same_version_supervise_succeeds_once(world):
    case = await world.report()
    before = await world.stored(case["id"])
    client = wide(world, "disp-a")
    results = await fire([(client, case["id"], "supervise", {"version": case["version"], "note": f"第{i}次督办"})
                          for i in range(N)])
    assert codes(results) == Counter({"ok": 1, "version_conflict": N - 1})
    assert all(status in (200, 409) for status, _ in results)
    after = await assert_history(world, case["id"], before, 1)
    assert len(after["supervisions"]) == 1


async def test_same_version_with_interleaved_reads_succeeds_once(world):
    case = await world.report()
    before = await world.stored(case["id"])
    restore = slow_reads(world)
    try:
        clients = [wide(world, "disp-a"), wide(world, "cmd-a1")]
        results = await fire([(clients[i % 2], case["id"], "supervise", {"version": case["version"]})
                              for i in range(N)])
    finally:
        restore()
    assert codes(results) == Counter({"ok": 1, "version_conflict": N - 1})
    await assert_history(world, case["id"], before, 1)


async def test_without_a_version_the_version_read_guards_the_write(world):
    """No client version: each request guards with what it read, so a lost race is a 409, not a
    second supervision applied on top of the first."""
    case = await world.report()
    before = await world.stored(case["id"])
    restore = slow_reads(world)
    try:
        client = wide(world, "disp-a")
        results = await fire([(client, case["id"], "supervise", {}) for _ in range(N)])
    finally:
        restore()
    assert codes(results) == Counter({"ok": 1, "version_conflict": N - 1})
    conflict = next(payload for status, payload in results if status == 409)
    assert conflict["error"]["version"] == before["version"] + 1
    await assert_history(world, case["id"], before, 1)


async def test_several_signs_at_once_sign_once(world):
    case = await world.dispatched_case()
    cid = case["id"]
    before = await world.stored(cid)
    client = wide(world, "a1so")
    results = await fire([(client, cid, "sign", {}) for _ in range(N // 2)])
    assert [status for status, _ in results].count(200) == 1
    assert all(status == 409 for status, _ in results if status != 200)
    after = await assert_history(world, cid, before, 1)
    assert after["status"] == "accepted"
    assert [e["action"] for e in after["history"]].count("sign") == 1


async def test_several_signs_with_interleaved_reads_sign_once(world):
    case = await world.dispatched_case()
    cid = case["id"]
    before = await world.stored(cid)
    restore = slow_reads(world, N // 2)
    try:
        client = wide(world, "a1so")
        results = await fire([(client, cid, "sign", {}) for _ in range(N // 2)])
    finally:
        restore()
    assert codes(results) == Counter({"ok": 1, "version_conflict": N // 2 - 1})
    after = await assert_history(world, cid, before, 1)
    assert after["clock"]["stage"] == "handle"


async def test_mixed_actions_on_one_version_apply_exactly_one(world):
    case = await world.report()
    cid = case["id"]
    await world.ok("disp-a", cid, "file")
    dispatched = await world.ok("disp-a", cid, "dispatch")
    before = await world.stored(cid)
    version = dispatched["version"]
    department, dispatcher, commander = wide(world, "a1so"), wide(world, "disp-a"), wide(world, "cmd-a1")
    requests = []
    for i in range(N):
        requests.append([
            (department, cid, "sign", {"version": version}),
            (dispatcher, cid, "supervise", {"version": version}),
            (commander, cid, "escalate", {"to": "up", "version": version}),
            (department, cid, "return", {"reason": "不归我管", "version": version}),
        ][i % 4])
    results = await fire(requests)
    assert codes(results) == Counter({"ok": 1, "version_conflict": N - 1})
    after = await assert_history(world, cid, before, 1)
    winner = after["history"][-1]["action"]
    assert winner in ("sign", "supervise", "escalate", "return")


async def test_rounds_of_races_apply_one_action_per_version(world):
    case = await world.report()
    cid = case["id"]
    before = await world.stored(cid)
    clients = [wide(world, "disp-a"), wide(world, "cmd-a1")]
    rounds = 5
    for round_no in range(rounds):
        version = (await world.stored(cid))["version"]
        results = await fire([(clients[i % 2], cid, "supervise", {"version": version, "note": f"{round_no}-{i}"})
                              for i in range(8)])
        assert codes(results) == Counter({"ok": 1, "version_conflict": 7})
    after = await assert_history(world, cid, before, rounds)
    assert len(after["supervisions"]) == rounds


async def test_actions_on_different_cases_do_not_interfere(world):
    cases = [await world.report() for _ in range(8)]
    for case in cases:
        await world.ok("disp-a", case["id"], "file")
    client = wide(world, "disp-a")
    results = await fire([(client, case["id"], "dispatch", {"version": case["version"] + 1}) for case in cases])
    assert all(status == 200 for status, _ in results)
    for case in cases:
        doc = await world.stored(case["id"])
        assert doc["status"] == "dispatched" and verify_chain(doc["history"]) is None

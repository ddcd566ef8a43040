"""FerretDB 1.24 locks itself up when fifty statements that read and then write are in flight at
once (dispatch/store/write_gate.py): the store lets a process have at most a few in flight and
sends bulk writes in small commands. The server tests failed before: FerretDB stopped answering
anyone (the 1,000,000-case sweep stalled this way)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from dispatch.store import open_store
from dispatch.store.query import Change
from dispatch.store.write_gate import BULK_STATEMENTS, SLOTS, GatedCollection, WriteSlots
from tests.engines import new_database_name, server_uri
from tests.test_store_contract import case


async def test_three_hundred_case_updates_at_once_all_land():
    store = await open_store(server_uri(), new_database_name())
    try:
        docs = [case(n) for n in range(1, 301)]
        for doc in docs:
            await store.cases.insert(doc)
        stored = {d["_id"]: await store.cases.get(d["_id"]) for d in docs}

        async def touch(case_id: str):
            return await store.cases.update(case_id, stored[case_id]["version"],
                                            Change(sets={"description": "已复核"}))

        updated = await asyncio.wait_for(asyncio.gather(*(touch(i) for i in stored)), 120)
        assert all(u is not None and u["description"] == "已复核" for u in updated)
        # FerretDB still answers afterwards (before: it answered nobody, for good).
        assert (await store.cases.get(docs[0]["_id"]))["version"] == stored[docs[0]["_id"]]["version"] + 1
    finally:
        await store.drop()
        await store.close()


async def test_a_long_bulk_replace_of_existing_documents_lands():
    """The KPI applier replaces its bucket documents in bulk: 120 existing ones at once."""
    store = await open_store(server_uri(), new_database_name())
    try:
        at = datetime(2026, 11, 2, 9, tzinfo=timezone.utc)
        first = [{"_id": f"b{n:03d}", "n": 0, "at": at} for n in range(120)]
        await asyncio.wait_for(store.rollups.save(first, [], new=True), 60)
        again = [{**doc, "n": 1} for doc in first]
        await asyncio.wait_for(store.rollups.save(again, []), 120)
        held = await store.rollups.buckets_by_id([doc["_id"] for doc in first])
        assert len(held) == 120 and {doc["n"] for doc in held.values()} == {1}
    finally:
        await store.drop()
        await store.close()


class SlowCollection:
    """Counts the statements in flight at once."""

    def __init__(self):
        self.now = self.most = 0

    async def _work(self, n: int):
        self.now += n
        self.most = max(self.most, self.now)
        await asyncio.sleep(0.002)
        self.now -= n
        return n

    async def update_one(self, *args, **kwargs):
        return await self._work(1)

    async def bulk_write(self, requests, **kwargs):
        return await self._work(len(requests))

    update_many = replace_one = delete_one = delete_many = update_one
    find_one_and_update = find_one_and_replace = find_one_and_delete = update_one

    async def find_one(self, *args, **kwargs):
        return await self._work(1)


async def test_a_process_never_has_more_reading_writes_in_flight_than_its_slots():
    raw = SlowCollection()
    gated = GatedCollection(raw, WriteSlots())
    singles = [gated.update_one({}, {}) for _ in range(60)]
    bulks = [gated.bulk_write([object()] * BULK_STATEMENTS) for _ in range(10)]
    results = await asyncio.wait_for(asyncio.gather(*singles, *bulks), 10)
    assert results == [1] * 60 + [BULK_STATEMENTS] * 10
    assert raw.most == SLOTS


async def test_reads_are_not_held_back():
    raw = SlowCollection()
    gated = GatedCollection(raw, WriteSlots(2))
    await asyncio.wait_for(asyncio.gather(*(gated.find_one({}) for _ in range(30))), 10)
    assert raw.most == 30


async def test_a_bulk_write_longer_than_a_command_may_carry_is_refused():
    gated = GatedCollection(SlowCollection(), WriteSlots())
    with pytest.raises(ValueError):
        await gated.bulk_write([object()] * (BULK_STATEMENTS + 1))


async def test_several_bulk_writers_at_once_do_not_wait_for_each_other_for_ever():
    """Two takers of several slots, each holding part of what it needs, would wait for ever."""
    raw = SlowCollection()
    gated = GatedCollection(raw, WriteSlots(BULK_STATEMENTS + 1))
    done = await asyncio.wait_for(asyncio.gather(*(gated.bulk_write([object()] * BULK_STATEMENTS)
                                                   for _ in range(20))), 10)
    assert done == [BULK_STATEMENTS] * 20
    assert raw.most == BULK_STATEMENTS

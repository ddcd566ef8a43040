"""The assist's in-memory index of recent open cases by place follows the case changes it is
fed (the event log), and answers the cells around a place."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from dispatch.assist.nearby import NearbyIndex
from dispatch.store import open_store

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)


def case(case_id: str, lng: float, lat: float, status: str = "reported", days_ago: int = 0) -> dict:
    return {"_id": case_id, "status": status, "location": {"type": "Point", "coordinates": [lng, lat]},
            "created_at": T0 - timedelta(days=days_ago), "version": 1}


async def test_the_index_follows_changes_and_answers_by_place():
    index = NearbyIndex(days=30)
    index.on_case(case("early", 120.1601, 30.2501))  # seen while loading: applied after
    await index.load((await open_store("embedded", "t")).cases, T0)
    index.on_case(case("a", 120.1600, 30.2500))
    index.on_case(case("far", 120.2600, 30.2500))
    index.on_case(case("old", 120.1602, 30.2502, days_ago=40))
    since = T0 - timedelta(days=30)
    assert sorted(c["_id"] for c in index.near(120.1605, 30.2505, 500, since)) == ["a", "early"]
    index.on_case(case("a", 120.2601, 30.2501))  # moved (a location corrected)
    index.on_case(case("early", 120.1601, 30.2501, status="closed"))
    assert index.near(120.1605, 30.2505, 500, since) == []
    assert sorted(c["_id"] for c in index.near(120.2600, 30.2500, 500, since)) == ["a", "far"]


async def test_stopping_while_the_index_loads_leaves_no_loader_running(small):
    """Regression: `Assist.stop` left the loading of the index running, to fail on a closed
    store after shutdown."""
    assist, cases = small.ctx.assist, small.ctx.cases
    await assist.stop()
    asked = asyncio.Event()

    async def slow_find(query):  # a store that takes its time over the index's first page
        asked.set()
        await asyncio.sleep(3600)

    cases.find = slow_find
    try:
        await assist.start()
        await asyncio.wait_for(asked.wait(), 5)
        await asyncio.wait_for(assist.stop(), 5)
        assert not [t for t in asyncio.all_tasks() if "_load_nearby" in repr(t.get_coro())]
    finally:
        del cases.find

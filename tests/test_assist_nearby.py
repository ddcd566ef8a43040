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


async def test_the_load_rests_as_long_as_each_page_took():
    """The load reads every open case of the last weeks at each start of each process: read
    flat out it slowed intake beside it fourfold, so after each full page it rests as long as
    that page took (and not after the last)."""
    store = await open_store("embedded", "t")
    for n in range(450):
        await store.cases.insert({**case(f"c{n:03d}", 120.16 + n * 1e-5, 30.25), "number": f"20261123-{n + 1:06d}",
                                  "created_by": "gw1", "client_id": f"k{n}", "created_at": T0 - timedelta(minutes=n)})
    now = [0.0]
    find = store.cases.find

    async def timed_find(query):  # a store taking 2 ms a case
        page = await find(query)
        now[0] += 0.002 * len(page)
        return page

    store.cases.find = timed_find
    rests: list[float] = []

    async def rest(seconds: float) -> None:
        rests.append(round(seconds, 6))
        now[0] += seconds

    index = NearbyIndex(days=30)
    await index.load(store.cases, T0, rest=rest, timer=lambda: now[0])
    assert rests == [0.4, 0.4]  # two full pages of 200, then the last 50
    assert index.ready and len(index.near(120.162, 30.25, 500, T0 - timedelta(days=30))) == 450

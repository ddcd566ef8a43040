"""The server store's list walk (dispatch/store/walk.py) against a fake of what it reads: random
histories with busy hours and quiet days, random read budgets and page sizes — walked page by
page (resuming where a budget stopped it), every query gives exactly the plain filter's cases,
in order. The fake answers `read(qk, slot, limit)` from the cases' own `qk` and `slot` and the
counts from `buckets.created_counts`, as the server's documents hold them; the walk against the
real server is tests/test_scale_queries.py and tests/test_store_server_reads.py."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from types import SimpleNamespace
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.store import buckets, walk
from dispatch.store.memory import matches
from dispatch.store.query import NEWEST, OLDEST, After, CaseQuery, Scope
from tests.test_scale_queries import expected, walk as walk_pages
from tests.test_store_contract import case, ids

NOW = datetime(2026, 11, 29, 6, 30, tzinfo=timezone.utc)

QUERIES = [
    CaseQuery(),
    CaseQuery(order=OLDEST),
    CaseQuery(open_only=True),
    CaseQuery(statuses=("reported", "filed")),
    CaseQuery(reporter="gw2"),
    CaseQuery(reporter="gw2", order=OLDEST),
    CaseQuery(scope=Scope(within="S2", reporter="gw1")),
    CaseQuery(categories=("0302",)),
    CaseQuery(categories=("none",)),
    CaseQuery(overdue=True),
    CaseQuery(overdue=True, open_only=True),
    CaseQuery(overdue=True, open_only=True, order=OLDEST),
    CaseQuery(created_from=NOW - timedelta(days=20), created_to=NOW - timedelta(days=2)),
]


class FakeCounts:
    """`CreationCounts`' reads over documents summed as the server's are."""

    def __init__(self, created: list[datetime]):
        self.docs = buckets.created_counts(created)

    async def hours_of_day(self, day: str) -> dict[str, int]:
        return dict(self.docs.get(day, {}))

    async def hours_of_month(self, month: str) -> dict[str, dict[str, int]]:
        return {day: dict(fields) for day, fields in self.docs.items() if day.startswith("d" + month[1:])}

    async def slices_of_hour(self, hour: str) -> dict[str, int]:
        return dict(self.docs.get(hour, {}))


def history(rng: random.Random, n: int) -> list[dict]:
    """Cases over 14 months, most in a few busy hours of the last days (bursts in one second,
    one minute, one hour)."""
    busy = [NOW.replace(minute=0, second=0) - timedelta(hours=rng.randrange(1, 96)) for _ in range(3)]
    docs = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.3:
            at = busy[0] + timedelta(minutes=17, seconds=5, milliseconds=rng.randrange(1000))
        elif kind < 0.5:
            at = busy[1] + timedelta(minutes=42, seconds=rng.uniform(0, 60))
        elif kind < 0.7:
            at = busy[2] + timedelta(seconds=rng.uniform(0, 3600))
        else:
            at = NOW - timedelta(days=rng.uniform(0, 420))
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)
        street = rng.choice(["S1", "S2"])
        status = rng.choice(["reported", "filed", "dispatched", "closed", "closed"])
        docs.append(case(i, status=status, category={"code": rng.choice(["0101", "0302"]), "name": "类"},
                         scope_path=["C", "D1", street],
                         jurisdiction={"district": {"id": "D1", "name": "一区"}, "street": {"id": street, "name": street}},
                         reporters=[rng.choice(["gw1", "gw2", "gw3"])],
                         flags={"overdue": rng.random() < (0.6 if at < NOW - timedelta(days=2) else 0.05), "warning": False},
                         created_at=at, updated_at=at))
    return docs


def fake_read(docs: list[dict], query: CaseQuery):
    filed = [(d, set(buckets.query_keys(d)), set(buckets.slots(d["created_at"]))) for d in docs]

    def key(d):
        return (d["created_at"], d["_id"])

    async def read(qk: str, slot: str | None, limit: int) -> list[dict]:
        rows = [d for d, keys, slots in filed if qk in keys and (slot is None or slot in slots) and matches(d, query)]
        after = query.after
        if after is not None:
            mark = (after.created_at, after.case_id)
            rows = [d for d in rows if (key(d) < mark if query.order == NEWEST else key(d) > mark)]
        return sorted(rows, key=key, reverse=query.order == NEWEST)[:limit]

    return read


class FakeCases:
    """`find_page` of the server store, its reads answered by the fakes above."""

    def __init__(self, docs: list[dict], budget: int):
        self.docs, self.budget = docs, budget
        self.counts = FakeCounts([d["created_at"] for d in docs])
        self.start = min(d["created_at"] for d in docs).replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)

    async def find_page(self, q: CaseQuery) -> tuple[list[dict], After | None]:
        window = walk.Window(NOW + timedelta(minutes=5), self.start)
        if q.created_to is not None:
            window.newest, window.newest_is_now = min(window.newest, q.created_to), False
        if q.created_from is not None:
            window.oldest, window.oldest_is_start = max(window.oldest, q.created_from), False
        if q.after is not None:
            if q.order == NEWEST:
                window.newest, window.newest_is_now = min(window.newest, q.after.created_at), False
            else:
                window.oldest, window.oldest_is_start = max(window.oldest, q.after.created_at), False
        return await walk.Walk(q, buckets.driving_facets(q), window, fake_read(self.docs, q), self.counts,
                               datetime(1970, 1, 1, tzinfo=timezone.utc), NOW, self.budget).run()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 260), budget=st.integers(5, 60),
       page=st.sampled_from([1, 7, 50]), which=st.integers(0, len(QUERIES) - 1))
def test_any_walk_page_by_page_gives_the_plain_filter(seed, n, budget, page, which):
    docs = history(random.Random(seed), n)
    query = QUERIES[which]
    store = SimpleNamespace(cases=FakeCases(docs, budget))
    assert ids(asyncio.run(walk_pages(store, query, page))) == expected(docs, query)


def test_a_walk_within_its_budget_reads_no_more_than_it():
    """However busy the history, one page's walk stops at its read budget."""
    docs = history(random.Random(5), 400)
    counted = []

    async def one(query: CaseQuery) -> int:
        q = dataclasses.replace(query, limit=50)
        w = walk.Walk(q, buckets.driving_facets(q), walk.Window(NOW + timedelta(minutes=5), datetime(2025, 1, 1, tzinfo=timezone.utc)),
                      fake_read(docs, q), FakeCounts([d["created_at"] for d in docs]), datetime(1970, 1, 1, tzinfo=timezone.utc), NOW, 30)
        await w.run()
        return w.reads

    for query in QUERIES:
        counted.append(asyncio.run(one(query)))
    assert max(counted) <= 30 and min(counted) >= 1, counted


def test_a_thin_aging_facet_over_two_busy_months_is_walked_whole_within_the_budget():
    """临期 in a quiet city: a few cases of each busy day (100 created a day, a case in 临期 every
    other day) over the last two months. Its share is learnt again each day (it is an aging
    facet), so each busy day costs its first hour and the rest; the days' counts are read
    several at once, so the walk covers the months and the year before them within one page's
    budget. Before, a day's counts were one read more a day: the walk stopped at the budget
    after 48 days with a cursor, and the command centre's 临期 tab showed "25+". (Days' counts
    are read a month at once.)"""
    rng = random.Random(11)
    docs = []
    for day in range(61):
        for i in range(100):
            at = (NOW - timedelta(days=day, hours=rng.uniform(0, 24))).replace(microsecond=0)
            docs.append(case(len(docs), status="closed", created_at=at, updated_at=at))
        if day % 2:
            docs[-1].update(status="dispatched", flags={"overdue": False, "warning": True})
    by_key: dict[str, list[dict]] = {}
    for doc in sorted(docs, key=lambda d: (d["created_at"], d["_id"]), reverse=True):
        for qk in buckets.query_keys(doc):
            by_key.setdefault(qk, []).append(doc)

    async def read(qk: str, slot: str | None, limit: int) -> list[dict]:
        return [d for d in by_key.get(qk, ()) if slot is None or slot in buckets.slots(d["created_at"])][:limit]

    async def one() -> tuple[list[dict], After | None, int]:
        q = CaseQuery(warning=True, open_only=True, limit=51)
        w = walk.Walk(q, buckets.driving_facets(q), walk.Window(NOW + timedelta(minutes=5), datetime(2025, 12, 1, tzinfo=timezone.utc)),
                      read, FakeCounts([d["created_at"] for d in docs]), datetime(1970, 1, 1, tzinfo=timezone.utc), NOW)
        rows, after = await w.run()
        return rows, after, w.reads

    rows, after, reads = asyncio.run(one())
    assert buckets.driving_facets(CaseQuery(warning=True, open_only=True)) == ("open_warning",)
    assert after is None, (after, reads)
    assert [d["_id"] for d in rows] == [d["_id"] for d in sorted(docs, key=lambda d: d["created_at"], reverse=True)
                                        if d["flags"]["warning"]]
    assert len(rows) == 30 and reads <= walk.BUCKET_BUDGET


def test_a_walk_that_ends_within_a_day_reads_that_day_s_counts_alone():
    """Reading a month's counts at once is for walks that go on past a day: a page found in the
    newest busy day reads that day's counts alone (a month's are ~30 documents a process)."""
    now_hour = NOW.replace(minute=0, second=0)
    docs = [case(i, created_at=now_hour + timedelta(seconds=i), updated_at=now_hour) for i in range(80)]
    docs += [case(100 + i, created_at=NOW - timedelta(days=3 + i), updated_at=NOW) for i in range(20)]
    asked: list[str] = []

    class Counting(FakeCounts):
        async def hours_of_day(self, day: str) -> dict[str, int]:
            asked.append(day)
            return await super().hours_of_day(day)

        async def hours_of_month(self, month: str) -> dict[str, dict[str, int]]:
            asked.append(month)
            return await super().hours_of_month(month)

    async def one(q: CaseQuery) -> list[dict]:
        w = walk.Walk(q, buckets.driving_facets(q), walk.Window(NOW + timedelta(minutes=5), datetime(2025, 12, 1, tzinfo=timezone.utc)),
                      fake_read(docs, q), Counting([d["created_at"] for d in docs]), datetime(1970, 1, 1, tzinfo=timezone.utc), NOW)
        return (await w.run())[0]

    assert len(asyncio.run(one(CaseQuery(limit=50)))) == 50
    assert asked == [buckets.day_count_key(NOW)[0]]
    asked.clear()
    assert len(asyncio.run(one(CaseQuery(limit=100)))) == 100  # on through the older days
    months = sorted({"m" + d["created_at"].strftime("%Y%m") for d in docs}, reverse=True)
    assert asked == [buckets.day_count_key(NOW)[0], *months]  # each month's days read once

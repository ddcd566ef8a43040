"""Lists over a long history, read by equality buckets (dispatch/store/buckets.py), on both
engines: every filter the pages use, walked page by page with the keyset cursor (and the
store's resume point when a walk stops at its read budget), gives exactly the cases a plain
filter over everything gives, in order. Plus the map's counts, the case-number search and the
deadline sweep's minute buckets."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta, timezone
from urllib.parse import quote


from dispatch.store import buckets
from dispatch.store.buckets import TEXT_WINDOW
from dispatch.store.memory import matches
from dispatch.store.query import NEWEST, OLDEST, After, Box, CaseQuery, Change, Scope, TextSearch
from support import login_as
from test_intake import report_body
from test_store_contract import case, ids

NOW = datetime.now(timezone.utc).replace(microsecond=0)
STATUSES = ("reported", "dispatched", "accepted", "closed", "closed", "closed", "void")
CATEGORIES = ("0101", "0102", "0201", "0302")
STREETS = {"D1": ("S1", "S2"), "D2": ("S3",)}


def history(n: int, seed: int = 11) -> list[dict]:
    """`n` cases spread over the last 14 months, most in the last few days."""
    rng = random.Random(seed)
    docs = []
    for i in range(1, n + 1):
        age = timedelta(days=rng.choice([rng.uniform(0, 3), rng.uniform(0, 3), rng.uniform(0, 420)]))
        district = rng.choice(sorted(STREETS))
        street = rng.choice(STREETS[district])
        status = rng.choice(STATUSES)
        department = rng.choice(["dA", "dB", None])
        created = NOW - age
        docs.append(case(
            i,
            number=f"{created:%Y%m%d}-{i:06d}",
            search_masked=f"{created:%Y%m%d}-{i:06d}\n第{i}件" + ("垃圾" if i % 3 else "路灯"),
            status=status,
            source=rng.choice(["grid", "hotline"]),
            category={"code": rng.choice(CATEGORIES), "name": "类"},
            jurisdiction={"district": {"id": district, "name": district}, "street": {"id": street, "name": street}},
            scope_path=["C", district, street],
            assignment={"department": {"id": department, "name": department} if department else None},
            departments_seen=[department] if department else [],
            flags=flags(rng),
            reporters=[rng.choice(["gw1", "gw2", "gw3"])],
            created_at=created, updated_at=created,
            history=[{"at": created, "by": "gw1", "action": "report"}],
        ))
    return docs


def flags(rng: random.Random) -> dict:
    overdue = rng.random() < 0.2
    return {"overdue": overdue, "warning": not overdue and rng.random() < 0.2}


async def walk(store, query: CaseQuery, page: int) -> list[dict]:
    """Every page of `query`, as the list handler reads them."""
    out: list[dict] = []
    after = None
    for _ in range(2000):
        items, resume = await store.cases.find_page(dataclasses.replace(query, after=after, limit=page + 1))
        out += items[:page]
        if len(items) > page:
            last = items[page - 1]
            after = After(last["created_at"], last["_id"])
        elif resume is not None:
            after = resume
        else:
            return out
    raise AssertionError("the walk did not end")


def expected(docs: list[dict], query: CaseQuery) -> list[str]:
    chosen = [d for d in docs if matches(d, query)]
    key = lambda d: (d["created_at"].replace(microsecond=d["created_at"].microsecond // 1000 * 1000), d["_id"])  # noqa: E731
    return [d["_id"] for d in sorted(chosen, key=key, reverse=query.order == NEWEST)]


QUERIES = {
    "everything": CaseQuery(),
    "open": CaseQuery(open_only=True),
    "status": CaseQuery(statuses=("accepted",)),
    "two statuses": CaseQuery(statuses=("reported", "closed")),
    "two open statuses (the 待派遣 queue)": CaseQuery(statuses=("reported", "dispatched")),
    "category": CaseQuery(categories=("0102",)),
    "department": CaseQuery(departments=("dA",)),
    "district": CaseQuery(jurisdictions=(("district", ("D2",)),)),
    "street + open": CaseQuery(jurisdictions=(("street", ("S1",)),), open_only=True),
    "source": CaseQuery(sources=("hotline",)),
    "overdue": CaseQuery(overdue=True),
    "not overdue, open": CaseQuery(overdue=False, open_only=True),
    "mine": CaseQuery(reporter="gw2"),
    "department scope": CaseQuery(scope=Scope(department="dB")),
    "district scope": CaseQuery(scope=Scope(within="D1")),
    "grid worker scope": CaseQuery(scope=Scope(within="S3", reporter="gw1")),
    "bbox": CaseQuery(box=Box(120.1, 30.2, 120.2, 30.3)),
    "small box (its cells)": CaseQuery(box=Box(120.115, 30.215, 120.135, 30.235)),
    "open in a small box": CaseQuery(box=Box(120.115, 30.215, 120.155, 30.255), open_only=True),
    "small box, oldest first": CaseQuery(box=Box(120.115, 30.215, 120.135, 30.235), order=OLDEST),
    "grid worker scope, open": CaseQuery(scope=Scope(within="S1", reporter="gw3"), open_only=True),
    "overdue, open": CaseQuery(overdue=True, open_only=True),
    "overdue, open, oldest first": CaseQuery(overdue=True, open_only=True, order=OLDEST),
    "warning, open (临期)": CaseQuery(warning=True, open_only=True),
    "period": CaseQuery(created_from=NOW - timedelta(days=200), created_to=NOW - timedelta(days=2)),
    "text": CaseQuery(text=TextSearch("垃圾"), created_from=NOW - timedelta(days=7)),
    "oldest first": CaseQuery(categories=("0201",), order=OLDEST),
}


async def test_every_filter_walked_page_by_page_gives_the_plain_filter(store):
    docs = history(200)
    await store.cases.bulk_insert(docs)
    stored = [await store.cases.get(d["_id"]) for d in docs]
    for name, query in QUERIES.items():
        want = expected(stored, query)
        assert ids(await walk(store, query, page=20)) == want, name
        assert await store.cases.count(query) == len(want), name  # a badge's count


def busy_hours(seed: int = 3) -> list[dict]:
    """A history with busy hours: a burst of 150 reports in one second, 100 in one minute, 80
    over an hour, and a quiet hour beside them (the server store reads a busy hour by slices)."""
    rng = random.Random(seed)
    hour = NOW.replace(minute=0, second=0) - timedelta(hours=3)
    created = ([hour + timedelta(minutes=30, seconds=20, milliseconds=5 * i) for i in range(150)]
               + [hour + timedelta(minutes=12, seconds=rng.uniform(0, 60)) for _ in range(100)]
               + [hour + timedelta(seconds=rng.uniform(0, 3600)) for _ in range(80)]
               + [hour - timedelta(hours=1, seconds=rng.uniform(0, 3600)) for _ in range(12)])
    docs = history(len(created), seed=seed)
    for doc, at in zip(docs, created):
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)
        doc.update(created_at=at, updated_at=at, number=f"{at:%Y%m%d}-{doc['number'][-6:]}")
    return docs


async def test_busy_hours_walked_page_by_page_give_the_plain_filter(store):
    docs = busy_hours()
    await store.cases.bulk_insert(docs)
    stored = [await store.cases.get(d["_id"]) for d in docs]
    # Small pages of the facets read by the hour (a cursor inside a busy second); every filter
    # with the list's own page.
    by_hour = ("everything", "open", "status", "district", "source", "everything, oldest first")
    for name, query in {**QUERIES, "everything, oldest first": CaseQuery(order=OLDEST),
                        "open, oldest first": CaseQuery(open_only=True, order=OLDEST)}.items():
        want = expected(stored, query)
        for page in (7, 50) if name in by_hour else (50,):
            assert ids(await walk(store, query, page=page)) == want, (name, page)


async def test_a_page_follows_changes_of_state(store):
    docs = history(40, seed=5)
    await store.cases.bulk_insert(docs)
    target = max(docs, key=lambda d: d["created_at"])
    before = ids(await walk(store, CaseQuery(statuses=("handled",)), page=5))
    await store.cases.update(target["_id"], 1, Change(sets={"status": "handled"}))
    after = ids(await walk(store, CaseQuery(statuses=("handled",)), page=5))
    assert target["_id"] not in before and after[0] == target["_id"]


async def test_a_case_number_is_found_at_any_age(store):
    old = case(1, number="20250102-000001", search_masked="20250102-000001\n旧案", created_at=NOW - timedelta(days=400))
    await store.cases.bulk_insert([old, case(2, created_at=NOW)])
    found, _ = await store.cases.find_page(CaseQuery(text=TextSearch("20250102-000001"), limit=5))
    assert ids(found) == [old["_id"]]


async def test_open_counts_per_jurisdiction(store):
    docs = history(200, seed=3)
    await store.cases.bulk_insert(docs)
    stored = [await store.cases.get(d["_id"]) for d in docs]
    small_box = Box(120.115, 30.215, 120.165, 30.245)  # counted over its cells' open cases
    for asked in (CaseQuery(), CaseQuery(box=small_box), CaseQuery(scope=Scope(within="S1", reporter="gw3"))):
        query = dataclasses.replace(asked, open_only=True)
        for level in ("district", "street"):
            want: dict[str, dict] = {}
            for d in (d for d in stored if matches(d, query)):
                n = want.setdefault(d["jurisdiction"][level]["id"], {"open": 0, "overdue": 0})
                n["open"] += 1
                n["overdue"] += d["flags"]["overdue"] is True
            assert want or asked.box is None
            assert await store.cases.open_counts(asked, level) == want


async def test_a_bulk_load_into_an_empty_store_records_where_the_sweep_starts(store):
    """The first sweep after a bulk load starts from the loaded cases' earliest minute, read from
    the load, not from a scan of every case (at 1,000,000 cases that scan outlasted the store's
    10 s socket timeout, and every sweep failed)."""
    now = datetime.now(timezone.utc)
    docs = [case(n, created_at=now - timedelta(days=3), next_due_at=now - timedelta(hours=h), clock={"stage": "sign"})
            for n, h in ((1, 30), (2, 2))] + [case(3, created_at=now - timedelta(days=3))]
    await store.cases.bulk_insert(docs)
    if store.persistent:
        held = await store.cases.meta.find_one({"_id": "sweep_floor"})
        assert held is not None and held["minute"] <= buckets.minute(now)
    assert ids(await store.cases.due(now, 10)) == ids(docs[:2])


async def test_due_finds_cases_after_a_long_pause(store):
    docs = [case(n, created_at=NOW, next_due_at=NOW + timedelta(hours=h), clock={"stage": "sign"})
            for n, h in ((1, 1), (2, 30), (3, 75))]
    await store.cases.bulk_insert(docs)
    assert ids(await store.cases.due(NOW, 10)) == []
    assert ids(await store.cases.due(NOW + timedelta(hours=2), 10)) == [docs[0]["_id"]]
    assert ids(await store.cases.due(NOW + timedelta(days=4), 10)) == ids(docs)
    await store.cases.update(docs[0]["_id"], 1, Change(unsets={"next_due_at"}))
    assert ids(await store.cases.due(NOW + timedelta(days=4), 10)) == ids(docs[1:])


# -- over HTTP ----------------------------------------------------------------------------------


async def test_the_map_counts_open_cases_by_jurisdiction_and_shows_cases_close_up(demo):
    worker = await login_as(demo, "grid_worker")
    commander = await login_as(demo, "commander")
    created = [(await worker.post("/api/reports", report_body(demo.ctx, description=f"暴露垃圾 {i}")))[1]
               for i in range(3)]
    status, city_view = await commander.get("/api/cases/map?zoom=11")
    assert status == 200 and city_view["level"] == "district"
    district = created[0]["jurisdiction"]["district"]["id"]
    assert {r["id"]: r["open"] for r in city_view["regions"]} == {district: 3}
    assert city_view["total"] == {"open": 3, "overdue": 0}
    status, street_view = await commander.get("/api/cases/map?zoom=13")
    assert [r["id"] for r in street_view["regions"]] == [created[0]["jurisdiction"]["street"]["id"]]
    lng, lat = created[0]["location"]["coordinates"]
    box = f"{lng - 0.01},{lat - 0.01},{lng + 0.01},{lat + 0.01}"
    status, close_up = await commander.get(f"/api/cases/map?zoom=16&bbox={box}")
    assert status == 200 and close_up["level"] == "case" and close_up["more"] == 0
    assert {f["id"] for f in close_up["features"]} == {c["id"] for c in created}
    status, body = await commander.get("/api/cases/map?zoom=16")
    assert status == 400 and body["error"]["field"] == "bbox"


async def test_a_text_search_names_the_window_it_read(demo):
    worker = await login_as(demo, "grid_worker")
    dispatcher = await login_as(demo, "dispatcher")
    _, made = await worker.post("/api/reports", report_body(demo.ctx, description="井盖破损"))
    status, page = await dispatcher.get("/api/cases?q=" + quote("井盖"))
    assert status == 200 and [c["id"] for c in page["items"]] == [made["id"]]
    searched_from = datetime.fromisoformat(page["searched"]["from"])
    assert abs(datetime.now(timezone.utc) - TEXT_WINDOW - searched_from) < timedelta(minutes=1)
    status, by_number = await dispatcher.get("/api/cases?q=" + made["number"])
    assert [c["id"] for c in by_number["items"]] == [made["id"]] and "searched" not in by_number

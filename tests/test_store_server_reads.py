"""What the server store sends for photos and uploads: each read FerretDB 1.24 hands PostgreSQL
whole (an equality), never one it answers by reading every case or every upload with its photo
(docs/FERRETDB.md, "What reaches PostgreSQL"). The behaviour itself is in the store contract
(tests/test_store_contract.py), on both engines."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from dispatch.store import open_store
from dispatch.store.packing import pack_bucket
from dispatch.store import buckets
from dispatch.store.query import OLDEST, After, CaseQuery, Scope
from tests.command_log import COMMAND_LOG
from tests.engines import new_database_name, server_uri
from tests.test_store_contract import T0, case


@pytest.fixture
async def server_store():
    store = await open_store(server_uri(), new_database_name())
    yield store
    await store.drop()
    await store.close()


async def test_the_cases_using_a_photo_are_found_by_an_equality(server_store):
    """Regression: asking which case uses a photo (every photo shown to someone other than its
    uploader, and every expiry of an old upload) sent an `$or` over the photo fields, which
    FerretDB answered by reading cases until one matched — every case, for a photo none uses."""
    store = server_store
    await store.cases.insert(case(1, photos=["p1"], scope_path=["C", "D1"]))
    reader = await open_store(server_uri(), store.db_name)  # a client made after COMMAND_LOG was registered
    try:
        with COMMAND_LOG.recording():
            assert await reader.attachments.case_using("p1", Scope(within="D1"))
            assert not await reader.attachments.in_use("p9")
        sent = COMMAND_LOG.filters("cases")
        assert sent and all(set(f) == {"qk"} and isinstance(f["qk"], str) for f in sent), sent
    finally:
        await reader.close()


async def test_an_upload_is_read_written_and_deleted_by_its_id_alone(server_store):
    """Regression: checking whose uploads a report names, marking them used and deleting them
    sent `_id: {$in: [...]}`, which FerretDB answers by reading every upload (each holding its
    photo) — a year of a city's photos for each report with a photo."""
    store = server_store
    for n in range(3):
        await store.attachments.insert({"_id": f"u{n}", "owner": "gw1", "data": b"x", "created_at": T0})
    reader = await open_store(server_uri(), store.db_name)  # a client made after COMMAND_LOG was registered
    try:
        with COMMAND_LOG.recording():
            assert await reader.attachments.owned_by(["u0", "u1", "u9"], "gw1") == {"u0", "u1"}
            assert await reader.attachments.owned_by(["u0"], "gw2") == set()
            await reader.attachments.mark_referenced(["u0", "u1"])
            assert await reader.attachments.delete(["u2", "u9"]) == 1
        on_uploads = COMMAND_LOG.filters("attachments")
        assert on_uploads and all(set(flt) == {"_id"} and isinstance(flt["_id"], str) for flt in on_uploads), on_uploads
        assert (await store.attachments.get("u0"))["referenced"] is True and await store.attachments.get("u2") is None
        # The quota and the expiry read the unused ones by equalities too (no `$ne`, no range).
        with COMMAND_LOG.recording():
            assert await reader.attachments.pending_usage("gw1", T0) == (0, 0)
            assert await reader.attachments.unreferenced_before(T0 + timedelta(days=1), 10) == []
        on_uploads = COMMAND_LOG.filters("attachments")
        assert on_uploads and all(not isinstance(v, dict) for flt in on_uploads for v in flt.values()), on_uploads
    finally:
        await reader.close()


async def test_uploads_stored_without_the_referenced_flag_are_flagged_at_the_next_start(server_store):
    """The server store reads unused uploads by `referenced: False` (an equality); uploads an
    older version stored without the flag get it once, at the next start."""
    store = server_store
    await store.attachments.attachments.insert_one({"_id": "old", "owner": "gw1", "size": 10, "created_at": T0})
    await store.attachments.meta.delete_one({"_id": "uploads_flagged"})  # as before this version
    again = await open_store(server_uri(), store.db_name)
    try:
        assert await again.attachments.unreferenced_before(T0 + timedelta(hours=1), 10) == ["old"]
        assert await again.attachments.pending_usage("gw1", T0) == (1, 10)
    finally:
        await again.close()


async def test_a_case_s_record_lists_are_stored_as_one_field_and_older_cases_read_as_they_are(server_store):
    """A case's record lists are stored as one binary field (FerretDB converted each entry of a
    swept case's history on every read of it: 1.5 ms a case, 0.9 ms packed). A case an earlier
    version stored with its lists as they were reads the same, and is packed at its next write."""
    from dispatch.store.packing import CASE_PACKED
    from dispatch.store.query import Change
    from tests.test_store_contract import RECORDS

    store = server_store
    packed = case(1, **RECORDS)
    await store.cases.insert(packed)
    raw = await store.cases.cases.find_one({"_id": packed["_id"]})
    assert CASE_PACKED in raw and not set(RECORDS) & set(raw) and raw["description"] == packed["description"]

    older = case(2, **RECORDS)
    await store.cases.cases.insert_one({**older, "qk": [], "due_keys": []})  # as an earlier version wrote it
    assert {name: (await store.cases.get(older["_id"]))[name] for name in RECORDS} == RECORDS
    part = await store.rollups.cases([older["_id"], packed["_id"]], ("_id", "history.action"))
    assert part[older["_id"]] == part[packed["_id"]] | {"_id": older["_id"]} == {
        "_id": older["_id"], "history": [{"action": "report"}, {"action": "dispatch"}]}
    await store.cases.update(older["_id"], 1, Change(sets={"status": "filed"}))
    raw = await store.cases.cases.find_one({"_id": older["_id"]})
    assert CASE_PACKED in raw and "history" not in raw
    assert (await store.cases.get(older["_id"]))["history"] == RECORDS["history"]


async def test_the_audit_list_reads_by_day_and_hour_and_dates_older_entries_once(server_store):
    """Regression: the audit page's list sorted the whole log (FerretDB reads and sorts every
    entry in Go: a year of number reveals for each look). Now equalities on the day's hours (or
    a user's day, or a case); entries an earlier version wrote without a day get one at the next
    start."""
    store = server_store
    await store.audit.collections["reveals"].insert_one(
        {"_id": "legacy", "at": T0 - timedelta(days=3), "case_id": "c0", "by": "op1"})  # as an earlier version wrote it
    for n in range(3):
        await store.audit.record("reveals", {"at": T0 + timedelta(hours=n), "case_id": f"c{n + 1}", "by": "op1"})
    reader = await open_store(server_uri(), store.db_name)  # a client made after COMMAND_LOG was registered
    try:
        await reader.audit.meta.delete_one({"_id": "audit_days"})
        await reader.ensure_indexes()  # the next start
        with COMMAND_LOG.recording() as sent:
            assert [r["case_id"] for r in await reader.audit.recent("reveals", 10)] == ["c3", "c2", "c1", "c0"]
            assert [r["case_id"] for r in await reader.audit.recent("reveals", 10, username="op1")] == ["c3", "c2", "c1", "c0"]
            assert [r["_id"] for r in await reader.audit.recent("reveals", 10, case_id="c0")] == ["legacy"]
        finds = [c for c in sent if "find" in c]
        assert finds and all("sort" not in c for c in finds), finds
        flt = COMMAND_LOG.filters("reveals") + COMMAND_LOG.filters("audit_days")
        assert flt and all(not isinstance(v, dict) for f in flt for v in f.values()), flt
    finally:
        await reader.close()


async def test_buckets_stored_before_they_had_a_shelf_get_one_at_the_next_start(server_store):
    """A report reads a district's day buckets of a month (month buckets of a year) by `shelf`,
    one equality; buckets an earlier version stored without it get it once, at the next start —
    or that report would miss them."""
    store = server_store
    day = {"_id": "d|2026-11-23|D1", "level": "d", "bucket": "2026-11-23", "district": "D1", "seq": 3,
           "groups": {}, "streets": {"S1": {"reported": 1}}, "departments": {}}
    month = {**day, "_id": "m|2026-11|D1", "level": "m", "bucket": "2026-11"}
    year = {**day, "_id": "y|2026|D1", "level": "y", "bucket": "2026"}
    await store.rollups.buckets.insert_many([{k: v for k, v in pack_bucket(doc).items() if k != "shelf"}
                                             for doc in (day, month, year)])
    await store.rollups.states.delete_one({"_id": "shelves"})  # as before this version
    assert await store.rollups.buckets_within("2026-11", "D1") == {}
    again = await open_store(server_uri(), store.db_name)
    try:
        with COMMAND_LOG.recording():
            assert await again.rollups.buckets_within("2026-11", "D1") == {day["_id"]: day}
            assert await again.rollups.buckets_within("2026", "D1") == {month["_id"]: month}
        assert COMMAND_LOG.filters("kpi_rollups") == [{"shelf": "2026-11|D1"}, {"shelf": "2026|D1"}]
        assert "shelf" not in await store.rollups.buckets.find_one({"_id": year["_id"]})
    finally:
        await again.close()


async def busy_hour(store, n: int = 300) -> datetime:
    """`n` cases reported within six seconds of an hour three hours ago and a few cases two hours
    before it (and none in between): the hour that starts it."""
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    burst = [case(i, created_at=hour + timedelta(minutes=30, milliseconds=20 * i),
                  status="accepted" if i % 100 == 0 else "reported") for i in range(n)]
    quiet = [case(n + i, created_at=hour - timedelta(hours=2, minutes=i)) for i in range(5)]
    await store.cases.bulk_insert(burst + quiet)
    return hour


def bucket_reads(sent: list[dict], facet: str) -> list[dict]:
    return [{k: v for k, v in f.items() if k != "$and"} for f in sent if str(f.get("qk", "")).startswith(facet + "@")]


async def test_a_busy_hour_is_read_a_slice_at_a_time_and_an_hour_without_cases_not_at_all(server_store):
    """Regression: a broad list's first page read the whole newest busy hour — FerretDB converts
    every case of a bucket before it applies the limit, so 500 reports in one burst made the
    city's list take 0.6 s, and a big city's peak hour (~2,500) would take seconds."""
    store = server_store
    hour = await busy_hour(store)
    reader = await open_store(server_uri(), store.db_name)  # a client made after COMMAND_LOG was registered
    try:
        with COMMAND_LOG.recording():
            page, resume = await reader.cases.find_page(CaseQuery(limit=50))
        assert resume is None and [d["number"] for d in page] == [f"20261123-{i:06d}" for i in range(299, 249, -1)]
        reads = bucket_reads(COMMAND_LOG.filters("cases"), "all")
        # The busy minute is split into its seconds; nothing reads the hour whole, and the hours
        # after it (no case was created in them) are not read.
        assert reads and all(f.get("slot", "").startswith("d") for f in reads), reads
        assert {f["qk"] for f in reads} == {buckets.key("all", buckets.bucket(buckets.HOUR, hour))}, reads
        assert len(reads) <= 2, reads
        # The next page starts inside a slice: that slice says nothing of how common the facet
        # is, so the walk goes on by slices instead of reading the rest of the hour whole.
        with COMMAND_LOG.recording():
            page, _ = await reader.cases.find_page(CaseQuery(limit=50, after=After(page[-1]["created_at"], page[-1]["_id"])))
        assert [d["number"] for d in page] == [f"20261123-{i:06d}" for i in range(249, 199, -1)]
        reads = bucket_reads(COMMAND_LOG.filters("cases"), "all")
        assert reads and all(f.get("slot", "").startswith("d") for f in reads), reads
    finally:
        await reader.close()


async def test_a_facet_rare_in_a_busy_hour_reads_the_rest_of_the_hour_at_once(server_store):
    """A status few cases of a busy hour have: one slice shows it is rare, then the rest of the
    hour is one read (not one read per slice), and every such case is found."""
    store = server_store
    hour = await busy_hour(store)
    reader = await open_store(server_uri(), store.db_name)
    try:
        with COMMAND_LOG.recording():
            page, _ = await reader.cases.find_page(CaseQuery(statuses=("accepted",), limit=50))
        assert [d["number"] for d in page] == ["20261123-000200", "20261123-000100", "20261123-000000"]
        reads = bucket_reads(COMMAND_LOG.filters("cases"), "status=accepted")
        in_hour = [f for f in reads if f["qk"] == buckets.key("status=accepted", buckets.bucket(buckets.HOUR, hour))]
        assert len(in_hour) == 2 and "slot" in in_hour[0] and "slot" not in in_hour[1], in_hour
    finally:
        await reader.close()


async def test_cases_stored_before_they_were_counted_are_read_by_the_whole_hour(server_store):
    """A store upgraded from a version that did not count the cases created per hour: the hours
    up to its first start with this version are read whole, so none of those cases is missed."""
    store = server_store
    await busy_hour(store)
    await store.cases.counts.collection.delete_many({})
    await store.cases.meta.delete_one({"_id": "case_counts"})  # as before this version
    again = await open_store(server_uri(), store.db_name)
    try:
        with COMMAND_LOG.recording():
            found = []
            after = None
            while True:
                page, _ = await again.cases.find_page(CaseQuery(limit=100, after=after))
                found += page
                if len(page) < 100:
                    break
                after = After(page[-1]["created_at"], page[-1]["_id"])
        assert len(found) == 305 and len({d["_id"] for d in found}) == 305
        assert not any("slot" in f for f in COMMAND_LOG.filters("cases"))
    finally:
        await again.close()


async def test_reports_stored_at_once_by_two_processes_are_all_counted(server_store):
    """FerretDB 1.24 loses concurrent updates of one document (`$inc` included): counting each
    report with an `$inc` of its hour's document lost counts under a burst, and a slice counted
    empty is not read — its reports would be missing from the lists. Each writer counts into
    its own documents, one write at a time carrying every report waiting."""
    store = server_store
    other = await open_store(server_uri(), store.db_name)  # a second process
    try:
        at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
        docs = [case(i, created_at=at + timedelta(milliseconds=7 * i)) for i in range(80)]
        await asyncio.gather(*(writer.cases.insert(doc) for doc, writer in zip(docs, [store, other] * 40)))
        hour = buckets.hour_count_id(at)
        counts = await store.cases.counts.slices_of_hour(hour)
        assert sum(v for k, v in counts.items() if k.startswith("a")) == 80, counts
        day, field = buckets.day_count_key(at)
        assert (await store.cases.counts.hours_of_day(day))[field] == 80
        page, _ = await store.cases.find_page(CaseQuery(limit=100))
        assert sorted(d["_id"] for d in page) == sorted(d["_id"] for d in docs)
    finally:
        await other.close()


async def test_a_walk_makes_only_the_hours_it_reads(server_store, monkeypatch):
    """Regression: a walk made the list of every hour from now back to the start of the history
    before reading the first (8,760 a year): ~100 ms of each list request at a year of cases,
    more than half of a first page's time."""
    store = server_store
    now = datetime.now(timezone.utc)
    await store.cases.bulk_insert([case(1, created_at=now - timedelta(days=3650)), case(2, created_at=now - timedelta(minutes=5))])
    days_made = []
    hours_of = buckets.hours_of
    monkeypatch.setattr(buckets, "hours_of", lambda day, *rest: days_made.append(day) or hours_of(day, *rest))
    page, _ = await store.cases.find_page(CaseQuery(limit=1))
    assert [d["number"] for d in page] == ["20261123-000002"]
    assert len(days_made) <= 3, len(days_made)  # (the window starts 5 minutes ahead: maybe tomorrow)


async def test_a_queue_s_busy_day_is_read_a_slice_at_a_time(server_store):
    """Regression: the lists read by the day — a set of statuses (the 待派遣 queue) and a
    reporter's own reports — read a busy day whole: a morning of 1,000 reports nobody dispatched
    made a dispatcher's 待派遣 and the grid worker's own list take 0.5–1.0 s."""
    store = server_store
    hour = await busy_hour(store)
    reader = await open_store(server_uri(), store.db_name)
    try:
        newest = [f"20261123-{i:06d}" for i in range(299, 249, -1)]
        for query, facet in ((CaseQuery(statuses=("reported", "filed"), limit=50), "status=reported"),
                             (CaseQuery(reporter="gw1", limit=50), "rep=gw1"),
                             (CaseQuery(scope=Scope(within="S1", reporter="gw1"), limit=50), "rep=gw1")):
            with COMMAND_LOG.recording():
                page, resume = await reader.cases.find_page(query)
            assert resume is None and [d["number"] for d in page] == newest, query
            reads = bucket_reads(COMMAND_LOG.filters("cases"), facet)
            assert reads and all(f.get("slot", "").startswith("d") for f in reads), (query, reads)
            assert {f["qk"] for f in reads} == {buckets.key(facet, buckets.bucket(buckets.HOUR, hour))}, reads
    finally:
        await reader.close()


async def test_a_facet_rare_in_a_busy_day_reads_the_rest_of_the_day_at_once(server_store):
    """A reporter with three reports in a day of 300: what the walk reads whole shows the
    reporter is rare, then the rest of the hour and of the day are one read each — a few reads,
    not one per slice or per hour — and all three are found."""
    store = server_store
    hour = await busy_hour(store)
    rare = [case(900, created_at=hour + timedelta(minutes=30, seconds=1), reporters=["gw9"]),
            case(901, created_at=hour + timedelta(hours=1, minutes=5), reporters=["gw9"]),
            case(902, created_at=hour - timedelta(hours=2, minutes=30), reporters=["gw9"])]
    await store.cases.bulk_insert(rare)
    reader = await open_store(server_uri(), store.db_name)
    try:
        with COMMAND_LOG.recording():
            page, resume = await reader.cases.find_page(CaseQuery(reporter="gw9", limit=50))
        assert [d["number"] for d in page] == ["20261123-000901", "20261123-000900", "20261123-000902"]
        assert resume is None
        reads = [f for f in bucket_reads(COMMAND_LOG.filters("cases"), "rep=gw9") if "@d" in f["qk"] or "@h" in f["qk"]]
        assert len(reads) <= 5, reads
    finally:
        await reader.close()


async def test_a_walk_stopped_by_its_read_budget_resumes_where_it_stopped(server_store, monkeypatch):
    """With a budget of a few reads, every page stops inside a day, an hour or a slice: walked
    page by page, each kind of walk still gives exactly the plain filter's cases, in order."""
    from dispatch.store import walk
    from tests.test_scale_queries import QUERIES, busy_hours, expected, walk as walk_pages

    monkeypatch.setattr(walk, "BUCKET_BUDGET", 24)
    store = server_store
    docs = busy_hours()
    await store.cases.bulk_insert(docs)
    stored = [await store.cases.get(d["_id"]) for d in docs]
    for name in ("everything", "everything, oldest first", "two open statuses (the 待派遣 queue)", "mine",
                 "grid worker scope", "category", "overdue, open", "small box (its cells)", "oldest first",
                 "small box, oldest first", "overdue, open, oldest first", "period"):
        query = QUERIES.get(name) or CaseQuery(order=OLDEST)
        assert [d["_id"] for d in await walk_pages(store, query, page=7)] == expected(stored, query), name


async def test_overdue_cases_of_an_older_day_are_not_read_whole_for_a_newer_day_s_few(server_store):
    """Regression: the walk took a facet's share of the cases it had read as the share of older
    days too; a case becomes overdue with age, so yesterday's one overdue case in 100 made the
    day before — all 300 overdue — look rare and read whole (on the benchmark: 超期 0.6 s,
    ~500 ms of it one day of 250 overdue cases for the page's last 3)."""
    store = server_store
    today = datetime.now(timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0)
    newer = [case(i, created_at=today - timedelta(days=1, minutes=i), flags={"overdue": i == 7, "warning": False})
             for i in range(100)]
    older = [case(100 + i, created_at=today - timedelta(days=2, seconds=30 * i), flags={"overdue": True, "warning": False})
             for i in range(300)]
    await store.cases.bulk_insert(newer + older)
    reader = await open_store(server_uri(), store.db_name)
    try:
        with COMMAND_LOG.recording():
            page, _ = await reader.cases.find_page(CaseQuery(overdue=True, limit=5))
        assert [d["number"] for d in page] == ["20261123-000007"] + [f"20261123-{100 + i:06d}" for i in range(4)]
        older_day = buckets.key("overdue", buckets.bucket(buckets.DAY, older[0]["created_at"]))
        assert older_day not in [f["qk"] for f in bucket_reads(COMMAND_LOG.filters("cases"), "overdue")]
    finally:
        await reader.close()


async def test_a_filter_nothing_matches_covers_a_year_in_a_few_reads(server_store):
    """Regression: a facet read by the day that nothing (or little) matches — a category no case
    has, a department with no cases yet — read a day at a time until the page's read budget
    ran out (150 days, ~0.5 s) and answered an empty page with a cursor. What the walk reads
    shows the facet is rare, and the rest of each month is then one read: the whole history
    is covered and the answer is final."""
    store = server_store
    await busy_hour(store)
    now = datetime.now(timezone.utc)
    await store.cases.bulk_insert([case(1000 + d, created_at=now - timedelta(days=d, hours=5)) for d in range(1, 400)])
    reader = await open_store(server_uri(), store.db_name)
    try:
        for query, facet in ((CaseQuery(categories=("9999",), limit=50), "cat=9999"),
                             (CaseQuery(reporter="nobody", limit=50), "rep=nobody")):
            with COMMAND_LOG.recording():
                page, resume = await reader.cases.find_page(query)
            assert page == [] and resume is None, (query, resume)
            reads = bucket_reads(COMMAND_LOG.filters("cases"), facet)
            assert len(reads) <= 30, len(reads)
            assert sum("@m" in f["qk"] for f in reads) >= 12, reads
    finally:
        await reader.close()


async def test_find_resumes_where_the_read_budget_stopped_a_walk(server_store, monkeypatch):
    """Regression: `find` answered the first walk's page even when the walk had stopped at its
    read budget; the loaders that page with `find` until a short page (the assist's nearby
    index of open cases, a rule's dry run) then stopped early and missed cases."""
    from dispatch.store import walk

    monkeypatch.setattr(walk, "BUCKET_BUDGET", 4)
    store = server_store
    now = datetime.now(timezone.utc)
    docs = [case(i, created_at=now - timedelta(hours=3 * i)) for i in range(40)]
    await store.cases.bulk_insert(docs)
    page, resume = await store.cases.find_page(CaseQuery(limit=30))
    assert len(page) < 30 and resume is not None  # (what a walk does within this budget)
    found = await store.cases.find(CaseQuery(limit=30))
    assert [d["_id"] for d in found] == [d["_id"] for d in docs[:30]]


async def test_a_set_of_facets_decodes_only_the_page_it_answers(server_store, monkeypatch):
    """Regression: a set of facets (a grid worker's area and own reports; 待派遣's statuses; a
    box's cells) decoded every facet's rows of a read before merging them — up to facets × page
    rows, ~0.7 ms each — where only the merged page is answered."""
    from dispatch.store import mongo

    store = server_store
    now = datetime.now(timezone.utc)
    await store.cases.bulk_insert([case(i, created_at=now - timedelta(days=2, minutes=i)) for i in range(30)])
    decoded = []
    out = mongo._out
    monkeypatch.setattr(mongo, "_out", lambda doc, *rest: decoded.append(doc["_id"]) or out(doc, *rest))
    page, _ = await store.cases.find_page(CaseQuery(scope=Scope(within="S1", reporter="gw1"), limit=10))
    assert [d["number"] for d in page] == [f"20261123-{i:06d}" for i in range(10)]
    assert len(decoded) == 10, len(decoded)  # both facets hold every case: 20 rows read


async def test_a_burst_after_a_start_reads_the_day_s_numbers_once(server_store):
    """Regression: each report of a burst reaching a process that had not yet read the day's
    highest number read it (every number of the day: FerretDB sorts them itself), and each then
    set the counter back to what it had read, so numbers already given were tried again and
    refused — on a day of 8,000 numbers, 220 reads and 1,174 refused inserts in 10 s at 50
    reports a second, and intake took 15–25 s a report."""
    store = server_store
    await store.cases.numbers.insert_many([{"_id": f"20261123-{n:06d}", "day": "20261123", "seq": n}
                                           for n in range(1, 301)])
    reader = await open_store(server_uri(), store.db_name)  # a process just started
    try:
        with COMMAND_LOG.recording() as sent:
            numbers = await asyncio.gather(*(reader.cases.next_number("20261123") for _ in range(50)))
        assert sorted(numbers) == [f"20261123-{n:06d}" for n in range(301, 351)]
        on_numbers = [c for c in sent if c.get("find") == "case_numbers" or c.get("insert") == "case_numbers"]
        assert sum(1 for c in on_numbers if "find" in c) == 1, on_numbers
        assert sum(len(c["documents"]) for c in on_numbers if "insert" in c) == 50  # none refused
    finally:
        await reader.close()


async def test_day_counts_written_before_they_carried_their_month_get_it_at_the_next_start(server_store):
    """A walk over weeks reads a month of days' counts at once, by `month`; day documents an
    earlier version wrote without it get it once, at the next start — or that walk would take
    their days for days nobody reported in and skip their cases."""
    store = server_store
    days_ago = [3, 9, 40]
    old = [case(i, created_at=datetime.now(timezone.utc) - timedelta(days=n, minutes=i)) for i, n in enumerate(days_ago)]
    newest = [case(10 + i, created_at=datetime.now(timezone.utc) - timedelta(minutes=i)) for i in range(3)]
    await store.cases.bulk_insert(old + newest)
    await store.cases.counts.collection.update_many({"day": {"$exists": True}}, {"$unset": {"month": ""}})
    await store.cases.meta.delete_one({"_id": "case_count_months"})  # as before this version
    assert not await store.cases.counts.hours_of_month("m" + old[0]["created_at"].strftime("%Y%m"))
    again = await open_store(server_uri(), store.db_name)
    try:
        with COMMAND_LOG.recording():
            found, _ = await again.cases.find_page(CaseQuery(limit=50))
        assert [d["_id"] for d in found] == [d["_id"] for d in newest + old]
        sent = COMMAND_LOG.filters("case_counts")
        months = {f["month"] for f in sent if "month" in f}
        assert months == {"m" + d["created_at"].strftime("%Y%m") for d in old}, sent
        assert len([f for f in sent if "day" in f]) == 1  # the first day's alone
    finally:
        await again.close()

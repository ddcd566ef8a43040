"""What the server store sends for photos and uploads: each read FerretDB 1.24 hands PostgreSQL
whole (an equality), never one it answers by reading every case or every upload with its photo
(docs/FERRETDB.md, "What reaches PostgreSQL"). The behaviour itself is in the store contract
(tests/test_store_contract.py), on both engines."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatch.store import open_store
from dispatch.store.packing import pack_bucket
from dispatch.store.query import Scope
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

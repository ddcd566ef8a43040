"""One contract, every engine: the store's public behaviour on the embedded engine and on a
MongoDB-protocol server (FerretDB on PostgreSQL in CI; MONGODB_URI names it).

Each test runs once per engine; what one engine does, the other must do too.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone

import pytest

from dispatch.store import DuplicateCase, new_case_id
from dispatch.store.query import (
    BY_ID, EVERYTHING, NEWEST, OLDEST, After, Box, CaseQuery, Change, PeriodQuery, Scope, TextSearch,
)


T0 = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)


def case(n: int, **fields) -> dict:
    """A minimal stored case: the fields the store's queries read."""
    doc = {
        "_id": fields.pop("_id", new_case_id()),
        "number": f"20261123-{n:06d}",
        "source": "grid",
        "status": "reported",
        "category": {"code": "0101", "name": "暴露垃圾"},
        "location": {"type": "Point", "coordinates": [120.10 + n * 0.001, 30.20 + n * 0.001]},
        "jurisdiction": {"district": {"id": "D1", "name": "一区"}, "street": {"id": "S1", "name": "一街"}},
        "scope_path": ["C", "D1", "S1"],
        "assignment": {"department": None, "rule": None, "reason": ""},
        "deadlines": {"sign_by": None, "handle_by": None, "check_by": None},
        "flags": {"overdue": False, "warning": False},
        "departments_seen": [],
        "reporters": ["gw1"],
        "created_by": "gw1",
        "client_id": None,
        "description": f"第{n}件 垃圾",
        "address": f"东坡路{n}号",
        "search_masked": f"20261123-{n:06d}\n第{n}件 垃圾\n东坡路{n}号",
        "created_at": T0 + timedelta(minutes=n),
        "updated_at": T0 + timedelta(minutes=n),
        "version": 1,
        "history": [{"at": T0 + timedelta(minutes=n), "by": "gw1", "action": "report", "note": "网格上报"}],
    }
    doc.update(fields)
    return doc


async def insert_many(store, docs):
    for doc in docs:
        await store.cases.insert(doc)
    return docs


def ids(docs) -> list[str]:
    return [d["_id"] for d in docs]


# -- writing a case ----------------------------------------------------------------------------


async def test_insert_then_get_round_trips_the_document(store):
    doc = case(1, created_at=datetime(2026, 11, 23, 1, 2, 3, 456789, tzinfo=timezone.utc))
    await store.cases.insert(doc)
    got = await store.cases.get(doc["_id"])
    assert got["created_at"] == datetime(2026, 11, 23, 1, 2, 3, 456000, tzinfo=timezone.utc)  # milliseconds
    assert got["created_at"].tzinfo is not None
    assert {k: v for k, v in got.items() if k != "created_at"} == {k: v for k, v in doc.items() if k != "created_at"}
    assert await store.cases.get("nope") is None and await store.cases.get(123) is None


async def test_the_same_id_or_client_id_is_refused_once_stored(store):
    first = case(1, client_id="phone-1")
    await store.cases.insert(first)
    with pytest.raises(DuplicateCase):
        await store.cases.insert(case(2, _id=first["_id"]))
    with pytest.raises(DuplicateCase):
        await store.cases.insert(case(3, client_id="phone-1"))
    await store.cases.insert(case(4, client_id="phone-1", created_by="gw2", reporters=["gw2"]))  # another user
    await store.cases.insert(case(5))  # no client_id: never a conflict
    await store.cases.insert(case(6))
    with pytest.raises(DuplicateCase):
        await store.cases.insert(case(6))  # a case number is given once
    assert (await store.cases.by_client_id("gw1", "phone-1"))["_id"] == first["_id"]
    assert (await store.cases.by_client_id("gw2", "phone-1"))["number"].endswith("000004")
    assert await store.cases.by_client_id("gw1", "phone-2") is None
    assert await store.cases.count(CaseQuery()) == 4


async def test_concurrent_inserts_of_one_client_id_store_one_case(store):
    async def attempt(n):
        try:
            await store.cases.insert(case(n, client_id="same"))
            return True
        except DuplicateCase:
            return False

    results = await asyncio.gather(*(attempt(n) for n in range(1, 9)))
    assert results.count(True) == 1
    assert await store.cases.count(CaseQuery()) == 1


async def test_numbers_of_loaded_cases_are_not_given_again(store):
    """Cases loaded in bulk (history, an import) keep their numbers: the next report of that
    day gets the number after them, not a taken one (which was a 500 at intake)."""
    assert await store.cases.bulk_insert([case(n) for n in (1, 2, 5)]) == 3
    assert await store.cases.next_number("20261123") == "20261123-000006"
    fresh = case(6)
    await store.cases.insert(fresh)
    assert (await store.cases.get(fresh["_id"]))["number"] == "20261123-000006"
    assert await store.cases.bulk_insert([case(7)]) == 1
    assert await store.cases.next_number("20261123") == "20261123-000008"


async def test_case_numbers_are_unique_under_concurrency(store):
    numbers = await asyncio.gather(*(store.cases.next_number("20261123") for _ in range(30)))
    assert sorted(numbers) == [f"20261123-{n:06d}" for n in range(1, 31)]
    assert await store.cases.next_number("20261124") == "20261124-000001"


async def test_version_guarded_update_applies_each_operator(store):
    doc = case(1, merged_from=[{"id": "a"}, {"id": "b"}], reporters=["gw1", "x", "y"])
    await store.cases.insert(doc)
    change = Change(
        sets={"status": "filed", "flags.overdue": True, "deadlines.sign_by": T0},
        unsets={"client_id"},
        inc={"counters.returns": 1},
        push={"history": [{"at": T0, "action": "file"}, {"at": T0, "action": "note"}]},
        add_to_set={"departments_seen": ["d1", "d1", "d2"]},
        pull_values={"reporters": ["x"]},
        pull_matching={"merged_from": {"id": "a"}},
    )
    updated = await store.cases.update(doc["_id"], 1, change)
    assert updated["version"] == 2 and updated["status"] == "filed" and updated["flags"]["overdue"] is True
    assert updated["deadlines"]["sign_by"] == T0 and "client_id" not in updated
    assert updated["counters"] == {"returns": 1}
    assert [h["action"] for h in updated["history"]] == ["report", "file", "note"]
    assert updated["departments_seen"] == ["d1", "d2"]
    assert updated["reporters"] == ["gw1", "y"] and updated["merged_from"] == [{"id": "b"}]
    assert await store.cases.get(doc["_id"]) == updated


async def test_a_stale_version_changes_nothing(store):
    doc = case(1)
    await store.cases.insert(doc)
    assert await store.cases.update(doc["_id"], 1, Change(sets={"status": "filed"})) is not None
    assert await store.cases.update(doc["_id"], 1, Change(sets={"status": "void"})) is None
    assert await store.cases.update("missing", 1, Change(sets={"status": "void"})) is None
    assert (await store.cases.get(doc["_id"]))["status"] == "filed"


async def test_concurrent_updates_on_one_version_let_exactly_one_win(store):
    doc = case(1)
    await store.cases.insert(doc)
    results = await asyncio.gather(*(
        store.cases.update(doc["_id"], 1, Change(push={"history": [{"action": f"a{i}"}]})) for i in range(10)))
    assert sum(r is not None for r in results) == 1
    stored = await store.cases.get(doc["_id"])
    assert stored["version"] == 2 and len(stored["history"]) == 2


async def test_what_a_caller_changes_in_a_returned_document_is_not_stored(store):
    doc = case(1)
    await store.cases.insert(doc)
    doc["status"] = "void"
    got = await store.cases.get(doc["_id"])
    got["history"].append({"action": "forged"})
    again = await store.cases.get(doc["_id"])
    assert again["status"] == "reported" and len(again["history"]) == 1


# -- the case list -----------------------------------------------------------------------------


async def test_newest_first_with_keyset_pages_and_no_gaps(store):
    docs = await insert_many(store, [case(n) for n in range(1, 12)])
    # two cases in the same millisecond: the id breaks the tie
    twins = await insert_many(store, [case(20, created_at=T0 + timedelta(hours=1)),
                                      case(21, created_at=T0 + timedelta(hours=1))])
    expected = ids(sorted(docs + twins, key=lambda d: (d["created_at"], d["_id"]), reverse=True))
    page = await store.cases.find(CaseQuery(limit=4))
    seen = ids(page)
    while len(page) == 4:  # a full page: there may be more after its last case
        page = await store.cases.find(CaseQuery(limit=4, after=After(page[-1]["created_at"], page[-1]["_id"])))
        seen += ids(page)
    assert seen == expected
    oldest = await store.cases.find(CaseQuery(order=OLDEST, limit=3))
    assert ids(oldest) == expected[::-1][:3]
    by_id = await store.cases.find(CaseQuery(order=BY_ID, limit=100))
    assert ids(by_id) == sorted(expected)
    rest = await store.cases.find(CaseQuery(order=BY_ID, limit=100, after=After(None, sorted(expected)[5])))
    assert ids(rest) == sorted(expected)[6:]


async def test_each_filter_keeps_exactly_its_cases(store):
    a = case(1, status="dispatched", source="hotline", flags={"overdue": True, "return_pending": True},
             assignment={"department": {"id": "dep-a", "name": "A"}}, departments_seen=["dep-a"])
    b = case(2, category={"code": "0202", "name": "占道"}, reporters=["gw1", "gw2"],
             jurisdiction={"district": {"id": "D2", "name": "二区"}, "street": {"id": "S2", "name": "二街"}},
             scope_path=["C", "D2", "S2"])
    c = case(3, status="closed", location=None, created_by="op1", reporters=["op1"])
    await insert_many(store, [a, b, c])

    async def found(**filters):
        return set(ids(await store.cases.find(CaseQuery(limit=50, **filters))))

    A, B, C = a["_id"], b["_id"], c["_id"]
    assert await found(statuses=("dispatched", "closed")) == {A, C}
    assert await found(open_only=True) == {A, B}
    assert await found(categories=("0202",)) == {B}
    assert await found(departments=("dep-a",)) == {A}
    assert await found(jurisdictions=(("district", ("D2",)),)) == {B}
    assert await found(jurisdictions=(("street", ("S1", "S9")),)) == {A, C}
    assert await found(sources=("hotline",)) == {A}
    assert await found(overdue=True) == {A}
    assert await found(overdue=False) == {B, C}
    assert await found(return_pending=True) == {A}
    assert await found(reporter="gw2") == {B}
    assert await found(warning=True) == set()  # A is warned of nothing; overdue is not 临期
    assert await found(supervised=True) == set()
    assert await store.cases.update(b["_id"], 1, Change(sets={"flags.supervised": True, "flags.warning": True})) is not None
    assert await found(supervised=True) == {B}
    assert await found(warning=True) == {B}
    assert await found(box=Box(120.1005, 30.2005, 120.1025, 30.2025)) == {A, B}
    assert await found(box=Box(0, 0, 1, 1)) == set()
    assert await found(created_from=T0 + timedelta(minutes=2)) == {B, C}
    assert await found(created_to=T0 + timedelta(minutes=2)) == {A}
    assert await found(statuses=("dispatched",), sources=("grid",)) == set()
    assert await store.cases.count(CaseQuery(open_only=True)) == 2


async def test_the_command_centres_flag_lists_reach_back_through_the_whole_history(store):
    """临期 and 超期 lists of open cases (`warning`, `overdue` with `open`): a case opened ten
    months ago and still open is on them, in one page, however many days lie between."""
    old = T0 - timedelta(days=300)
    warned = case(1, status="accepted", created_at=old, flags={"warning": True})
    overdue = case(2, status="dispatched", created_at=old + timedelta(days=3), flags={"warning": True, "overdue": True})
    recent = case(3, status="handled", flags={"warning": True})
    done = case(4, status="closed", created_at=old, flags={"warning": True, "overdue": True})
    await insert_many(store, [warned, overdue, recent, done])

    async def page(**filters):
        docs, resume = await store.cases.find_page(CaseQuery(limit=50, **filters))
        return ids(docs), resume

    assert await page(open_only=True, warning=True) == ([recent["_id"], warned["_id"]], None)
    assert await page(open_only=True, overdue=True) == ([overdue["_id"]], None)
    assert await store.cases.update(overdue["_id"], 1, Change(sets={"flags.return_pending": True})) is not None
    assert await page(return_pending=True) == ([overdue["_id"]], None)
    # A case that leaves the list leaves its bucket: 结案 takes it off both.
    assert await store.cases.update(warned["_id"], 1, Change(sets={"status": "closed"})) is not None
    assert await page(open_only=True, warning=True) == ([recent["_id"]], None)


async def test_scopes_see_what_the_policy_says(store):
    a = case(1, departments_seen=["dep-a"])
    b = case(2, scope_path=["C", "D2"], reporters=["gw9"])
    c = case(3, scope_path=["C", "D2"], reporters=["gw1"])
    await insert_many(store, [a, b, c])

    async def found(scope):
        return set(ids(await store.cases.find(CaseQuery(scope=scope, limit=50))))

    A, B, C = a["_id"], b["_id"], c["_id"]
    assert await found(EVERYTHING) == {A, B, C}
    assert await found(Scope(department="dep-a")) == {A}
    assert await found(Scope(department="")) == set()
    assert await found(Scope(within="D2")) == {B, C}
    assert await found(Scope(within="D1", reporter="gw9")) == {A, B}
    for scope in (Scope(department="dep-a"), Scope(within="D2"), Scope(within="D1", reporter="gw9")):
        assert {d["_id"] for d in (a, b, c) if scope.admits(d)} == await found(scope)


async def test_text_search_matches_only_what_the_reader_may_see(store):
    a = case(1, description="来电人13912345678反映路灯不亮", search_masked="20261123-000001\n来电人139****5678反映路灯不亮\n",
             created_by="op1", reporters=["op1"])
    b = case(2, description="井盖缺失 13912345678", search_masked="20261123-000002\n井盖缺失 139****5678\n",
             created_by="op2", reporters=["op2"])
    await insert_many(store, [a, b])

    async def found(search):
        return set(ids(await store.cases.find(CaseQuery(text=search, limit=50))))

    A, B = a["_id"], b["_id"]
    assert await found(TextSearch("路灯")) == {A}
    assert await found(TextSearch("1391234")) == set()  # the masked text hides it
    assert await found(TextSearch("139****5678")) == {A, B}
    assert await found(TextSearch("1391234", raw_for_all=True)) == {A, B}
    assert await found(TextSearch("1391234", raw_for_creator="op1")) == {A}
    assert await found(TextSearch("000002")) == {B}  # the case number
    assert await found(TextSearch("东坡路1号", raw_for_all=True)) == {A}
    assert await found(TextSearch(".*")) == set()  # a pattern is text, never a regular expression


# -- a case's record lists ---------------------------------------------------------------------


RECORDS = {
    "history": [{"at": T0, "by": "gw1", "action": "report", "note": "网格上报"},
                {"at": T0 + timedelta(hours=1), "by": "d1", "action": "dispatch",
                 "department": {"id": "w", "name": "水务"}, "due_at": T0 + timedelta(hours=5)}],
    "supervisions": [{"at": T0 + timedelta(hours=2), "by": "lead1", "note": "请加快"}],
    "callbacks": [{"at": T0 + timedelta(hours=3), "satisfied": True, "note": ""}],
}


async def test_a_case_s_record_lists_read_back_as_written_whole_or_in_part(store):
    """The server engine packs a case's record lists into one field (dispatch/store/packing.py):
    every read gives them back as written, and a read naming parts of them gets those parts
    only, as MongoDB projects them."""
    doc = case(1, **RECORDS, next_due_at=T0 + timedelta(minutes=5), clock={"stage": "handle"})
    await store.cases.insert(doc)
    got = await store.cases.get(doc["_id"])
    assert {name: got[name] for name in RECORDS} == RECORDS and got["description"] == doc["description"]
    signed = {"at": T0 + timedelta(hours=4), "by": "w1", "action": "sign"}
    extension = {"at": T0 + timedelta(hours=4), "days": 2, "approved": None}
    changed = await store.cases.update(doc["_id"], 1, Change(push={"history": [signed]}, sets={"extensions": [extension]}))
    assert changed["history"][-1] == signed
    got = await store.cases.get(doc["_id"])
    assert got["history"] == [*RECORDS["history"], signed] and got["extensions"] == [extension]
    assert got["supervisions"] == RECORDS["supervisions"] and got["version"] == 2
    [listed] = await store.cases.find(CaseQuery(limit=5))
    assert listed == got
    # Parts: the named keys of each entry, only the lists named.
    part = (await store.rollups.cases([doc["_id"]], ("_id", "status", "history.action", "history.department")))[doc["_id"]]
    assert part == {"_id": doc["_id"], "status": "reported",
                    "history": [{"action": "report"}, {"action": "dispatch", "department": {"id": "w", "name": "水务"}},
                                {"action": "sign"}]}
    streamed = [d async for chunk in store.rollups.all_cases(("_id", "callbacks")) for d in chunk]
    assert streamed == [{"_id": doc["_id"], "callbacks": RECORDS["callbacks"]}]
    assert await store.rollups.cases([doc["_id"]], ("_id", "number")) == {doc["_id"]: {"_id": doc["_id"], "number": doc["number"]}}
    # The sweep's read: the last entry of the history, no other list it did not ask for.
    [due] = await store.cases.due(T0 + timedelta(minutes=10), 10)
    assert due["history"] == [signed] and "supervisions" not in due and "extensions" not in due


# -- the deadline sweep's cursor --------------------------------------------------------------


async def test_due_reads_earliest_first_and_follows_updates(store):
    docs = [case(n, next_due_at=T0 + timedelta(minutes=m), clock={"stage": "sign"})
            for n, m in ((1, 30), (2, 0), (3, 20), (4, 10))]
    docs.append(case(5))  # no cursor: never due
    await insert_many(store, docs)
    now = T0 + timedelta(minutes=20)
    due = await store.cases.due(now, 10)
    assert ids(due) == [docs[1]["_id"], docs[3]["_id"], docs[2]["_id"]]
    assert len(due[0]["history"]) == 1 and "description" not in due[0] and due[0]["clock"] == {"stage": "sign"}
    assert ids(await store.cases.due(now, 2)) == [docs[1]["_id"], docs[3]["_id"]]
    assert ids(await store.cases.due(now, 10, exclude=[docs[3]["_id"]])) == [docs[1]["_id"], docs[2]["_id"]]
    await store.cases.update(docs[1]["_id"], 1, Change(unsets={"next_due_at"}))
    await store.cases.update(docs[0]["_id"], 1, Change(sets={"next_due_at": T0 - timedelta(minutes=5)}))
    assert ids(await store.cases.due(now, 10)) == [docs[0]["_id"], docs[3]["_id"], docs[2]["_id"]]


async def test_due_with_many_cases_returns_only_the_due_ones(store):
    rng = random.Random(7)
    docs = [case(n, next_due_at=T0 + timedelta(minutes=rng.randint(0, 600))) for n in range(1, 61)]
    await insert_many(store, docs)
    now = T0 + timedelta(minutes=300)
    expected = [d["_id"] for d in sorted(docs, key=lambda d: (d["next_due_at"], d["_id"])) if d["next_due_at"] <= now]
    assert ids(await store.cases.due(now, 1000)) == expected


# -- KPIs ---------------------------------------------------------------------------------------


async def test_period_cases_take_the_touching_cases_projected(store):
    start, end = T0, T0 + timedelta(days=1)
    inside = case(1)
    before_closed_in = case(2, created_at=T0 - timedelta(days=3), updated_at=T0 + timedelta(hours=2),
                            status="closed", closed_at=T0 + timedelta(hours=2))
    before_untouched = case(3, created_at=T0 - timedelta(days=3), updated_at=T0 - timedelta(days=2), status="closed")
    after = case(4, created_at=end + timedelta(hours=1))
    open_overdue_later = case(5, created_at=end + timedelta(hours=2), flags={"overdue": True})
    elsewhere = case(6, scope_path=["C", "D2"])
    await insert_many(store, [inside, before_closed_in, before_untouched, after, open_overdue_later, elsewhere])
    query = PeriodQuery(start, end, within="D1")
    got = await store.cases.period_cases(query, ("_id", "status", "history.action"))
    assert set(ids(got)) == {inside["_id"], before_closed_in["_id"], open_overdue_later["_id"]}
    assert all(set(d) <= {"_id", "status", "history"} and d["history"] == [{"action": "report"}] for d in got)
    scoped = await store.cases.period_cases(PeriodQuery(start, end, scope=Scope(within="D2")), ("_id",))
    assert ids(scoped) == [elsewhere["_id"]]


# -- the event log ------------------------------------------------------------------------------


async def test_every_change_is_logged_once_in_order(store):
    start = await store.events.last_seq()
    a, b = case(1), case(2)
    await store.cases.insert(a)
    await store.cases.insert(b)
    await store.cases.update(a["_id"], 1, Change(sets={"status": "filed"}))
    assert await store.cases.update(a["_id"], 1, Change(sets={"status": "void"})) is None  # stale: no event
    with pytest.raises(DuplicateCase):
        await store.cases.insert(case(3, _id=a["_id"]))  # refused: no event
    events = await store.events.after(start, 100)
    assert [(e["_id"], e["type"], e["case_id"], e["version"]) for e in events] == [
        (start + 1, "case.created", a["_id"], 1), (start + 2, "case.created", b["_id"], 1),
        (start + 3, "case.updated", a["_id"], 2)]
    assert events[2]["case"]["status"] == "filed" and "history" not in events[2]["case"]
    assert await store.events.last_seq() == start + 3
    assert [e["_id"] for e in await store.events.after(start + 1, 1)] == [start + 2]
    assert await store.events.wait_after(start + 3, 10, 0.2) == []


async def test_concurrent_writes_get_gapless_distinct_numbers(store):
    start = await store.events.last_seq()
    docs = [case(n) for n in range(1, 13)]
    await asyncio.gather(*(store.cases.insert(d) for d in docs))
    await asyncio.gather(*(store.cases.update(d["_id"], 1, Change(sets={"status": "filed"})) for d in docs))
    events = await store.events.after(start, 100)
    assert [e["_id"] for e in events] == list(range(start + 1, start + 25))
    assert len({e["key"] for e in events}) == 24


async def test_a_waiting_reader_wakes_for_a_new_change(store):
    start = await store.events.last_seq()
    waiting = asyncio.ensure_future(store.events.wait_after(start, 10, 5.0))
    await asyncio.sleep(0.05)
    await store.cases.insert(case(1))
    got = await asyncio.wait_for(waiting, 5.0)
    assert [e["_id"] for e in got] == [start + 1]


# -- users, attachments, leases, revocations, audit, snapshots --------------------------------


async def test_users(store):
    assert await store.users.insert_if_absent({"_id": "u1", "role": "operator", "disabled": False})
    assert not await store.users.insert_if_absent({"_id": "u1", "role": "admin"})
    updated = await store.users.update("u1", {"disabled": True, "profile.name": "张三"})
    assert updated["disabled"] is True and updated["profile"] == {"name": "张三"}
    assert await store.users.update("ghost", {"disabled": True}) is None
    await store.users.insert_if_absent({"_id": "a0", "role": "admin"})
    assert [u["_id"] for u in await store.users.all()] == ["a0", "u1"]
    assert (await store.users.get("u1"))["role"] == "operator" and await store.users.get("zz") is None


async def test_attachments_belong_to_their_owner_and_are_found_through_cases(store):
    await store.attachments.insert({"_id": "p1", "owner": "gw1", "data": b"\x89PNG", "type": "image/png"})
    await store.attachments.insert({"_id": "p2", "owner": "dep", "data": b"x", "type": "image/jpeg"})
    assert (await store.attachments.get("p1"))["data"] == b"\x89PNG"
    assert await store.attachments.owned_by(["p1", "p2", "p3", 5], "gw1") == {"p1"}
    await store.cases.insert(case(1, photos=["p1"], scope_path=["C", "D1"]))
    await store.cases.insert(case(2, result={"photos": ["p2"]}, departments_seen=["dep"]))
    assert await store.attachments.case_using("p1", Scope(within="D1"))
    assert not await store.attachments.case_using("p1", Scope(within="D2"))
    assert await store.attachments.case_using("p2", Scope(department="dep"))
    assert not await store.attachments.case_using("p3", EVERYTHING)
    # A check's photos too; a photo taken off its case (the case's photos changed) is no longer found through it.
    checked = case(3, check={"photos": ["p3"]}, departments_seen=["dep"])
    await store.cases.insert(checked)
    assert await store.attachments.case_using("p3", Scope(department="dep"))
    assert not await store.attachments.case_using("p3", Scope(department="other"))
    await store.cases.update(checked["_id"], checked["version"], Change(sets={"check": {"photos": []}}))
    assert not await store.attachments.case_using("p3", EVERYTHING)
    assert await store.attachments.in_use("p1") and not await store.attachments.in_use("p3")


async def test_unreferenced_uploads_are_counted_and_found_for_expiry(store):
    for i, (owner, referenced) in enumerate([("gw1", None), ("gw1", False), ("gw1", True), ("gw2", None)]):
        doc = {"_id": f"u{i}", "owner": owner, "size": 100 * (i + 1), "created_at": T0 + timedelta(hours=i),
               **({} if referenced is None else {"referenced": referenced})}  # None: the field is absent
        await store.attachments.insert(doc)
    assert await store.attachments.pending_usage("gw1", T0) == (2, 300)
    assert await store.attachments.pending_usage("gw1", T0 + timedelta(minutes=30)) == (1, 200)
    assert await store.attachments.unreferenced_before(T0 + timedelta(hours=5), 10) == ["u0", "u1", "u3"]
    assert await store.attachments.unreferenced_before(T0 + timedelta(hours=5), 2) == ["u0", "u1"]
    await store.attachments.mark_referenced(["u0"])
    assert await store.attachments.unreferenced_before(T0 + timedelta(hours=5), 10) == ["u1", "u3"]
    await store.cases.insert(case(1, photos=["u1"]))
    assert await store.attachments.in_use("u1") and not await store.attachments.in_use("u3")
    assert await store.attachments.delete(["u3", "nope"]) == 1
    assert await store.attachments.get("u3") is None


async def test_a_lease_has_one_holder_until_it_expires(store):
    assert await store.leases.acquire("sweep", "p1", T0, 30)
    assert await store.leases.acquire("sweep", "p1", T0 + timedelta(seconds=10), 30)  # renewed
    assert not await store.leases.acquire("sweep", "p2", T0 + timedelta(seconds=20), 30)
    assert await store.leases.acquire("sweep", "p2", T0 + timedelta(seconds=41), 30)  # p1's lapsed
    assert not await store.leases.acquire("sweep", "p1", T0 + timedelta(seconds=42), 30)
    await store.leases.release("sweep", "p1")  # not the holder: nothing
    assert not await store.leases.acquire("sweep", "p1", T0 + timedelta(seconds=43), 30)
    await store.leases.release("sweep", "p2")
    assert await store.leases.acquire("sweep", "p1", T0 + timedelta(seconds=44), 30)


async def test_a_released_lease_is_taken_at_once_by_another(store):
    now = datetime.now(timezone.utc)
    assert await store.leases.acquire("job", "p1", now, 30)
    assert not await store.leases.acquire("job", "p2", now, 30)
    await store.leases.release("job", "p1")
    assert await store.leases.acquire("job", "p2", now, 30)
    assert not await store.leases.acquire("job", "p1", now, 30)


async def test_concurrent_lease_takers_get_one_holder(store):
    results = await asyncio.gather(*(store.leases.acquire("job", f"p{i}", T0, 30) for i in range(6)))
    assert results.count(True) == 1


async def test_revocations_last_until_the_token_would_expire(store):
    future = int((datetime.now(timezone.utc) + timedelta(hours=1)).timestamp())
    past = int((datetime.now(timezone.utc) - timedelta(seconds=5)).timestamp())
    await store.revocations.add("j1", "u1", future)
    await store.revocations.add("j2", "u1", past)
    assert await store.revocations.contains("j1")
    assert not await store.revocations.contains("j2") and not await store.revocations.contains("j3")
    assert await store.revocations.purge_expired(datetime.now(timezone.utc)) == 1
    assert await store.revocations.contains("j1")


async def test_audit_records_newest_first_filtered(store):
    for i, (case_id, by) in enumerate([("c1", "op1"), ("c2", "op1"), ("c1", "op2")]):
        await store.audit.record("reveals", {"at": T0 + timedelta(minutes=i), "case_id": case_id, "by": by})
    await store.audit.record("admin_audit", {"at": T0, "by": "admin", "action": "disable"})
    assert [(r["case_id"], r["by"]) for r in await store.audit.recent("reveals", 10)] == \
        [("c1", "op2"), ("c2", "op1"), ("c1", "op1")]
    assert len(await store.audit.recent("reveals", 10, case_id="c1")) == 2
    assert len(await store.audit.recent("reveals", 10, username="op1")) == 2
    assert len(await store.audit.recent("reveals", 1)) == 1
    assert [r["action"] for r in await store.audit.recent("admin_audit", 10)] == ["disable"]


async def test_audit_records_over_days_newest_first_to_the_limit(store):
    """A list runs over days and hours (the server store reads the log a day and an hour at a
    time): the newest `limit`, in order, whatever their days, with a user's filter too."""
    at = [T0 - timedelta(days=40), T0 - timedelta(days=1, hours=3), T0 - timedelta(hours=2),
          T0 + timedelta(minutes=5), T0 + timedelta(hours=1), T0 + timedelta(days=2)]
    for n, when in enumerate(at):
        await store.audit.record("reveals", {"at": when, "case_id": f"c{n}", "by": "op1" if n % 2 else "op2"})
    assert [r["case_id"] for r in await store.audit.recent("reveals", 10)] == ["c5", "c4", "c3", "c2", "c1", "c0"]
    assert [r["case_id"] for r in await store.audit.recent("reveals", 4)] == ["c5", "c4", "c3", "c2"]
    assert [r["case_id"] for r in await store.audit.recent("reveals", 2, username="op1")] == ["c5", "c3"]
    assert [r["case_id"] for r in await store.audit.recent("reveals", 9, username="op2")] == ["c4", "c2", "c0"]
    [entry] = await store.audit.recent("reveals", 1, case_id="c0")
    assert entry == {"_id": entry["_id"], "at": at[0], "case_id": "c0", "by": "op2"}


async def test_snapshots_replace_by_id(store):
    await store.snapshots.save({"_id": "2026-11-22:C", "day": "2026-11-22", "total": 1})
    await store.snapshots.save({"_id": "2026-11-22:C", "day": "2026-11-22", "total": 2})
    await store.snapshots.save({"_id": "2026-11-22:D1", "day": "2026-11-22", "total": 3})
    await store.snapshots.save({"_id": "2026-11-23:C", "day": "2026-11-23", "total": 4})
    assert (await store.snapshots.get("2026-11-22:C"))["total"] == 2
    assert [s["_id"] for s in await store.snapshots.for_day("2026-11-22")] == ["2026-11-22:C", "2026-11-22:D1"]


async def test_limit_events_are_counted_by_key_and_time(store):
    limits = store.limits
    for minutes in (0, 1, 2):
        assert await limits.record("login|a", T0 + timedelta(minutes=minutes))
    await limits.record("login|b", T0 + timedelta(minutes=1))
    assert await limits.count("login|a", T0) == 2  # strictly after
    assert await limits.count("login|a", T0 - timedelta(seconds=1)) == 3
    assert await limits.count("login|c", T0 - timedelta(days=1)) == 0
    assert await limits.times("login|a", T0) == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    # An id is taken once: what lets one process of several take a slot.
    assert await limits.record("slot|a", T0, "slot|a#7")
    assert not await limits.record("slot|a", T0 + timedelta(seconds=1), "slot|a#7")
    assert await limits.count("slot|a", T0 - timedelta(days=1)) == 1
    await limits.remove("slot|a#7")
    assert await limits.count("slot|a", T0 - timedelta(days=1)) == 0
    await limits.clear("login|a")
    assert await limits.count("login|a", T0 - timedelta(days=1)) == 0
    assert await limits.count("login|b", T0 - timedelta(days=1)) == 1
    assert await limits.purge(T0 + timedelta(minutes=1, seconds=1)) == 1
    assert await limits.count("login|b", T0 - timedelta(days=1)) == 0


async def test_concurrent_limit_events_are_all_counted(store):
    # Inserts, not increments: FerretDB 1.24 loses concurrent $inc, never an insert.
    await asyncio.gather(*[store.limits.record("login|a", T0 + timedelta(milliseconds=i)) for i in range(40)])
    assert await store.limits.count("login|a", T0 - timedelta(seconds=1)) == 40
    claims = await asyncio.gather(*[store.limits.record("slot|a", T0, "slot|a#1") for _ in range(10)])
    assert claims.count(True) == 1


async def test_housekeeping_forgets_old_limit_events(store):
    now = datetime.now(timezone.utc)
    await store.limits.record("login|a", now - timedelta(days=3))
    await store.limits.record("login|a", now - timedelta(hours=1))
    await store.housekeeping(now)
    assert await store.limits.count("login|a", now - timedelta(days=10)) == 1


async def test_indexes_are_created_idempotently(store):
    await store.ensure_indexes()
    await store.ensure_indexes()
    assert await store.ping()


def test_newest_is_the_default_order():
    assert CaseQuery().order == NEWEST
    with pytest.raises(ValueError):
        CaseQuery(order="random")


# -- KPI rollups (dispatch/kpi/rollups.py) ------------------------------------------------------


async def test_open_overdue_cases_in_scope_and_bulk_load(store):
    late = [case(n, status="accepted", flags={"overdue": True}) for n in range(3)]
    late[2]["scope_path"] = ["C", "D2"]
    late[1]["departments_seen"] = ["dA"]
    others = [case(5, status="closed", flags={"overdue": True}), case(6, status="accepted")]
    assert await store.cases.bulk_insert(late + others) == 5
    assert await store.events.last_seq() == 0  # history loaded in bulk is not news
    found = await store.cases.open_overdue(EVERYTHING, None, ("_id", "status"))
    assert sorted(d["_id"] for d in found) == sorted(ids(late))
    found = await store.cases.open_overdue(EVERYTHING, "D1", ("_id",))
    assert sorted(d["_id"] for d in found) == sorted(ids(late[:2]))
    assert await store.cases.open_overdue(Scope(department="X"), None, ("_id",)) == []
    # A department's and an area's list (the server hands PostgreSQL those equalities too).
    assert ids(await store.cases.open_overdue(Scope(department="dA"), None, ("_id",))) == [late[1]["_id"]]
    assert ids(await store.cases.open_overdue(Scope(department="dA"), "D2", ("_id",))) == []
    assert ids(await store.cases.open_overdue(Scope(within="D2"), None, ("_id",))) == [late[2]["_id"]]
    assert ids(await store.cases.open_overdue(Scope(within="D2", reporter="gw9"), None, ("_id",))) == [late[2]["_id"]]
    assert ids(await store.cases.open_overdue(Scope(department="dA"), None, ("_id",), first=1)) == [late[1]["_id"]]
    assert (await store.cases.get(others[1]["_id"]))["status"] == "accepted"
    # A case turning overdue joins the list; closed, it leaves it.
    await store.cases.update(others[1]["_id"], others[1]["version"], Change(sets={"flags.overdue": True}))
    found = await store.cases.open_overdue(EVERYTHING, None, ("_id", "status"))
    assert sorted(d["_id"] for d in found) == sorted(ids(late) + [others[1]["_id"]])
    assert {d["status"] for d in found} == {"accepted"}
    await store.cases.update(late[0]["_id"], late[0]["version"], Change(sets={"status": "closed"}))
    found = await store.cases.open_overdue(EVERYTHING, None, ("_id",))
    assert sorted(d["_id"] for d in found) == sorted(ids(late[1:]) + [others[1]["_id"]])


async def test_the_most_overdue_are_read_from_the_oldest_deadlines_on(store):
    """`first`: the KPI list of the most overdue reads from the oldest deadline on — at least the
    `first` whose stage clock ran out earliest, every case due before any left out, and those
    without a stage clock — in scope, whatever else it leaves out."""
    now = datetime.now(timezone.utc)
    due_days = {1: 200, 2: 120, 3: 45, 4: 44, 5: 6, 6: -20}  # days ago (6: extended into the future)

    def late(n: int, days: int | None, **fields) -> dict:
        clock = None if days is None else {"stage": "handle", "deadline": now - timedelta(days=days)}
        return case(n, status="accepted", flags={"overdue": True}, clock=clock,
                    created_at=now - timedelta(days=300 - n), **fields)

    cases = [late(n, days) for n, days in due_days.items()]
    no_clock = late(7, None)
    elsewhere = late(8, 300, scope_path=["C", "D2"])
    await store.cases.bulk_insert(cases + [no_clock, elsewhere])
    found = {d["_id"] for d in await store.cases.open_overdue(EVERYTHING, "D1", ("_id", "clock"), first=2)}
    assert {cases[0]["_id"], cases[1]["_id"], no_clock["_id"]} <= found
    assert elsewhere["_id"] not in found
    every = {d["_id"] for d in await store.cases.open_overdue(EVERYTHING, "D1", ("_id",))}
    assert found <= every == set(ids(cases)) | {no_clock["_id"]}
    cutoff = max(c["clock"]["deadline"] for c in cases if c["_id"] in found)
    assert all(c["clock"]["deadline"] >= cutoff for c in cases if c["_id"] not in found)
    if store.persistent:  # the server engine reads no further than the second month holding one
        assert found == {cases[0]["_id"], cases[1]["_id"], no_clock["_id"]}
    # Asked for more than there are: all of them.
    assert {d["_id"] for d in await store.cases.open_overdue(EVERYTHING, "D1", ("_id",), first=50)} == every


async def test_rollup_documents_state_and_contributions_round_trip(store):
    repo = store.rollups
    assert await repo.state() == {}
    await repo.save_state({"cursor": 7, "journal": {"to_seq": 9, "buckets": [], "pending": [], "contributions": []}})
    assert (await repo.state())["journal"]["to_seq"] == 9
    bucket = {"_id": "d|2026-11-23|D1", "level": "d", "bucket": "2026-11-23", "district": "D1", "seq": 9,
              "groups": {"w|D1|S1|0101|grid": {"reported": 2, "due_closed@2026-11-25": 1}},
              "streets": {"S1": {"reported": 2}}, "departments": {"w": {"reported": 2}}}
    soon, past = T0 + timedelta(hours=5), T0 - timedelta(hours=5)
    later = soon + timedelta(minutes=20)  # the same hour as `soon`
    pending = [{"_id": f"{at.isoformat()}|2026-11-23|w|D1|S1", "until": at, "hour": at.strftime("%Y%m%d%H"),
                "day": "2026-11-23", "department": "w", "district": "D1", "street": "S1", "counters": {"due": 1},
                "seq": 9} for at in (soon, past, later)]
    await repo.save([bucket], pending)
    assert await repo.buckets_by_id([bucket["_id"], "d|2026-11-24|D1"]) == {bucket["_id"]: bucket}
    # A district's day buckets of one month, or month buckets of one year, at once (a report
    # over many days or months): not another month's or district's, nor a bucket a level up.
    next_month = {**bucket, "_id": "d|2026-12-01|D1", "bucket": "2026-12-01"}
    elsewhere = {**bucket, "_id": "d|2026-11-23|D2", "district": "D2"}
    nowhere = {**bucket, "_id": "d|2026-11-24|", "bucket": "2026-11-24", "district": None}
    month = {**bucket, "_id": "m|2026-11|D1", "level": "m", "bucket": "2026-11"}
    year = {**bucket, "_id": "y|2026|D1", "level": "y", "bucket": "2026"}
    await repo.save([next_month, elsewhere, nowhere, month, year], [])
    assert await repo.buckets_within("2026-11", "D1") == {bucket["_id"]: bucket}
    assert await repo.buckets_within("2026-11", "D2") == {elsewhere["_id"]: elsewhere}
    assert await repo.buckets_within("2026-11", None) == {nowhere["_id"]: nowhere}
    assert await repo.buckets_within("2026-10", "D1") == {}
    assert await repo.buckets_within("2026", "D1") == {month["_id"]: month}
    if store.persistent:
        # Stored packed (one binary field: FerretDB converted every nested counter on each read);
        # a bucket stored unpacked by an earlier version reads the same.
        # (a day or month bucket also carries its `shelf`, for `buckets_within`)
        assert set(await repo.buckets.find_one({"_id": bucket["_id"]})) == {"_id", "packed", "shelf"}
        assert set(await repo.buckets.find_one({"_id": year["_id"]})) == {"_id", "packed"}
        older = {**bucket, "_id": "d|2026-11-22|D1", "bucket": "2026-11-22", "at": T0}
        await repo.buckets.insert_one(older)
        assert await repo.buckets_by_id([older["_id"]]) == {older["_id"]: older}
        repacked = {**older, "seq": 10}
        await repo.save([repacked], [])
        assert await repo.buckets_by_id([older["_id"]]) == {older["_id"]: repacked}
    assert list(await repo.pending_by_id([pending[0]["_id"]])) == [pending[0]["_id"]]
    assert sorted(d["_id"] for d in await repo.pending_from(T0)) == sorted([pending[0]["_id"], pending[2]["_id"]])
    # Those of one hour whose deadline has not passed (the report's own hour).
    hour = soon.strftime("%Y%m%d%H")
    assert sorted(d["_id"] for d in await repo.pending_in_hour(hour, soon)) == sorted([pending[0]["_id"], pending[2]["_id"]])
    assert [d["_id"] for d in await repo.pending_in_hour(hour, soon + timedelta(minutes=1))] == [pending[2]["_id"]]
    assert await repo.pending_in_hour(past.strftime("%Y%m%d%H"), soon) == []
    assert await repo.purge_pending(T0) == 1
    await repo.save_contributions([{"_id": "c1", "version": 3, "keys": ["a|b"], "amounts": [1.5]}])
    assert (await repo.contributions(["c1", "c2"]))["c1"]["amounts"] == [1.5]
    docs = await insert_many(store, [case(1), case(2)])
    found = await repo.cases(ids(docs), ("_id", "version", "status"))
    assert found == {d["_id"]: {"_id": d["_id"], "version": 1, "status": "reported"} for d in docs}
    streamed = [doc["_id"] async for chunk in repo.all_cases(("_id",), batch=1) for doc in chunk]
    assert sorted(streamed) == sorted(ids(docs))
    await repo.clear()
    assert await repo.buckets_by_id([bucket["_id"]]) == {} and await repo.contributions(["c1"]) == {}


# -- versions of the city configuration (dispatch/admin) ----------------------------------------


def config_version(number: int, **fields) -> dict:
    return {"_id": number, "by": "admin", "at": T0 + timedelta(minutes=number), "note": f"v{number}",
            "diff": {}, **fields}


async def test_config_versions_are_numbered_and_claimed_once(store):
    config = store.config
    assert await config.head() == 0 and await config.items("rules", 5) is None
    zone = {"type": "Feature", "properties": {"id": "P1"},
            "geometry": {"type": "Polygon", "coordinates": [[[110.0, 20.0], [110.1, 20.0], [110.1, 20.1], [110.0, 20.0]]]}}
    assert await config.publish(config_version(1), {"rules": {"rules": []}, "calendar": {"holidays": []},
                                                    "zones": [zone]})
    assert await config.items("zones", 1) == (1, [zone])  # nested arrays (FerretDB 1.24 stores none as such)
    results = await asyncio.gather(*(config.publish(config_version(2, by=f"a{i}"), {"rules": {"rules": [i]}})
                                     for i in range(6)))
    assert results.count(True) == 1  # the others were stale: they lose, the winner keeps its items
    winner = results.index(True)
    assert await config.head() == 2
    assert await config.items("rules", 2) == (2, {"rules": [winner]})
    assert await config.items("rules", 1) == (1, {"rules": []})
    assert await config.items("calendar", 2) == (1, {"holidays": []})  # set by 1, unchanged by 2
    second = await config.version(2)
    assert (second["by"], second["changed"], second["at"]) == (f"a{winner}", ["rules"], T0 + timedelta(minutes=2))
    assert "items" not in second and await config.version(9) is None
    assert [(v["_id"], v["note"]) for v in await config.history(10)] == [(2, "v2"), (1, "v1")]
    assert [v["_id"] for v in await config.history(1)] == [2]


async def test_a_config_event_is_logged_beside_case_events(store):
    start = await store.events.last_seq()
    await store.cases.insert(case(1))
    seq = await store.events.record({"key": "config:7", "type": "config.published", "version": 7, "at": T0})
    assert seq == start + 2
    events = await store.events.after(start, 10)
    assert [(e["type"], e.get("version")) for e in events] == [("case.created", 1), ("config.published", 7)]

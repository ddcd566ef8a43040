"""The event log on the server engine under concurrent writers: one process's many writers at
once, two processes at once, and a change logged by its writer and the relay at the same time.

(The store contract in tests/test_store_contract.py covers the log's order and numbering on both
engines; the embedded store is one process with no relay, so these are the server's alone.)
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from pymongo import monitoring

from dispatch.store import open_store
from dispatch.store.records import case_event
from tests.command_log import COMMAND_LOG
from tests.engines import new_database_name, server_uri
from tests.test_store_contract import case


class Inserts(monitoring.CommandListener):
    """Counts the insert commands sent to the `events` collection while `on`."""

    def __init__(self):
        self.on = False
        self.count = 0

    def started(self, event):
        if self.on and event.command_name == "insert" and event.command.get("insert") == "events":
            self.count += 1

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


INSERTS = Inserts()
monitoring.register(INSERTS)  # clients made from here on report to it; it counts only while on


async def two_stores():
    database = new_database_name()
    first = await open_store(server_uri(), database)
    second = await open_store(server_uri(), database)
    return first, second


async def close(*stores):
    await stores[0].drop()
    for store in stores:
        await store.close()


async def test_many_changes_at_once_in_one_process_cost_a_few_inserts():
    """Regression: 60 reports at once each tried the same next sequence, and all but one tried
    again — 1,830 inserts for 60 events, which at 50 reports/s on 1,000,000 cases kept FerretDB
    saturated (p50 23 s). Logged together they take one ordered insert per batch."""
    store = await open_store(server_uri(), new_database_name())
    try:
        start = await store.events.last_seq()
        docs = [case(n) for n in range(1, 61)]
        INSERTS.count, INSERTS.on = 0, True
        try:
            await asyncio.gather(*(store.cases.insert(d) for d in docs))
        finally:
            INSERTS.on = False
        # Logged one by one they would take 60 inserts at least; how many go together depends on
        # how the 60 writes arrive (10-12 here).
        assert INSERTS.count <= 20, f"{INSERTS.count} inserts into the log for 60 changes"
        events = await store.events.after(start, 100)
        assert [e["_id"] for e in events] == list(range(start + 1, start + 61))
        assert sorted(e["case_id"] for e in events) == sorted(d["_id"] for d in docs)
    finally:
        await close(store)


async def test_two_processes_logging_at_once_leave_no_gap_and_no_duplicate():
    first, second = await two_stores()
    try:
        docs = [case(n) for n in range(1, 81)]
        await asyncio.gather(*(store.cases.insert(d) for store, d in zip([first, second] * 40, docs)))
        events = await first.events.after(0, 200)
        assert [e["_id"] for e in events] == list(range(1, 81))
        assert sorted(e["case_id"] for e in events) == sorted(d["_id"] for d in docs)
        # Each process learned the head it reached; the next change goes after all of them.
        await second.cases.insert(case(81))
        assert [e["_id"] for e in await first.events.after(80, 10)] == [81]
    finally:
        await close(first, second)


async def test_a_change_logged_twice_at_once_is_logged_once():
    """The writer and the relay can log one change at the same moment (same key): one of them
    gets its sequence, the other is told it was logged already, and nothing after it is lost."""
    store = await open_store(server_uri(), new_database_name())
    try:
        at = datetime.now(timezone.utc)
        one, other = case(1), case(2)
        twice = case_event("case.created", one, at)
        got = await asyncio.gather(store.events.append(twice), store.events.append(dict(twice)),
                                   store.events.append(case_event("case.created", other, at)))
        logged = [seq for seq in got[:2] if seq is not None]
        assert len(logged) == 1 and got[2] is not None and {logged[0], got[2]} == {1, 2}
        events = await store.events.after(0, 10)
        assert [e["_id"] for e in events] == [1, 2]
        assert sorted(e["case_id"] for e in events) == sorted([one["_id"], other["_id"]])
    finally:
        await close(store)


async def test_a_logged_changes_claim_keeps_no_copy_of_the_event():
    """The claim carries the event only until it is logged (for the relay, if the writer dies
    first); after that it is a small marker."""
    store = await open_store(server_uri(), new_database_name())
    try:
        doc = case(1)
        await store.cases.insert(doc)
        held = await store.cases.claims.find_one({"_id": f"{doc['_id']}:1"})
        assert held["relayed"] is True and "event" not in held
        assert [e["case_id"] for e in await store.events.after(0, 10)] == [doc["_id"]]
    finally:
        await close(store)


async def test_a_process_behind_the_log_steps_over_the_numbers_taken_without_resending():
    """A process whose last seen number is far behind (the other process logged 30 changes
    since) finds the next free number by looking numbers up, not by sending its batch once per
    number taken."""
    first, second = await two_stores()
    try:
        await second.cases.insert(case(1))  # `second` has seen number 1
        await asyncio.gather(*(first.cases.insert(case(n)) for n in range(2, 32)))
        INSERTS.count, INSERTS.on = 0, True
        try:
            await asyncio.gather(*(second.cases.insert(case(n)) for n in range(32, 37)))
        finally:
            INSERTS.on = False
        assert INSERTS.count <= 3, f"{INSERTS.count} inserts into the log for one batch"
        assert [e["_id"] for e in await first.events.after(0, 100)] == list(range(1, 37))
    finally:
        await close(first, second)


def handed_whole(command: dict) -> bool:
    """Whether FerretDB 1.24 hands PostgreSQL this command whole: an equality on `_id`, or no
    filter, no sort and a limit. Anything else (a sort, a range) it answers by reading and
    converting every event of the log."""
    def by_id(flt: dict) -> bool:
        return set(flt) == {"_id"} and isinstance(flt["_id"], int)
    if "find" in command:
        flt = command.get("filter") or {}
        return by_id(flt) or (not flt and "sort" not in command and command.get("limit") == 1)
    return all(by_id(d["q"]) for d in command["deletes"])


async def append_events(store, ats: list[datetime]) -> None:
    for n, at in enumerate(ats, 1):
        await store.events.append({"key": f"test:{n}", "type": "test", "at": at})


async def test_the_ends_of_a_long_log_are_found_by_lookups_not_by_reading_it():
    """Regression: the newest number was read with a sorted find, which FerretDB answers by
    reading the whole log — with a week's log of a city (34,000 events) a server did not start."""
    first, second = await two_stores()
    try:
        now = datetime.now(timezone.utc)
        await append_events(first, [now] * 300)
        # The oldest end purged, and a hole a purge by time can leave near it.
        await first.events.events.delete_many({"_id": {"$lte": 100}})
        await first.events.events.delete_one({"_id": 103})
        with COMMAND_LOG.recording() as sent:
            assert await second.events.last_seq() == 300
        on_log = [c for c in sent if c.get("find") == "events" or c.get("delete") == "events"]
        assert on_log and all(handed_whole(c) for c in on_log), on_log
        assert len(on_log) <= 40
        await second.cases.insert(case(1))
        assert [e["_id"] for e in await first.events.after(300, 10)] == [301]
    finally:
        await close(first, second)


async def test_a_purge_forgets_old_events_oldest_first_by_lookups_and_keeps_the_newest():
    store = await open_store(server_uri(), new_database_name())
    try:
        now = datetime.now(timezone.utc)
        old = now - timedelta(days=10)
        await append_events(store, [old] * 80 + [now] * 40)
        store.events.PURGE_STEP = 50
        with COMMAND_LOG.recording() as sent:
            assert await store.events.purge(now - timedelta(days=7)) == 50
            assert await store.events.purge(now - timedelta(days=7)) == 30  # from where it stopped
            assert await store.events.purge(now - timedelta(days=7)) == 0
        on_log = [c for c in sent if c.get("find") == "events" or c.get("delete") == "events"]
        assert on_log and all(handed_whole(c) for c in on_log), [c for c in on_log if not handed_whole(c)]
        assert [e["_id"] for e in await store.events.after(80, 100)] == list(range(81, 121))
        assert await store.events.after(0, 1) == []  # 1..80 gone (`after` reads on from 1)
        # Everything old: all but the newest, which carries the numbering.
        store.events.PURGE_STEP = 1000
        assert await store.events.purge(now + timedelta(days=1)) == 39
        assert [e["_id"] for e in await store.events.after(119, 10)] == [120]
        assert await store.events.last_seq() == 120
    finally:
        await close(store)

"""The embedded engine: every repository kept in this process's memory.

The zero-setup default for the demo, the tests and an evaluation. It keeps nothing when the
process stops, and says so (`persistent = False`; /healthz and every page header show it).

Plain dicts and sorted lists, the way cosmicpython's `FakeRepository` stands beside the real
one: the case list walks a sorted (created_at, id) index from the cursor and stops after a page;
the deadline sweep reads a sorted (next_due_at, id) index up to now; idempotent intake is a dict
keyed by (user, client_id). Documents are copied in and out, so a caller can never change what
is stored by changing what it was given; datetimes are kept as MongoDB keeps them (UTC,
milliseconds), so hashes and comparisons come out the same on both engines.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import itertools
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from sortedcontainers import SortedList

from dispatch.store.query import (
    BY_ID, EVERYTHING, NEWEST, OLDEST, After, CaseQuery, Change, DuplicateCase, PeriodQuery, Scope, number_parts,
)
from dispatch.store import buckets
from dispatch.store.assist_memory import MemoryKnowledge, MemoryModels
from dispatch.store.change import copied, get_path, parent_of, stored_value, apply_change
from dispatch.store.records import (
    AUDIT_KINDS, CREATED, DUE_FIELDS, OPEN_STATUSES, PHOTO_FIELDS, UPDATED, bucket_shelf, case_event, client_key,
    shelf, last_history_only, project,
)



# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------


def _text_matches(doc: dict, search) -> bool:
    needle = search.text
    if search.raw_for_all or (search.raw_for_creator is not None and doc.get("created_by") == search.raw_for_creator):
        return any(needle in (doc.get(f) or "") for f in ("number", "description", "address"))
    return needle in (doc.get("search_masked") or "")


def matches(doc: dict, q: CaseQuery) -> bool:
    """Whether `doc` satisfies every filter of `q` (not its cursor, order or limit)."""
    if not q.scope.admits(doc):
        return False
    if q.statuses and doc.get("status") not in q.statuses:
        return False
    if q.open_only and doc.get("status") not in OPEN_STATUSES:
        return False
    if q.categories and get_path(doc, "category.code") not in q.categories:
        return False
    if q.departments and get_path(doc, "assignment.department.id") not in q.departments:
        return False
    for level, ids in q.jurisdictions:
        if get_path(doc, f"jurisdiction.{level}.id") not in ids:
            return False
    if q.sources and doc.get("source") not in q.sources:
        return False
    if q.overdue is not None and bool(get_path(doc, "flags.overdue")) != q.overdue:
        return False
    if q.warning and (get_path(doc, "flags.warning") is not True or get_path(doc, "flags.overdue") is True):
        return False
    if q.supervised and get_path(doc, "flags.supervised") is not True:
        return False
    if q.return_pending and get_path(doc, "flags.return_pending") is not True:
        return False
    if q.reporter is not None and q.reporter not in (doc.get("reporters") or ()):
        return False
    if q.box is not None:
        coordinates = get_path(doc, "location.coordinates")
        if not coordinates or not q.box.contains(coordinates[0], coordinates[1]):
            return False
    if q.created_from is not None and doc["created_at"] < q.created_from:
        return False
    if q.created_to is not None and doc["created_at"] >= q.created_to:
        return False
    if q.text is not None and not _text_matches(doc, q.text):
        return False
    return True


def touches_period(doc: dict, pq: PeriodQuery) -> bool:
    """`PeriodQuery`'s superset rule (see its docstring) for one case."""
    if not pq.scope.admits(doc):
        return False
    if pq.within is not None and pq.within not in (doc.get("scope_path") or ()):
        return False
    open_ = doc.get("status") in OPEN_STATUSES
    if open_ and get_path(doc, "flags.overdue") is True:
        return True
    if doc["created_at"] >= pq.end:
        return False

    def at_or_after_start(value):
        return isinstance(value, datetime) and value >= pq.start

    handle_by = get_path(doc, "deadlines.handle_by")
    return (
        open_
        or at_or_after_start(doc["created_at"])
        or at_or_after_start(doc.get("updated_at"))
        or at_or_after_start(doc.get("closed_at"))
        or (isinstance(handle_by, datetime) and pq.start <= handle_by < pq.end)
    )


# --------------------------------------------------------------------------------------------
# Repositories
# --------------------------------------------------------------------------------------------


class MemoryEvents:
    """The event log: every case change, numbered 1, 2, ... in the order it was written."""

    def __init__(self):
        self._log: list[dict] = []
        self._written = asyncio.Event()
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self._written.set()  # wake the tails: they see `closed` and stop

    def append(self, event: dict) -> int:
        seq = len(self._log) + 1
        self._log.append({"_id": seq, **stored_value(event)})
        self._written.set()
        self._written = asyncio.Event()  # waiters of the next append wait on a fresh one
        return seq

    async def record(self, event: dict) -> int:
        """Log an event that is no case change (a published configuration version)."""
        return self.append(event)

    async def last_seq(self) -> int:
        return len(self._log)

    @property
    def head(self) -> int:
        """The highest sequence this process knows of (here: the log's end)."""
        return len(self._log)

    async def after(self, seq: int, limit: int) -> list[dict]:
        return [copied(e) for e in self._log[max(seq, 0):max(seq, 0) + limit]]

    async def wait_after(self, seq: int, limit: int, timeout: float) -> list[dict]:
        """The events after `seq`, waiting up to `timeout` seconds for one if there is none."""
        if len(self._log) <= seq:
            try:
                await asyncio.wait_for(self._written.wait(), timeout)
            except asyncio.TimeoutError:
                return []
        return await self.after(seq, limit)

    async def purge(self, before: datetime) -> int:
        return 0  # in memory for the life of the process: the numbering must not move


class MemoryCases:
    def __init__(self, events: MemoryEvents):
        self._events = events
        self._docs: dict[str, dict] = {}
        self._by_created = SortedList()  # (created_at, id)
        self._by_id = SortedList()
        self._due = SortedList()  # (next_due_at, id)
        # facet (dispatch/store/buckets.py) → its cases' (created_at, id): a list walks the most
        # selective facet its query implies, not every case.
        self._facets: dict[str, SortedList] = {}
        self._facets_of: dict[str, list[str]] = {}
        self._client_keys: dict[tuple[str, str], str] = {}
        self._numbers_taken: set[str] = set()  # as the server engine's unique index on `number`
        self._by_number: dict[str, str] = {}  # number → id: a search for a case number
        self._numbers: dict[str, int] = {}

    # -- writing ------------------------------------------------------------------------

    async def next_number(self, day: str) -> str:
        self._numbers[day] = seq = self._numbers.get(day, 0) + 1
        return f"{day}-{seq:06d}"

    async def insert(self, doc: dict) -> dict:
        key = client_key(doc)
        number = doc.get("number")
        if doc["_id"] in self._docs or key in self._client_keys or (number is not None and number in self._numbers_taken):
            raise DuplicateCase(doc["_id"])
        stored = stored_value(doc)
        self._docs[stored["_id"]] = stored
        self._client_keys[key] = stored["_id"]
        if number is not None:
            self._numbers_taken.add(number)
            self._by_number[number] = stored["_id"]
        self._by_created.add((stored["created_at"], stored["_id"]))
        self._by_id.add(stored["_id"])
        self._index_due(None, stored)
        self._index_facets(stored)
        self._events.append(case_event(CREATED, stored, datetime.now(timezone.utc)))
        return doc

    async def update(self, case_id: str, version: int, change: Change) -> dict | None:
        doc = self._docs.get(case_id)
        if doc is None or doc.get("version") != version:
            return None
        before_due = doc.get("next_due_at")
        apply_change(doc, change)
        self._index_due(before_due, doc)
        self._index_facets(doc)
        self._events.append(case_event(UPDATED, doc, datetime.now(timezone.utc)))
        return copied(doc)

    def _index_due(self, before: datetime | None, doc: dict) -> None:
        if before is not None:
            self._due.discard((before, doc["_id"]))
        due = doc.get("next_due_at")
        if isinstance(due, datetime):
            self._due.add((due, doc["_id"]))

    def _index_facets(self, doc: dict) -> None:
        entry = (doc["created_at"], doc["_id"])
        before = self._facets_of.get(doc["_id"], [])
        after = buckets.facets(doc)
        for facet in set(before) - set(after):
            self._facets[facet].discard(entry)
        for facet in set(after) - set(before):
            self._facets.setdefault(facet, SortedList()).add(entry)
        self._facets_of[doc["_id"]] = after

    async def bulk_insert(self, docs: list[dict]) -> int:
        """Store many new cases at once (loading history), without logging their creation."""
        for doc in docs:
            stored = stored_value(doc)
            self._docs[stored["_id"]] = stored
            self._client_keys[client_key(stored)] = stored["_id"]
            if stored.get("number") is not None:
                self._numbers_taken.add(stored["number"])
                self._by_number[stored["number"]] = stored["_id"]
                parts = number_parts(stored["number"])
                if parts:  # `next_number` goes on after the loaded ones
                    self._numbers[parts[0]] = max(self._numbers.get(parts[0], 0), parts[1])
            self._by_created.add((stored["created_at"], stored["_id"]))
            self._by_id.add(stored["_id"])
            self._index_due(None, stored)
            self._index_facets(stored)
        return len(docs)

    # -- reading ------------------------------------------------------------------------

    async def get(self, case_id: str) -> dict | None:
        doc = self._docs.get(case_id) if isinstance(case_id, str) else None
        return copied(doc) if doc is not None else None

    async def by_client_id(self, username: str, client_id: str) -> dict | None:
        case_id = self._client_keys.get((username, client_id))
        return await self.get(case_id) if case_id else None

    def _ordered(self, order: str, after: After | None, facet: str = "all") -> Iterable[str]:
        if order == BY_ID:
            start = after.case_id if after else None
            return self._by_id.irange(minimum=start, inclusive=(False, True)) if start else iter(self._by_id)
        index = self._by_created if facet == "all" else self._facets.get(facet, SortedList())
        if order == NEWEST:
            keys = index.irange(
                maximum=(after.created_at, after.case_id) if after else None,
                inclusive=(True, False), reverse=True)
        else:
            keys = index.irange(
                minimum=(after.created_at, after.case_id) if after else None,
                inclusive=(False, True))
        return (case_id for _, case_id in keys)

    async def find(self, query: CaseQuery) -> list[dict]:
        return (await self.find_page(query))[0]

    async def find_page(self, query: CaseQuery) -> tuple[list[dict], After | None]:
        """A page of `query` (and where to resume if the walk stopped early: never here)."""
        out = []
        if query.text is not None and buckets.CASE_NUMBER.match(query.text.text):
            doc = self._docs.get(self._by_number.get(query.text.text, ""))
            return ([copied(doc)] if doc is not None and matches(doc, query) else []), None
        facet = buckets.driving_facet(query) if query.order != BY_ID else "all"
        after = query.after
        if query.order == NEWEST and query.created_to is not None and (after is None or query.created_to <= after.created_at):
            after = After(query.created_to, "")  # everything created before `to`
        elif query.order == OLDEST and query.created_from is not None and (after is None or query.created_from > after.created_at):
            after = After(query.created_from - timedelta(milliseconds=1), "\U0010ffff")
        for case_id in self._ordered(query.order, after, facet):
            doc = self._docs[case_id]
            if query.order == NEWEST and query.created_from is not None and doc["created_at"] < query.created_from:
                break
            if query.order == OLDEST and query.created_to is not None and doc["created_at"] >= query.created_to:
                break
            if matches(doc, query):
                out.append(copied(doc))
                if len(out) >= query.limit:
                    break
        return out, None

    async def history_start(self) -> datetime | None:
        """When the oldest stored case was created (None: no case yet)."""
        return self._by_created[0][0] if self._by_created else None

    async def open_counts(self, query: CaseQuery, level: str) -> dict[str, dict]:
        """Open cases matching `query` per jurisdiction at `level`: {id: {open, overdue}}."""
        open_query = dataclasses.replace(query, open_only=True, after=None)
        out: dict[str, dict] = {}
        for case_id in self._ordered(NEWEST, None, buckets.driving_facet(open_query)):
            doc = self._docs[case_id]
            jid = get_path(doc, f"jurisdiction.{level}.id")
            if jid is None or not matches(doc, open_query):
                continue
            counts = out.setdefault(jid, {"open": 0, "overdue": 0})
            counts["open"] += 1
            counts["overdue"] += get_path(doc, "flags.overdue") is True
        return out

    async def count(self, query: CaseQuery) -> int:
        return sum(1 for doc in self._docs.values() if matches(doc, query))

    async def due(self, now: datetime, limit: int, exclude: Iterable[str] = ()) -> list[dict]:
        """Cases whose sweep cursor `next_due_at` has come, earliest first (`DUE_FIELDS` only)."""
        excluded = set(exclude)
        out = []
        for _, case_id in self._due.irange(maximum=(now, "\U0010ffff")):
            if case_id in excluded:
                continue
            out.append(last_history_only(project(self._docs[case_id], DUE_FIELDS)))
            if len(out) >= limit:
                break
        return out

    async def period_cases(self, query: PeriodQuery, fields: tuple[str, ...]) -> list[dict]:
        return [project(doc, fields) for doc in self._docs.values() if touches_period(doc, query)]

    async def open_overdue(self, scope: Scope, within: str | None, fields: tuple[str, ...],
                           first: int | None = None) -> list[dict]:
        """The open cases flagged overdue, in `scope` (and inside `within`), for the KPI list.
        (`first`, which lets the server engine read only the earliest deadlines, asks for no
        fewer than all of them; reading them all here costs nothing.)"""
        docs = (self._docs[case_id] for _, case_id in self._facets.get("open_overdue", ()))
        return [project(doc, fields) for doc in docs
                if scope.admits(doc) and (within is None or within in (doc.get("scope_path") or ()))]

    def projected(self, case_ids, fields) -> dict[str, dict]:
        return {i: project(self._docs[i], fields) for i in case_ids if i in self._docs}

    def all_ids(self) -> list[str]:
        return list(self._by_id)

    async def uses_attachment(self, attachment_id: str, scope: Scope, fields: tuple[str, ...]) -> bool:
        for doc in self._docs.values():
            if scope.admits(doc) and any(attachment_id in (get_path(doc, f) or ()) for f in fields):
                return True
        return False

    async def by_caller(self, phone: str, since: datetime, until: datetime, scope: Scope, limit: int) -> list[dict]:
        facet = buckets.caller_facet(phone)
        entries = self._facets.get(facet) if facet else None
        out = []
        for _, case_id in (entries.irange((stored_value(since), ""), (stored_value(until), "\uffff"), reverse=True)
                           if entries else ()):
            doc = self._docs[case_id]
            if scope.admits(doc):
                out.append(copied(doc))
                if len(out) >= limit:
                    break
        return out


class MemoryRollups:
    """KPI rollups (dispatch/kpi/rollups.py keeps them; docs/ARCHITECTURE.md, "KPI rollups"):
    bucket documents (per day / month / year and district, read by id), pending documents
    (facts that wait for a deadline to pass), each case's current contribution, and the
    applier's state."""

    def __init__(self, cases: MemoryCases):
        self._cases = cases
        self._buckets: dict[str, dict] = {}
        self._pending: dict[str, dict] = {}
        self._contributions: dict[str, dict] = {}
        self._state: dict = {}

    async def state(self) -> dict:
        return copied(self._state)

    async def save_state(self, state: dict) -> None:
        self._state = stored_value(state)

    async def contributions(self, case_ids: list[str]) -> dict[str, dict]:
        return {i: copied(self._contributions[i]) for i in case_ids if i in self._contributions}

    async def save_contributions(self, docs: list[dict], new: bool = False) -> None:
        for doc in docs:
            self._contributions[doc["_id"]] = stored_value(doc)

    async def cases(self, case_ids: list[str], fields: tuple[str, ...]) -> dict[str, dict]:
        return self._cases.projected(case_ids, fields)

    async def all_cases(self, fields: tuple[str, ...], batch: int = 1000):
        """Every case (projected), in lists of `batch`: what a rebuild reads."""
        ids = self._cases.all_ids()
        for i in range(0, len(ids), batch):
            found = self._cases.projected(ids[i:i + batch], fields)
            yield [found[k] for k in ids[i:i + batch] if k in found]

    async def buckets_by_id(self, ids: list[str]) -> dict[str, dict]:
        return self._copies(ids)

    async def buckets_within(self, within: str, district: str | None) -> dict[str, dict]:
        wanted = shelf(within, district)
        return self._copies([i for i, d in self._buckets.items() if bucket_shelf(d) == wanted])

    def _copies(self, ids: list[str]) -> dict[str, dict]:
        # Copied level by level (numbers in dicts in dicts): the generic deep copy costs more
        # than the report that reads them.
        maps = ("groups", "streets", "departments")
        return {i: {**d, **{m: {k: dict(c) for k, c in d[m].items()} for m in maps if m in d}}
                for i in ids if (d := self._buckets.get(i)) is not None}

    async def pending_by_id(self, ids: list[str]) -> dict[str, dict]:
        return {i: copied(self._pending[i]) for i in ids if i in self._pending}

    async def save(self, buckets: list[dict], pending: list[dict], new: bool = False) -> None:
        for doc in buckets:
            self._buckets[doc["_id"]] = stored_value(doc)
        for doc in pending:
            self._pending[doc["_id"]] = stored_value(doc)

    async def pending_from(self, now: datetime) -> list[dict]:
        now = stored_value(now)
        return [copied(d) for d in self._pending.values() if d["until"] >= now]

    async def pending_in_hour(self, hour: str, now: datetime) -> list[dict]:
        now = stored_value(now)
        return [copied(d) for d in self._pending.values() if d.get("hour") == hour and d["until"] >= now]

    async def purge_pending(self, before: datetime) -> int:
        before = stored_value(before)
        lapsed = [k for k, d in self._pending.items() if d["until"] < before]
        for k in lapsed:
            del self._pending[k]
        return len(lapsed)

    async def clear(self) -> None:
        self._buckets.clear()
        self._pending.clear()
        self._contributions.clear()
        self._state = {}

    async def counts(self) -> dict:
        return {"buckets": len(self._buckets), "pending": len(self._pending), "contributions": len(self._contributions)}


class MemoryUsers:
    def __init__(self):
        self._users: dict[str, dict] = {}

    async def get(self, username: str) -> dict | None:
        doc = self._users.get(username) if isinstance(username, str) else None
        return copied(doc) if doc is not None else None

    async def insert_if_absent(self, user: dict) -> bool:
        if user["_id"] in self._users:
            return False
        self._users[user["_id"]] = stored_value(user)
        return True

    async def update(self, username: str, fields: dict) -> dict | None:
        doc = self._users.get(username)
        if doc is None:
            return None
        for path, value in fields.items():
            parent, key = parent_of(doc, path, create=True)
            parent[key] = stored_value(value)
        return copied(doc)

    async def all(self) -> list[dict]:
        return [copied(self._users[name]) for name in sorted(self._users)]


class MemoryAttachments:
    def __init__(self, cases: MemoryCases):
        self._docs: dict[str, dict] = {}
        self._cases = cases

    async def insert(self, doc: dict) -> dict:
        if doc["_id"] in self._docs:
            raise DuplicateCase(doc["_id"])
        self._docs[doc["_id"]] = stored_value(doc)
        return doc

    async def get(self, attachment_id: str) -> dict | None:
        doc = self._docs.get(attachment_id) if isinstance(attachment_id, str) else None
        return copied(doc) if doc is not None else None

    async def owned_by(self, attachment_ids: list, username: str) -> set[str]:
        return {i for i in attachment_ids
                if isinstance(i, str) and i in self._docs and self._docs[i].get("owner") == username}

    async def case_using(self, attachment_id: str, scope: Scope) -> bool:
        """True if a case inside `scope` shows this photo."""
        return await self._cases.uses_attachment(attachment_id, scope, PHOTO_FIELDS)

    # Bounded storage (dispatch.intake.attachments): `referenced` absent counts as unreferenced.

    async def in_use(self, attachment_id: str) -> bool:
        return await self.case_using(attachment_id, EVERYTHING)

    async def mark_referenced(self, attachment_ids: list[str], referenced: bool = True) -> None:
        for attachment_id in attachment_ids:
            if attachment_id in self._docs:
                self._docs[attachment_id]["referenced"] = referenced

    async def pending_usage(self, owner: str, since: datetime) -> tuple[int, int]:
        since = stored_value(since)
        docs = [d for d in self._docs.values()
                if d.get("owner") == owner and d.get("referenced") is not True and d["created_at"] >= since]
        return len(docs), sum(d.get("size") or 0 for d in docs)

    async def unreferenced_before(self, cutoff: datetime, limit: int) -> list[str]:
        cutoff = stored_value(cutoff)
        docs = [d for d in self._docs.values() if d.get("referenced") is not True and d["created_at"] < cutoff]
        return [d["_id"] for d in sorted(docs, key=lambda d: d["created_at"])[:limit]]

    async def delete(self, attachment_ids: list[str]) -> int:
        return sum(self._docs.pop(i, None) is not None for i in attachment_ids)


class MemoryLeases:
    def __init__(self):
        self._leases: dict[str, dict] = {}

    async def acquire(self, name: str, holder: str, now: datetime, ttl_seconds: float) -> bool:
        lease = self._leases.get(name)
        if lease is not None and lease["holder"] != holder and lease["expires_at"] > now:
            return False
        self._leases[name] = {"holder": holder, "expires_at": now + timedelta(seconds=ttl_seconds)}
        return True

    async def release(self, name: str, holder: str) -> None:
        if self._leases.get(name, {}).get("holder") == holder:
            del self._leases[name]


class MemoryRevocations:
    """Revoked token ids until the token would have expired anyway."""

    def __init__(self):
        self._until: dict[str, datetime] = {}

    async def ensure_indexes(self) -> None:
        return None

    async def add(self, nonce: str, username: str, expires_epoch: int) -> None:
        self._until[nonce] = datetime.fromtimestamp(expires_epoch, timezone.utc)

    async def contains(self, nonce: str) -> bool:
        until = self._until.get(nonce) if isinstance(nonce, str) else None
        return until is not None and until > datetime.now(timezone.utc)

    async def purge_expired(self, now: datetime) -> int:
        lapsed = [nonce for nonce, until in self._until.items() if until <= now]
        for nonce in lapsed:
            del self._until[nonce]
        return len(lapsed)


class MemoryAudit:
    KINDS = AUDIT_KINDS

    def __init__(self):
        self._entries: dict[str, list[dict]] = {kind: [] for kind in self.KINDS}
        self._ids = itertools.count(1)

    async def ensure_indexes(self) -> None:
        return None

    async def record(self, kind: str, entry: dict) -> dict:
        doc = {"_id": f"{next(self._ids):024x}", **stored_value(entry)}
        self._entries[kind].append(doc)
        return copied(doc)

    async def recent(self, kind: str, limit: int, case_id: str | None = None,
                     username: str | None = None) -> list[dict]:
        out = []
        for doc in sorted(self._entries[kind], key=lambda d: d["at"], reverse=True):
            if case_id is not None and doc.get("case_id") != case_id:
                continue
            if username is not None and doc.get("by") != username:
                continue
            out.append(copied(doc))
            if len(out) >= limit:
                break
        return out


class MemorySnapshots:
    """Daily KPI snapshots, id "<day>:<scope>"."""

    def __init__(self):
        self._docs: dict[str, dict] = {}

    async def save(self, snapshot: dict) -> None:
        self._docs[snapshot["_id"]] = stored_value(snapshot)

    async def get(self, snapshot_id: str) -> dict | None:
        doc = self._docs.get(snapshot_id)
        return copied(doc) if doc is not None else None

    async def for_day(self, day: str) -> list[dict]:
        return [copied(self._docs[k]) for k in sorted(self._docs) if self._docs[k].get("day") == day]


class MemoryConfig:
    """Versions of the city configuration (dispatch/admin): version documents numbered 1, 2, ...
    (`publish` takes the next number insert-once, so a stale editor gets False), and the items
    of each kind a version set, kept apart so a version reads only the kinds it needs."""

    def __init__(self):
        self._versions: dict[int, dict] = {}
        self._items: dict[str, dict] = {}  # "<version>:<kind>" → {version, kind, items}

    async def head(self) -> int:
        return max(self._versions, default=0)

    async def publish(self, version: dict, items: dict) -> bool:
        if version["_id"] in self._versions:
            return False
        for kind, value in items.items():
            self._items[f"{version['_id']}:{kind}"] = {"version": version["_id"], "kind": kind,
                                                       "items": stored_value(value)}
        self._versions[version["_id"]] = stored_value({**version, "changed": sorted(items)})
        return True

    async def version(self, number: int) -> dict | None:
        doc = self._versions.get(number)
        return copied(doc) if doc is not None else None

    async def history(self, limit: int) -> list[dict]:
        return [copied(self._versions[n]) for n in sorted(self._versions, reverse=True)[:limit]]

    async def items(self, kind: str, at: int) -> tuple[int, object] | None:
        set_at = [n for n, doc in self._versions.items() if n <= at and kind in doc["changed"]]
        if not set_at:
            return None
        doc = self._items[f"{max(set_at)}:{kind}"]
        return doc["version"], copied(doc["items"])


# Rate-limit events older than this are deleted by `housekeeping`: the longest look-back any
# limit uses (a login back-off reads a day plus its cap).
LIMIT_EVENTS_KEPT = timedelta(days=2)


class MemoryLimits:
    """Rate-limit events (login failures, reveals, ...): one entry per event, `key` naming what
    is counted. `record` with an `event_id` already taken records nothing and returns False
    (an insert-once claim, as on the server engine)."""

    def __init__(self):
        self._events: dict[str, list[tuple[datetime, str]]] = {}  # key → [(at, id)], sorted
        self._ids: dict[str, str] = {}  # id → key

    async def ensure_indexes(self) -> None:
        return None

    async def record(self, key: str, at: datetime, event_id: str | None = None) -> bool:
        event_id = event_id or uuid.uuid4().hex
        if event_id in self._ids:
            return False
        self._ids[event_id] = key
        bisect.insort(self._events.setdefault(key, []), (stored_value(at), event_id))
        return True

    async def count(self, key: str, after: datetime) -> int:
        return len(await self.times(key, after))

    async def times(self, key: str, after: datetime) -> list[datetime]:
        after = stored_value(after)
        return [at for at, _ in self._events.get(key, ()) if at > after]

    async def remove(self, event_id: str) -> None:
        key = self._ids.pop(event_id, None)
        if key is not None:
            self._events[key] = [e for e in self._events[key] if e[1] != event_id]

    async def clear(self, key: str) -> None:
        for _, event_id in self._events.pop(key, ()):
            self._ids.pop(event_id, None)

    async def purge(self, before: datetime) -> int:
        """Delete the events older than `before`; how many went."""
        before, purged = stored_value(before), 0
        for key in list(self._events):
            events = self._events[key]
            kept = [e for e in events if e[0] >= before]
            for at, event_id in events:
                if at < before:
                    self._ids.pop(event_id, None)
            purged += len(events) - len(kept)
            if kept:
                self._events[key] = kept
            else:
                del self._events[key]
        return purged


class MemoryStore:
    kind = "embedded"
    persistent = False
    description = "embedded (in-memory: data is lost when the server stops)"

    def __init__(self):
        self.events = MemoryEvents()
        self.cases = MemoryCases(self.events)
        self.users = MemoryUsers()
        self.attachments = MemoryAttachments(self.cases)
        self.leases = MemoryLeases()
        self.revocations = MemoryRevocations()
        self.limits = MemoryLimits()
        self.config = MemoryConfig()
        self.audit = MemoryAudit()
        self.snapshots = MemorySnapshots()
        self.rollups = MemoryRollups(self.cases)
        self.models = MemoryModels()
        self.knowledge = MemoryKnowledge()

    async def ensure_indexes(self) -> None:
        return None

    async def housekeeping(self, now: datetime) -> None:
        await self.revocations.purge_expired(now)
        await self.limits.purge(now - LIMIT_EVENTS_KEPT)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self.events.close()

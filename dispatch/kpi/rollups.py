"""KPI rollups: the SPEC §5 figures kept as per-day counters, so a report sums counters instead
of reading the period's cases (SPEC §7).

What is counted is exactly what the full computation counts (`stats.all_facts`: each case's
facts, none depending on the period or the time of asking). A case's facts, keyed by where
they fall, are its *contribution*:

    "<day>|<department>|<district>|<street>|<category>|<source>|<figure>|<late day>|<until>"

`<day>` is the city-local day of the fact (empty: a state of the case now, e.g. 当前超期在办);
`<until>` a deadline that must have passed for the fact to count; `<late day>` the day the case
was closed when that is after the day it fell due (counted only by periods reaching that day).

Stored (dispatch/store: `rollups`):

* **buckets**: counters per (day, department, district, street, category, source), and per
  (month | year, department, district, street) so a month or a year is one read — one document
  per bucket and district, and one for the whole city (`CITY_WIDE`: per department, district
  and street, for the city's reports); a `<late day>`
  beyond a bucket's end stays in the counter's name (`due_closed@2026-12-02`) and a report keeps
  it only if its period reaches that day;
* **waiting** (in each bucket document): the part of its counters still waiting for a deadline,
  by the UTC hour the deadline falls in: a report subtracts the hours after its own (the
  buckets count every fact as if its deadline had come);
* **pending**: the same facts one by one, by their `<until>`: a report subtracts those of its
  own hour with `until` >= now (one equality on `hour`);
* **contributions**: each case's current contribution and version.

How the buckets follow the cases (the applier, `catch_up`): every change to a case is one
event of the store's log (global sequence). One applier at a time (lease `kpi-rollups`) reads
the events after its stored cursor, recomputes the changed cases' contributions from the cases
themselves and adds the differences (new − stored) to the buckets. A batch is journalled first
(the increments, the new contributions and the batch's last sequence, in the applier's state
document), then each bucket is written with that sequence, skipped if it already has it, then
the cursor moves and the journal is cleared. A process dying anywhere in between leaves the
journal, which the next applier finishes; an event delivered twice finds the case's stored
version already at or past it and adds nothing. So every change counts once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections import Counter
from datetime import date, datetime, timedelta, timezone

from dispatch.clock import Clock
from dispatch.kpi.stats import (
    NO_DEPARTMENT, NO_PLACE, PROJECTION, CaseTimeline, Period, Row, all_facts, category_sign_deadline,
    trend_reported,
)
from dispatch.background import cancel
from dispatch.domain import OPEN_STATUSES
from dispatch.store import StoreUnavailable
from dispatch.store.query import CaseQuery
from dispatch.store.records import SHELVED

log = logging.getLogger(__name__)

LEASE = "kpi-rollups"
LEASE_SECONDS = 30
# Pending facts whose deadline passed longer ago than this are not kept (nobody asks "now"
# with a clock that far behind).
PENDING_MARGIN = timedelta(hours=1)
FAR = datetime.max.replace(tzinfo=timezone.utc)
# 2: bucket documents keep `waiting` maps (a report reads no other pending fact than those of
# its own hour). 3: the city's own buckets too (`CITY_WIDE`). Rollups of an older format are read
# as before until rebuilt.
FORMAT = 3
WAITING_FORMAT, CITY_FORMAT = 2, 3
# The district of a bucket document holding the whole city (its groups without category and
# source): a city report reads one document a bucket, not one per district — FerretDB costs
# ~1.7 ms a document read, whatever its size.
CITY_WIDE = "*"
FIELDS = (*PROJECTION, "version", "departments_seen")
UNSEEN = "~"
DAY, MONTH, YEAR, STATE = "d", "m", "y", "s"
# The store also files day and month buckets under the one holding them (`SHELVED`); a report
# wanting at least this many of one shelf reads the whole shelf at once. About half a shelf: on
# FerretDB a day bucket read by `_id` took 3.2 ms, a month's 30 in one read 50 ms; a month
# bucket 3.4 ms, a year's 12 at once 20 ms.
SHELF_READ = {DAY: 15, MONTH: 6}


def _month_end(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def decompose(first: date, last: date) -> list[tuple[str, str]]:
    """The fewest buckets covering [first, last]: whole years, whole months, the other days."""
    out, day = [], first
    while day <= last:
        if day.month == 1 and day.day == 1 and date(day.year, 12, 31) <= last:
            out.append((YEAR, f"{day.year:04d}"))
            day = date(day.year + 1, 1, 1)
        elif day.day == 1 and _month_end(day) <= last:
            out.append((MONTH, day.isoformat()[:7]))
            day = _month_end(day) + timedelta(days=1)
        else:
            out.append((DAY, day.isoformat()))
            day += timedelta(days=1)
    return out


def _hour(at: datetime) -> str:
    """The UTC hour an instant falls in, as `waiting` maps and pending documents name it."""
    return at.astimezone(timezone.utc).strftime("%Y%m%d%H")


def bucket_id(level: str, bucket: str, district: str | None) -> str:
    """One document per bucket and district: a report reads its documents by `_id`, the one
    lookup FerretDB 1.24 answers from an index."""
    return f"{level}|{bucket}|{district or ''}"


def resolve(counters: dict, last_day: str, into: Counter, sign: int = 1) -> None:
    """Add a bucket's counters to `into`; a `name@day` counter only if the period reaches `day`."""
    for name, amount in counters.items():
        if "@" in name:
            name, _, late = name.partition("@")
            if late > last_day:
                continue
        into[name] += sign * amount


def _add(doc: dict, field: str, key: str | None, increments: dict) -> None:
    """Add `increments` to doc[field][key] (doc[field] when key is None), dropping zeros."""
    counters = doc[field] if key is None else doc.setdefault(field, {}).setdefault(key, {})
    for name, amount in increments.items():
        value = counters.get(name, 0) + amount
        if abs(value) < 1e-6:
            counters.pop(name, None)
        else:
            counters[name] = value
    if key is not None and not counters:
        del doc[field][key]


def open_counts_place(city, query: CaseQuery) -> str | None:
    """The place (the city, a district or a street) whose open cases per district or street
    the rollups can count for `query` (`Rollups.open_counts`): a reader who sees the whole
    place — the city, or a jurisdiction of their own — asking for open cases, perhaps only the
    overdue ones, in one area. None when some other filter needs the cases themselves."""
    if (query.statuses or query.categories or query.departments or query.sources or query.warning
            or query.supervised or query.return_pending or query.reporter is not None or query.box is not None
            or query.text is not None or query.created_from is not None or query.created_to is not None
            or query.overdue is False or len(query.jurisdictions) > 1):
        return None
    scope = query.scope
    if scope.everything:
        place = city.id
    elif scope.within is not None and scope.department is None and scope.reporter is None:
        place = scope.within
    else:
        return None
    if query.jurisdictions:
        _, ids = query.jurisdictions[0]
        if len(ids) != 1 or ids[0] not in city.jurisdictions:
            return None
        area = ids[0]
        if place in _chain(city, area):
            place = area  # an area inside the reader's
        elif area not in _chain(city, place):
            return None  # outside the reader's: nothing to count, as the cases would say
    if place != city.id and (place not in city.jurisdictions or city.jurisdictions[place].level not in ("district", "street")):
        return None
    return place


def _chain(city, jurisdiction_id: str) -> list[str]:
    """The jurisdiction, its parents, and the city."""
    out, node = [], city.jurisdictions.get(jurisdiction_id)
    while node is not None:
        out.append(node.id)
        node = city.jurisdictions.get(node.parent) if node.parent else None
    return out + [city.id]


def _contribution(case: dict, facts: dict[str, float]) -> dict:
    """As stored: two parallel lists (FerretDB 1.24 stores no arrays of arrays)."""
    return {"_id": case["_id"], "version": case.get("version", 0), "keys": list(facts), "amounts": list(facts.values())}


class Rollups:
    """Keeps the rollups of one city's store and answers reports from them."""

    def adopt(self, city, calendar) -> None:
        """Follow a published city configuration (dispatch/admin): new categories, departments
        and calendar count from now on; what is already rolled up stays as it was counted."""
        self.city, self.calendar = city, calendar
        self.sign_deadline = category_sign_deadline(city.categories, calendar)
        self.department_names = {d.id: d.name for d in city.departments.values()}

    def __init__(self, storage, city, calendar, tz, clock: Clock | None = None):
        self.repo = storage.rollups
        # The application's clock: which pending facts are long past, and the applier's lease,
        # follow the time the reports are asked at (a pinned clock in tests, the simulator's).
        self.clock = clock or Clock()
        self.events = storage.events
        self.leases = storage.leases
        self.tz = tz
        self.adopt(city, calendar)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.interval = 0.5
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._stopped = False
        self._purged_at: datetime | None = None
        self.gap_reported = False
        self.format_reported = False
        self.known = -1  # the applier's cursor as this process last saw it

    # -- a case's contribution -------------------------------------------------------------

    def _day(self, moment: datetime) -> str:
        return moment.astimezone(self.tz).date().isoformat()

    def contribution(self, case: dict) -> dict[str, float]:
        timeline = CaseTimeline(case, self.department_names)
        jurisdiction = case.get("jurisdiction") or {}
        place = "|".join(((jurisdiction.get(level) or {}).get("id") or "") for level in ("district", "street"))
        kind = "|".join((((case.get("category") or {}).get("code") or ""), case.get("source") or ""))
        out: dict[str, float] = {}
        seen = set(case.get("departments_seen") or ())
        for fact in all_facts(timeline, self.calendar, self.sign_deadline):
            department = fact.department or timeline.department_at(fact.at or FAR)["id"] or ""
            if department and department not in seen:
                # Charged to its assigned department, which has not had the case yet: counted
                # in that department's row, but not in the department's own report (a
                # department sees the cases it has been given: `Scope.department`).
                department = UNSEEN + department
            day = self._day(fact.at) if fact.at is not None else ""
            late = self._day(fact.late) if fact.late is not None else ""
            if late and late <= day:
                late = ""  # closed by the end of the day it fell due: every period counts it
            until = fact.until.astimezone(timezone.utc).isoformat() if fact.until is not None else ""
            key = "|".join((day, department, place, kind, fact.key, late, until))
            out[key] = out.get(key, 0) + fact.amount
        return out

    @staticmethod
    def _expand(delta: dict[str, float], buckets: dict, pending: dict, horizon: datetime) -> None:
        """Add a contribution (or a difference of two) to bucket and pending increments. A fact
        waiting for its deadline is also added to each of its buckets' `waiting` map, under the
        hour the deadline falls in, so a report takes it back out of the buckets it reads."""
        for key, amount in delta.items():
            day, department, district, street, category, source, figure, late, until = key.split("|")
            coarse = f"{department}|{district}|{street}"
            at = datetime.fromisoformat(until) if until and day else None
            waiting = _hour(at) if at is not None and at >= horizon else None
            if not day:
                targets = [(STATE, "", coarse, figure)]
            else:
                d = date.fromisoformat(day)
                targets = []
                for level, bucket, last, fine in ((DAY, day, d, True), (MONTH, day[:7], _month_end(d), False),
                                                  (YEAR, day[:4], date(d.year, 12, 31), False)):
                    name = f"{figure}@{late}" if late and late > last.isoformat() else figure
                    targets.append((level, bucket, f"{coarse}|{category}|{source}" if fine else coarse, name))
            for level, bucket, group, name in targets:
                for holder, held_group in ((district, group), (CITY_WIDE, coarse)):
                    doc_id = bucket_id(level, bucket, holder)
                    item = buckets.setdefault(doc_id, {"_id": doc_id, "fields": {"level": level, "bucket": bucket,
                                                                                  "district": holder or None},
                                                       "inc": {}})
                    counters = item["inc"].setdefault(held_group, {})
                    counters[name] = counters.get(name, 0) + amount
                    if waiting is not None:
                        held = item.setdefault("wait", {}).setdefault(waiting, {}).setdefault(held_group, {})
                        held[name] = held.get(name, 0) + amount
            if waiting is not None:  # (a deadline long past: no report subtracts it any more)
                doc_id = f"{until}|{day}|{coarse}"
                name = f"{figure}@{late}" if late else figure
                item = pending.setdefault(doc_id, {"_id": doc_id, "fields": {
                    "until": at, "hour": waiting, "day": day, "department": department or None,
                    "district": district or None, "street": street or None}, "inc": {}})
                counters = item["inc"].setdefault("", {})
                counters[name] = counters.get(name, 0) + amount

    # -- following the event log -----------------------------------------------------------

    async def catch_up(self, batch: int = 200) -> int | None:
        """Apply every logged change not applied yet; how many events, or None if another
        process holds the applier's lease."""
        async with self._lock:
            if not await self.leases.acquire(LEASE, self.holder, self.clock.now(), LEASE_SECONDS):
                return None
            state = await self.repo.state()
            # Rollups begun by this version keep the `waiting` maps from their first change;
            # older ones read the pending facts as before until rebuilt.
            form = state.get("format") if state else FORMAT
            if form != FORMAT and not self.format_reported:
                self.format_reported = True
                log.warning("KPI 汇总为旧格式：报表仍正确，但读取更多（全市报表逐区读取%s）；"
                            "请运行 python -m dispatch.tools.rebuild_rollups 重建",
                            "" if (form or 0) >= WAITING_FORMAT else "，每次读取全部待到期事实")
            if state.get("journal"):
                await self._finish(state["journal"], form)
                state = await self.repo.state()
            cursor = int(state.get("cursor") or 0)
            applied = 0
            while True:
                events = await self.events.after(cursor, batch)
                if not events:
                    break
                journal = await self._plan(events)
                await self.repo.save_state({"cursor": cursor, "journal": journal, "format": form})
                await self._finish(journal, form)
                cursor = journal["to_seq"]
                applied += len(events)
            self.known = cursor
            await self._report_gap(cursor)
            await self._purge()
            return applied

    async def _report_gap(self, cursor: int) -> None:
        """The log keeps a week (dispatch/store): an applier left behind longer cannot catch up."""
        if not self.gap_reported and self.events.head > cursor:
            if not await self.events.after(cursor, 1):
                self.gap_reported = True
                log.error("KPI 汇总落后于事件日志的保留期（游标 %d）：请运行 python -m dispatch.tools.rebuild_rollups", cursor)

    async def _purge(self) -> None:
        now = self.clock.now()
        if self._purged_at is None or now - self._purged_at > timedelta(minutes=10):
            self._purged_at = now
            await self.repo.purge_pending(now - 2 * PENDING_MARGIN)

    async def _plan(self, events: list[dict]) -> dict:
        """The journal of one batch: its bucket and pending increments and new contributions."""
        # Only case changes count; the log also carries configuration versions (no case_id).
        ids = list(dict.fromkeys(e["case_id"] for e in events if e.get("case_id")))
        stored = await self.repo.contributions(ids)
        cases = await self.repo.cases(ids, FIELDS)
        buckets: dict = {}
        pending: dict = {}
        contributions = []
        horizon = self.clock.now() - PENDING_MARGIN
        for case_id in ids:
            case = cases.get(case_id)
            old = stored.get(case_id)
            if case is None or (old is not None and old.get("version", 0) >= case.get("version", 0)):
                continue  # this change (or a later one) is counted already
            new = self.contribution(case)
            before = dict(zip(old["keys"], old["amounts"])) if old else {}
            delta = {k: new.get(k, 0) - before.get(k, 0) for k in new.keys() | before.keys()}
            self._expand({k: v for k, v in delta.items() if v}, buckets, pending, horizon)
            contributions.append(_contribution(case, new))
        return {"to_seq": events[-1]["_id"], "buckets": list(buckets.values()), "pending": list(pending.values()),
                "contributions": contributions}

    async def _finish(self, journal: dict, form: int | None) -> None:
        seq = journal["to_seq"]
        kept_from = self._waiting_kept_from()
        buckets = self._merged(journal["buckets"], await self.repo.buckets_by_id([b["_id"] for b in journal["buckets"]]),
                               seq, kept_from)
        pending = self._merged(journal["pending"], await self.repo.pending_by_id([p["_id"] for p in journal["pending"]]), seq)
        await self.repo.save(buckets, pending)
        await self.repo.save_contributions(journal["contributions"])
        await self.repo.save_state({"cursor": seq, "journal": None, "format": form})

    def _waiting_kept_from(self) -> str:
        """The earliest `waiting` hour still kept: a report subtracts only hours after its own."""
        return _hour(self.clock.now() - 2 * PENDING_MARGIN)

    @staticmethod
    def _merged(items: list[dict], existing: dict, seq: int, waiting_from: str = "") -> list[dict]:
        """Bucket documents hold `groups` {"department|district|street[|category|source]":
        {counter: amount}} and the same summed per street (`streets`) and per department
        (`departments`), so a report grouped that way adds a few maps, not every group, and
        `waiting` {hour: {group: {counter: amount}}}: the part of those counters still waiting
        for a deadline in that hour (hours before `waiting_from` are dropped). Pending documents
        hold `counters` (their increments come under the group "")."""
        out = []
        for item in items:
            pending = "until" in item["fields"]
            fresh = {"counters": {}} if pending else {"groups": {}, "streets": {}, "departments": {}, "waiting": {}}
            doc = existing.get(item["_id"]) or {"_id": item["_id"], **item["fields"], "seq": 0, **fresh}
            if doc.get("seq", 0) >= seq:
                continue  # this batch reached this document before the process stopped
            for group, increments in item["inc"].items():
                if pending:
                    _add(doc, "counters", None, increments)
                    continue
                department, _, street = group.split("|")[:3]
                _add(doc, "groups", group, increments)
                _add(doc, "streets", street, increments)
                _add(doc, "departments", department, increments)
            if not pending:
                waiting = doc.setdefault("waiting", {})
                for hour, groups in item.get("wait", {}).items():
                    for group, increments in groups.items():
                        _add(waiting, hour, group, increments)
                for hour in [h for h, groups in waiting.items() if h < waiting_from or not groups]:
                    del waiting[hour]
            doc["seq"] = seq
            out.append(doc)
        return out

    async def fresh(self, timeout: float = 3.0) -> None:
        """Before a report: apply what is pending here, or wait (briefly) for the process
        holding the lease to reach the changes this process has seen."""
        target = self.events.head
        if target <= self.known:
            return  # nothing logged since the last catch-up this process saw: no lease, no reads
        if await self.catch_up() is not None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            cursor = int((await self.repo.state()).get("cursor") or 0)
            if cursor >= target:
                self.known = max(self.known, cursor)
                return
            await asyncio.sleep(0.05)
        log.warning("KPI 汇总尚未追上事件日志，统计结果可能缺少最近几秒的变化")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopped = True
        await cancel(self._task)
        self._task = None
        try:
            await self.leases.release(LEASE, self.holder)
        except Exception:  # noqa: BLE001 - best effort; the lease expires anyway
            pass

    async def _run(self) -> None:
        while not self._stopped and not self.events.closed:
            try:
                if self.events.head > self.known:  # something logged that was not applied
                    if await self.catch_up() is None:
                        self.known = int((await self.repo.state()).get("cursor") or 0)
            except StoreUnavailable:
                await asyncio.sleep(1)
            except Exception:  # noqa: BLE001 - the applier must outlive any one failure
                log.exception("KPI 汇总更新失败")
                await asyncio.sleep(1)
            await asyncio.sleep(self.interval)

    # -- rebuilding from the cases ---------------------------------------------------------

    async def rebuild(self, wait_seconds: float = 0) -> dict:
        """Recompute every rollup from the cases (the cases are the truth). Takes the applier's
        lease for the duration; changes logged meanwhile are applied afterwards."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        async with self._lock:
            while not await self.leases.acquire(LEASE, self.holder, self.clock.now(), 3600):
                if loop.time() >= deadline:
                    raise RuntimeError("另一个进程正在更新 KPI 汇总（租约 kpi-rollups）：请先停止服务，或加 --wait 等待")
                await asyncio.sleep(1)
            head = await self.events.last_seq()
            await self.repo.clear()
            buckets: dict = {}
            pending: dict = {}
            horizon = self.clock.now() - PENDING_MARGIN
            cases = 0
            async for chunk in self.repo.all_cases(FIELDS):
                contributions = []
                for case in chunk:
                    facts = self.contribution(case)
                    self._expand(facts, buckets, pending, horizon)
                    contributions.append(_contribution(case, facts))
                await self.repo.save_contributions(contributions, new=True)
                cases += len(chunk)
            bucket_docs = self._merged(list(buckets.values()), {}, head or 1, self._waiting_kept_from())
            pending_docs = self._merged(list(pending.values()), {}, head or 1)
            await self.repo.save(bucket_docs, pending_docs, new=True)
            await self.repo.save_state({"cursor": head, "journal": None, "format": FORMAT})
            await self.leases.release(LEASE, self.holder)
        return {"cases": cases, "buckets": len(bucket_docs), "pending": len(pending_docs), "cursor": head}

    # -- reports ---------------------------------------------------------------------------

    def _group(self, doc: dict, group_by: str) -> dict:
        if group_by == "department":
            dep = doc.get("department")
            return {"id": dep, "name": self.department_names.get(dep, dep)} if dep else NO_DEPARTMENT
        node_id = doc.get(group_by)
        node = self.city.jurisdictions.get(node_id) if node_id else None
        if not node_id:
            return NO_PLACE
        group = {"id": node_id, "name": node.name if node is not None else node_id}
        if group_by == "street":
            parent = self.city.jurisdictions.get(node.parent) if node is not None and node.parent else None
            group["district"] = parent.name if parent is not None else None
        return group

    def _where(self, scope: str) -> tuple[dict[str, str], list[str]]:
        """A report's place ({level: id} to match groups against; empty for the city) and the
        districts whose bucket documents hold it ("" too for the city: cases without a place)."""
        if scope == self.city.id:
            return {}, [j.id for j in self.city.jurisdictions.values() if j.level == "district"] + [""]
        node = self.city.jurisdictions[scope]
        return {node.level: scope}, [scope if node.level == "district" else node.parent]

    async def open_counts(self, *, scope: str, level: str, since: datetime, overdue_only: bool = False) -> dict[str, dict]:
        """Cases open now per district or street of `scope` ({id: {open, overdue}}, the command
        map's badges): every case's `status:<status>` is counted on the day it was created, so
        the open ones are the open statuses summed over the year buckets since `since` (the
        oldest case), and 当前超期在办 is in the state bucket — one document per year and
        district, whatever the number of cases. `overdue_only`: only the overdue ones."""
        place, districts = self._where(scope)
        districts = [d for d in districts if d]  # cases without a place are on no map
        since = since if since.tzinfo is not None else since.replace(tzinfo=timezone.utc)
        now = self.clock.now()
        # (and on the year's last day the next one's: another process's clock may be ahead)
        last = (now + timedelta(days=1)).astimezone(self.tz).year
        years = range(since.astimezone(self.tz).year, last + 1)
        ids = [bucket_id(YEAR, f"{year:04d}", d) for year in years for d in districts]
        ids += [bucket_id(STATE, "", d) for d in districts]
        opened = [f"status:{status}" for status in OPEN_STATUSES]
        counts: dict[str, Counter] = {}
        for doc in (await self.repo.buckets_by_id(ids)).values():
            for street, counters in doc["streets"].items():
                if place.get("street", street) != street:
                    continue
                jid = street if level == "street" else doc.get("district")
                if jid:
                    tally = Counter()
                    resolve(counters, "9999-12-31", tally)
                    held = counts.setdefault(jid, Counter())
                    if doc["level"] == STATE:
                        held["overdue"] += tally["open_overdue"]
                    else:
                        held["open"] += sum(tally[name] for name in opened)
        out = {}
        for jid, held in counts.items():
            overdue = round(held["overdue"])
            shown = overdue if overdue_only else round(held["open"])
            if shown:
                out[jid] = {"open": shown, "overdue": overdue}
        return out

    async def daily(self, *, scope: str, first: date, last: date, category: str | None,
                    department: str | None, own_share: bool) -> dict[str, Counter]:
        """The trend panel's counts (dispatch/kpi/trend.py) from the day buckets of [first, last]:
        {"reported": {day: n}, "closed": {day: n}, "types": {category: n}}. `department`
        narrows to what is charged to it; `own_share`: only what it has been given (a
        department's own view), not what is charged to it before it had the case."""
        place, districts = self._where(scope)
        days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
        docs = await self._read([(DAY, day, district) for day in days for district in districts])
        out = {"reported": Counter(), "closed": Counter(), "types": Counter()}
        for doc in docs.values():
            day = doc["bucket"]
            for group, counters in doc["groups"].items():
                charged, district, street, code = group.split("|")[:4]
                if department is not None and (charged.removeprefix(UNSEEN) != department
                                               or (own_share and charged.startswith(UNSEEN))):
                    continue
                if place.get("district", district) != district or place.get("street", street) != street:
                    continue
                if category is not None and code != category:
                    continue
                tally = Counter()
                resolve(counters, day, tally)
                reported = trend_reported(tally)
                out["reported"][day] += reported
                out["types"][code] += reported
                out["closed"][day] += tally["closed"]
        return out

    def _read_until(self, period: Period, now: datetime) -> date:
        """The last day of the buckets a report reads. A period reaching today is read through
        the end of its month or year when that takes fewer buckets ("this year" is one bucket,
        not ten months and the days of this one): a day after today holds only facts still
        waiting for their deadline (an `until` after now), all of them pending, and the report
        subtracts the pending facts of every day it reads."""
        today = now.astimezone(self.tz).date()
        last = period.last_day
        if last < today:
            return last
        return min((last, _month_end(last), date(last.year, 12, 31)),
                   key=lambda until: (len(decompose(period.first_day, until)), until))

    async def _read(self, keys: list[tuple[str, str, str | None]]) -> dict[str, dict]:
        """The bucket documents of (level, bucket, district) `keys`, by `_id`; where a report
        wants most of a district's (or the city's) day buckets of one month, or month buckets of
        one year, the whole shelf at once (`buckets_within`). A period ending before today is
        read as its days and months up to there: the city's last 31 days were 465 reads by
        `_id` (15 documents a day), 0.9–1.2 s on FerretDB (docs/PERFORMANCE.md)."""
        shelves: dict[tuple[str, str, str | None], list[str]] = {}
        by_id: list[str] = []
        for level, bucket, district in keys:
            if level in SHELVED:
                shelves.setdefault((level, bucket[:SHELVED[level]], district), []).append(bucket_id(level, bucket, district))
            else:
                by_id.append(bucket_id(level, bucket, district))
        whole = {shelf: ids for shelf, ids in shelves.items() if len(ids) >= SHELF_READ[shelf[0]]}
        by_id += [i for shelf, ids in shelves.items() if shelf not in whole for i in ids]
        parts = await asyncio.gather(self.repo.buckets_by_id(by_id),
                                     *(self.repo.buckets_within(within, district) for _, within, district in whole))
        found = parts[0]
        for ids, docs in zip(whole.values(), parts[1:]):
            found.update({i: docs[i] for i in ids if i in docs})
        return found

    async def tallies(self, *, scope: str, period: Period, group_by: str, department: str | None,
                      now: datetime) -> tuple[dict, Counter]:
        """{group id: Row} and the total, summed from the buckets of `period` (whole days)."""
        place, districts = self._where(scope)
        form = (await self.repo.state()).get("format") or 0
        city_wide = not place and form >= CITY_FORMAT  # the city's own documents
        holders = [CITY_WIDE] if city_wide else districts
        read_until = self._read_until(period, now)
        first, last, read_last = period.first_day.isoformat(), period.last_day.isoformat(), read_until.isoformat()
        keys = [(level, bucket, holder) for level, bucket in decompose(period.first_day, read_until)
                for holder in holders]
        keys += [(STATE, "", holder) for holder in holders]
        rows: dict = {}
        total = Counter()

        def add(ids: tuple[str, str, str], counters: dict, sign: int = 1) -> None:
            ids = ((ids[0] or "").removeprefix(UNSEEN) or None, ids[1], ids[2])
            key = ids[("department", "district", "street").index(group_by)]
            row = rows.get(key)
            if row is None:
                group = self._group(dict(zip(("department", "district", "street"), ids)), group_by)
                row = rows[key] = Row(group, Counter())
            resolve(counters, last, row.tally, sign)

        def wanted(dep: str | None, district: str | None, street: str | None) -> bool:
            return ((department is None or dep == department) and place.get("district", district) == district
                    and place.get("street", street) == street)

        docs = (await self._read(keys)).values()
        if department is None and group_by in ("district", "street") and "street" not in place and not city_wide:
            for doc in docs:  # the per-street sums are enough (a district's document: its streets)
                for street, counters in doc["streets"].items():
                    add((None, doc.get("district"), street or None), counters)
        elif department is None and group_by == "department" and "street" not in place:
            for doc in docs:  # the per-department sums are enough
                for dep, counters in doc["departments"].items():
                    add((dep or None, doc.get("district"), None), counters)
        else:
            for doc in docs:
                for group, counters in doc["groups"].items():
                    dep, district, street = (part or None for part in group.split("|")[:3])
                    if wanted(dep, district, street):
                        add((dep, district, street), counters)
        if form >= WAITING_FORMAT:
            # Facts whose deadline has not come yet are taken back out: those of a later hour
            # from the buckets' own `waiting` maps, those of this hour one by one.
            hour = _hour(now)
            for doc in docs:
                for later, groups in (doc.get("waiting") or {}).items():
                    if later > hour:
                        for group, counters in groups.items():
                            dep, district, street = (part or None for part in group.split("|")[:3])
                            if wanted(dep, district, street):
                                add((dep, district, street), counters, -1)
            pending = await self.repo.pending_in_hour(hour, now)
        else:
            pending = await self.repo.pending_from(now)
        for doc in pending:
            if first <= doc["day"] <= read_last and wanted(doc.get("department"), doc.get("district"), doc.get("street")):
                add((doc.get("department"), doc.get("district"), doc.get("street")), doc["counters"], -1)
        rows = {row.group["id"]: row for row in rows.values()}
        for row in rows.values():
            total.update(row.tally)
        return rows, total

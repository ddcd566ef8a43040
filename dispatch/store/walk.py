"""A list page's walk over the equality buckets (server engine): which buckets, in what order,
whole or a slice at a time, and where the next page resumes when the read budget is spent.

The walk never speaks MongoDB: it is handed `read(qk, slot, limit)`, which returns one bucket's
(or one slice of it) cases matching the rest of the query, in the query's order, as stored
(`decode` makes a row what the store answers), and
`CreationCounts`, which says how many cases of any kind were created in a day's hours and an
hour's slices (`dispatch/store/buckets.py`, "slices of a busy hour").

FerretDB 1.24 converts every row of a bucket before it applies a limit (~2 ms a case), so what a
read costs is the cases of the bucket it names. The walk keeps that near a page:

* a facet holding a large share of all cases is read by the hour, one holding only cases open now
  by the month, the others by the day (`periods`);
* an hour or a day nobody reported in is not read; a busy hour is read a slice at a time, a busy
  day an hour at a time — for any facet, once the counts say the period holds more cases than a
  page (a grid worker's own reports of a burst, the 待派遣 queue of a morning nobody dispatched);
* what the walk has read whole tells it the facet's share of all cases (`Share`): where the
  share says the rest of an hour, of a day, or a whole day holds about a slice of the facet's
  cases or fewer, it is one read — a rare facet costs a few reads more than before on its first
  busy day, not one read per hour. The share of a facet more common among older cases (超期:
  `buckets.AGING`) is learnt again each day: yesterday's few overdue cases say nothing of the
  day before, whose cases have had a day longer to run out of time.

Where the counts began after the cases (a database upgraded from a version that did not count),
those hours and days are read whole, as before.
"""

from __future__ import annotations

import asyncio
import calendar
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dispatch.clock import stored_instant
from dispatch.store import buckets
from dispatch.store.creation_counts import CreationCounts, month_of
from dispatch.store.query import NEWEST, After, CaseQuery

# A list page reads at most this many buckets; then it answers the rows found so far with a
# cursor where it stopped (keyset pages may be short), so a rare filter costs a bounded time.
BUCKET_BUDGET = 150

# A month of a facet read by the day (`Walk.read_month`), as `periods` names it.
MONTH_BY_DAY = "md"

Read = Callable[[str, "str | None", int], Awaitable[list[dict]]]


@dataclass
class Share:
    """How common the walk's facet is among the cases it has read whole: `matched` of the
    `covered` cases created in those periods."""
    covered: int = 0
    matched: int = 0

    def few(self, cases: int) -> bool:
        """Whether `cases` created cases hold about a slice of the facet's or fewer (one more
        match than seen is assumed: a first slice with none says little)."""
        return self.covered > 0 and (self.matched + 1) * cases <= buckets.SLICE * self.covered

    def add(self, cases: int, matched: int) -> None:
        self.covered += cases
        self.matched += matched


@dataclass
class Window:
    """The creation times a walk covers, and whether each end is the end of everything (no
    case exists beyond it, so a period cut by it is still read whole for `Share`)."""
    newest: datetime
    oldest: datetime
    newest_is_now: bool = True
    oldest_is_start: bool = True

    def holds_all_of(self, start: datetime, end: datetime) -> bool:
        return (start >= self.oldest or self.oldest_is_start) and (end <= self.newest or self.newest_is_now)


@dataclass
class Walk:
    query: CaseQuery
    facets: tuple[str, ...]
    window: Window
    read: Read
    counts: CreationCounts
    counted_from: datetime | None  # cases created from then on were all counted (None: none were)
    now: datetime
    budget: int = field(default_factory=lambda: BUCKET_BUDGET)  # reads a page may make
    # A row as the store answers it (`read` hands rows as stored: a set of facets merges them
    # first and decodes only the page's).
    decode: Callable[[dict], dict] = lambda doc: doc
    found: list[dict] = field(default_factory=list)
    reads: int = 0
    share: Share = field(default_factory=Share)
    biggest_day: int = 0  # the most cases created in a day the walk has counted
    _day_counts: dict[str, dict] = field(default_factory=dict)

    @property
    def newest_first(self) -> bool:
        return self.query.order == NEWEST

    async def run(self) -> tuple[list[dict], After | None]:
        """A page of the query and, if the walk stopped at its budget before the page was full,
        where to resume (the page may then be short or empty)."""
        limit = self.query.limit
        for grain, first, end in periods(self.facets, self.window, self.newest_first, self.now):
            if self.spent():
                return self.found, self.unread(first, end)
            if grain == buckets.HOUR:
                stopped = await self.read_hour(first)
            elif grain == buckets.DAY:
                stopped = await self.read_day(first)
            elif grain == MONTH_BY_DAY:
                stopped = await self.read_month(first)
            else:
                self.found += await self.fetch(grain, first)
                stopped = None
            if stopped is not None:
                return self.found, stopped
            if len(self.found) >= limit:
                return self.found[:limit], None
        return self.found, None

    # -- reading --------------------------------------------------------------------------------

    async def fetch(self, grain: str, at: datetime, slot: str | None = None, again: int = 0) -> list[dict]:
        """One period's bucket of each driving facet (of it, one slice), merged in the query's
        order; `again`: rows of it already taken, read again first."""
        self.reads += len(self.facets)
        wanted = self.query.limit - len(self.found) + again
        rows = await asyncio.gather(*(self.read(buckets.key(facet, buckets.bucket(grain, at)), slot, wanted)
                                      for facet in self.facets))
        if len(rows) == 1:
            return [self.decode(doc) for doc in rows[0]]
        merged = {doc["_id"]: doc for part in rows for doc in part}  # a case may be in two
        ordered = sorted(merged.values(), key=lambda d: (stored_instant(d["created_at"]), d["_id"]),
                         reverse=self.newest_first)
        return [self.decode(doc) for doc in ordered[:wanted]]

    async def fetch_rest(self, grain: str, at: datetime, start: int, counted: int | None = None) -> None:
        """The rest of a period read at once: its whole bucket, less the rows taken from it
        (`found[start:]`, the period's first rows in the walk's order). `counted`: the cases
        created in that rest, where all of it is in the window (what it tells of the share)."""
        taken = {doc["_id"] for doc in self.found[start:]}
        rows = await self.fetch(grain, at, again=len(taken))
        new = [doc for doc in rows if doc["_id"] not in taken]
        self.found += new
        if counted is not None:
            self.share.add(counted, len(new))

    async def read_month(self, month: datetime) -> After | None:
        """A month of a facet read by the day: day by day, until the share says the rest of the
        month (its days at the busiest day's count) holds about a slice of the facet's cases or
        fewer — then the rest is one read (a rare filter, or one nothing matches, covers a year
        in a dozen reads instead of stopping at the budget after 150 days)."""
        days = self.ordered(buckets.days_of(month, self.window.newest, self.window.oldest))
        aging = any(facet.startswith(buckets.AGING) for facet in self.facets)
        start = len(self.found)
        for i, day in enumerate(days):
            if self.spent():
                return self.unread(day, day + timedelta(days=1))
            if not aging and self.biggest_day and self.share.few(self.biggest_day * (len(days) - i)):
                await self.fetch_rest(buckets.MONTH, month, start)
                return None
            stopped = await self.read_day(day)
            if stopped is not None or len(self.found) >= self.query.limit:
                return stopped
        return None

    async def read_day(self, day: datetime) -> After | None:
        """A day of a facet read by the day: whole where it holds few of the facet's cases (or
        its cases were not all counted), else hour by hour."""
        end = day + timedelta(days=1)
        if any(facet.startswith(buckets.AGING) for facet in self.facets):
            self.share, self.biggest_day = Share(), 0
        if self.counted_from is None or day < self.counted_from or (
                self.biggest_day and self.share.few(self.biggest_day)):
            self.found += await self.fetch(buckets.DAY, day)  # (no count read: the share says it is rare)
            return None
        hours = [(hour, await self.hour_count(hour)) for hour in buckets.hours_of(day, self.window.newest, self.window.oldest)]
        total = sum(n or 0 for _, n in hours)
        self.biggest_day = max(self.biggest_day, total)
        if total == 0:
            return None
        if total <= buckets.SLICE or self.share.few(total):
            rows = await self.fetch(buckets.DAY, day)
            self.found += rows
            if self.window.holds_all_of(day, end):
                self.share.add(total, len(rows))
            return None
        start = len(self.found)
        busy = self.ordered([(hour, n) for hour, n in hours if n])
        for i, (hour, _) in enumerate(busy):
            if self.spent():
                return self.unread(hour, hour + timedelta(hours=1))
            rest = sum(n for _, n in busy[i:])
            if i and self.share.few(rest):
                whole = all(self.window.holds_all_of(h, h + timedelta(hours=1)) for h, _ in busy[i:])
                await self.fetch_rest(buckets.DAY, day, start, rest if whole else None)
                return None
            stopped = await self.read_hour(hour)
            if stopped is not None or len(self.found) >= self.query.limit:
                return stopped
        return None

    async def read_hour(self, hour: datetime) -> After | None:
        """An hour: skipped when no case was created in it, whole when it holds few of the
        facet's cases (or its cases were not all counted), else a slice at a time."""
        cases = await self.hour_count(hour)
        if cases == 0:
            return None
        if cases is None or cases <= buckets.SLICE or self.share.few(cases):
            rows = await self.fetch(buckets.HOUR, hour)
            self.found += rows
            if cases is not None and self.window.holds_all_of(hour, hour + timedelta(hours=1)):
                self.share.add(cases, len(rows))
            return None
        return await self.read_slices(hour)

    async def read_slices(self, hour: datetime) -> After | None:
        """A busy hour slice by slice until the page is full (or the budget spent: where to
        resume); once the share says the rest of the hour holds about a slice of the facet's
        cases or fewer, the rest is one read."""
        self.reads += 1
        counts = await self.counts.slices_of_hour(buckets.hour_count_id(hour))
        window = self.window
        slices = [s for s in self.ordered(buckets.hour_slices(hour, counts))
                  if s.start <= window.newest and s.end > window.oldest]
        start = len(self.found)
        for i, part in enumerate(slices):
            if self.spent():
                return self.unread(part.start, part.end)
            rest = sum(s.cases for s in slices[i:])
            if i and self.share.few(rest):
                whole = all(window.holds_all_of(s.start, s.end) for s in slices[i:])
                await self.fetch_rest(buckets.HOUR, hour, start, rest if whole else None)
                return None
            rows = await self.fetch(buckets.HOUR, hour, slot=part.slot)
            self.found += rows
            if window.holds_all_of(part.start, part.end):  # (a slice the cursor cuts tells nothing)
                self.share.add(part.cases, len(rows))
            if len(self.found) >= self.query.limit:
                return None
        return None

    async def hour_count(self, hour: datetime) -> int | None:
        """The cases created in `hour`, None where they were not all counted. The first day's
        counts are read alone; a walk that goes on past it reads the counts of each month it
        enters at once (a walk of a thin facet over two months read each day's, then the day's
        first hour, then the rest, and stopped at the budget after 48 days)."""
        if self.counted_from is None or hour < self.counted_from:
            return None
        day, hour_field = buckets.day_count_key(hour)
        if day not in self._day_counts:
            self.reads += 1
            if not self._day_counts:
                self._day_counts[day] = await self.counts.hours_of_day(day)
            else:
                month = month_of(day)
                found = await self.counts.hours_of_month(month)
                for other in days_of_month(month):  # (a day none was counted in had no case)
                    self._day_counts[other] = found.get(other, {})
        return int(self._day_counts[day].get(hour_field, 0))

    # -- order and budget -----------------------------------------------------------------------

    def ordered(self, items: list) -> list:
        return items if self.newest_first else items[::-1]

    def unread(self, start: datetime, end: datetime) -> After:
        """Nothing from [start, end) on has been read: the next page begins with it."""
        if self.newest_first:
            return After(end, "!")
        return After(start - timedelta(milliseconds=1), "\U0010ffff")

    def spent(self) -> bool:
        return self.reads + len(self.facets) > self.budget


def periods(facets: tuple[str, ...], window: Window, newest_first: bool, now: datetime
            ) -> Iterator[tuple[str, datetime, datetime]]:
    """The buckets a walk reads, in its order: (grain, first instant, end). Made as the walk
    goes: a year of history is 8,760 hours, and making them all took ~100 ms of each list
    request (a walk reads a few).

    A facet holding a large share of all cases is read by the hour, one holding only cases open
    now by the month — except the last two months of one that may hold thousands (超期 in a city
    with a backlog: 1,000s in this month's bucket, 7 s at 1,000,000 cases), by the day — and the
    others by the day (a month at a time: `Walk.read_month` reads the rest of a month at once
    where the facet is rare). A set of facets (a box's cells, a grid worker's area and own reports, the
    statuses of a queue) holds a small share of all cases: by the day, or its reads would
    multiply by the hour (a busy day of it is read by the hour: `Walk.read_day`)."""
    newest, oldest = window.newest, window.oldest

    def ordered(items: list) -> list:
        return items if newest_first else items[::-1]

    if all(facet.startswith(buckets.MONTHLY) for facet in facets):
        by_day = len(facets) == 1 and facets[0] in buckets.DENSE_MONTHLY
        this_month = buckets.months_between(now, now)[0]
        split = (this_month - timedelta(days=1)).replace(day=1)  # the previous month's first instant
        out = []
        for month in buckets.months_between(newest, oldest):
            if by_day and month >= split:
                out += [(buckets.DAY, day, day + timedelta(days=1)) for day in buckets.days_of(month, newest, oldest)]
            else:
                out.append((buckets.MONTH, month, buckets.next_month(month)))
        yield from ordered(out)
        return
    if not (len(facets) == 1 and facets[0].startswith(buckets.HOURLY)):
        for month in ordered(buckets.months_between(newest, oldest)):
            yield MONTH_BY_DAY, month, buckets.next_month(month)
        return
    for day in ordered(buckets.days_between(newest, oldest)):
        for hour in ordered(buckets.hours_of(day, newest, oldest)):
            yield buckets.HOUR, hour, hour + timedelta(hours=1)


def days_of_month(month: str) -> list[str]:
    """The day count documents' ids of a month (`creation_counts.month_of`): "m202602" →
    ["d20260201", …, "d20260228"]."""
    year, number = int(month[1:5]), int(month[5:7])
    return [f"d{year:04d}{number:02d}{day:02d}" for day in range(1, calendar.monthrange(year, number)[1] + 1)]

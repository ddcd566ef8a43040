"""Equality buckets: how a case list is read without reading the history.

FerretDB 1.24 hands PostgreSQL only top-level equality filters (`_jsonb->'f' @> '"v"'`); a
range, an `$in`, a dotted path or a sort is done in Go over every row it fetched. So each case
carries `qk` ("query keys"): one string per (facet, time bucket) it belongs to, e.g.
`cat=0102@d20261127` (category 0102, created on 2026-11-27 UTC) or `open@h2026112714`. A list
is then a walk over buckets, newest first, each one an equality on `qk` that PostgreSQL answers
from a GIN index on `_jsonb->'qk'` (docs/PERFORMANCE.md "FerretDB"); the other filters and the
order within one bucket are applied to that bucket's few rows. On MongoDB the same `qk` is a
multikey index `(qk, created_at, _id)`, so a bucket comes back in order from the index.

A facet is one necessary condition of a query (`open`, `cat=0102`, `in=<jurisdiction>` ...);
the walk is driven by the most selective facet the query implies. Buckets exist at three
grains, month / day / hour: the server engine reads the facets that hold a large share of all
cases (`HOURLY`) by the hour, those holding only cases open now (`MONTHLY`: overdue, 临期, 退单待审, open in a cell) by
the month and the others by the day; the month buckets also serve the map's counts. A busy hour
of a facet read by the hour is read a slice at a time, and an hour nobody reported in is not
read at all ("slices of a busy hour" below).

The deadline sweep's `next_due_at <= now` becomes a walk over minute buckets (`due_minute`)
from the sweep's floor up to now.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from dispatch.domain import OPEN_STATUSES, phone_digits
from dispatch.store.change import get_path
from dispatch.store.query import CaseQuery
from dispatch.store.records import PHOTO_FIELDS

MONTH, DAY, HOUR = "m", "d", "h"
_FORMATS = {MONTH: "%Y%m", DAY: "%Y%m%d", HOUR: "%Y%m%d%H"}
YEAR = "y"

def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def bucket(grain: str, at: datetime) -> str:
    return grain + _utc(at).strftime(_FORMATS[grain])


# Bumped whenever `facets` or `query_keys` change what a case is filed under: a server store
# files its stored cases again at the next start (`MongoCases._backfill_query_fields`).
QUERY_KEYS_VERSION = 5  # 5: the photos a case refers to (`photo_key`)


def caller_facet(phone: str | None) -> str | None:
    """The facet of a caller's number (`tel=` + a hash of its digits, so that no number is
    spelt out in an index or a query plan): every written form of one number gives one facet."""
    digits = phone_digits(phone or "")
    if len(digits) < 5:
        return None
    return "tel=" + hashlib.sha256(digits.encode()).hexdigest()[:16]


# A located case is also filed under its cell of GEO_CELL degrees (about 1 km here): a list of
# a small box (the map close up, "similar cases nearby") reads the cells it covers, at most
# MAX_CELLS of them, instead of walking every case.
GEO_CELL = 0.01
MAX_CELLS = 16


def geo_facet(lng: float, lat: float) -> str:
    return f"geo={math.floor(lng / GEO_CELL)}:{math.floor(lat / GEO_CELL)}"


def box_facets(box) -> tuple[str, ...] | None:
    """The cells a box touches (a point on a cell's edge is in the cell `geo_facet` names),
    or None when there are more than MAX_CELLS."""
    x0, x1 = math.floor(box.west / GEO_CELL), math.floor(box.east / GEO_CELL)
    y0, y1 = math.floor(box.south / GEO_CELL), math.floor(box.north / GEO_CELL)
    if x1 < x0 or y1 < y0 or (x1 - x0 + 1) * (y1 - y0 + 1) > MAX_CELLS:
        return None
    return tuple(f"geo={x}:{y}" for x in range(x0, x1 + 1) for y in range(y0, y1 + 1))


def facets(doc: dict) -> list[str]:
    """Every facet a case belongs to (the conditions a list can be driven by)."""
    out = ["all", f"status={doc.get('status')}", f"src={doc.get('source')}"]
    if doc.get("status") in OPEN_STATUSES:
        out.append("open")
    flags = doc.get("flags") or {}
    if flags.get("overdue") is True:
        out.append("overdue")
        if doc.get("status") in OPEN_STATUSES:
            out.append("open_overdue")  # 当前超期在办: the KPI report's and the command centre's list
    elif flags.get("warning") is True and doc.get("status") in OPEN_STATUSES:
        out.append("open_warning")  # 临期: the command centre's list
    if flags.get("return_pending") is True:
        out.append("return_pending")  # 退单待审: the dispatcher's review queue
    category = (doc.get("category") or {}).get("code")
    if category:
        out.append(f"cat={category}")
    department = (((doc.get("assignment") or {}).get("department")) or {}).get("id")
    if department:
        out.append(f"dept={department}")
    out += [f"seen={d}" for d in doc.get("departments_seen") or ()]
    out += [f"in={j}" for j in doc.get("scope_path") or ()]
    out += [f"rep={r}" for r in doc.get("reporters") or ()]
    caller = caller_facet((doc.get("caller") or {}).get("phone"))
    if caller:
        out.append(caller)
    coordinates = (doc.get("location") or {}).get("coordinates")
    if coordinates:
        cell = geo_facet(coordinates[0], coordinates[1])
        out.append(cell)
        if doc.get("status") in OPEN_STATUSES:
            out.append("open_" + cell)  # the map close up: the open cases in view
    return list(dict.fromkeys(out))


def query_keys(doc: dict) -> list[str]:
    """The `qk` values of one case: each facet at month, day and hour grain (and the year of
    `all`, which tells a walk where the history begins); an open overdue case also under the
    month its stage clock ran out (`overdue_by`, "none" without a stage clock), so the KPI list
    of the most overdue reads the oldest deadlines first, not every overdue case."""
    created = doc["created_at"]
    grains = [bucket(g, created) for g in (MONTH, DAY, HOUR)]
    keys = [f"all@{YEAR}{_utc(created).year}"]
    held = facets(doc)
    for facet in held:
        keys += [f"{facet}@{g}" for g in grains]
    if "open_overdue" in held:
        deadline = (doc.get("clock") or {}).get("deadline")
        keys.append(key(OVERDUE_BY, bucket(MONTH, deadline) if isinstance(deadline, datetime) else "none"))
    keys += [photo_key(i) for i in photo_ids(doc)]
    return keys


def photo_key(attachment_id: str) -> str:
    """The key of a case that refers to the photo `attachment_id` (no time bucket: whoever
    asks for a photo does not know its case): showing a photo to someone other than its
    uploader asks which cases use it, an equality here rather than a scan of every case."""
    return f"photo={attachment_id}"


def photo_ids(doc: dict) -> list[str]:
    """The photos a case refers to, wherever it keeps them (`records.PHOTO_FIELDS`)."""
    out = []
    for field in PHOTO_FIELDS:
        value = get_path(doc, field)
        out += [i for i in value if isinstance(i, str)] if isinstance(value, list) else []
    return list(dict.fromkeys(out))


OVERDUE_BY = "overdue_by"


def key(facet: str, grain_bucket: str) -> str:
    return f"{facet}@{grain_bucket}"


def driving_facet(q: CaseQuery) -> str:
    """The most selective facet `q` implies (every case `q` matches belongs to it)."""
    return min(_candidates(q))[1]


def driving_facets(q: CaseQuery, disjoint: bool = False) -> tuple[str, ...]:
    """The most selective facet, or set of facets, `q` implies: every case `q` matches belongs to
    one of them. A set is a scope of "within or reported by" (a grid worker's), the statuses
    asked for, or the cells of a small box; each of its facets is read and the rows merged.
    `disjoint`: only sets no case belongs to twice (statuses, cells), for counting."""
    candidates = [(rank, 1, (facet,)) for rank, facet in _candidates(q)]
    scope = q.scope
    if not disjoint and scope.department is None and scope.within is not None and scope.reporter is not None:
        candidates.append((5, 0, (f"in={scope.within}", f"rep={scope.reporter}")))
    # The 待派遣 queue: reported or filed (a case has one status). Open statuses only: a set is
    # read by the day, and a day of closed cases is the bulk of a day.
    if len(q.statuses) > 1 and all(st in OPEN_STATUSES for st in q.statuses):
        candidates.append((5, 0, tuple(f"status={st}" for st in q.statuses)))
    cells = box_facets(q.box) if q.box is not None else None
    if cells:
        candidates.append((1, 0, tuple("open_" + cell for cell in cells)) if _open_only(q) else (2, 0, cells))
    return min(candidates)[2]


def _open_only(q: CaseQuery) -> bool:
    """Whether `q` keeps to cases open now (asked for, or implied by the statuses)."""
    return q.open_only or bool(q.statuses and all(s in OPEN_STATUSES for s in q.statuses))


def _candidates(q: CaseQuery) -> list[tuple[int, str]]:
    candidates: list[tuple[int, str]] = []
    scope = q.scope
    if scope.department is not None:
        candidates.append((3, f"seen={scope.department}"))
    elif scope.within is not None and scope.reporter is None:
        candidates.append((6, f"in={scope.within}"))
    elif scope.reporter is not None and scope.within is None:
        candidates.append((1, f"rep={scope.reporter}"))
    if q.reporter is not None:
        candidates.append((0, f"rep={q.reporter}"))
    depth = {"grid": 1, "community": 1, "street": 3, "district": 6}
    for level, ids in q.jurisdictions:
        if len(ids) == 1:
            candidates.append((depth.get(level, 6), f"in={ids[0]}"))
    if len(q.departments) == 1:
        candidates.append((2, f"dept={q.departments[0]}"))
    if len(q.categories) == 1:
        candidates.append((3, f"cat={q.categories[0]}"))
    open_only = _open_only(q)
    if q.warning and open_only:
        candidates.append((1, "open_warning"))
    if q.return_pending:
        candidates.append((1, "return_pending"))
    if q.overdue is True:
        candidates.append((2, "open_overdue") if open_only else (4, "overdue"))
    if len(q.statuses) == 1:
        candidates.append((5 if q.statuses[0] in OPEN_STATUSES else 9, f"status={q.statuses[0]}"))
    if open_only:
        candidates.append((7, "open"))
    if len(q.sources) == 1:
        candidates.append((8, f"src={q.sources[0]}"))
    candidates.append((10, "all"))
    return candidates


# Facets read by the hour: each holds a large share of all cases. Facets read by the month: each
# holds only cases open now, few in any month however old (the others are read by the day).
HOURLY = ("all", "open", "src=", "status=", "in=")
MONTHLY = ("open_overdue", "open_warning", "return_pending", "open_geo=")
# Of those, the ones that may hold thousands of cases at once: their last two months by the day.
DENSE_MONTHLY = ("open_overdue", "open_warning")
# Facets more common among older cases (a case becomes overdue with age): how common one is
# among a day's cases says nothing of an older day's.
AGING = ("overdue", "open_overdue", "open_warning")


# -- slices of a busy hour ------------------------------------------------------------------
#
# An hour bucket of a broad facet (all, open, a source ...) holds every such case of the hour: a
# burst of 500 reports in ten seconds, or a big city's peak hour (~2,500), and FerretDB converts
# each of them before it applies a page's limit (~2 ms a case). So a case also carries `slot`:
# the 10-minute, minute, 10-second and second it was created in (UTC), and the server store
# counts the cases created in each (`case_counts`: a document per day with its hours' totals,
# one per hour with its slices'). A walk reads a busy hour a slice at a time — `{qk: <hour key>,
# slot: <slice>}`, two equalities PostgreSQL answers — splitting a slice while it holds more than
# SLICE cases, and skips the hours no case was created in.

SLICE = 64
# Levels of slices: (prefix, width in seconds, characters of the hour's "%M%S" named).
SLICE_LEVELS = (("a", 600, 1), ("b", 60, 2), ("c", 10, 3), ("d", 1, 4))


def slots(at: datetime) -> list[str]:
    """The slices a case created at `at` is in, one per level: `b202611290130` is the minute
    01:30 of 2026-11-29 (UTC)."""
    at = _utc(at)
    hour, clock = at.strftime("%Y%m%d%H"), at.strftime("%M%S")
    return [f"{level}{hour}{clock[:chars]}" for level, _, chars in SLICE_LEVELS]


def day_count_key(hour: datetime) -> tuple[str, str]:
    """(the day's counts document, the hour's field in it)."""
    return "d" + _utc(hour).strftime("%Y%m%d"), "h" + _utc(hour).strftime("%H")


def hour_count_id(hour: datetime) -> str:
    return "h" + _utc(hour).strftime("%Y%m%d%H")


def created_counts(created: list[datetime]) -> dict[str, dict[str, int]]:
    """What the cases created at `created` add to the counts: {document id: {field: n}} — its
    hour in its day's document, each of its slices in its hour's."""
    out: dict[str, dict[str, int]] = {}
    for at in created:
        day, field = day_count_key(at)
        out.setdefault(day, {}).setdefault(field, 0)
        out[day][field] += 1
        hour = out.setdefault(hour_count_id(at), {})
        clock = _utc(at).strftime("%M%S")
        for level, _, chars in SLICE_LEVELS:
            name = level + clock[:chars]
            hour[name] = hour.get(name, 0) + 1
    return out


@dataclass(frozen=True)
class Slice:
    slot: str
    start: datetime
    end: datetime
    cases: int  # created in it (counted when they were stored)


def hour_slices(hour: datetime, counts: dict) -> list[Slice]:
    """The slices an hour is read in, newest first, from its counts: each level's slices that
    hold cases, a slice of more than SLICE split into the next level's."""
    hour = _utc(hour).replace(minute=0, second=0, microsecond=0)
    name = hour.strftime("%Y%m%d%H")
    levels = {level: depth for depth, (level, _, _) in enumerate(SLICE_LEVELS)}
    within: list[dict[str, list[tuple[str, int]]]] = [{} for _ in SLICE_LEVELS]  # depth → parent → [(clock, n)]
    for field, n in counts.items():  # (only slice fields: `CreationCounts` sums the counts alone)
        depth = levels.get(field[:1])
        if depth is not None:
            within[depth].setdefault(field[1:-1], []).append((field[1:], n))

    def expand(depth: int, parent: str) -> list[Slice]:
        level, width, _ = SLICE_LEVELS[depth]
        out = []
        for clock, n in sorted(within[depth].get(parent, ()), reverse=True):
            if n > SLICE and depth + 1 < len(SLICE_LEVELS):
                out += expand(depth + 1, clock)
            elif n > 0:
                padded = clock.ljust(4, "0")
                start = hour + timedelta(minutes=int(padded[:2]), seconds=int(padded[2:]))
                out.append(Slice(level + name + clock, start, start + timedelta(seconds=width), n))
        return out

    return expand(0, "")


def days_between(newest: datetime, oldest: datetime) -> list[datetime]:
    """First instants of the days from `newest`'s down to `oldest`'s, newest first."""
    at = _utc(newest).replace(hour=0, minute=0, second=0, microsecond=0)
    last = _utc(oldest).replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    while at >= last:
        out.append(at)
        at -= timedelta(days=1)
    return out


def months_between(newest: datetime, oldest: datetime) -> list[datetime]:
    """First instants of the months from `newest`'s down to `oldest`'s, newest first."""
    newest, oldest = _utc(newest), _utc(oldest)
    at = newest.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    out = []
    while at >= oldest.replace(day=1, hour=0, minute=0, second=0, microsecond=0):
        out.append(at)
        at = (at - timedelta(days=1)).replace(day=1)
    return out


def next_month(month: datetime) -> datetime:
    """The first instant of the month after `month`'s."""
    return (_utc(month).replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)).replace(day=1)


def days_of(month: datetime, newest: datetime, oldest: datetime) -> list[datetime]:
    """The days of `month` within [oldest, newest], newest first."""
    start = max(month, _utc(oldest).replace(hour=0, minute=0, second=0, microsecond=0))
    nxt = (month + timedelta(days=32)).replace(day=1)
    at = min(_utc(newest).replace(hour=0, minute=0, second=0, microsecond=0), nxt - timedelta(days=1))
    out = []
    while at >= start:
        out.append(at)
        at -= timedelta(days=1)
    return out


def hours_of(day: datetime, newest: datetime, oldest: datetime) -> list[datetime]:
    start = max(day, _utc(oldest).replace(minute=0, second=0, microsecond=0))
    at = min(_utc(newest).replace(minute=0, second=0, microsecond=0), day + timedelta(hours=23))
    out = []
    while at >= start:
        out.append(at)
        at -= timedelta(hours=1)
    return out


# -- text search ----------------------------------------------------------------------------

# FerretDB has no text index: `q` searches the cases created in this recent window (or the
# window the caller gave with from/to, cut to this length), and the answer says which.
TEXT_WINDOW = timedelta(days=7)
CASE_NUMBER = re.compile(r"^\d{8}-\d{6}$")


# -- deadline sweep ---------------------------------------------------------------------------

# A case written at t is filed under the minute max(next_due_at, t - DUE_SLACK), never under a
# minute the sweep has already walked past (the sweep's floor stays DUE_SLACK behind its now).
# It carries that minute and its hour and day (`due_keys`), so a walk skips empty stretches.
DUE_SLACK = timedelta(minutes=2)
DUE_DAY, DUE_HOUR, DUE_MINUTE = "d", "h", "m"
_DUE_FORMATS = {DUE_DAY: "%Y%m%d", DUE_HOUR: "%Y%m%d%H", DUE_MINUTE: "%Y%m%d%H%M"}


def due_keys(next_due_at: datetime | None, written_at: datetime) -> list[str]:
    if not isinstance(next_due_at, datetime):
        return []
    at = max(_utc(next_due_at), _utc(written_at) - DUE_SLACK)
    return [due_key(grain, at) for grain in (DUE_DAY, DUE_HOUR, DUE_MINUTE)]


def due_key(grain: str, at: datetime) -> str:
    return grain + _utc(at).strftime(_DUE_FORMATS[grain])


def due_aligned(at: datetime, span: timedelta) -> bool:
    at = _utc(at)
    if span >= timedelta(days=1):
        return at.hour == 0 and at.minute == 0
    return at.minute == 0


def minute(at: datetime) -> str:
    return _utc(at).strftime("%Y%m%d%H%M")


def minute_start(label: str) -> datetime:
    return datetime.strptime(label, "%Y%m%d%H%M").replace(tzinfo=timezone.utc)

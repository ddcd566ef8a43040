"""The values callers hand the store: what to find, and what to change.

Only the engines (`memory.py`, `mongo.py`) turn these into their own terms; no other module
builds a database filter or an update document. Each value says what the caller means in the
domain's words (a reader's scope, the case list's filters, a case's change), so a new engine is
one translation of these few types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dispatch.errors import ApiError
from geo.city import LEVELS  # noqa: F401 - the city model's levels, which CaseQuery filters by


@dataclass(frozen=True)
class Scope:
    """Which cases a reader may see (decided by `dispatch.access.policy.case_scope`).

    Exactly one of: everything; the cases ever assigned to `department`; the cases lying in the
    jurisdiction `within` (with, for reporters, also those `reporter` reported anywhere).
    """

    everything: bool = False
    department: str | None = None
    within: str | None = None
    reporter: str | None = None

    def admits(self, case: dict) -> bool:
        """This scope's rule for one case document in hand (the engines apply it in queries)."""
        if self.everything:
            return True
        if self.department is not None:
            return self.department in (case.get("departments_seen") or ())
        if self.within is not None and self.within in (case.get("scope_path") or ()):
            return True
        return self.reporter is not None and self.reporter in (case.get("reporters") or ())


EVERYTHING = Scope(everything=True)


@dataclass(frozen=True)
class TextSearch:
    """`q=`: a substring of a case's number, description or address.

    A reader who may not see a case's caller searches only its masked text
    (`search_masked`), so a search cannot recover what the mask hides. `raw_for_all`
    (admins) searches the stored text of every case; `raw_for_creator` (an operator) the stored
    text of the cases that user took.
    """

    text: str
    raw_for_all: bool = False
    raw_for_creator: str | None = None


@dataclass(frozen=True)
class Box:
    west: float
    south: float
    east: float
    north: float

    def contains(self, lng: float, lat: float) -> bool:
        return self.west <= lng <= self.east and self.south <= lat <= self.north


@dataclass(frozen=True)
class After:
    """Keyset cursor: the last case of the previous page, in the query's order."""

    created_at: datetime | None
    case_id: str


# Orders a case list can be read in.
NEWEST = "newest"  # created_at desc, id desc: the lists
OLDEST = "oldest"  # created_at asc, id asc: catch-up in time order
BY_ID = "id"  # id asc: walking every case (audit verification)
ORDERS = (NEWEST, OLDEST, BY_ID)


@dataclass(frozen=True)
class CaseQuery:
    """The case list's filters (SPEC §3 plus the pages' own), all AND-ed with the scope."""

    scope: Scope = EVERYTHING
    statuses: tuple[str, ...] = ()
    open_only: bool = False  # only cases not yet closed, void or merged
    categories: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    # level → ids: {"district": ("330102",)}; a case matches if its id at that level is listed.
    jurisdictions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    sources: tuple[str, ...] = ()
    overdue: bool | None = None
    warning: bool = False  # only 临期 cases: warned of their deadline and not yet overdue
    supervised: bool = False  # only cases under 督办
    return_pending: bool = False  # only cases whose department asked to give them back (退单待审)
    reporter: str | None = None  # mine=true: cases this user reported
    box: Box | None = None  # cases located inside (cases without a location never match)
    text: TextSearch | None = None
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    order: str = NEWEST
    after: After | None = None
    limit: int = 50

    def __post_init__(self):
        if self.order not in ORDERS:
            raise ValueError(f"unknown order {self.order!r}")


@dataclass(frozen=True)
class PeriodQuery:
    """The cases that can contribute to KPI figures of [start, end) (a superset; the figures
    filter by time): created before the end and touched, closed, due or still open in the
    period, plus open overdue cases."""

    start: datetime
    end: datetime
    scope: Scope = EVERYTHING
    within: str | None = None  # the report's jurisdiction (None: the whole city)


@dataclass
class Change:
    """One version-guarded change to a case, described, not yet written.

    Paths are dotted (`flags.overdue`). `push` appends the listed items to each named array;
    `add_to_set` adds the values not yet present; `pull_values` removes the listed values;
    `pull_matching` removes the sub-documents whose fields equal the given ones.
    The store adds one to `version`.
    """

    sets: dict[str, Any] = field(default_factory=dict)
    unsets: set[str] = field(default_factory=set)
    inc: dict[str, int] = field(default_factory=dict)
    push: dict[str, list] = field(default_factory=dict)
    add_to_set: dict[str, list] = field(default_factory=dict)
    pull_values: dict[str, list] = field(default_factory=dict)
    pull_matching: dict[str, dict] = field(default_factory=dict)


class StoreUnavailable(ApiError):
    """The database cannot be reached or did not answer in time. The API answers 503 with
    Retry-After; a write whose answer was lost is safe to retry (intake by `client_id`,
    actions by `version`)."""

    def __init__(self, detail: str = ""):
        super().__init__(503, "store_unavailable", "数据库暂时不可用，请稍后重试", retry_after=RETRY_AFTER_SECONDS)
        self.detail = detail

    def __str__(self) -> str:
        return f"503 store_unavailable: {self.detail}"


RETRY_AFTER_SECONDS = 5


def number_parts(number) -> tuple[str, int] | None:
    """(day, sequence) of a case number as `next_number` gives it ("20261123-000042"), else None."""
    if not isinstance(number, str):
        return None
    day, _, seq = number.partition("-")
    if len(day) != 8 or not day.isdigit() or not seq.isdigit():
        return None
    return day, int(seq)


class DuplicateCase(Exception):
    """A case with this id, or this (user, client_id), is stored already."""

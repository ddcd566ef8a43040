"""KPIs of the closed loop (SPEC §5): what each figure means, and how it is computed.

Every figure is read from the case documents and their append-only history, never from
counters that an action might have forgotten to bump. One query fetches the cases that can
matter for the period (with a projection of the fields used here); everything else is done in
Python in one pass, so grouping by department, district or street costs no extra query.

How a case contributes:

* each history event (report, file, dispatch, sign, feedback, check, close, ...) counts in the
  period that contains its instant;
* the figure is charged to the department responsible at that instant (the department of the
  latest dispatch before it; events before the first dispatch go to the first one) and to the
  case's district and street;
* a ratio whose denominator is zero is `None` ("no basis"), never 0.

The exact definition of every figure is `FIGURES[...].formula`, returned next to each value.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable, Iterable, NamedTuple

from dispatch.domain import OPEN_STATUSES, STATUSES
from dispatch.store.query import EVERYTHING, PeriodQuery, Scope
from dispatch.validation import MAX_YEAR, MIN_YEAR, iso_instant
from dispatch.workflow.stageclock import stage_deadline

log = logging.getLogger(__name__)

GROUP_BY = ("department", "district", "street", "community")
# What the rollups keep apart (dispatch/kpi/rollups.py); by community a report reads the cases
# (asked for inside a street: a few thousand cases a month at most).
ROLLED_UP_GROUPS = ("department", "district", "street")
# The row's parent area, named beside it (a street's district, a community's street).
PARENT_LEVEL = {"street": "district", "community": "street"}
SATISFIED = ("satisfied", "basic")
SATISFACTIONS = ("satisfied", "basic", "unsatisfied")
DEFAULT_TOP = 20

# Fields the KPIs read; everything else (descriptions, photos, hashes...) stays in the store.
PROJECTION = (
    "_id", "number", "status", "priority", "source", "category",
    "jurisdiction", "assignment.department", "deadlines", "clock", "flags",
    "callback", "callbacks", "closed_at", "created_at",
    "history.at", "history.action", "history.to", "history.passed", "history.department",
    "history.due_at",
    "support",  # whole: FerretDB 1.24 does not project a path through an array
)


# --------------------------------------------------------------------------------------------
# The figures
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    key: str
    name: str
    kind: str  # "count" | "ratio" | "hours"
    formula: str
    numerator: str | None = None  # tally keys
    denominator: str | None = None
    complement: bool = False  # value = 1 − numerator/denominator (准确派遣率)


DUE = "处置时限（handle_by）在统计期内且已到期的案件，不含作废、并案"

FIGURES: tuple[Figure, ...] = (
    Figure("reported", "上报数", "count", "统计期内上报或登记的案件数"),
    Figure("filed", "立案数", "count", "统计期内立案的案件数（同一案件只计一次）"),
    Figure("closed", "结案数", "count", "统计期内首次结案（含即时办结）的案件数（同一案件只计一次，重办后再结案不重复计）"),
    Figure("overdue", "超期数", "count", "统计期内首次发生超期的案件数（同一案件只计一次）"),
    Figure("open_overdue", "当前超期在办数", "count", "目前仍在办理且已超期的案件数（不受统计期限制）"),
    Figure("due", "应结案数", "count", f"应结案数 = {DUE}"),
    Figure("close_rate", "结案率", "ratio",
           f"应结案案件中截至统计期末已结案的件数 / 应结案数（应结案：{DUE}）",
           "due_closed", "due"),
    Figure("on_time_close_rate", "按期结案率", "ratio",
           "按期结案数 / 应结案数；按期结案：已结案，且最后一次处置反馈不晚于处置时限",
           "due_closed_on_time", "due"),
    Figure("on_time_handle_rate", "按期处置率", "ratio",
           "按期处置数 / 应处置数；应处置数即应结案数，按期处置：最后一次处置反馈不晚于处置时限",
           "due_handled_on_time", "due"),
    Figure("rework_rate", "返工率", "ratio",
           "返工数 / 处置反馈数；统计期内的处置反馈中，随后核查不通过或结案后重办的次数 / 统计期内处置反馈次数",
           "reworked", "handled"),
    Figure("return_rate", "退单率", "ratio",
           "退单数 / 派遣数；统计期内的派遣中，被承办部门退回（退单）的次数 / 统计期内派遣次数",
           "returned", "dispatched"),
    Figure("accurate_dispatch_rate", "准确派遣率", "ratio",
           "1 − 退单率 =（派遣数 − 退单数）/ 派遣数", "returned", "dispatched", complement=True),
    Figure("reassign_rate", "改派率", "ratio",
           "改派数 / 派遣数；统计期内的派遣中，承办部门申请退回并经批准改派（approve_return）的次数 / 统计期内派遣次数",
           "reassigned", "dispatched"),
    Figure("response_rate", "响应率", "ratio",
           "在签收时限内签收的派遣次数 / 派遣次数（统计期内的派遣；尚未签收且未到签收时限的不计入）",
           "signed_on_time", "sign_settled"),
    Figure("satisfaction_rate", "满意率", "ratio",
           "（满意 + 基本满意）/ 回访成功数（统计期内回访且联系上来电人的工单）",
           "satisfied", "callbacks"),
    Figure("resolution_rate", "解决率", "ratio",
           "已解决 / 回访成功数（统计期内回访且联系上来电人的工单）", "resolved", "callbacks"),
    Figure("repeat_call_rate", "重复来电率", "ratio",
           "重复来电数 / 热线工单数；统计期内登记的热线工单中，作为重复来电并入在办原工单（并案）的件数 / 统计期内登记的热线工单数",
           "repeat_calls", "hotline_reported"),
    Figure("support_tasks", "协办任务数", "count",
           "统计期内派给协办部门的协办任务数（主办/协办案件中每个协办部门计一次），计入该协办部门"),
    Figure("support_on_time_rate", "协办按期反馈率", "ratio",
           "按期反馈的协办任务数 / 已了结的协办任务数；统计期内协办部门反馈，或主办反馈时已超时未反馈（记为失效）的协办任务中，"
           "在协办时限内反馈的比例，计入该协办部门",
           "support_on_time", "support_settled"),
    Figure("avg_handle_hours_working", "平均处置时长（工作小时）", "hours",
           "Σ（首次处置反馈时间 − 派遣时间）/ 处置件次，只计工作日的工作时间；统计期内反馈的计入",
           "handle_working_seconds", "handle_pairs"),
    Figure("avg_handle_hours_natural", "平均处置时长（自然小时）", "hours",
           "Σ（首次处置反馈时间 − 派遣时间）/ 处置件次，按自然时间；统计期内反馈的计入",
           "handle_natural_seconds", "handle_pairs"),
)
FIGURE_BY_KEY = {f.key: f for f in FIGURES}


def figure_values(tally: Counter) -> list[dict]:
    """The figures of one row (or of the total), each with its numerator, denominator, formula."""
    out = []
    for f in FIGURES:
        item = {"key": f.key, "name": f.name, "value": None, "formula": f.formula}
        if f.kind == "count":
            item["value"] = int(tally[f.key])
        elif f.kind == "ratio":
            num, den = int(tally[f.numerator]), int(tally[f.denominator])
            if f.complement:
                num = den - num
            item.update(value=round(num / den, 4) if den else None, numerator=num, denominator=den)
        else:  # hours: average of a sum of seconds
            total, n = tally[f.numerator] / 3600, int(tally[f.denominator])
            item.update(value=round(total / n, 2) if n else None, numerator=round(total, 2), denominator=n)
        out.append(item)
    return out


# --------------------------------------------------------------------------------------------
# The period
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """[start, end) as UTC instants; `first_day`/`last_day` are the city-local calendar days."""

    start: datetime
    end: datetime
    first_day: date
    last_day: date

    def contains(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end

    @classmethod
    def days(cls, first: date, last: date, tz) -> "Period":
        """From local midnight of `first` to local midnight after `last` (both days included)."""
        start = datetime.combine(first, time(), tz).astimezone(timezone.utc)
        end = datetime.combine(last + timedelta(days=1), time(), tz).astimezone(timezone.utc)
        return cls(start, end, first, last)

    @classmethod
    def month_of(cls, day: date, tz) -> "Period":
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return cls.days(first, following - timedelta(days=1), tz)


class PeriodError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _parse_bound(raw: str, field: str, tz) -> tuple[datetime, bool]:
    """(instant, is_bare_date). A bare date or a naive time is read in the city's timezone; the
    years are those `iso_instant` accepts, so adding a day or an offset cannot overflow."""
    try:
        return iso_instant(raw, tz)
    except ValueError:
        raise PeriodError(
            field, f"参数 {field} 必须是 {MIN_YEAR}–{MAX_YEAR} 年间的 ISO 日期（如 2026-11-01）或时间",
        ) from None


def parse_period(raw_from: str | None, raw_to: str | None, tz, now: datetime) -> Period:
    """`from`/`to` as the stats form sends them; the default is the current month.

    A bare `to` date is included (from=2026-11-01&to=2026-11-30 is all of November); a `to` with
    a time is an exclusive instant.
    """
    if not raw_from and not raw_to:
        return Period.month_of(now.astimezone(tz).date(), tz)
    if raw_from:
        start, _ = _parse_bound(raw_from.strip(), "from", tz)
    if raw_to:
        end, bare = _parse_bound(raw_to.strip(), "to", tz)
        if bare:
            end += timedelta(days=1)
    if not raw_from:
        start = datetime.combine((end - timedelta(microseconds=1)).astimezone(tz).date().replace(day=1), time(), tz)
    if not raw_to:
        end = datetime.combine(Period.month_of(start.astimezone(tz).date(), tz).last_day + timedelta(days=1),
                               time(), tz)
    if end <= start:
        raise PeriodError("to", "统计期的结束必须晚于开始")
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    return Period(start.astimezone(timezone.utc), end.astimezone(timezone.utc), start.astimezone(tz).date(), last)


# --------------------------------------------------------------------------------------------
# One case, read for the KPIs
# --------------------------------------------------------------------------------------------


def _utc(value):
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value if isinstance(value, datetime) else None


def _moment(entry: dict) -> datetime | None:
    """When the event happened: the sweep records a crossed threshold later than it fell due
    (`due_at`), and the figures count it at the moment it fell due."""
    return _utc(entry.get("due_at")) or _utc(entry.get("at"))


NO_DEPARTMENT = {"id": None, "name": "未派遣"}
NO_PLACE = {"id": None, "name": "未定位"}


class CaseTimeline:
    """A case's history as the KPIs need it, and who was responsible for it when."""

    def __init__(self, case: dict, department_names: dict[str, str]):
        self.case = case
        self.names = department_names
        self.entries = [dict(e, at=at) for e in case.get("history") or [] if (at := _moment(e)) is not None]
        current = ((case.get("assignment") or {}).get("department")) or None
        self.current_department = self._department(current, department_names) or NO_DEPARTMENT
        self.dispatches = [i for i, e in enumerate(self.entries) if e.get("action") == "dispatch"]
        # Responsibility changes at each dispatch.
        self._changes = [self.entries[i]["at"] for i in self.dispatches]
        self._owners = [self._owner(i, department_names) for i in self.dispatches]

    def _owner(self, index: int, names: dict[str, str]) -> dict:
        named = self._department(self.entries[index].get("department"), names)
        if named:
            return named
        # An automatic dispatch at intake does not name its department; a return ending it
        # does. Otherwise the current assignment is the best knowledge there is.
        for later in self.following(index, ("dispatch",)):
            if later.get("action") == "return":
                named = self._department(later.get("department"), names)
                if named:
                    return named
        return self.current_department

    @staticmethod
    def _department(value, names: dict[str, str]) -> dict | None:
        if isinstance(value, dict) and value.get("id"):
            return {"id": value["id"], "name": value.get("name") or names.get(value["id"], value["id"])}
        if isinstance(value, str) and value:
            return {"id": value, "name": names.get(value, value)}
        return None

    def named(self, department_id: str) -> dict:
        return self._department(department_id, self.names)

    def department_at(self, moment: datetime) -> dict:
        if not self._owners:
            return self.current_department
        index = bisect_right(self._changes, moment) - 1
        return self._owners[max(index, 0)]

    def first_ever(self, actions: tuple[str, ...]) -> datetime | None:
        """When the case first did one of `actions` (a case closed, reopened and closed again
        counts as closed once, when it first closed: so the figures of two periods add up)."""
        for e in self.entries:
            if e.get("action") in actions:
                return e["at"]
        return None

    def last_of(self, actions: tuple[str, ...]) -> str | None:
        for e in reversed(self.entries):
            if e.get("action") in actions:
                return e["action"]
        return None

    def last_at(self, action: str) -> datetime | None:
        for e in reversed(self.entries):
            if e.get("action") == action:
                return e["at"]
        return None

    def following(self, index: int, stop: tuple[str, ...]):
        """Entries after `index` up to (not including) the next one whose action is in `stop`."""
        for e in self.entries[index + 1:]:
            if e.get("action") in stop:
                return
            yield e


def category_sign_deadline(categories: dict, calendar) -> Callable[[dict, datetime, bool], datetime | None]:
    """The sign deadline of a dispatch: the stored one for the latest dispatch, otherwise the
    category's sign limit counted from the dispatch (what the workflow sets when it dispatches).
    Earlier dispatches' deadlines were overwritten by later ones, hence the recomputation."""

    def deadline(case: dict, dispatched_at: datetime, latest: bool) -> datetime | None:
        stored = _utc((case.get("deadlines") or {}).get("sign_by"))
        if latest and stored is not None:
            return stored
        category = categories.get(((case.get("category") or {}).get("code")))
        if category is None:
            return stored if latest else None
        limits = dict(category.limits or {})
        if case.get("priority") == "urgent" and category.urgent_limits:
            limits.update(category.urgent_limits)
        if not limits.get("sign"):
            return None
        try:
            return calendar.add(dispatched_at, limits["sign"])
        except ValueError:
            log.warning("category %s: unusable sign limit %r", category.code, limits["sign"])
            return None

    return deadline


class Fact(NamedTuple):
    """One thing a case contributes to the figures.

    `at` is the instant that places it in a period (None: a state of the case now, counted
    whatever the period); `until`, when set, is an instant that must have passed (the fact
    counts only if `until` < now: a deadline that has come); `late`, when set, is an instant
    that must lie before the period's end (a due case counts as closed only if it was closed
    by the end of the period). Facts do not depend on the period or on the time of asking,
    so the same facts serve the full computation and the per-day rollups
    (dispatch/kpi/rollups.py).
    """

    key: str
    amount: float
    at: datetime | None
    until: datetime | None = None
    late: datetime | None = None
    # Charged to this department (id) rather than to the one responsible for the case at `at`:
    # a supporting department's part of a joint case (主办/协办).
    department: str | None = None

    def counts(self, period: Period, now: datetime) -> bool:
        if self.at is None:
            return True
        return (period.contains(self.at) and (self.until is None or self.until < now)
                and (self.late is None or self.late < period.end))


def all_facts(timeline: CaseTimeline, calendar, sign_deadline):
    """Every `Fact` of one case, whatever the period."""
    case = timeline.case
    status = case.get("status")
    created = _utc(case.get("created_at"))

    if created is not None:
        yield Fact("reported", 1, created)
        yield Fact(f"status:{status}", 1, created)
        if case.get("source") == "hotline":
            yield Fact("hotline_reported", 1, created)
            if timeline.last_of(("merge", "merge_undone")) == "merge":
                yield Fact("repeat_calls", 1, created)
    for key, actions in (("filed", ("file",)), ("closed", ("close", "answer")), ("overdue", ("overdue",))):
        at = timeline.first_ever(actions)
        if at is not None:
            yield Fact(key, 1, at)
    if status in OPEN_STATUSES and (case.get("flags") or {}).get("overdue"):
        yield Fact("open_overdue", 1, None)

    yield from _due_facts(timeline)
    yield from _dispatch_facts(timeline, sign_deadline)
    yield from _feedback_facts(timeline, calendar)
    yield from _callback_facts(timeline)
    yield from _support_facts(case)


def trend_reported(tally) -> float:
    """Cases reported, less those later voided or merged (the trend panel's 上报: a case that
    turned out to be nothing, or the same as another, is not a problem of that day)."""
    return tally["reported"] - tally["status:void"] - tally["status:merged"]


def case_facts(timeline: CaseTimeline, period: Period, now: datetime, calendar, sign_deadline):
    """(tally key, amount, instant) for everything one case contributes to the period."""
    for fact in all_facts(timeline, calendar, sign_deadline):
        if fact.counts(period, now):
            yield fact.key, fact.amount, fact.at if fact.at is not None else now, fact.department


def _due_facts(timeline: CaseTimeline):
    """应结案: the handle deadline fell in the period and has passed (a future one is not due yet)."""
    case = timeline.case
    handle_by = _utc((case.get("deadlines") or {}).get("handle_by"))
    if handle_by is None:
        return
    if case.get("status") in ("void", "merged"):
        return
    yield Fact("due", 1, handle_by, until=handle_by)
    last_feedback = timeline.last_at("feedback")
    on_time = last_feedback is not None and last_feedback <= handle_by
    closed_at = _utc(case.get("closed_at")) or timeline.last_at("close")
    closed = case.get("status") == "closed" and closed_at is not None
    if on_time:
        yield Fact("due_handled_on_time", 1, handle_by, until=handle_by)
    if closed:
        yield Fact("due_closed", 1, handle_by, until=handle_by, late=closed_at)
        if on_time:
            yield Fact("due_closed_on_time", 1, handle_by, until=handle_by, late=closed_at)


def _dispatch_facts(timeline: CaseTimeline, sign_deadline):
    latest = timeline.dispatches[-1] if timeline.dispatches else None
    for index in timeline.dispatches:
        at = timeline.entries[index]["at"]
        yield Fact("dispatched", 1, at)
        after = list(timeline.following(index, ("dispatch",)))
        if any(e.get("action") == "return" for e in after):
            yield Fact("returned", 1, at)
        if any(e.get("action") == "approve_return" for e in after):
            yield Fact("reassigned", 1, at)
        deadline = sign_deadline(timeline.case, at, index == latest)
        outcome = next((e for e in after if e.get("action") in ("sign", "return")), None)
        if outcome is None and index != latest:
            outcome = {"action": "dispatch"}  # re-dispatched before anybody signed
        if outcome is None:
            if deadline is not None:  # settled (unsigned) once the sign limit has passed
                yield Fact("sign_settled", 1, at, until=deadline)
        else:
            yield Fact("sign_settled", 1, at)
            if outcome["action"] == "sign" and (deadline is None or outcome["at"] <= deadline):
                yield Fact("signed_on_time", 1, at)


def _feedback_facts(timeline: CaseTimeline, calendar):
    entries = timeline.entries
    dispatched_at = None
    first_since_dispatch = False
    for index, e in enumerate(entries):
        action = e.get("action")
        if action == "dispatch":
            dispatched_at, first_since_dispatch = e["at"], True
            continue
        if action != "feedback":
            continue
        yield Fact("handled", 1, e["at"])
        reworked = any(_sends_back(x) for x in timeline.following(index, ("feedback",)))
        if reworked:
            yield Fact("reworked", 1, e["at"])
        if first_since_dispatch and dispatched_at is not None:
            yield Fact("handle_pairs", 1, e["at"])
            yield Fact("handle_natural_seconds", (e["at"] - dispatched_at).total_seconds(), e["at"])
            yield Fact("handle_working_seconds", calendar.working_seconds_between(dispatched_at, e["at"]), e["at"])
        first_since_dispatch = False


def _sends_back(entry: dict) -> bool:
    """返工: a check that did not pass, or a closed case reopened for more work."""
    if entry.get("action") == "check":
        return entry.get("passed") is False or entry.get("to") == "accepted"
    return entry.get("action") == "reopen"


def _support_facts(case: dict):
    """协办 (主办/协办): each supporting department's part, charged to that department. A part is
    settled by its feedback or when the lead's feedback found it lapsed (dispatch.workflow.joint);
    on time = fed back with its clock never past due."""
    for part in case.get("support") or []:
        department = (part.get("department") or {}).get("id")
        dispatched = _utc(part.get("dispatched_at"))
        if not department or dispatched is None:
            continue
        yield Fact("support_tasks", 1, dispatched, department=department)
        fed_back = _utc((part.get("feedback") or {}).get("at"))
        settled = fed_back or _utc(part.get("lapsed_at"))
        if settled is None:
            continue
        yield Fact("support_settled", 1, settled, department=department)
        if fed_back is not None and not part.get("late"):
            yield Fact("support_on_time", 1, settled, department=department)


def _callback_facts(timeline: CaseTimeline):
    """A ticket counts once, with its latest successful callback (an unanswered call later on
    does not erase what the caller said before)."""
    case = timeline.case
    callbacks = case.get("callbacks") or ([case["callback"]] if case.get("callback") else [])
    reached = [c for c in callbacks if isinstance(c, dict) and c.get("contacted") is not False
               and c.get("satisfaction") in SATISFACTIONS]
    if not reached:
        return
    callback = reached[-1]
    at = _utc(callback.get("at")) or timeline.last_at("check")
    if at is None:
        return
    yield Fact("callbacks", 1, at)
    if callback["satisfaction"] in SATISFIED:
        yield Fact("satisfied", 1, at)
    if callback.get("resolved") is True:
        yield Fact("resolved", 1, at)


# --------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    group: dict
    tally: Counter

    def as_dict(self, described: bool = True) -> dict:
        """`described`: each figure with its name and formula (the total); the group rows give
        values only — a city's hundreds of department rows would repeat the same texts."""
        by_status = {s: int(self.tally[f"status:{s}"]) for s in STATUSES}
        kpis = figure_values(self.tally)
        if not described:
            kpis = [{k: v for k, v in item.items() if k not in ("name", "formula")} for item in kpis]
        return {"group": self.group, "kpis": kpis, "by_status": by_status}


def sorted_rows(rows: Iterable[Row], seeded: set) -> list[Row]:
    """The seeded groups, and the others that have something to show; unplaced last."""
    shown = [r for r in rows if r.group["id"] in seeded or any(r.tally.values())]
    return sorted(shown, key=lambda r: (r.group["id"] is None, r.group["id"] or ""))


class KpiAggregator:
    """Folds case facts into one row per group plus a total, in a single pass over the cases."""

    def __init__(self, *, period: Period, group_by: str, now: datetime, calendar, sign_deadline,
                 department_names: dict[str, str], department: str | None = None):
        if group_by not in GROUP_BY:
            raise ValueError(group_by)
        self.period, self.group_by, self.now = period, group_by, now
        self.calendar, self.sign_deadline = calendar, sign_deadline
        self.department_names = department_names
        self.department = department  # a department user's own share only
        self.rows: dict = {}
        self.total = Counter()
        self.overdue_cases: list[tuple[dict, CaseTimeline]] = []
        self.seeded: set = set()

    def seed(self, groups: Iterable[dict]) -> None:
        """Groups that get a row even with nothing to count (every street of a district...)."""
        for group in groups:
            self.rows.setdefault(group["id"], Row(group, Counter()))
            self.seeded.add(group["id"])

    def add(self, case: dict) -> None:
        timeline = CaseTimeline(case, self.department_names)
        for key, amount, at, charged in case_facts(timeline, self.period, self.now, self.calendar, self.sign_deadline):
            department = timeline.named(charged) if charged else timeline.department_at(at)
            if self.department is not None and department["id"] != self.department:
                continue
            group = self._group(case, department)
            row = self.rows.get(group["id"])
            if row is None:
                row = self.rows[group["id"]] = Row(group, Counter())
            row.tally[key] += amount
            self.total[key] += amount
        self.note_overdue(case, timeline)

    def note_overdue(self, case: dict, timeline: CaseTimeline | None = None) -> None:
        """Keep `case` for the overdue list if it is open, overdue and (for a department's
        report) that department's now."""
        if case.get("status") in OPEN_STATUSES and (case.get("flags") or {}).get("overdue"):
            timeline = timeline or CaseTimeline(case, self.department_names)
            department = timeline.department_at(self.now)
            if self.department is None or department["id"] == self.department:
                self.overdue_cases.append((case, timeline))

    def _group(self, case: dict, department: dict) -> dict:
        if self.group_by == "department":
            return department
        jurisdiction = case.get("jurisdiction") or {}
        node = jurisdiction.get(self.group_by)
        if not node:
            return NO_PLACE
        group = {"id": node["id"], "name": node.get("name") or node["id"]}
        parent = PARENT_LEVEL.get(self.group_by)
        if parent:
            group[parent] = (jurisdiction.get(parent) or {}).get("name")
        return group

    def rows_sorted(self) -> list[Row]:
        return sorted_rows(self.rows.values(), self.seeded)

    def overdue_list(self, top: int, tz) -> list[dict]:
        items = []
        for case, timeline in self.overdue_cases:
            deadline = stage_deadline(case)
            jurisdiction = case.get("jurisdiction") or {}
            items.append({
                "id": case["_id"],
                "number": case.get("number"),
                "status": case.get("status"),
                "category": (case.get("category") or {}).get("name"),
                "department": timeline.department_at(self.now)["name"],
                "district": (jurisdiction.get("district") or {}).get("name"),
                "street": (jurisdiction.get("street") or {}).get("name"),
                "deadline": deadline,
                "overdue_hours": round((self.now - deadline).total_seconds() / 3600, 1) if deadline else None,
            })
        far = datetime.max.replace(tzinfo=timezone.utc)
        items.sort(key=lambda item: (item["deadline"] or far, item["number"] or ""))
        for item in items:
            item["deadline"] = iso(item["deadline"], tz)
        return items[:top]


def iso(value: datetime | None, tz) -> str | None:
    return value.astimezone(tz).isoformat(timespec="seconds") if value else None


# --------------------------------------------------------------------------------------------
# Entry points: the API and the daily snapshot
# --------------------------------------------------------------------------------------------


def scope_info(city, scope: str) -> dict:
    if scope == city.id:
        return {"id": city.id, "name": city.name, "level": "city"}
    node = city.jurisdictions[scope]
    return {"id": node.id, "name": node.name, "level": node.level}


def seed_groups(city, scope: str, group_by: str, department: str | None) -> list[dict]:
    """Rows shown even when empty: the scope's districts/streets/communities, or the departments
    serving it. (Walks the jurisdictions of one level, never the city's thousands of grids.)"""
    if group_by == "department":
        if department:
            d = city.departments.get(department)
            return [{"id": department, "name": d.name if d else department}]
        above = set(city.ancestors(scope)) if scope != city.id else {city.id}
        return [{"id": d.id, "name": d.name} for d in city.departments.values()
                if d.jurisdiction in above or (d.jurisdiction in city.jurisdictions and scope in city.ancestors(d.jurisdiction))]
    groups = []
    for node in sorted((j for j in city.jurisdictions.values() if j.level == group_by), key=lambda j: j.id):
        if scope != city.id and scope not in city.ancestors(node.id):
            continue
        group = {"id": node.id, "name": node.name}
        if group_by in PARENT_LEVEL:
            parent = city.jurisdictions.get(node.parent) if node.parent else None
            wanted = PARENT_LEVEL[group_by]
            group[wanted] = parent.name if parent is not None and parent.level == wanted else None
        groups.append(group)
    return groups


def from_rollups(city, tz, *, reader: Scope, scope: str, period: Period) -> bool:
    """Whether the rollups can answer: a period of whole city days, a city, district or
    street scope, and a reader who sees all of it (or a department, whose share the rollups
    keep apart). Anything else (a community, a period bounded by instants) reads the cases."""
    if period != Period.days(period.first_day, period.last_day, tz):
        return False
    if scope != city.id and city.jurisdictions[scope].level not in ("district", "street"):
        return False
    if reader.everything or reader.department is not None:
        return True
    return reader.within is not None and reader.within in city.ancestors(scope)


async def _nothing() -> list:
    return []


async def _overdue_candidates(ctx, reader: Scope, within: str | None, top: int, department: str | None,
                              department_names: dict, now: datetime) -> list[dict]:
    """The open overdue cases a report's list of the `top` most overdue is taken from. The
    store reads them by stage deadline, oldest months first, and stops once it has `first`
    (with every case whose deadline comes before any it left out). For a department's share
    the list keeps only the cases that department holds now (as `note_overdue` does), and one
    it saw may have moved on: asked again for four times as many until `top` of those read are
    its own, or the store had no more. (Reading all of them took a department's report 1–1.5 s
    at 1,000,000 cases.)"""
    first = top
    while True:
        cases = await ctx.cases.open_overdue(reader, within, PROJECTION, first=first)
        if department is None or len(cases) < first:
            return cases
        # Counted among those with a stage clock only: the store hands all those without one
        # whatever `first` is, and their deadline (if any) may lie after one it left out.
        held = sum(1 for case in cases if (case.get("clock") or {}).get("deadline") is not None
                   and CaseTimeline(case, department_names).department_at(now)["id"] == department)
        if held >= top:
            return cases
        first *= 4


async def compute(ctx, *, reader: Scope, scope: str, period: Period, group_by: str,
                  department: str | None = None, top: int = DEFAULT_TOP, now: datetime | None = None,
                  scan: bool = False) -> dict:
    """The KPI report for `scope` and `period`, restricted to what `reader` lets one see.

    `reader` is the reader's scope (dispatch.access.policy.case_scope); `department`
    keeps only the figures charged to that department (a department user's own share).
    Summed from the rollups (dispatch/kpi/rollups.py) when they can answer; `scan=True` (or a
    period or scope they do not keep) computes from the period's cases instead.
    """
    if group_by not in GROUP_BY:
        raise ValueError(group_by)
    city = ctx.city
    now = now or datetime.now(timezone.utc)
    department_names = {d.id: d.name for d in city.departments.values()}
    seeds = seed_groups(city, scope, group_by, department)
    if not scan and group_by in ROLLED_UP_GROUPS and from_rollups(city, ctx.tz, reader=reader, scope=scope,
                                                                  period=period):
        await ctx.rollups.fresh()
        # The figures and the list of open overdue cases are read at once (neither waits for the other).
        (rows, tally), cases = await asyncio.gather(
            ctx.rollups.tallies(scope=scope, period=period, group_by=group_by, department=department, now=now),
            _overdue_candidates(ctx, reader, None if scope == city.id else scope, top, department,
                                department_names, now) if top else _nothing())
        for group in seeds:
            rows.setdefault(group["id"], Row(group, Counter()))
        ordered = sorted_rows(rows.values(), {g["id"] for g in seeds})
        overdue = []
        if top:
            if department is None:  # the list's order needs no history: read timelines of the top only
                far = datetime.max.replace(tzinfo=timezone.utc)
                cases = sorted(cases, key=lambda c: (stage_deadline(c) or far, c.get("number") or ""))[:top]
            aggregator = KpiAggregator(period=period, group_by=group_by, now=now, calendar=ctx.calendar,
                                       sign_deadline=None, department_names=department_names,
                                       department=department)
            for case in cases:
                aggregator.note_overdue(case)
            overdue = aggregator.overdue_list(top, ctx.tz)
    else:
        query = PeriodQuery(period.start, period.end, scope=reader, within=None if scope == city.id else scope)
        cases = await ctx.cases.period_cases(query, PROJECTION)
        aggregator = KpiAggregator(
            period=period, group_by=group_by, now=now, calendar=ctx.calendar,
            sign_deadline=category_sign_deadline(city.categories, ctx.calendar),
            department_names=department_names, department=department,
        )
        aggregator.seed(seeds)
        for case in cases:
            aggregator.add(case)
        overdue = aggregator.overdue_list(top, ctx.tz)
        tally, ordered = aggregator.total, aggregator.rows_sorted()

    total = Row({"id": None, "name": "合计"}, tally).as_dict()
    return {
        "scope": scope_info(city, scope),
        "department": department,
        "period": {"from": iso(period.start, ctx.tz), "to": iso(period.end, ctx.tz),
                   "first_day": period.first_day.isoformat(), "last_day": period.last_day.isoformat()},
        "group_by": group_by,
        "generated_at": iso(now, ctx.tz),
        "total": total,
        "rows": [row.as_dict(described=False) for row in ordered],
        "overdue": {"count": total_value(total, "open_overdue"), "items": overdue},
    }


def _compact(row: dict) -> dict:
    """A row without the repeated names and formulas (they live in FIGURES), for storage."""
    kpis = {k["key"]: {f: k[f] for f in ("value", "numerator", "denominator") if f in k} for k in row["kpis"]}
    return {"group": row["group"], "kpis": kpis, "by_status": row["by_status"]}


def total_value(row: dict, key: str):
    return next(k["value"] for k in row["kpis"] if k["key"] == key)


async def snapshot_day(ctx, day: date) -> list[str]:
    """Store `day`'s KPIs for the city (rows per district) and each district (rows per street).

    The scheduler calls it every morning for the day before. Each snapshot's id is
    "<day>:<scope>", so running it again for the same day replaces, never duplicates.
    """
    city = ctx.city
    period = Period.days(day, day, ctx.tz)
    now = ctx.clock.now()
    scopes = [(city.id, "district")] + [
        (j.id, "street") for j in sorted(city.jurisdictions.values(), key=lambda j: j.id) if j.level == "district"
    ]
    ids = []
    for scope, group_by in scopes:
        report = await compute(ctx, reader=EVERYTHING, scope=scope, period=period, group_by=group_by, now=now)
        snapshot_id = f"{day.isoformat()}:{scope}"
        await ctx.storage.snapshots.save({
            "_id": snapshot_id, "day": day.isoformat(), "scope": scope, "scope_name": report["scope"]["name"],
            "computed_at": now, "period": report["period"], "group_by": group_by,
            "total": _compact(report["total"]), "rows": [_compact(row) for row in report["rows"]],
        })
        ids.append(snapshot_id)
    log.info("KPI snapshot for %s stored for %d scopes", day, len(ids))
    return ids


# --------------------------------------------------------------------------------------------
# As a table (CSV / XLSX export)
# --------------------------------------------------------------------------------------------

GROUP_HEADERS = {"department": "部门", "district": "区县", "street": "街道", "community": "社区"}
PARENT_HEADERS = {"district": "所属区县", "street": "所属街道"}


def _cell(figure: dict):
    value = figure["value"]
    if value is None:
        return None
    if FIGURE_BY_KEY[figure["key"]].kind == "ratio":
        return round(value * 100, 2)
    return value


def table(report: dict) -> tuple[list[str], list[list]]:
    """Headers (Chinese, ratios in %) and one line per row, the total last; None = no basis."""
    parent = PARENT_LEVEL.get(report["group_by"])
    headers = [GROUP_HEADERS[report["group_by"]], "编码"] + ([PARENT_HEADERS[parent]] if parent else [])
    headers += [f.name + ("(%)" if f.kind == "ratio" else "") for f in FIGURES]
    lines = []
    for row in [*report["rows"], report["total"]]:
        group = row["group"]
        line = [group["name"], group["id"] or ""] + ([group.get(parent) or ""] if parent else [])
        lines.append(line + [_cell(k) for k in row["kpis"]])
    return headers, lines

"""Stage clocks: every piece of arithmetic on a case's deadline, in one place.

Each stage somebody must finish in time (sign, handle, check) runs a clock from the category's
limit on the city's business calendar (`dispatch.workflow.deadlines.BusinessCalendar`). The
case stores it as `case.clock = {stage, limit, started_at, deadline, warn_at}`; while the case
is suspended it also has `paused_at`, and `suspended_seconds` totals the time (on the limit's
own clock: working or natural) spent suspended, which the deadline was moved by.

From a stored clock follow:

* the sweep's thresholds (`thresholds`): warn at `warn_at`, overdue at `deadline`, 督办 and
  提级 at configured graces after it;
* the clock as the pages show it (`timer`): due and warn instants, paused or not, and the
  remaining time on the limit's own clock (working time for a `wh`/`wd` limit), so every page
  counts down on the same clock the sweep flags 临期 on;
* the stage deadline the KPIs list (`stage_deadline`).

Workflow effects (`dispatch.workflow.transitions`) start, move, pause and resume clocks through
the functions here; `ctx` is the application context (its `city`, `calendar`, `config`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

from dispatch.clock import stored_instant
from dispatch.workflow.deadlines import NATURAL, Duration

# Which clock runs in which state, and where the case keeps that stage's deadline.
STAGE_OF_STATUS = {"dispatched": "sign", "accepted": "handle", "handled": "check"}
DEADLINE_FIELD = {"sign": "sign_by", "handle": "handle_by", "check": "check_by"}

WARN, OVERDUE, SUPERVISE, ESCALATE = "warn", "overdue", "supervise", "escalate"

_ms = stored_instant


# --------------------------------------------------------------------------------------------
# Starting, moving, pausing and resuming a clock
# --------------------------------------------------------------------------------------------


def stage_limit(category, priority: str, stage: str) -> str | None:
    limits = category.limits or {}
    if priority == "urgent" and category.urgent_limits:
        limits = {**limits, **category.urgent_limits}
    return limits.get(stage)


def stage_clock(ctx, case: dict, stage: str, start: datetime) -> dict | None:
    """The clock of `stage` started at `start`, or None when the category sets no limit."""
    category = ctx.city.categories.get(case["category"]["code"])
    limit = stage_limit(category, case["priority"], stage) if category else None
    if limit is None:
        return None
    calendar = ctx.calendar
    deadline = calendar.add(start, limit)
    warn_at = calendar.fraction_instant(start, deadline, ctx.warning_fraction, limit)
    return {"stage": stage, "limit": limit, "started_at": start, "deadline": deadline, "warn_at": warn_at}


def start_stage(ctx, case: dict, stage: str, start: datetime) -> None:
    """Set the stage's deadline and warning instant on a case being built (in place)."""
    sets, unsets = start_changes(ctx, case, stage, start)
    case["clock"] = sets["clock"]
    for key in unsets:
        case.pop(key, None)
    if case["clock"] is None:
        return
    case["deadlines"][DEADLINE_FIELD[stage]] = case["clock"]["deadline"]
    case["flags"]["warning"] = False
    case["flags"]["overdue"] = False
    case["next_due_at"] = case["clock"]["warn_at"]


def start_changes(ctx, case: dict, stage: str, start: datetime) -> tuple[dict, list]:
    """Starting `stage` as update operators: ($set fields, $unset fields)."""
    clock = stage_clock(ctx, case, stage, start)
    if clock is None:
        return {"clock": None}, ["next_due_at"]
    return {
        f"deadlines.{DEADLINE_FIELD[stage]}": clock["deadline"],
        "clock": clock,
        "flags.warning": False,
        "flags.overdue": False,
        "next_due_at": clock["warn_at"],
    }, []


def _unit(ctx, clock: dict) -> str:
    return ctx.calendar.parse_duration(clock["limit"]).unit


def _measure(ctx, a: datetime, b: datetime, unit: str) -> float:
    """Time in [a, b) on the clock `unit` counts (natural or working)."""
    if unit == NATURAL:
        return max(0.0, (b - a).total_seconds())
    return ctx.calendar.working_seconds_between(a, b)


def _advance(ctx, moment: datetime, seconds: float, unit: str) -> datetime:
    amount = Duration.natural(seconds) if unit == NATURAL else Duration.working(seconds)
    return ctx.calendar.add(moment, amount)


def _warn_instant(ctx, clock: dict, deadline: datetime, suspended: float) -> datetime:
    """When the warning fraction of the limit has been used, suspended time not counted.

    Suspensions all lie in the past when this is asked (on resume or on an extension), so
    the instant is the one at which the clock has run `fraction × active + suspended`.
    """
    fraction = ctx.warning_fraction
    if not suspended:
        return ctx.calendar.fraction_instant(clock["started_at"], deadline, fraction, clock["limit"])
    unit = _unit(ctx, clock)
    active = max(0.0, _measure(ctx, clock["started_at"], deadline, unit) - suspended)
    return _advance(ctx, clock["started_at"], math.ceil(fraction * active * 1e6) / 1e6 + suspended, unit)


def moved_deadline(ctx, case: dict, deadline: datetime, now: datetime) -> dict:
    """$set fields that move the running stage's deadline (an approved extension)."""
    clock = case["clock"]
    warn_at = _warn_instant(ctx, clock, deadline, clock.get("suspended_seconds") or 0)
    return _deadline_fields(case, deadline, warn_at, now)


def _deadline_fields(case: dict, deadline: datetime, warn_at: datetime, now: datetime) -> dict:
    """A stage's thresholds moved later: the flags and the sweep's cursor that go with them.

    `next_due_at` is the sweep's cursor: every threshold before it counts as applied. A
    threshold still ahead gets its flag cleared and the cursor; one already behind keeps
    the flag the sweep gave it, so nothing (督办, 提级) is applied a second time.
    """
    clock, flags = case["clock"], case["flags"]
    fields = {
        "clock.deadline": deadline,
        "clock.warn_at": warn_at,
        f"deadlines.{DEADLINE_FIELD[clock['stage']]}": deadline,
    }
    if warn_at > now or not flags.get("warning"):
        cursor, warning, overdue = warn_at, False, False
    elif deadline > now or not flags.get("overdue"):
        cursor, warning, overdue = deadline, True, False
    else:
        cursor, warning, overdue = now, True, True
    fields.update({"flags.warning": warning, "flags.overdue": overdue, "next_due_at": cursor})
    return fields


def paused_clock(case: dict, now: datetime) -> dict:
    """$set fields that stop the clock (挂账); the caller unsets `next_due_at`."""
    if not case.get("clock"):
        return {}
    return {"clock.paused_at": now}


def resumed_clock(ctx, case: dict, now: datetime) -> tuple[dict, list]:
    """Restart a paused clock: the deadline moves by the time spent suspended.

    Spent time is measured on the limit's own clock, so a working-hours limit suspended
    over a weekend loses nothing and gets only the working time back.
    """
    clock = case.get("clock")
    if not clock or not clock.get("paused_at"):
        return {}, []
    unit = _unit(ctx, clock)
    spent = _measure(ctx, clock["paused_at"], now, unit)
    deadline = _advance(ctx, clock["deadline"], spent, unit)
    suspended = (clock.get("suspended_seconds") or 0) + spent
    warn_at = _warn_instant(ctx, clock, deadline, suspended)
    sets = _deadline_fields(case, deadline, warn_at, now)
    sets.update({"clock.paused_at": None, "clock.suspended_seconds": suspended})
    return sets, []


# --------------------------------------------------------------------------------------------
# Reading a clock: the sweep, the pages, the KPIs
# --------------------------------------------------------------------------------------------


def running_clock(case: dict) -> dict | None:
    """The case's clock if it runs in the case's state (a clock left from a stage the case has
    left, or a suspended case's paused one, does not)."""
    clock = case.get("clock")
    if clock and clock.get("stage") == STAGE_OF_STATUS.get(case.get("status")):
        return clock
    return None


@dataclass(frozen=True)
class Threshold:
    action: str
    at: datetime


def grace(ctx, key: str) -> str | None:
    """A configured grace duration (`deadlines.supervise_grace` ...); empty disables the step."""
    value = ctx.config.get("deadlines", {}).get(key)
    return str(value) if value not in (None, "", False) else None


def thresholds(ctx, clock: dict) -> list[Threshold]:
    """The instants at which a stage clock needs the sweep, in time order."""
    deadline = clock["deadline"]
    steps = [Threshold(WARN, _ms(clock["warn_at"])), Threshold(OVERDUE, _ms(deadline))]
    for action, key in ((SUPERVISE, "supervise_grace"), (ESCALATE, "escalate_grace")):
        value = grace(ctx, key)
        if value is not None:
            steps.append(Threshold(action, _ms(ctx.calendar.add(deadline, value))))
    return sorted(steps, key=lambda step: step.at)  # stable: equal instants keep this order


def stage_deadline(case: dict) -> datetime | None:
    """The deadline of the stage the case is in (UTC), or None when no stage clock applies."""
    clock = case.get("clock") or {}
    moment = clock.get("deadline")
    if not moment:
        field = DEADLINE_FIELD.get(STAGE_OF_STATUS.get(case.get("status"), ""))
        moment = (case.get("deadlines") or {}).get(field) if field else None
    if not moment:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def timer(ctx, case: dict, now: datetime) -> dict | None:
    """The current stage's clock as the pages show it (the case JSON's `timer`), or None.

    `remaining_seconds` is counted on the limit's own clock as of `as_of` (working time for a
    working-time limit; negative once overdue). A page moves it on by the real time passed since
    `as_of`, up to `runs_until`: the end of the working period the clock is running in (null
    for a natural-time limit, which always runs); off working hours it stands still. So a
    page needs no calendar to count down, and shows what the sweep's 临期 and 超期 go by.
    """
    clock = case.get("clock")
    paused = bool(clock and clock.get("paused_at") and case.get("status") == "suspended")
    if not (paused or running_clock(case)):
        return None
    due, warn_at = clock["deadline"], clock["warn_at"]
    at = clock["paused_at"] if paused else now
    unit = _unit(ctx, clock)
    if at <= due:
        remaining = _measure(ctx, at, due, unit)
    else:
        remaining = -_measure(ctx, due, at, unit)
    flags = case.get("flags") or {}
    if paused:
        level = "paused"
    elif flags.get("overdue") or now >= due:
        level = "overdue"
    elif flags.get("warning") or now >= warn_at:
        level = "warning"
    else:
        level = "ok"
    if paused:
        runs_until = now
    elif unit == NATURAL:
        runs_until = None
    else:
        runs_until = ctx.calendar.working_period_end(now) or now
    return {
        "stage": clock["stage"], "unit": unit, "due_at": due, "warn_at": warn_at, "paused": paused,
        "remaining_seconds": round(remaining), "as_of": now, "runs_until": runs_until, "level": level,
    }

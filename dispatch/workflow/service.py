"""The closed loop: how a case moves between states, and the stage clocks that go with it.

立案 → 派遣 → 签收 → 处置 → 核查 → 结案. Each stage that somebody must finish in time (sign,
handle, check) runs a clock from the category's limits on the city's business calendar; the
case stores the stage deadline and the instant at which it turns to warning, so the deadline
sweep only touches cases whose next instant has come.

`Workflow.act` applies one action of `dispatch.workflow.transitions.TABLE`: read the case, check who may
act (`dispatch.access.policy`), from which state and with which fields, let the action's effect
describe the change, and write it as ONE update guarded by the version that was read, with the
history entry chained onto the history as read. A lost race is a 409, never a retry: an action
is applied at most once.

A clock (`case.clock`) is `{stage, limit, started_at, deadline, warn_at}`; while the case is
suspended it also has `paused_at`, and `suspended_seconds` totals the time (on the limit's own
clock: working or natural) spent suspended, which the deadline was moved by.
"""

from __future__ import annotations

import math
from datetime import datetime

from dispatch.workflow.audit import chain_entry
from dispatch.workflow.deadlines import NATURAL, Duration
from dispatch.clock import stored_instant
from dispatch.domain import utcnow
from dispatch.errors import bad_request, conflict, not_found
from dispatch.access.policy import action_refusal, can_read_case, may_act
from dispatch.workflow.transitions import (
    EVENT_NAMES, NOTE, STATUS_NAMES, TABLE, TRANSITIONS, Act, entry_fields,
)

SYSTEM = "system"

# Which clock runs in which state.
STAGE_OF_STATUS = {"dispatched": "sign", "accepted": "handle", "handled": "check"}
DEADLINE_FIELD = {"sign": "sign_by", "handle": "handle_by", "check": "check_by"}
STAGE_NAMES = {"sign": "签收", "handle": "处置", "check": "核查"}


def labels() -> dict:
    """Every name the pages show for a status, an action (history entries too) or a stage:
    served once as `GET /api/labels`, so no page keeps its own words for them."""
    return {
        "statuses": dict(STATUS_NAMES),
        "actions": {**EVENT_NAMES, **{t.action: t.label for t in TABLE}},
        "stages": dict(STAGE_NAMES),
    }


_ms = stored_instant


class Workflow:
    # The time every action is stamped with; tests replace it on the instance.
    clock = staticmethod(utcnow)

    def __init__(self, ctx):
        self.ctx = ctx

    # -- stage clocks -----------------------------------------------------------------------

    def stage_limit(self, category, priority: str, stage: str) -> str | None:
        limits = category.limits or {}
        if priority == "urgent" and category.urgent_limits:
            limits = {**limits, **category.urgent_limits}
        return limits.get(stage)

    def stage_clock(self, case: dict, stage: str, start: datetime) -> dict | None:
        """The clock of `stage` started at `start`, or None when the category sets no limit."""
        category = self.ctx.city.categories.get(case["category"]["code"])
        limit = self.stage_limit(category, case["priority"], stage) if category else None
        if limit is None:
            return None
        calendar = self.ctx.calendar
        deadline = calendar.add(start, limit)
        warn_at = calendar.fraction_instant(start, deadline, self.ctx.warning_fraction, limit)
        return {"stage": stage, "limit": limit, "started_at": start, "deadline": deadline, "warn_at": warn_at}

    def start_stage(self, case: dict, stage: str, start: datetime) -> None:
        """Set the stage's deadline and warning instant on the case (in place)."""
        clock = self.stage_clock(case, stage, start)
        if clock is None:
            case["clock"] = None
            case.pop("next_due_at", None)
            return
        case["deadlines"][DEADLINE_FIELD[stage]] = clock["deadline"]
        case["clock"] = clock
        case["flags"]["warning"] = False
        case["flags"]["overdue"] = False
        case["next_due_at"] = clock["warn_at"]

    def clock_changes(self, case: dict, stage: str, start: datetime) -> tuple[dict, list]:
        """`start_stage` as update operators: ($set fields, $unset fields)."""
        clock = self.stage_clock(case, stage, start)
        if clock is None:
            return {"clock": None}, ["next_due_at"]
        return {
            f"deadlines.{DEADLINE_FIELD[stage]}": clock["deadline"],
            "clock": clock,
            "flags.warning": False,
            "flags.overdue": False,
            "next_due_at": clock["warn_at"],
        }, []

    def _unit(self, clock: dict) -> str:
        return self.ctx.calendar.parse_duration(clock["limit"]).unit

    def _measure(self, a: datetime, b: datetime, unit: str) -> float:
        """Time in [a, b) on the clock `unit` counts (natural or working)."""
        if unit == NATURAL:
            return max(0.0, (b - a).total_seconds())
        return self.ctx.calendar.working_seconds_between(a, b)

    def _advance(self, moment: datetime, seconds: float, unit: str) -> datetime:
        amount = Duration.natural(seconds) if unit == NATURAL else Duration.working(seconds)
        return self.ctx.calendar.add(moment, amount)

    def _warn_instant(self, clock: dict, deadline: datetime, suspended: float) -> datetime:
        """When the warning fraction of the limit has been used, suspended time not counted.

        Suspensions all lie in the past when this is asked (on resume or on an extension), so
        the instant is the one at which the clock has run `fraction × active + suspended`.
        """
        fraction = self.ctx.warning_fraction
        if not suspended:
            return self.ctx.calendar.fraction_instant(clock["started_at"], deadline, fraction, clock["limit"])
        unit = self._unit(clock)
        active = max(0.0, self._measure(clock["started_at"], deadline, unit) - suspended)
        return self._advance(clock["started_at"], math.ceil(fraction * active * 1e6) / 1e6 + suspended, unit)

    def moved_deadline(self, case: dict, deadline: datetime, now: datetime) -> dict:
        """$set fields that move the running stage's deadline (an approved extension)."""
        clock = case["clock"]
        warn_at = self._warn_instant(clock, deadline, clock.get("suspended_seconds") or 0)
        return self._deadline_fields(case, deadline, warn_at, now)

    def _deadline_fields(self, case: dict, deadline: datetime, warn_at: datetime, now: datetime) -> dict:
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

    def paused_clock(self, case: dict, now: datetime) -> dict:
        """$set fields that stop the clock (挂账); the caller unsets `next_due_at`."""
        if not case.get("clock"):
            return {}
        return {"clock.paused_at": now}

    def resumed_clock(self, case: dict, now: datetime) -> tuple[dict, list]:
        """Restart a paused clock: the deadline moves by the time spent suspended.

        Spent time is measured on the limit's own clock, so a working-hours limit suspended
        over a weekend loses nothing and gets only the working time back.
        """
        clock = case.get("clock")
        if not clock or not clock.get("paused_at"):
            return {}, []
        unit = self._unit(clock)
        spent = self._measure(clock["paused_at"], now, unit)
        deadline = self._advance(clock["deadline"], spent, unit)
        suspended = (clock.get("suspended_seconds") or 0) + spent
        warn_at = self._warn_instant(clock, deadline, suspended)
        sets = self._deadline_fields(case, deadline, warn_at, now)
        sets.update({"clock.paused_at": None, "clock.suspended_seconds": suspended})
        return sets, []

    # -- actions by people ------------------------------------------------------------------

    def allowed_actions(self, user, case: dict) -> list[str]:
        """The actions `user` could take on `case` now: role, scope, link, state and the case's
        own flags (`Transition.applies_to`). Only the body's fields can still get one refused."""
        ctx, now = self.ctx, _ms(self.clock())
        return [
            t.action for t in TABLE
            if case["status"] in t.from_states
            and may_act(user, case, ctx.city.id, t.roles_for(case), t.link)
            and (t.applies_to is None or t.applies_to(ctx, case, now))
        ]

    def actions(self, user, case: dict) -> list[dict]:
        """`case.actions` (SPEC §3): the allowed actions with the labels the pages show."""
        return [{"name": name, "label": TRANSITIONS[name].label} for name in self.allowed_actions(user, case)]

    async def act(self, user, case_id: str, action: str, body: dict) -> dict:
        """Apply `action` to the case for `user`; returns the updated case document."""
        ctx = self.ctx
        transition = TRANSITIONS.get(action)
        if transition is None:
            raise not_found(f"没有这个操作: {action}", code="unknown_action")
        version = _requested_version(body)
        case = await ctx.cases.get(case_id)
        if case is None or not can_read_case(user, case, ctx.city.id):
            raise not_found("案件不存在或不在您的权限范围内", code="case_not_found")
        refusal = action_refusal(user, case, ctx.city.id, transition.roles_for(case), transition.link)
        if refusal is not None:
            raise refusal
        if version is not None and version != case["version"]:
            raise _version_conflict(case["version"])
        if case["status"] not in transition.from_states:
            raise conflict(
                f"案件当前{STATUS_NAMES.get(case['status'], case['status'])}，不能{transition.label}",
                code="transition_not_allowed", state=case["status"], allowed=self.allowed_actions(user, case),
            )
        fields = transition.read_fields(body, ctx.calendar, ctx.tz)
        note = NOTE.read(body, ctx.calendar, ctx.tz)
        now = _ms(self.clock())
        act = Act(ctx, case, user, transition, fields, note, now)
        await transition.apply(act)

        entry = chain_entry(case["history"], {
            "at": now, "by": user.username, "by_name": user.name or user.username, "action": action,
            "from": case["status"], "to": act.target, "note": note, **entry_fields(fields), **act.record,
        })
        updated = await ctx.cases.update(case_id, case["version"], act.change(entry))
        if updated is None:
            for undo in act.undo:
                await undo()
            current = await ctx.cases.get(case_id)
            raise _version_conflict(current["version"] if current else None)
        for after in act.after:
            await after(updated)
        return updated

    # -- transitions done by the system -----------------------------------------------------

    def auto_dispatch(self, case: dict, category, now: datetime) -> None:
        """Categories with `auto_dispatch` are filed and dispatched at intake (in place)."""
        department = case["assignment"]["department"]
        self._record(case, now, "file", "reported", "filed", "类别设置为自动立案")
        self._record(case, now, "dispatch", "filed", "dispatched",
                     f"自动派遣至 {department['name']}：{case['assignment']['reason']}",
                     department=department["id"])
        case["status"] = "dispatched"
        case.setdefault("departments_seen", [])
        if department["id"] not in case["departments_seen"]:
            case["departments_seen"].append(department["id"])
        self.start_stage(case, "sign", now)

    @staticmethod
    def _record(case: dict, now: datetime, action: str, from_status, to_status, note: str,
                by: str = SYSTEM, **fields) -> None:
        case["history"].append(chain_entry(case["history"], {
            "at": now, "by": by, "action": action, "from": from_status, "to": to_status, "note": note,
            **fields,
        }))


def _requested_version(body: dict) -> int | None:
    value = body.get("version")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_request("字段 version 必须是非负整数", code="invalid_type", field="version")
    return value


def _version_conflict(current: int | None):
    return conflict("案件已被他人更新，请刷新后重试", code="version_conflict", version=current)

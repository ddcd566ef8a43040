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

The stage clocks' arithmetic (start, move, pause, resume, read) is `dispatch.workflow.stageclock`.
"""

from __future__ import annotations

from datetime import datetime

from dispatch.workflow.audit import chain_entry
from dispatch.workflow import stageclock
from dispatch.clock import stored_instant
from dispatch.errors import bad_request, conflict, not_found
from dispatch.access.policy import action_refusal, can_read_case, may_act
from dispatch.workflow.transitions import (
    EVENT_NAMES, NOTE, STAGE_NAMES, STATUS_NAMES, TABLE, TRANSITIONS, Act, entry_fields,
)

SYSTEM = "system"



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
    def __init__(self, ctx, clock):
        self.ctx = ctx
        self.clock = clock  # the application's one clock (dispatch.clock.Clock)

    # -- actions by people ------------------------------------------------------------------

    def allowed_actions(self, user, case: dict) -> list[str]:
        """The actions `user` could take on `case` now: role, scope, link, state and the case's
        own flags (`Transition.applies_to`). Only the body's fields can still get one refused."""
        ctx, now = self.ctx, self.clock.now()
        return [
            t.action for t in TABLE
            if case["status"] in t.from_states
            and may_act(user, case, ctx.city.id, t.roles_for(case), t.link)
            and (t.applies_to is None or t.applies_to(ctx, case, now))
        ]

    def timer(self, case: dict) -> dict | None:
        """The case's running stage clock as the pages show it, now (`stageclock.timer`)."""
        return stageclock.timer(self.ctx, case, self.clock.now())

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
        now = self.clock.now()
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
        stageclock.start_stage(self.ctx, case, "sign", now)

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

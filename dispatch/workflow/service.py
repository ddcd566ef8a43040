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
    EVENT_NAMES, NOTE, STAGE_NAMES, STATUS_NAMES, TABLE, TRANSITIONS, Act, entry_fields, master_link,
)

SYSTEM = "system"
MERGE = "merge"


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
        if action == MERGE:
            return await self.merge(user, case_id, body)
        return await self._apply(user, case_id, action, body)

    async def merge(self, user, case_id: str, body: dict) -> dict:
        """并案: two cases, two version-guarded changes, each with its own history entry and event.

        1. The merged case, as every action: status `merged`, `merged_into`, a `merge` entry.
           A lost race here is a 409 with nothing written anywhere.
        2. The master (`transitions.master_link`): the link, the reporters, a `merge_in` entry
           with the merge's time and actor; re-read and re-applied if the master changed meanwhile.

        In this order an interruption between the two (a crash, a master too busy to update)
        leaves a merged case whose master does not list it yet, never a master listing a case
        that is still open. The same request again finds the case already merged into that
        master and does step 2 only (given no version, or the merged case's current one: a
        request still holding the version from before the merge lost to it, and gets its 409);
        step 2 adds nothing a second time.
        """
        case = await self.ctx.cases.get(case_id)
        into = body.get("into") if isinstance(body, dict) else None
        version = _requested_version(body) if isinstance(body, dict) else None
        if case is not None and case["status"] == "merged" and (case.get("merged_into") or {}).get("id") == into \
                and version in (None, case["version"]) and self._may_merge(user, case):
            merged = case  # step 1 was done by an earlier request
        else:
            merged = await self._apply(user, case_id, MERGE, body)
        await self._link_master(merged)
        return merged

    def _may_merge(self, user, case: dict) -> bool:
        transition = TRANSITIONS[MERGE]
        return can_read_case(user, case, self.ctx.city.id) and \
            may_act(user, case, self.ctx.city.id, transition.roles_for(case), transition.link)

    async def _link_master(self, merged: dict, attempts: int = 5) -> None:
        cases = self.ctx.cases
        entry = next(e for e in reversed(merged["history"]) if e["action"] == MERGE)
        into = merged["merged_into"]["id"]
        for _ in range(attempts):
            master = await cases.get(into)
            change = master_link(master, merged, entry) if master is not None else None
            if change is None or await cases.update(into, master["version"], change) is not None:
                return
        raise conflict("案件已并案，但主案正被他人修改，尚未关联；请稍后重试并案以完成关联",
                       code="version_conflict", version=merged["version"])

    async def _apply(self, user, case_id: str, action: str, body: dict) -> dict:
        """One action of the table as one version-guarded change of one case."""
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
    # JSON has one number type: 3.0 is the integer 3 (JSON Schema says so too, and the document
    # declares `version` an integer).
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_request("字段 version 必须是非负整数", code="invalid_type", field="version")
    return value


def _version_conflict(current: int | None):
    return conflict("案件已被他人更新，请刷新后重试", code="version_conflict", version=current)

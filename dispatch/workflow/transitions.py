"""The closed loop as data: every action, who may take it, from which states, what it needs.

`TRANSITIONS` is the contract of SPEC §4. One `Transition` per action:

* `roles` — who may take it (`roles_by_source` when that depends on the case's source: a grid
  case is checked by a grid worker, a hotline ticket called back by an operator);
* `link` — for a department, how it must be tied to the case: `assigned` (the case is assigned
  to it now) or `summoned` (吹哨 called it and it has not reported yet);
* `from_states` → `to` (None: the case stays where it is; an effect may pick another end, e.g.
  a failed check goes back to `accepted`);
* `fields` — the action's body fields, their types and lengths;
* `effect` — what the action changes, written as MongoDB update operators on an `Act`.

Effects never write to the case they were given: they describe the change, and the workflow
applies it as one version-guarded update together with the history entry.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from dispatch import validation as v

from dispatch.workflow import escalation, joint, stageclock
from dispatch.workflow.audit import chain_entry
from dispatch.domain import OPEN_STATUSES, masked_search_text, scope_path
from dispatch.errors import bad_request, conflict, unprocessable
from dispatch.intake.attachments import check_photos
from dispatch.intake.service import place_of
from dispatch.access.policy import ASSIGNED, SUMMONED, SUPPORT_TO_FEED, SUPPORT_TO_SIGN, can_read_case
from dispatch.rules import OutsideCity
from dispatch.store.query import Change
from dispatch.clock import stored_instant

# Names the history entry itself uses: an action field with one of these names is recorded
# under another name by its effect.
_ENTRY_KEYS = frozenset({"at", "by", "action", "from", "to", "note", "prev", "hash"})

SATISFACTION = ("satisfied", "basic", "unsatisfied")
# Hotline tickets an operator may settle on the phone (即时办结): nothing for a department to do.
ANSWERABLE_TYPES = ("consultation", "praise")

STATUS_NAMES = {
    "reported": "已上报", "filed": "已立案", "dispatched": "已派遣", "accepted": "处置中",
    "handled": "待核查", "checked": "待结案", "closed": "已结案", "void": "已作废",
    "merged": "已并案", "suspended": "挂账中",
}
# The stages a clock runs for (dispatch.workflow.stageclock), as the pages and history notes say them.
STAGE_NAMES = {"sign": "签收", "handle": "处置", "check": "核查"}
# History entries that are not actions of the table (written by intake, a merge's master, the
# deadline sweep): named here so every page shows the same words as the table's labels.
EVENT_NAMES = {
    "report": "上报", "merge_in": "并入案件", "merge_undone": "撤销并案", "warn": "临期预警", "overdue": "超期",
    "support_overdue": "协办超期",
}


# --------------------------------------------------------------------------------------------
# Fields
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One body field of an action. `kind` says how it is read and checked."""

    name: str
    kind: str = "text"  # text | bool | choice | photos | id | ids | duration | instant | point
    required: bool = False
    max_len: int = 500
    options: tuple = ()

    def read(self, body: dict, calendar, tz) -> Any:
        """The checked value, or None when absent (400 if required and absent, or malformed)."""
        name = self.name
        if self.kind == "text":
            value = v.text(body, name, required=self.required, max_len=self.max_len, allow_empty=False)
            return value or None
        if self.kind == "bool":
            value = v.boolean(body, name)
            if value is None and self.required:
                raise bad_request(f"缺少字段 {name}", code="missing_field", field=name)
            return value
        if self.kind == "choice":
            return v.choice(body, name, self.options, required=self.required)
        if self.kind == "photos":
            return v.string_list(body, name, max_items=9) or None
        if self.kind == "id":
            return v.text(body, name, required=self.required, max_len=64, allow_empty=False) or None
        if self.kind == "ids":
            value = v.string_list(body, name, max_items=20)
            if not value and self.required:
                raise bad_request(f"缺少字段 {name}", code="missing_field", field=name)
            return list(dict.fromkeys(value)) or None
        if self.kind == "duration":
            text = v.text(body, name, required=self.required, max_len=16, allow_empty=False)
            if not text:
                return None
            try:
                calendar.parse_duration(text)
            except ValueError:
                raise bad_request(
                    f"字段 {name} 应为时长，如 2h、3d、4wh、2wd", code="invalid_value", field=name
                ) from None
            return text
        if self.kind == "instant":
            text = v.text(body, name, required=self.required, max_len=40, allow_empty=False)
            if not text:
                return None
            return _instant(text, name, tz)
        if self.kind == "point":
            point = v.point(body, name, required=self.required)
            return list(point) if point else None
        raise AssertionError(f"unknown field kind {self.kind}")  # a mistake in the table


def _instant(text: str, name: str, tz) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            f"字段 {name} 应为 ISO 时间，如 2026-11-22T17:30:00+08:00", code="invalid_value", field=name
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return stored_instant(value)  # so the history hash survives the round trip


# Every action takes an optional note; it goes into the history entry.
NOTE = Field("note", max_len=500)
REASON = Field("reason", required=True, max_len=500)


# --------------------------------------------------------------------------------------------
# An action being applied
# --------------------------------------------------------------------------------------------


@dataclass
class Act:
    """One action on one case, as its effect builds it up.

    `case` is the document as read (never modified). The effect fills the update operators,
    `record` (extra fields for the history entry) and may set `to` and `undo`.
    """

    ctx: Any
    case: dict
    user: Any
    transition: "Transition"
    fields: dict
    note: str | None
    now: datetime
    sets: dict = field(default_factory=dict)
    unsets: set = field(default_factory=set)
    inc: dict = field(default_factory=dict)
    push: dict = field(default_factory=dict)
    add_to_set: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)
    to: str | None = None
    # Async callables run if the case update loses the race after side writes (photos in use).
    undo: list = field(default_factory=list)
    # Async callables run with the updated case once the update is written: records kept
    # outside the case that must not exist for an action that lost its race.
    after: list = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.case["status"]

    @property
    def target(self) -> str:
        return self.to or self.transition.to or self.status

    # -- helpers effects share ------------------------------------------------------------

    def start_clock(self, stage: str) -> None:
        sets, unsets = stageclock.start_changes(self.ctx, self.case, stage, self.now)
        self.sets.update(sets)
        self.unsets.update(unsets)

    def stop_clock(self) -> None:
        """No stage is running: nothing for the deadline sweep to watch."""
        self.sets["clock"] = None
        self.unsets.add("next_due_at")

    def append(self, array: str, item: dict) -> None:
        self.push[array] = item

    def change(self, entry: dict) -> Change:
        """The one change that applies this action (the store adds one to the version)."""
        sets = {**self.sets, "status": self.target, "updated_at": self.now}
        return Change(
            sets=sets,
            unsets={key for key in self.unsets if key not in sets},
            inc=dict(self.inc),
            push={"history": [entry], **{key: [item] for key, item in self.push.items()}},
            add_to_set={key: list(values) for key, values in self.add_to_set.items()},
        )


@dataclass(frozen=True)
class Transition:
    action: str
    label: str  # what the action is called in Chinese (messages, history views)
    roles: tuple
    from_states: tuple
    to: str | None
    effect: Callable[[Act], Any]
    fields: tuple = ()
    link: str = ASSIGNED
    roles_by_source: dict | None = None
    # Cases the action applies to at all, beyond their state and who asks (e.g. 即时办结 only
    # for hotline consultations, 批准延期 only while a request is pending): `applies_to(ctx,
    # case, now)`. It is what keeps the listed actions (`case.actions`) and the refusals in
    # step: every effect's 409 for the case's own flags is a predicate here, which the effect
    # also uses, so a listed action is never refused for a reason the list could have known.
    applies_to: Callable[[Any, dict, datetime], bool] | None = None

    def roles_for(self, case: dict) -> tuple:
        if self.roles_by_source:
            return self.roles_by_source.get(case.get("source"), ())
        return self.roles

    def read_fields(self, body: dict, calendar, tz) -> dict:
        return {f.name: f.read(body, calendar, tz) for f in self.fields}

    async def apply(self, act: Act) -> None:
        result = self.effect(act)
        if inspect.isawaitable(result):
            await result


# --------------------------------------------------------------------------------------------
# Effects
# --------------------------------------------------------------------------------------------


def _department_ref(ctx, department_id: str, field_name: str = "department") -> dict:
    department = ctx.city.departments.get(department_id)
    if department is None:
        raise unprocessable(f"部门 {department_id} 不存在", code="unknown_department", field=field_name)
    return {"id": department.id, "name": department.name}


def _verify(act: Act) -> None:
    if act.fields["valid"]:
        act.sets["flags.verified"] = True
        return
    # 核实不属实: the report is void on the spot.
    act.to = "void"
    act.sets["void_reason"] = act.note or "现场核实不属实"
    act.stop_clock()


def _located(ctx, case: dict, now: datetime) -> bool:
    return not case["flags"].get("needs_location")


def _file(act: Act) -> None:
    if not _located(act.ctx, act.case, act.now):
        raise conflict("案件尚无定位，请先补充位置（relocate）再立案", code="needs_location")
    act.sets["filed_at"] = act.now


def _void(act: Act) -> None:
    act.sets["void_reason"] = act.fields["reason"]
    act.stop_clock()


def _relocate(act: Act) -> None:
    ctx, case = act.ctx, act.case
    lng, lat = act.fields["location"]
    text = " ".join(filter(None, [case.get("description"), act.fields.get("address") or case.get("address")]))
    try:
        decision = ctx.router.route(lng, lat, case["category"]["code"], source=case["source"], text=text, at=act.now)
    except OutsideCity as exc:
        raise unprocessable(str(exc), code="outside_city", field="location") from None
    jurisdiction = decision.jurisdiction
    act.sets.update({
        "location": {"type": "Point", "coordinates": [lng, lat]},
        "jurisdiction": jurisdiction,
        "scope_path": scope_path(ctx.city.id, jurisdiction),
        "routing": decision.as_dict(),
        "assignment": {"department": decision.department, "rule": decision.rule, "reason": decision.reason},
        "priority": decision.priority,
        "flags.needs_location": False,
        # Nearest door plate and community, as intake computes them for a case located at once.
        "place": place_of(ctx.city, (lng, lat), jurisdiction),
    })
    if act.fields.get("address"):
        act.sets["address"] = act.fields["address"]
        act.sets["search_masked"] = masked_search_text({**act.case, "address": act.fields["address"]})
    act.record["department"] = decision.department["id"] if decision.department else None


def _routed_department(case: dict) -> dict | None:
    return (case.get("assignment") or {}).get("department") or (case.get("routing") or {}).get("department")


def _dispatch(act: Act) -> None:
    joint.require_no_return_pending(act)  # the return is decided first (approve_return → 改派)
    case = act.case
    chosen = act.fields.get("department")
    routed = _routed_department(case)
    if chosen:
        department = _department_ref(act.ctx, chosen)
    elif routed:
        department = {"id": routed["id"], "name": routed["name"]}
    else:
        raise unprocessable("未能自动确定责任部门，请指定 department", code="department_required", field="department")
    current = (case.get("assignment") or {}).get("department")
    if act.status == "dispatched" and current and current["id"] == department["id"]:
        raise conflict(f"案件已派遣给 {department['name']}", code="already_assigned")
    act.sets["assignment.department"] = department
    if not routed or routed["id"] != department["id"]:
        act.sets["assignment.reason"] = f"指挥中心人工派遣至 {department['name']}"
        act.sets["assignment.manual"] = True
    act.add_to_set["departments_seen"] = [department["id"]]
    act.sets["dispatched_at"] = act.now
    act.start_clock("sign")
    act.record["department"] = department["id"]
    joint.dispatch_support(act, department)  # 协办 parts, each with its own sign clock


def _sign(act: Act) -> None:
    joint.require_no_return_pending(act)
    act.sets["signed_at"] = act.now
    act.start_clock("handle")
    joint.keep_cursor(act, joint.parts(act.case))


def _clear_extension(act: Act) -> None:
    if act.case["flags"].get("extension_pending"):
        act.sets["flags.extension_pending"] = False
        act.unsets.add("extension_request")


def _return(act: Act) -> None:
    # 退单 is a 派单异议: reviewed by the dispatcher (approve_return / reject_return).
    joint.request_return(act)


def _approve_return(act: Act) -> None:
    # Routing info stays for the dispatcher; the department keeps read access (departments_seen).
    entry = joint.approve_return(act)
    act.after.append(lambda updated: joint.record_dispute(act, updated, entry))


def _reject_return(act: Act) -> None:
    joint.reject_return(act)


async def _support_sign(act: Act) -> None:
    joint.support_sign(act)


async def _support_feedback(act: Act) -> None:
    joint.require_no_return_pending(act)
    joint.support_feedback(act, await _attach_photos(act))


def _has_handle_clock(case: dict) -> bool:
    clock = case.get("clock")
    return bool(clock) and clock.get("stage") == "handle"


def _extension_pending(ctx, case: dict, now: datetime) -> bool:
    # Decided after a return under review (its clock is paused): approve_return drops it.
    return bool(case["flags"].get("extension_pending") and case.get("extension_request")
                and joint.not_return_pending(ctx, case, now))


def _may_request_extension(ctx, case: dict, now: datetime) -> bool:
    return (not case["flags"].get("extension_pending") and _has_handle_clock(case)
            and joint.not_return_pending(ctx, case, now))


def _handle_deadline(act: Act) -> datetime:
    clock = act.case.get("clock")
    if not _has_handle_clock(act.case):
        raise conflict("此案件的处置阶段没有时限，无需延期", code="no_deadline")
    return clock["deadline"]


def _request_extension(act: Act) -> None:
    joint.require_no_return_pending(act)
    if act.case["flags"].get("extension_pending"):
        raise conflict("已有一个延期申请待审批", code="extension_pending")
    until, duration = act.fields.get("until"), act.fields.get("duration")
    if (until is None) == (duration is None):
        raise bad_request("请给出 until（延至某时）或 duration（延长时长，如 2wd）其中之一",
                          code="missing_field", field="until")
    deadline = _handle_deadline(act)
    if until is not None and until <= deadline:
        raise unprocessable("申请延至的时间必须晚于当前处置时限", code="invalid_extension", field="until")
    request = {"at": act.now, "by": act.user.username, "reason": act.fields["reason"],
               "until": until, "duration": duration, "deadline_was": deadline}
    act.sets["flags.extension_pending"] = True
    act.sets["extension_request"] = request


def _pending_extension(act: Act) -> dict:
    request = act.case.get("extension_request")
    if not _extension_pending(act.ctx, act.case, act.now):
        raise conflict("没有待审批的延期申请", code="no_extension_pending")
    return request


def _approve_extension(act: Act) -> None:
    request = _pending_extension(act)
    deadline = _handle_deadline(act)
    if request.get("duration"):
        new_deadline = act.ctx.calendar.add(deadline, request["duration"]).astimezone(timezone.utc)
    else:
        new_deadline = request["until"]
    if new_deadline <= deadline:
        raise conflict("申请延至的时间已不晚于当前时限，请驳回后重新申请", code="extension_obsolete")
    act.sets.update(stageclock.moved_deadline(act.ctx, act.case, new_deadline, act.now))
    act.sets["flags.extension_pending"] = False
    act.unsets.add("extension_request")
    act.inc["counters.extensions"] = 1
    act.append("extensions", {**request, "approved": True, "decided_by": act.user.username,
                              "decided_at": act.now, "deadline": new_deadline})
    act.record["handle_by"] = new_deadline


def _reject_extension(act: Act) -> None:
    request = _pending_extension(act)
    act.sets["flags.extension_pending"] = False
    act.unsets.add("extension_request")
    act.append("extensions", {**request, "approved": False, "decided_by": act.user.username,
                              "decided_at": act.now, "note": act.note})


def _suspend(act: Act) -> None:
    joint.require_no_return_pending(act)
    act.sets.update(stageclock.paused_clock(act.case, act.now))
    act.unsets.add("next_due_at")
    act.sets["suspension"] = {"at": act.now, "by": act.user.username, "reason": act.fields["reason"],
                             "from": act.status}


def _resume(act: Act) -> None:
    suspension = act.case.get("suspension") or {}
    act.to = suspension.get("from") or "accepted"
    sets, unsets = stageclock.resumed_clock(act.ctx, act.case, act.now)
    act.sets.update(sets)
    act.unsets.update(unsets)
    joint.resume_parts(act, suspension.get("at"))  # 协办 parts stood still too
    act.unsets.add("suspension")
    act.append("suspensions", {**suspension, "until": act.now, "resumed_by": act.user.username})
    if "deadlines.handle_by" in sets:
        act.record["handle_by"] = sets["deadlines.handle_by"]


async def _attach_photos(act: Act) -> list[str]:
    """The action's photos: the actor's own uploads only (as at intake), flagged as in use so
    they leave the uploader's quota and are never expired; a lost update takes the flag back."""
    photos = act.fields.get("photos") or []
    await check_photos(act.ctx, act.user, photos)
    if photos:
        attachments = act.ctx.attachments
        await attachments.mark_referenced(photos)
        act.undo.append(lambda: attachments.mark_referenced(photos, False))
    return photos


async def _feedback(act: Act) -> None:
    joint.complete_parts(act)  # with 协办: every part in, or past its limit (recorded)
    photos = await _attach_photos(act)
    act.sets["result"] = {"text": act.fields["result"], "photos": photos,
                         "by": act.user.username, "department": act.user.department, "at": act.now}
    act.sets["handled_at"] = act.now
    _clear_extension(act)  # the work is done: a pending extension lapses
    act.start_clock("check")


def _callback(act: Act) -> dict | None:
    """A hotline check is a callback (回访) to the caller: what they said, if reached."""
    if act.case.get("source") != "hotline":
        return None
    fields = act.fields
    contacted = fields.get("contacted")
    contacted = True if contacted is None else contacted
    callback = {"at": act.now, "by": act.user.username, "contacted": contacted,
                "satisfaction": None, "resolved": None, "note": act.note}
    if contacted:
        for name, label in (("satisfaction", "满意度"), ("resolved", "是否解决")):
            if fields.get(name) is None:
                raise bad_request(f"回访接通时必须填写{label}（{name}）", code="missing_field", field=name)
        callback["satisfaction"] = fields["satisfaction"]
        callback["resolved"] = fields["resolved"]
    return callback


async def _check(act: Act) -> None:
    callback = _callback(act)
    photos = await _attach_photos(act)
    if callback:
        act.sets["callback"] = callback
        act.append("callbacks", callback)
        act.record["contacted"] = callback["contacted"]
    act.sets["check"] = {"at": act.now, "by": act.user.username, "passed": act.fields["passed"],
                        "note": act.note, "photos": photos}
    if act.fields["passed"]:
        act.sets["checked_at"] = act.now
        act.stop_clock()
        return
    # 返工: back to the department, with a fresh handling limit.
    act.to = "accepted"
    act.inc["counters.reworks"] = 1
    act.start_clock("handle")


def _close(act: Act) -> None:
    act.sets["closed_at"] = act.now
    act.stop_clock()


def _reopen_days(ctx):
    return ctx.config["workflow"]["reopen_days"]  # default: dispatch/config.py


def _reopenable(ctx, case: dict, now: datetime) -> bool:
    closed_at = case.get("closed_at")
    return closed_at is not None and now <= closed_at + timedelta(days=float(_reopen_days(ctx)))


def _reopen(act: Act) -> None:
    if not _reopenable(act.ctx, act.case, act.now):
        raise conflict(f"已超过结案后 {_reopen_days(act.ctx)} 天的重办期限，请重新登记", code="reopen_window_closed")
    act.inc["counters.reopens"] = 1
    act.sets["closed_at"] = None
    act.sets["reopened_at"] = act.now
    department = (act.case.get("assignment") or {}).get("department")
    if department and department["id"] in act.case.get("departments_seen", []):
        act.to = "accepted"
        act.start_clock("handle")
    else:
        # Settled on the phone, never dispatched: the dispatcher has to send it somewhere.
        act.to = "filed"
        act.stop_clock()


async def _merge(act: Act) -> None:
    """The merged case's side of 并案. The master's side (`master_link`) is a change of another
    case: the workflow's merge command writes it after this one (dispatch.workflow.service)."""
    into = act.fields["into"]
    master = _check_master(act, await act.ctx.cases.get(into), into)
    act.sets["merged_into"] = {"id": master["_id"], "number": master.get("number")}
    act.stop_clock()
    act.record["into"] = master["_id"]


def _check_master(act: Act, master: dict | None, into: str) -> dict:
    if into == act.case["_id"]:
        raise unprocessable("不能把案件并入它自己", code="merge_target_invalid", field="into")
    if master is None or not can_read_case(act.user, master, act.ctx.city.id):
        raise unprocessable("主案不存在或不在您的权限范围内", code="merge_target_invalid", field="into")
    if master["status"] not in OPEN_STATUSES:
        raise unprocessable(f"主案 {master.get('number')} 已{_STATUS_WORD.get(master['status'], '办结')}，不能并入",
                            code="merge_target_invalid", field="into")
    return master


_STATUS_WORD = {"closed": "结案", "void": "作废", "merged": "被并案"}


def master_link(master: dict, source: dict, merge_entry: dict) -> Change | None:
    """The master's side of 并案 as one change: the link to the merged case, its reporters, and a
    `merge_in` history entry with the merge's own time, actor and note (so a retry writes the
    same). None when the master already links the source: nothing is added twice."""
    if any(link.get("id") == source["_id"] for link in master.get("merged_from") or []):
        return None
    added = [r for r in source.get("reporters", []) if r not in master.get("reporters", [])]
    at = merge_entry["at"]
    entry = chain_entry(master.get("history", []), {
        "at": at, "by": merge_entry["by"], "action": "merge_in", "from": master["status"],
        "to": master["status"], "note": merge_entry.get("note"), "source": source["_id"],
    })
    push = {"history": [entry], "merged_from": [{"id": source["_id"], "number": source.get("number"), "at": at}]}
    caller = merged_caller(master, source, at)
    if caller is not None:
        push["callers"] = [caller]
    return Change(sets={"updated_at": at}, push=push, add_to_set={"reporters": added} if added else {})


def merged_caller(master: dict, source: dict, at: datetime) -> dict | None:
    """The repeat's caller as the master keeps them (`callers`), so a department calling back
    reaches everyone who asked; None when the repeat had no caller or it is one the master
    already has. `taken_by` is the operator who took that call: the one, with admins, who sees
    this entry unmasked (`dispatch.domain.to_api`)."""
    caller = source.get("caller") or {}
    if not caller.get("phone") and not caller.get("name"):
        return None
    known = [master.get("caller") or {}, *(master.get("callers") or [])]
    if any(k.get("phone") == caller.get("phone") and k.get("name") == caller.get("name") for k in known):
        return None
    return {"name": caller.get("name"), "phone": caller.get("phone"), "case": source["_id"],
            "number": source.get("number"), "taken_by": source.get("created_by"), "at": at}


def _answerable(ctx, case: dict, now: datetime) -> bool:
    return case.get("source") == "hotline" and case.get("type") in ANSWERABLE_TYPES


def _answer(act: Act) -> None:
    if not _answerable(act.ctx, act.case, act.now):
        raise conflict("只有热线咨询类工单可以即时办结", code="not_answerable")
    act.sets["answer"] = {"text": act.fields["answer"], "by": act.user.username, "at": act.now}
    if act.fields.get("article"):  # the knowledge base article that answered it (counted as a use)
        act.sets["answer"]["article"] = act.fields["article"]
    act.sets["closed_at"] = act.now
    # Answered on the spot: nobody is sent anywhere, so a missing place is no longer wanted.
    act.sets["flags.needs_location"] = False
    act.stop_clock()


def _supervise(act: Act) -> None:
    act.sets["flags.supervised"] = True
    act.append("supervisions", {"at": act.now, "by": act.user.username, "note": act.note,
                                "to": escalation.supervision_addressee(act.ctx.city, act.case)})


def escalation_target(ctx, case: dict) -> dict | None:
    """The command level (street → district → city) above the one responsible now, or None.

    One rule for people and for the deadline sweep: `dispatch.workflow.escalation`.
    """
    target = escalation.escalation_target(ctx.city, case)
    if target is None:
        return None
    return {"id": target, "name": escalation.jurisdiction_name(ctx.city, target),
            "level": escalation.level_of(ctx.city, target)}


def _escalate(act: Act) -> None:
    fields = act.fields
    if (fields.get("to") is None) == (fields.get("departments") is None):
        raise bad_request('请给出 to: "up"（上报上一级）或 departments（吹哨召集部门）其中之一',
                          code="missing_field", field="to")
    if fields.get("to"):
        _escalate_up(act)
    else:
        _summon(act)


def _escalate_up(act: Act) -> None:
    target = escalation_target(act.ctx, act.case)
    if target is None:
        raise conflict("案件已上报至市级，无法再上报", code="already_top")
    act.sets["flags.escalated_to"] = target["id"]
    act.sets["escalation"] = {**target, "at": act.now, "by": act.user.username}
    act.append("escalations", {**target, "at": act.now, "by": act.user.username, "note": act.note})
    act.record["escalated_to"] = target["id"]
    act.record["level"] = target["level"]


def _summon(act: Act) -> None:
    ctx = act.ctx
    departments = [_department_ref(ctx, d, "departments") for d in act.fields["departments"]]
    within = act.fields.get("within") or ctx.config["workflow"]["checkin_within"]
    due_at = ctx.calendar.add(act.now, within).astimezone(timezone.utc)
    summons = list(act.case.get("summons") or [])
    for department in departments:
        summons.append({"department": department, "summoned_at": act.now, "by": act.user.username,
                        "due_at": due_at, "checked_in_at": None, "late": None})
    # The whole list is written back: the version guard makes that safe, and 报到 updates it.
    act.sets["summons"] = summons
    act.add_to_set["departments_seen"] = [d["id"] for d in departments]
    act.record.update({"within": within, "due_at": due_at})


def _checkin(act: Act) -> None:
    summons = []
    late = False
    for item in act.case.get("summons") or []:
        item = dict(item)
        if item["department"]["id"] == act.user.department and item.get("checked_in_at") is None:
            item["checked_in_at"] = act.now
            item["late"] = act.now > item["due_at"]
            late = late or item["late"]
        summons.append(item)
    act.sets["summons"] = summons
    act.record.update({"department": act.user.department, "late": late})


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------

ACTIVE = OPEN_STATUSES  # every open state, suspended included

DISPATCHER = ("dispatcher",)

TABLE = (
    # Transition(action, label, who, from states, to state (None: same), effect, ...)
    Transition("verify", "核实", ("grid_worker",), ("reported",), None, _verify,
               fields=(Field("valid", "bool", required=True),)),
    Transition("relocate", "补充定位", ("operator", "dispatcher"), ("reported", "filed"), None, _relocate,
               fields=(Field("location", "point", required=True), Field("address", max_len=200))),
    Transition("file", "立案", DISPATCHER, ("reported",), "filed", _file, applies_to=_located),
    Transition("void", "作废", DISPATCHER, ("reported", "filed"), "void", _void, fields=(REASON,)),
    Transition("dispatch", "派遣", DISPATCHER, ("filed", "dispatched"), "dispatched", _dispatch,
               fields=(Field("department", "id"), Field("support", "ids")), applies_to=joint.not_return_pending),
    Transition("sign", "签收", ("department",), ("dispatched",), "accepted", _sign,
               applies_to=joint.not_return_pending),
    Transition("return", "退单", ("department",), ("dispatched", "accepted"), None, _return,
               fields=(REASON,), applies_to=joint.not_return_pending),
    Transition("approve_return", "同意退单", DISPATCHER, ("dispatched", "accepted"), None, _approve_return,
               applies_to=joint.return_pending),
    Transition("reject_return", "驳回退单", DISPATCHER, ("dispatched", "accepted"), None, _reject_return,
               fields=(REASON,), applies_to=joint.return_pending),
    Transition("support_sign", "协办签收", ("department",), ("dispatched", "accepted"), None, _support_sign,
               link=SUPPORT_TO_SIGN, applies_to=joint.not_return_pending),
    Transition("support_feedback", "协办反馈", ("department",), ("dispatched", "accepted"), None,
               _support_feedback, link=SUPPORT_TO_FEED, applies_to=joint.not_return_pending,
               fields=(Field("result", required=True, max_len=2000), Field("photos", "photos"))),
    Transition("request_extension", "申请延期", ("department",), ("accepted",), None, _request_extension,
               fields=(Field("until", "instant"), Field("duration", "duration"), REASON),
               applies_to=_may_request_extension),
    Transition("approve_extension", "批准延期", DISPATCHER, ("accepted",), None, _approve_extension,
               applies_to=_extension_pending),
    Transition("reject_extension", "驳回延期", DISPATCHER, ("accepted",), None, _reject_extension,
               applies_to=_extension_pending),
    Transition("suspend", "挂账", DISPATCHER, ("accepted",), "suspended", _suspend, fields=(REASON,),
               applies_to=joint.not_return_pending),
    Transition("resume", "恢复办理", DISPATCHER, ("suspended",), "accepted", _resume),
    Transition("feedback", "处置反馈", ("department",), ("accepted",), "handled", _feedback,
               applies_to=joint.may_complete, fields=(Field("result", required=True, max_len=2000), Field("photos", "photos"))),
    Transition("check", "核查", (), ("handled",), "checked", _check,
               roles_by_source={"grid": ("grid_worker",), "hotline": ("operator",)},
               fields=(Field("passed", "bool", required=True), Field("photos", "photos"),
                       Field("satisfaction", "choice", options=SATISFACTION), Field("resolved", "bool"),
                       Field("contacted", "bool"))),
    Transition("close", "结案", DISPATCHER, ("checked",), "closed", _close),
    Transition("reopen", "重新办理", ("dispatcher", "operator"), ("closed",), "accepted", _reopen,
               fields=(REASON,), applies_to=_reopenable),
    Transition("merge", "并案", ("dispatcher", "operator"), ("reported", "filed"), "merged", _merge,
               fields=(Field("into", "id", required=True),)),
    Transition("answer", "即时办结", ("operator",), ("reported",), "closed", _answer,
               fields=(Field("answer", required=True, max_len=2000), Field("article", max_len=64)),
               applies_to=_answerable),
    Transition("supervise", "督办", ("dispatcher", "commander"), ACTIVE, None, _supervise),
    Transition("escalate", "吹哨/上报", ("dispatcher", "commander", "department"), ACTIVE, None, _escalate,
               fields=(Field("to", "choice", options=("up",)), Field("departments", "ids"),
                       Field("within", "duration"))),
    Transition("checkin", "报到", ("department",), ACTIVE, None, _checkin, link=SUMMONED),
)

TRANSITIONS: dict[str, Transition] = {t.action: t for t in TABLE}


def entry_fields(fields: dict) -> dict:
    """The action's fields as they go into the history entry (absent ones left out)."""
    return {k: v for k, v in fields.items() if v is not None and k not in _ENTRY_KEYS}

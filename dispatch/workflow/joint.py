"""Joint handling (主办/协办) and the review of a department's return (派单异议), SPEC §4.

**Support parts.** A dispatch may name supporting departments (协办) beside the lead (主办).
Each gets a *part* on the case (`case.support`, one item per department):

    {department: {id, name}, status, dispatched_at, signed_at, stage, limit, due, late,
     lapsed_at, feedback: {text, photos, by, at} | None}

`status` runs dispatched (待签收) → signed (处置中) → done (已反馈); `lapsed` when the lead
completed the handling step while the part was still open past its limit. Each part has its own
clock from the category's limits, counted per department: the sign limit from the dispatch, the
handle limit from the part's own 签收. `due` is the running part clock's deadline and `late` says
the deadline sweep found it passed (`support_overdue` in the history).

The lead's `feedback` completes the handling step only once every part is done or has lapsed
(its `due` has passed); the lapsed departments are named in that history entry.

**Return review.** A department's `return` (退单) no longer sends the case back at once: it sets
`flags.return_pending`, keeps a `return_request` and pauses the stage clock (the case's and the
open parts'). A dispatcher then approves it (`approve_return`: back to `filed` for 改派, the
disputed catalogue entry recorded for the admin) or rejects it with a reason (`reject_return`:
the department carries on, every paused deadline moved by the time the review took).

The part list is written back whole on every change: the version guard on the case makes that
safe (as for 吹哨's summons).
"""

from __future__ import annotations

from datetime import datetime, timezone

from dispatch.errors import conflict, unprocessable
from dispatch.workflow.deadlines import NATURAL, Duration
from dispatch.workflow import stageclock

DISPATCHED, SIGNED, DONE, LAPSED = "dispatched", "signed", "done", "lapsed"
OPEN_PARTS = (DISPATCHED, SIGNED)
PART_NAMES = {DISPATCHED: "待签收", SIGNED: "处置中", DONE: "已反馈", LAPSED: "逾期未反馈"}

# The audit-log kind under which approved returns flag their catalogue entry for the admin.
DISPUTES = "catalogue_disputes"


# --------------------------------------------------------------------------------------------
# Reading the parts
# --------------------------------------------------------------------------------------------


def parts(case: dict) -> list[dict]:
    return [dict(part) for part in case.get("support") or []]


def part_of(case: dict, department_id: str | None) -> dict | None:
    return next((p for p in case.get("support") or [] if p["department"]["id"] == department_id), None)


def is_open(part: dict) -> bool:
    return part.get("status") in OPEN_PARTS


def has_lapsed(part: dict, now: datetime) -> bool:
    """An open part whose running limit has passed (a part without a limit never lapses)."""
    return is_open(part) and part.get("due") is not None and now >= part["due"]


def waiting_parts(case: dict, now: datetime) -> list[dict]:
    """The parts the lead's feedback still has to wait for."""
    return [p for p in case.get("support") or [] if is_open(p) and not has_lapsed(p, now)]


def next_part_due(case_parts: list[dict]) -> datetime | None:
    """The earliest deadline of an open part the sweep has not flagged yet."""
    dues = [p["due"] for p in case_parts if is_open(p) and p.get("due") is not None and not p.get("late")]
    return min(dues) if dues else None


# --------------------------------------------------------------------------------------------
# Predicates of the transition table (`Transition.applies_to`)
# --------------------------------------------------------------------------------------------


def return_pending(ctx, case: dict, now: datetime) -> bool:
    return bool(case["flags"].get("return_pending"))


def not_return_pending(ctx, case: dict, now: datetime) -> bool:
    return not return_pending(ctx, case, now)


def may_complete(ctx, case: dict, now: datetime) -> bool:
    """The lead's feedback: no return under review, and no part still within its limit."""
    return not_return_pending(ctx, case, now) and not waiting_parts(case, now)


def _refuse(act, message: str, code: str):
    return conflict(message, code=code, allowed=act.ctx.workflow.allowed_actions(act.user, act.case))


def require_no_return_pending(act) -> None:
    if return_pending(act.ctx, act.case, act.now):
        raise _refuse(act, "退单正在等待指挥中心审核", "return_pending")


# --------------------------------------------------------------------------------------------
# Part clocks
# --------------------------------------------------------------------------------------------


def _clock(ctx, case: dict, stage: str, start: datetime) -> tuple[str | None, datetime | None]:
    clock = stageclock.stage_clock(ctx, case, stage, start)
    if clock is None:
        return None, None
    return clock["limit"], clock["deadline"].astimezone(timezone.utc)


def _shifted(ctx, due: datetime, limit: str, since: datetime, now: datetime) -> datetime:
    """`due` moved by the time in [since, now) on the limit's own clock (working or natural)."""
    calendar = ctx.calendar
    if calendar.parse_duration(limit).unit == NATURAL:
        spent = Duration.natural(max(0.0, (now - since).total_seconds()))
    else:
        spent = Duration.working(calendar.working_seconds_between(since, now))
    return calendar.add(due, spent).astimezone(timezone.utc)


def keep_cursor(act, case_parts: list[dict]) -> None:
    """Bring the sweep's cursor (`next_due_at`) forward to the earliest open part deadline.

    Called after the action's own clock changes, so the cursor is the earlier of the stage
    clock's next threshold and the parts' deadlines (the sweep keeps it so).
    """
    due = next_part_due(case_parts)
    if due is None or "next_due_at" in act.unsets and "next_due_at" not in act.sets:
        return
    current = act.sets.get("next_due_at", act.case.get("next_due_at"))
    if current is None and not act.case.get("clock") and "clock" not in act.sets:
        return  # no stage clock: nothing the sweep watches
    if current is None or due < current:
        act.sets["next_due_at"] = due


# --------------------------------------------------------------------------------------------
# Effects
# --------------------------------------------------------------------------------------------


def dispatch_support(act, lead: dict) -> None:
    """`dispatch {support: [...]}`: a part for each supporting department, its sign clock running."""
    ids = act.fields.get("support") or []
    if not ids and not act.case.get("support"):
        return
    departments = act.ctx.city.departments
    unknown = [d for d in ids if d not in departments]
    if unknown:
        raise unprocessable(f"协办部门 {'、'.join(unknown)} 不存在", code="unknown_department", field="support")
    if lead["id"] in ids:
        raise unprocessable("主办部门不能同时是协办部门", code="support_is_lead", field="support")
    limit, due = _clock(act.ctx, act.case, "sign", act.now)
    new_parts = [{
        "department": {"id": departments[d].id, "name": departments[d].name},
        "status": DISPATCHED, "dispatched_at": act.now, "signed_at": None, "stage": "sign",
        "limit": limit, "due": due, "late": False, "lapsed_at": None, "feedback": None,
    } for d in ids]
    act.sets["support"] = new_parts
    if ids:
        act.add_to_set["departments_seen"] = [lead["id"], *ids]
        act.record["support"] = list(ids)


def _write_parts(act, case_parts: list[dict]) -> None:
    act.sets["support"] = case_parts
    keep_cursor(act, case_parts)


def support_sign(act) -> None:
    require_no_return_pending(act)
    case_parts = parts(act.case)
    part = next(p for p in case_parts if p["department"]["id"] == act.user.department)
    limit, due = _clock(act.ctx, act.case, "handle", act.now)
    part.update({"status": SIGNED, "signed_at": act.now, "stage": "handle", "limit": limit, "due": due,
                 "late": False})
    _write_parts(act, case_parts)
    act.record["department"] = act.user.department


def support_feedback(act, photos: list[str]) -> None:
    require_no_return_pending(act)
    case_parts = parts(act.case)
    part = next(p for p in case_parts if p["department"]["id"] == act.user.department)
    late = part.get("due") is not None and act.now > part["due"]
    part.update({"status": DONE, "late": bool(part.get("late") or late),
                 "feedback": {"text": act.fields["result"], "photos": photos, "by": act.user.username,
                              "at": act.now}})
    _write_parts(act, case_parts)
    act.record.update({"department": act.user.department, "late": part["late"]})


def complete_parts(act) -> None:
    """The lead's feedback: refused while a part is within its limit; lapsed parts recorded."""
    require_no_return_pending(act)
    if not act.case.get("support"):
        return
    waiting = waiting_parts(act.case, act.now)
    if waiting:
        names = "、".join(p["department"]["name"] for p in waiting)
        raise _refuse(act, f"协办部门 {names} 尚未反馈且未超时限，暂不能完成处置反馈", "support_pending")
    case_parts = parts(act.case)
    lapsed = []
    for part in case_parts:
        if is_open(part):
            part.update({"status": LAPSED, "lapsed_at": act.now, "late": True})
            lapsed.append(part["department"]["id"])
    act.sets["support"] = case_parts
    if lapsed:
        act.record["support_lapsed"] = lapsed


def request_return(act) -> None:
    """退单: the review starts; the case's clock and the open parts' clocks pause."""
    require_no_return_pending(act)
    department = act.case["assignment"]["department"]
    request = {"at": act.now, "by": act.user.username, "department": department,
               "reason": act.fields["reason"], "status": act.status}
    act.sets["flags.return_pending"] = True
    act.sets["return_request"] = request
    act.sets.update(stageclock.paused_clock(act.case, act.now))
    act.unsets.add("next_due_at")
    act.inc["counters.returns"] = 1
    act.append("returns", {"at": act.now, "department": department, "reason": act.fields["reason"]})
    act.record["department"] = department["id"]


def _pending_request(act) -> dict:
    if not return_pending(act.ctx, act.case, act.now):
        raise _refuse(act, "没有待审核的退单", "no_return_pending")
    return act.case.get("return_request") or {}


def approve_return(act) -> dict:
    """改派: back to the dispatch queue; returns the catalogue entry the return disputes."""
    request = _pending_request(act)
    department = request.get("department") or act.case["assignment"]["department"]
    act.to = "filed"
    act.sets["assignment.department"] = None
    act.sets.update({"deadlines.sign_by": None, "deadlines.handle_by": None, "deadlines.check_by": None})
    act.sets["flags.return_pending"] = False
    act.sets["flags.extension_pending"] = False
    act.unsets.update({"return_request", "extension_request"})
    if act.case.get("support"):
        act.sets["support"] = []
        act.record["support_dropped"] = [p["department"]["id"] for p in act.case["support"]]
    act.stop_clock()
    act.inc["counters.reassignments"] = 1
    act.append("return_reviews", {**request, "approved": True, "decided_by": act.user.username,
                                  "decided_at": act.now, "note": act.note})
    act.record["department"] = department["id"]
    entry = disputed_entry(act.ctx, act.case, department)
    act.record["catalogue_entry"] = entry["key"]
    return entry


def reject_return(act) -> None:
    """驳回退单: the department carries on; every paused deadline moves by the review's time."""
    request = _pending_request(act)
    sets, unsets = stageclock.resumed_clock(act.ctx, act.case, act.now)
    act.sets.update(sets)
    act.unsets.update(unsets)
    resume_parts(act, (act.case.get("clock") or {}).get("paused_at") or request.get("at"))
    act.sets["flags.return_pending"] = False
    act.unsets.add("return_request")
    act.inc["counters.return_rejections"] = 1
    act.append("return_reviews", {**request, "approved": False, "decided_by": act.user.username,
                                  "decided_at": act.now, "reason": act.fields["reason"]})
    act.record["department"] = (request.get("department") or {}).get("id")
    deadline_field = next((k for k in sets if k.startswith("deadlines.")), None)
    if deadline_field:
        act.record[deadline_field.split(".", 1)[1]] = sets[deadline_field]


def resume_parts(act, paused_at: datetime | None) -> None:
    """The case's clock restarts (a rejected return, 恢复办理 after 挂账): every open part's
    deadline moves by the time it stood still, on the part limit's own clock."""
    case_parts = parts(act.case)
    if not case_parts or paused_at is None:
        return
    for part in case_parts:
        if is_open(part) and part.get("due") is not None:
            part["due"] = _shifted(act.ctx, part["due"], part["limit"], paused_at, act.now)
            part["late"] = part["due"] <= act.now and bool(part.get("late"))
    _write_parts(act, case_parts)


# --------------------------------------------------------------------------------------------
# The deadline sweep's part (dispatch/sweep/sweeper.py calls this for every due case)
# --------------------------------------------------------------------------------------------


def sweep_parts(case: dict, now: datetime) -> tuple[list[dict] | None, list[dict], datetime | None]:
    """Flag the open parts whose deadline has passed.

    Returns (the new part list or None when unchanged, one history entry body per newly late
    part, the next part deadline still ahead). Pure: the sweep chains and writes the entries.
    """
    case_parts = parts(case)
    if not case_parts or case["flags"].get("return_pending"):
        return None, [], None
    entries = []
    for part in case_parts:
        if is_open(part) and part.get("due") is not None and not part.get("late") and part["due"] <= now:
            part["late"] = True
            verb = "签收" if part.get("stage") == "sign" else "处置"
            entries.append({"action": "support_overdue", "department": part["department"]["id"],
                            "stage": part.get("stage"), "due_at": part["due"],
                            "note": f"协办部门 {part['department']['name']} 超过{verb}时限"})
    return (case_parts if entries else None), entries, next_part_due(case_parts)


# --------------------------------------------------------------------------------------------
# The catalogue entry an approved return disputes
# --------------------------------------------------------------------------------------------


def disputed_entry(ctx, case: dict, department: dict) -> dict:
    """Which line of the dispatch catalogue sent the case there: category, rule, department
    type and the level of the department's jurisdiction."""
    city = ctx.city
    routing = case.get("routing") or {}
    dept = city.departments.get(department["id"])
    rule = routing.get("rule") if (routing.get("department") or {}).get("id") == department["id"] else None
    from dispatch.rules.catalogue import level_of_jurisdiction  # the catalogue names levels

    category = case.get("category") or {}
    entry = {
        "category": category.get("code"),
        "category_name": category.get("name"),
        "rule": rule or "manual",
        "department_type": dept.type if dept else None,
        "level": level_of_jurisdiction(city, dept.jurisdiction) if dept else None,
        "department": {"id": department["id"], "name": department.get("name")},
    }
    entry["key"] = "|".join(str(entry[k]) for k in ("category", "rule", "department_type", "level"))
    return entry


async def record_dispute(act, updated: dict, entry: dict) -> None:
    """After an approved return is written: the disputed catalogue entry, for the admin
    (`GET /api/catalogue/disputes`, and marked in the catalogue)."""
    request = act.case.get("return_request") or {}
    await act.ctx.audit_log.record(DISPUTES, {
        "at": act.now, "by": act.user.username, "case_id": updated["_id"], "number": updated.get("number"),
        "reason": request.get("reason"), "returned_by": request.get("by"), **entry,
    })

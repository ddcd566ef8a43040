"""The deadline sweep (SPEC §4 "Deadlines"): warning, overdue, automatic 督办 and 提级.

A running stage clock (`dispatch.workflow.stageclock`) stores on the case its `deadline` and `warn_at`,
and `next_due_at`: the next instant at which the sweep has something to do. From one stage
clock follow four thresholds, in time order:

    warn      at `warn_at` (the warning fraction of the limit)       -> flags.warning
    overdue   at `deadline`                                            -> flags.overdue
    supervise at `deadline + deadlines.supervise_grace`                -> flags.supervised (督办)
    escalate  at `deadline + deadlines.escalate_grace`                 -> flags.escalated_to (提级)

`next_due_at` is the sweep's cursor: every threshold before it has been applied, none at or
after it has. A sweep fetches the cases with `next_due_at <= now` (an index range, so a sweep
with nothing due costs the same with 100 or 100,000 open cases), applies each case's passed
thresholds in one version-guarded update with one history entry per threshold, and moves the
cursor to the next threshold (or removes it). All state lives on the case, so a second sweep
at the same instant, or a sweep by a restarted server, finds nothing left to do; a case a user
changed meanwhile fails the version guard and is simply taken up by the next sweep.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from dispatch.workflow import joint
from dispatch.workflow.audit import chain_entry
from dispatch.config import ConfigError
from dispatch.workflow.escalation import (
    escalation_target, jurisdiction_label, jurisdiction_name, level_of, supervision_addressee,
)
from dispatch.store.query import Change
from dispatch.workflow.service import SYSTEM
from dispatch.workflow.stageclock import (
    ESCALATE, OVERDUE, SUPERVISE, WARN, grace, running_clock, thresholds,
)
from dispatch.workflow.transitions import STAGE_NAMES
from dispatch.clock import stored_instant

log = logging.getLogger(__name__)

COUNT_OF_ACTION = {WARN: "warned", OVERDUE: "overdue", SUPERVISE: "supervised", ESCALATE: "escalated"}

_ms = stored_instant


def check_config(ctx) -> None:
    """Fail at start, not at the first overdue case, on a grace the calendar cannot read."""
    for key in ("supervise_grace", "escalate_grace"):
        value = grace(ctx, key)
        if value is not None:
            try:
                ctx.calendar.parse_duration(value)
            except ValueError as exc:
                raise ConfigError(f"配置项 deadlines.{key} 无效: {exc}") from None


# --------------------------------------------------------------------------------------------
# Wording
# --------------------------------------------------------------------------------------------

_UNIT_WORDS = (("wd", "个工作日"), ("wh", "个工作小时"), ("s", "秒"), ("m", "分钟"), ("h", "小时"), ("d", "天"))


def human_duration(text: str) -> str:
    """'1wd' → '1 个工作日', '30m' → '30 分钟' (the configured text, read aloud)."""
    for unit, words in _UNIT_WORDS:
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return f"{text[: -len(unit)]} {words}"
    return text


def _local(ctx, moment: datetime) -> str:
    local = moment.astimezone(ctx.tz)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def _note(ctx, action: str, clock: dict, target: str | None = None, case: dict | None = None) -> str:
    verb = STAGE_NAMES.get(clock["stage"], clock["stage"])
    due = _local(ctx, clock["deadline"])
    if action == WARN:
        percent = round(ctx.warning_fraction * 100)
        return f"{verb}时限已用去 {percent}%，将于 {due} 到期，请抓紧{verb}"
    if action == OVERDUE:
        return f"已超过{verb}时限（{due} 到期），案件超期"
    late = human_duration(grace(ctx, "supervise_grace" if action == SUPERVISE else "escalate_grace"))
    if action == SUPERVISE:
        addressee = f"（督办对象：{supervision_addressee(ctx.city, case)['name']}）" if case else ""
        return f"超期 {late}仍未{verb}，系统自动督办{addressee}"
    return f"超期 {late}仍未{verb}，系统自动提级至 {jurisdiction_label(ctx.city, target)}"


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------


def plan_case(ctx, case: dict, now: datetime) -> tuple[Change, list[str]]:
    """The update that brings one due case up to `now`, and the actions it records.

    Pure: reads the case, returns the `Change` to write; the caller applies it under the
    case's version.
    """
    if not running_clock(case):
        # No running clock in this state (closed, suspended, void...): drop the stale cursor.
        return Change(unsets={"next_due_at"}), []
    clock = case["clock"]
    cursor = _ms(case["next_due_at"])
    steps = thresholds(ctx, clock)
    history = list(case.get("history") or [])
    fields: dict = {}
    pushes: dict = {}
    entries, actions = [], []
    for step in steps:
        if step.at < cursor or step.at > now:
            continue  # applied by an earlier sweep, or not yet due
        target = None
        if step.action == WARN:
            fields["flags.warning"] = True
        elif step.action == OVERDUE:
            fields["flags.overdue"] = True
        elif step.action == SUPERVISE:
            fields["flags.supervised"] = True
        else:
            target = escalation_target(ctx.city, case)
            if target is None:
                continue  # already at the top level: nobody above to escalate to
            fields["flags.escalated_to"] = target
        note = _note(ctx, step.action, clock, target, case)
        entry = chain_entry(history, {
            "at": now, "by": SYSTEM, "action": step.action, "from": case["status"], "to": case["status"],
            "note": note, "stage": clock["stage"], "due_at": step.at,
            **({"escalated_to": target, "level": level_of(ctx.city, target)} if target else {}),
        })
        history.append(entry)
        entries.append(entry)
        actions.append(step.action)
        # The same records the manual 督办 / 上报 actions keep (dispatch/workflow/transitions.py).
        if step.action == SUPERVISE:
            pushes["supervisions"] = {"at": now, "by": SYSTEM, "note": note,
                                      "to": supervision_addressee(ctx.city, case)}
        elif step.action == ESCALATE:
            node = {"id": target, "name": jurisdiction_name(ctx.city, target), "level": level_of(ctx.city, target)}
            fields["escalation"] = {**node, "at": now, "by": SYSTEM}
            pushes["escalations"] = {**node, "at": now, "by": SYSTEM, "note": note}
    # 协办 parts run clocks of their own (dispatch/workflow/joint.py): late ones are flagged.
    part_list, part_entries, part_due = joint.sweep_parts(case, now)
    for body in part_entries:
        entry = chain_entry(history, {"at": now, "by": SYSTEM, "from": case["status"], "to": case["status"], **body})
        history.append(entry)
        entries.append(entry)
    if part_list is not None:
        fields["support"] = part_list
    change = Change(sets=fields)
    following = min(filter(None, (next((step.at for step in steps if step.at > now), None), part_due)), default=None)
    if following is None:
        change.unsets.add("next_due_at")
    else:
        fields["next_due_at"] = following
    if entries:
        fields["updated_at"] = now
        change.push = {"history": entries, **{path: [item] for path, item in pushes.items()}}
    return change, actions


def _new_counts() -> dict:
    return {"examined": 0, "warned": 0, "overdue": 0, "supervised": 0, "escalated": 0,
            "conflicts": 0, "cleared": 0, "errors": 0}


async def sweep_case(ctx, case: dict, now: datetime, counts: dict) -> bool:
    """Apply one due case's thresholds; False if a concurrent change won (retry next sweep)."""
    change, actions = plan_case(ctx, case, now)
    updated = await ctx.cases.update(case["_id"], case["version"], change)
    if updated is None:
        counts["conflicts"] += 1
        return False
    for action in actions:
        counts[COUNT_OF_ACTION[action]] += 1
    if not running_clock(case):
        counts["cleared"] += 1
    return True


async def run_sweep(ctx, now: datetime | None = None, batch: int | None = None) -> dict:
    """One sweep at `now` (default: the current time). Returns what it did, by kind.

    `examined` counts the due cases read; `conflicts` those a concurrent action changed
    first (left for the next sweep); `cleared` stale cursors removed from cases whose state
    has no running clock; `errors` cases that could not be processed (logged, left as they were).
    """
    now = _ms(now or ctx.clock.now())
    batch = batch or int(ctx.config["scheduler"]["sweep_batch"])
    counts = _new_counts()
    passed: list[str] = []  # conflicts and failures: not retried within this sweep
    while True:
        cases = await ctx.cases.due(now, batch, exclude=passed)
        for case in cases:
            counts["examined"] += 1
            try:
                done = await sweep_case(ctx, case, now, counts)
            except Exception:  # noqa: BLE001 - one broken case must not stop the sweep
                log.exception("deadline sweep failed on case %s", case.get("_id"))
                counts["errors"] += 1
                done = False
            if not done:
                passed.append(case["_id"])
            # The embedded store works on the event loop: let requests in between cases, so a
            # morning with thousands of crossings never holds the server for more than one.
            await asyncio.sleep(0)
        if len(cases) < batch:
            return counts

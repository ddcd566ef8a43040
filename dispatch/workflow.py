"""The closed loop: how a case moves between states, and the stage clocks that go with it.

立案 → 派遣 → 签收 → 处置 → 核查 → 结案. Each stage that somebody must finish in time (sign,
handle, check) runs a clock from the category's limits on the city's business calendar; the
case stores the stage deadline and the instant at which it turns to warning, so the deadline
sweep only touches cases whose next instant has come.
"""

from __future__ import annotations

from datetime import datetime

from dispatch.audit import chain_entry

SYSTEM = "system"

# Which clock runs in which state.
STAGE_OF_STATUS = {"dispatched": "sign", "accepted": "handle", "handled": "check"}
DEADLINE_FIELD = {"sign": "sign_by", "handle": "handle_by", "check": "check_by"}


class Workflow:
    def __init__(self, ctx):
        self.ctx = ctx

    # -- stage clocks -----------------------------------------------------------------------

    def stage_limit(self, category, priority: str, stage: str) -> str | None:
        limits = category.limits or {}
        if priority == "urgent" and category.urgent_limits:
            limits = {**limits, **category.urgent_limits}
        return limits.get(stage)

    def start_stage(self, case: dict, stage: str, start: datetime) -> None:
        """Set the stage's deadline and warning instant on the case (in place)."""
        category = self.ctx.city.categories.get(case["category"]["code"])
        limit = self.stage_limit(category, case["priority"], stage) if category else None
        if limit is None:
            case["clock"] = None
            case.pop("next_due_at", None)
            return
        calendar = self.ctx.calendar
        deadline = calendar.add(start, limit)
        warn_at = calendar.fraction_instant(start, deadline, self.ctx.warning_fraction, limit)
        case["deadlines"][DEADLINE_FIELD[stage]] = deadline
        case["clock"] = {"stage": stage, "limit": limit, "started_at": start, "deadline": deadline,
                         "warn_at": warn_at}
        case["flags"]["warning"] = False
        case["flags"]["overdue"] = False
        case["next_due_at"] = warn_at

    # -- transitions done by the system -----------------------------------------------------

    def auto_dispatch(self, case: dict, category, now: datetime) -> None:
        """Categories with `auto_dispatch` are filed and dispatched at intake (in place)."""
        department = case["assignment"]["department"]
        self._record(case, now, "file", "reported", "filed", "类别设置为自动立案")
        self._record(case, now, "dispatch", "filed", "dispatched",
                     f"自动派遣至 {department['name']}：{case['assignment']['reason']}")
        case["status"] = "dispatched"
        case.setdefault("departments_seen", [])
        if department["id"] not in case["departments_seen"]:
            case["departments_seen"].append(department["id"])
        self.start_stage(case, "sign", now)

    @staticmethod
    def _record(case: dict, now: datetime, action: str, from_status, to_status, note: str,
                by: str = SYSTEM) -> None:
        case["history"].append(chain_entry(case["history"], {
            "at": now, "by": by, "action": action, "from": from_status, "to": to_status, "note": note,
        }))

"""Who may see which cases: the one place that turns a user into a query filter.

A department sees the cases assigned to it, now or before; everyone else sees the cases inside
their scope (a jurisdiction and everything under it; the city id means the whole city).
Filters are applied in the query itself, never after fetching.
"""

from __future__ import annotations

from dispatch.auth import User
from dispatch.errors import ApiError, forbidden, not_found


def case_read_filter(user: User, city_id: str) -> dict:
    if user.role == "admin":
        return {}
    if user.role == "department":
        return {"departments_seen": user.department or "\x00none"}
    if user.scope == city_id:
        return {}
    return {"scope_path": user.scope}


def can_read_case(user: User, case: dict, city_id: str) -> bool:
    if user.role == "admin":
        return True
    if user.role == "department":
        return bool(user.department) and user.department in case.get("departments_seen", [])
    return user.scope == city_id or user.scope in case.get("scope_path", [])


# -- acting on a case ----------------------------------------------------------------------
#
# Reading decides whether a case exists for the user at all (404 otherwise); acting adds the
# role the action requires and, for a department, its link to the case: most department
# actions need the case to be assigned to it *now* (having seen it before is not enough), and
# 报到 needs a pending summons (吹哨).

ASSIGNED = "assigned"
SUMMONED = "summoned"


def is_assigned_department(user: User, case: dict) -> bool:
    department = ((case.get("assignment") or {}).get("department")) or {}
    return bool(user.department) and department.get("id") == user.department


def is_summoned_department(user: User, case: dict) -> bool:
    """A summons not yet answered with 报到."""
    return bool(user.department) and any(
        s["department"]["id"] == user.department and s.get("checked_in_at") is None
        for s in case.get("summons") or []
    )


def department_link_holds(user: User, case: dict, link: str) -> bool:
    if user.role != "department":
        return True
    if link == SUMMONED:
        return is_summoned_department(user, case)
    return is_assigned_department(user, case)


def action_refusal(user: User, case: dict, city_id: str, roles, link: str = ASSIGNED) -> ApiError | None:
    """Why `user` may not act on `case` with an action open to `roles`, or None if they may.

    Scope is part of reading: a user who cannot read the case gets the same 404 as for a case
    that does not exist.
    """
    if not can_read_case(user, case, city_id):
        return not_found("案件不存在或不在您的权限范围内", code="case_not_found")
    if user.role not in roles:
        return forbidden(f"角色 {user.role} 无权执行此操作", code="role_forbidden")
    if not department_link_holds(user, case, link):
        if link == SUMMONED:
            return forbidden("本部门未被召集到此案件，或已经报到", code="not_summoned")
        return forbidden("此案件当前未派遣给本部门", code="not_assigned")
    return None


def may_act(user: User, case: dict, city_id: str, roles, link: str = ASSIGNED) -> bool:
    return action_refusal(user, case, city_id, roles, link) is None

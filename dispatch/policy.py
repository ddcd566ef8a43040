"""Who may see which cases: the one place that turns a user into a query filter.

A department sees the cases assigned to it, now or before; everyone else sees the cases inside
their scope (a jurisdiction and everything under it; the city id means the whole city).
Filters are applied in the query itself, never after fetching.
"""

from __future__ import annotations

from dispatch.auth import User


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

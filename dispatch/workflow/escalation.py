"""三级联动: which command level (street → district → city) a case escalates to.

One rule for dispatchers and commanders (the `escalate` action) and for the deadline sweep's
automatic escalation.
"""

from __future__ import annotations

# Levels that have a command centre (城运中心) to escalate to; communities and grids do not.
COMMAND_LEVELS = ("street", "district", "city")
LEVEL_NAME = {"street": "街道", "district": "区", "city": "市"}


def level_of(city, jurisdiction_id: str) -> str | None:
    if jurisdiction_id == city.id:
        return "city"
    node = city.jurisdictions.get(jurisdiction_id)
    return node.level if node else None


def escalation_target(city, case: dict) -> str | None:
    """The command level above the one now responsible for the case, or None at the top.

    Responsible now: the level the case was last escalated to, else the area the assigned
    department serves, else the case's own (deepest) jurisdiction.
    """
    chain = list(reversed(case.get("scope_path") or [city.id]))  # deepest first, city last
    current = (case.get("flags") or {}).get("escalated_to")
    if current not in chain:
        department = ((case.get("assignment") or {}).get("department") or {}).get("id")
        served = getattr(city.departments.get(department), "jurisdiction", None) if department else None
        current = served if served in chain else chain[0]
    for candidate in chain[chain.index(current) + 1:]:
        if level_of(city, candidate) in COMMAND_LEVELS:
            return candidate
    return None


def jurisdiction_name(city, jurisdiction_id: str) -> str:
    if jurisdiction_id == city.id:
        return city.name
    node = city.jurisdictions.get(jurisdiction_id)
    return node.name if node else jurisdiction_id


def jurisdiction_label(city, jurisdiction_id: str) -> str:
    """'甲区（区级）': where an escalated case went, as a dispatcher reads it."""
    level = level_of(city, jurisdiction_id)
    name = jurisdiction_name(city, jurisdiction_id)
    return f"{name}（{LEVEL_NAME[level]}级）" if level in LEVEL_NAME else name


def supervision_addressee(city, case: dict) -> dict:
    """Whom a 督办 addresses: whoever the case waits for now. In 待核查 (handled) that is the
    checker — the grid's workers for a grid report, the 12345 callback for a hotline ticket —
    not the department, which has done its part; otherwise the assigned department."""
    if case.get("status") == "handled":
        if case.get("source") == "hotline":
            return {"kind": "callback", "name": "12345 回访员"}
        grid = (case.get("jurisdiction") or {}).get("grid") or {}
        return {"kind": "checker", "id": grid.get("id"), "name": f"{grid.get('name') or '所在网格'}网格员"}
    department = (case.get("assignment") or {}).get("department") or {}
    return {"kind": "department", "id": department.get("id"), "name": department.get("name") or "承办部门"}

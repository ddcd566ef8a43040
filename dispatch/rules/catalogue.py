"""The dispatch catalogue (派单目录): which department type handles which category at which level.

Published from the city's rules (rules.yaml) and departments, never kept by hand: for each
category, the rules that can apply to it in the order the router tries them, each with its
conditions in words, the department type it assigns and the levels (市级/区级/街道…) at which
departments of that type exist (the router picks the nearest enclosing one). The list for a
category ends at the first rule without conditions (nothing after it can apply), else with the
fallback (属地兜底).

Entries a department disputed (an approved 退单, `dispatch.workflow.joint.DISPUTES`) are marked
with their count; the key of an entry is `category|rule|department_type|level` (rule `manual`
when the dispatcher had chosen the department by hand: then every entry of the category with that
department type and level is marked).
"""

from __future__ import annotations

import csv
import io

from geo.city import City, Rule
from geo.zones import ZONE_KIND_NAMES

LEVEL_NAMES = {"city": "市级", "district": "区级", "street": "街道级", "community": "社区级", "grid": "网格级"}
SOURCE_NAMES = {"grid": "网格上报", "hotline": "热线"}
CSV_COLUMNS = (
    ("category", "类别代码"), ("category_name", "类别名称"), ("group", "大类"), ("order", "顺序"),
    ("rule", "规则"), ("rule_name", "规则名称"), ("conditions", "适用条件"),
    ("department_type", "部门类型"), ("department_examples", "承办部门（示例）"), ("level_names", "层级"),
    ("disputes", "派单异议次数"),
)


def level_of_jurisdiction(city: City, jurisdiction_id: str) -> str:
    if jurisdiction_id == city.id or jurisdiction_id not in city.jurisdictions:
        return "city"
    return city.jurisdictions[jurisdiction_id].level


def _level_order(level: str) -> int:
    return list(LEVEL_NAMES).index(level) if level in LEVEL_NAMES else len(LEVEL_NAMES)


def conditions(rule: Rule) -> str:
    """The rule's conditions besides the category, in words ('' when it has none)."""
    parts = []
    if rule.sources:
        parts.append("来源为" + "、".join(SOURCE_NAMES.get(s, s) for s in sorted(rule.sources)))
    if rule.in_zone:
        parts.append(f"位于{ZONE_KIND_NAMES.get(rule.in_zone, rule.in_zone)}内")
    if rule.near_zone:
        kind = ZONE_KIND_NAMES.get(rule.near_zone.kind, rule.near_zone.kind)
        parts.append(f"距{kind} {rule.near_zone.within_m:g} 米内")
    if rule.keywords:
        parts.append("内容含 " + "、".join(rule.keywords))
    if rule.hours:
        parts.append(f"时段 {rule.hours.text}")
    return "；".join(parts)


def _assignee(city: City, rule: Rule) -> tuple[str | None, list[str], list]:
    """(department type, levels, departments) the rule assigns to."""
    if rule.department:
        department = city.departments[rule.department]
        return department.type, [level_of_jurisdiction(city, department.jurisdiction)], [department]
    departments = sorted((d for d in city.departments.values() if d.type == rule.department_type),
                         key=lambda d: (_level_order(level_of_jurisdiction(city, d.jurisdiction)), d.id))
    levels = sorted({level_of_jurisdiction(city, d.jurisdiction) for d in departments}, key=_level_order)
    return rule.department_type, levels, departments


def entries(city: City, disputes: dict[str, int] | None = None) -> list[dict]:
    """Every catalogue line, category by category in routing order."""
    disputes = disputes or {}
    out = []
    for category in sorted(city.categories.values(), key=lambda c: c.code):
        order = 0
        for rule in [*city.rules, city.rules.fallback]:
            if rule.categories is not None and category.code not in rule.categories:
                continue
            order += 1
            dtype, levels, departments = _assignee(city, rule)
            text = conditions(rule)
            row = {
                "category": category.code, "category_name": category.name, "group": category.group,
                "order": order, "rule": rule.id,
                "rule_name": rule.description or ("属地兜底" if rule is city.rules.fallback else rule.id),
                "conditions": text, "department_type": dtype,
                "department": ({"id": departments[0].id, "name": departments[0].name} if rule.department else None),
                "department_examples": "、".join(d.name for d in departments[:3])
                + ("等" if len(departments) > 3 else ""),
                "levels": levels, "level_names": "/".join(LEVEL_NAMES.get(lv, lv) for lv in levels),
            }
            # A return of a manual dispatch disputes the category's entries of that department
            # type and level, whichever rule they come from.
            keys = [f"{category.code}|{name}|{dtype}|{level}" for level in levels for name in (rule.id, "manual")]
            row["disputes"] = sum(disputes.get(key, 0) for key in keys)
            row["disputed"] = row["disputes"] > 0
            out.append(row)
            if not text:
                break  # an unconditional rule: nothing after it applies to this category
    return out


def to_csv(rows: list[dict]) -> bytes:
    """UTF-8 with a BOM, so Excel opens the Chinese text as such."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([title for _, title in CSV_COLUMNS])
    for row in rows:
        writer.writerow([_cell(row.get(key)) for key, _ in CSV_COLUMNS])
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet: quote it (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def dispute_counts(records: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        counts[record["key"]] = counts.get(record["key"], 0) + 1
    return counts

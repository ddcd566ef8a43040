"""Checks of a proposed version that the package loader cannot make, because they need the
cases, the accounts or the jurisdictions' shapes: a category or department still in use being
deleted, door plates and zones outside the city. Same `file: item: problem` lines as the loader.
"""

from __future__ import annotations

import shapely

from dispatch.admin.diff import keyed
from dispatch.store.query import CaseQuery
from geo.city import City
from geo.errors import where


async def in_use_problems(kind: str, before, after, cases, users) -> list[str]:
    """A category still on a case, or a department still on an account or an open case, may not
    be deleted (the case list, the KPIs and the accounts would point at nothing)."""
    removed = [k for k in keyed(kind, before) if k not in keyed(kind, after)]
    problems = []
    if kind == "categories":
        for code in removed:
            n = await cases.count(CaseQuery(categories=(code,)))
            if n:
                problems.append(f"categories.yaml: category {code}: 仍有 {n} 个案件使用此类别，不能删除")
    elif kind == "departments" and removed:
        accounts: dict[str, list[str]] = {}
        for account in await users.all():
            if account.get("department") in removed:
                accounts.setdefault(account["department"], []).append(account["_id"])
        for did in removed:
            if did in accounts:
                names = "、".join(sorted(accounts[did])[:5])
                problems.append(f"departments.yaml: department {did}: 仍有账号 {names} 属于此部门，"
                                "不能删除")
            n = await cases.count(CaseQuery(departments=(did,), open_only=True))
            if n:
                problems.append(f"departments.yaml: department {did}: 仍有 {n} 个未结案件派给此部门，"
                                "不能删除")
    return problems


def place_problems(kind: str, city: City, items) -> list[str]:
    """Door plates and zones must lie in the city: a plate outside it would geocode a ticket to
    a place no rule serves, a zone outside it is an orphan no case can ever be in or near."""
    districts = [j.geometry for j in city.jurisdictions.values() if j.level == "district"]
    if not districts or not isinstance(items, list):
        return []
    area = shapely.union_all(districts)
    shapely.prepare(area)
    problems = []
    if kind == "addresses":
        entries = city.addresses.entries
        points = shapely.points([(lng, lat) for _, lng, lat in entries]) if entries else []
        inside = shapely.intersects(area, points) if entries else []
        lines = {}
        for i, item in enumerate(items):
            if isinstance(item, dict) and isinstance(item.get("address"), str):
                lines.setdefault(item["address"].strip(), i + 2)
        for (address, _lng, _lat), ok in zip(entries, inside):
            if not ok:
                problems.append(f"addresses.csv: line {lines.get(address, '?')} ({address}): "
                                "坐标在城市范围之外（不在任何区内）")
    elif kind == "zones":
        for i, zone in enumerate(city.zones):
            if not area.intersects(zone.geometry):
                problems.append(f"zones.geojson: {where('feature', i, zone.id)}: 孤立区域："
                                "位于城市范围之外（不与任何区相交）")
    return problems

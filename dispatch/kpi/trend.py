"""The command centre's trend panel: cases reported and closed per day over the last days, and
the problem types reported most, for one jurisdiction (GET /api/stats/trend).

Kept apart from the SPEC §5 figures (dispatch/kpi/stats.py): these are plain counts by day,
read from the same period query, so a change to how the KPIs are computed leaves this alone.
Optional `category` / `department` narrow the counts the way the command centre's filters
narrow its map (a case counts for a department it is assigned to now).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta, timezone

from dispatch.kpi.stats import scope_info
from dispatch.store.query import PeriodQuery, Scope

FIELDS = ("_id", "status", "category", "assignment.department", "created_at", "closed_at", "jurisdiction")
MAX_DAYS = 90
TOP = 8


def _utc(value):
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def serving_departments(city, scope: str) -> list[dict]:
    """The departments that serve a jurisdiction: its own, those of the areas inside it and of
    the areas above it (a street is served by its district's and the city's departments)."""
    inside = city.descendants(scope) | set(city.ancestors(scope))
    return [{"id": d.id, "name": d.name} for d in city.departments.values() if d.jurisdiction in inside]


async def compute(ctx, *, reader: Scope, scope: str, days: int, now: datetime,
                  category: str | None = None, department: str | None = None) -> dict:
    city, tz = ctx.city, ctx.tz
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time(), tz).astimezone(timezone.utc)
    end = datetime.combine(today + timedelta(days=1), time(), tz).astimezone(timezone.utc)
    query = PeriodQuery(start, end, scope=reader, within=None if scope == city.id else scope)
    cases = await ctx.cases.period_cases(query, FIELDS)

    reported: Counter = Counter()
    closed: Counter = Counter()
    types: Counter = Counter()
    names: dict[str, str] = {}
    for case in cases:
        if case.get("status") in ("void", "merged"):
            continue
        code = (case.get("category") or {}).get("code")
        if category and code != category:
            continue
        assigned = ((case.get("assignment") or {}).get("department") or {}).get("id")
        if department and assigned != department:
            continue
        created = _utc(case.get("created_at"))
        if created and start <= created < end:
            reported[created.astimezone(tz).date()] += 1
            types[code] += 1
            names[code] = (case.get("category") or {}).get("name") or code
        finished = _utc(case.get("closed_at"))
        if case.get("status") == "closed" and finished and start <= finished < end:
            closed[finished.astimezone(tz).date()] += 1

    series = [first + timedelta(days=i) for i in range(days)]
    return {
        "scope": scope_info(city, scope),
        "filters": {"category": category, "department": department},
        "days": [{"day": d.isoformat(), "reported": reported[d], "closed": closed[d]} for d in series],
        "top_categories": [{"code": code, "name": names[code], "count": n}
                           for code, n in sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]],
        "departments": serving_departments(city, scope),
    }


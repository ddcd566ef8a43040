"""The command centre's trend panel: cases reported and closed per day over the last days, and
the problem types reported most, for one jurisdiction (GET /api/stats/trend).

Counted as the SPEC §5 figures count (one truth across the panels): 上报 is the KPI 上报数 less
the cases since voided or merged (on the day they were reported), 结案 the KPI 结案数 (a case's
first closing), each charged to the department responsible at that moment. Summed from the
rollups' day buckets when they can answer (a city, district or street over whole days; the
same rule as the KPIs, `stats.from_rollups`), otherwise from the period's cases (a community).
Optional `category` / `department` narrow the counts the way the command centre's filters
narrow its map.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta, timezone

from dispatch.kpi.stats import (
    PROJECTION, CaseTimeline, Period, all_facts, category_sign_deadline, from_rollups, scope_info, trend_reported,
)
from dispatch.store.query import PeriodQuery, Scope

MAX_DAYS = 90
TOP = 8
TREND_FACTS = ("reported", "status:void", "status:merged", "closed")


def serving_departments(city, scope: str) -> list[dict]:
    """The departments that serve a jurisdiction: its own, those of the areas inside it and of
    the areas above it (a street is served by its district's and the city's departments)."""
    inside = city.descendants(scope) | set(city.ancestors(scope))
    return [{"id": d.id, "name": d.name} for d in city.departments.values() if d.jurisdiction in inside]


async def compute(ctx, *, reader: Scope, scope: str, days: int, now: datetime,
                  category: str | None = None, department: str | None = None, scan: bool = False) -> dict:
    """`scan=True` reads the cases even where the rollups could answer (tests compare both)."""
    city, tz = ctx.city, ctx.tz
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    own_share = reader.department is not None
    if not scan and from_rollups(city, tz, reader=reader, scope=scope, period=Period.days(first, today, tz)):
        await ctx.rollups.fresh()
        counts = await ctx.rollups.daily(scope=scope, first=first, last=today, category=category,
                                         department=department, own_share=own_share)
    else:
        counts = await _from_cases(ctx, reader, scope, first, today, category, department, own_share)
    series = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    types = {code: n for code, n in counts["types"].items() if n}
    return {
        "scope": scope_info(city, scope),
        "filters": {"category": category, "department": department},
        "days": [{"day": d, "reported": int(counts["reported"][d]), "closed": int(counts["closed"][d])} for d in series],
        "top_categories": [{"code": code, "name": _category_name(city, code), "count": int(n)}
                           for code, n in sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]],
        "departments": serving_departments(city, scope),
    }


def _category_name(city, code: str) -> str:
    category = city.categories.get(code)
    return category.name if category is not None else code


async def _from_cases(ctx, reader: Scope, scope: str, first, last, category, department, own_share) -> dict:
    """The same counts from the facts of the period's cases (what the rollups keep)."""
    city, tz = ctx.city, ctx.tz
    start = datetime.combine(first, time(), tz).astimezone(timezone.utc)
    end = datetime.combine(last + timedelta(days=1), time(), tz).astimezone(timezone.utc)
    query = PeriodQuery(start, end, scope=reader, within=None if scope == city.id else scope)
    names = {d.id: d.name for d in city.departments.values()}
    sign_deadline = category_sign_deadline(city.categories, ctx.calendar)
    out = {"reported": Counter(), "closed": Counter(), "types": Counter()}
    for case in await ctx.cases.period_cases(query, (*PROJECTION, "departments_seen")):
        code = (case.get("category") or {}).get("code") or ""
        if category is not None and code != category:
            continue
        timeline = CaseTimeline(case, names)
        seen = set(case.get("departments_seen") or ())
        for fact in all_facts(timeline, ctx.calendar, sign_deadline):
            if fact.key not in TREND_FACTS or fact.at is None or not start <= fact.at < end:
                continue
            if department is not None:
                charged = fact.department or timeline.department_at(fact.at)["id"]
                if charged != department or (own_share and charged not in seen):
                    continue
            day = fact.at.astimezone(tz).date().isoformat()
            if fact.key == "closed":
                out["closed"][day] += fact.amount
            else:
                reported = trend_reported(Counter({fact.key: fact.amount}))
                out["reported"][day] += reported
                out["types"][code] += reported
    return out

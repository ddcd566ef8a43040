"""The rules' dry run: the last days' cases routed again, by the rules in force and by proposed
ones, with what would change.

Each case is replayed as it came in — its place, category, source, text (description and
address, as intake routes it) and the time it was created — through both routers; a case
"changes" when the department differs. The cases themselves are not touched. Cases without a
place (a ticket waiting for its location) cannot be routed and are counted as skipped.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from dispatch.clock import utcnow
from dispatch.rules import Router
from dispatch.store.query import OLDEST, After, CaseQuery

PAGE = 500
MAX_CASES = 20_000  # a bigger replay is a report, not a check before publishing
SAMPLE = 20
FIELDS = ("_id", "number", "category", "source", "location", "description", "address", "created_at")


def _decision(d) -> dict | None:
    if d is None:
        return None
    return {"department": d.department, "rule": d.rule, "reason": d.reason, "priority": d.priority}


async def replay(cases, current: Router, proposed: Router, days: int) -> dict:
    since = utcnow() - timedelta(days=days)
    replayed = changed = skipped = 0
    sample, moves = [], Counter()
    after = None
    known = set(current.city.categories) & set(proposed.city.categories)
    while replayed + skipped < MAX_CASES:
        page = await cases.find(CaseQuery(created_from=since, order=OLDEST, after=after, limit=PAGE))
        if not page:
            break
        after = After(page[-1]["created_at"], page[-1]["_id"])
        usable = [c for c in page if (c.get("location") or {}).get("coordinates")
                  and (c.get("category") or {}).get("code") in known and c.get("source") in ("grid", "hotline")]
        skipped += len(page) - len(usable)
        if usable:
            args = (
                [c["location"]["coordinates"][0] for c in usable],
                [c["location"]["coordinates"][1] for c in usable],
                [c["category"]["code"] for c in usable],
                [c["source"] for c in usable],
                [" ".join(filter(None, [c.get("description"), c.get("address")])) for c in usable],
                [c["created_at"] for c in usable],
            )
            befores, afters = current.route_many(*args[:5], at=args[5]), proposed.route_many(*args[:5], at=args[5])
            for case, before, after_d in zip(usable, befores, afters):
                if before is None or after_d is None:
                    skipped += 1
                    continue
                replayed += 1
                if before.department_id == after_d.department_id:
                    continue
                changed += 1
                moves[(_name(before), _name(after_d))] += 1
                if len(sample) < SAMPLE:
                    sample.append({"case": _case_view(case), "before": _decision(before), "after": _decision(after_d)})
        if len(page) < PAGE:
            break
    return {
        "days": days, "replayed": replayed, "changed": changed, "skipped": skipped, "sample": sample,
        "moves": [{"from": a, "to": b, "count": n} for (a, b), n in moves.most_common(20)],
    }


def _name(decision) -> str:
    department = decision.department
    return department["name"] if department else "人工派遣"


def _case_view(case: dict) -> dict:
    created = case.get("created_at")
    return {"id": case["_id"], "number": case.get("number"), "category": case.get("category"),
            "source": case.get("source"), "address": case.get("address"),
            "created_at": created.isoformat(timespec="seconds") if hasattr(created, "isoformat") else created}

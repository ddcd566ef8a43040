"""KPI benchmark (SPEC §6: KPIs for any scope and period < 500 ms):
`python bench/kpi.py [--uri embedded|mongodb://…] [--cases N] [--runs R]`.

Loads a year of the demo city (`data/cities/hangzhou-demo`): N synthetic cases spread over the
365 days before now, with a realistic mix (every category and street, grid reports and hotline
tickets, ~3 % open, returns and approved returns, failed checks, overdue cases, callbacks,
repeat calls merged) — in bulk (`load_year`: `cases.bulk_insert` then `Rollups.rebuild`, reusable by
bench/scale.py). Then times `/api/stats`'s computation (`dispatch.kpi.stats.compute`) for the
city, a district, a street and a department, over a day, a month and a year:

  * from the rollups (what the API does): median of R runs;
  * the baseline in the same run: the full computation from the period's cases
    (`compute(..., scan=True)`, what the API did before), one run each;

and checks that both give the same figures. `--uri mongodb://…` runs on that server (FerretDB
from `scripts/devdb start`, or MongoDB) in a scratch database dropped at the end.

Prints a Markdown table; docs/PERFORMANCE.md ("KPIs") quotes it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dispatch.clock import utcnow  # noqa: E402
from dispatch.domain import scope_path  # noqa: E402
from dispatch.kpi import stats  # noqa: E402
from dispatch.kpi.rollups import Rollups  # noqa: E402
from dispatch.store import StoreUnavailable, open_store  # noqa: E402
from dispatch.store.query import EVERYTHING, Scope  # noqa: E402
from dispatch.workflow.deadlines import BusinessCalendar  # noqa: E402
from geo.loader import load_city  # noqa: E402

CITY = ROOT / "data" / "cities" / "hangzhou-demo"


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class YearOfCases:
    """Synthetic history of one city: `case(n)` is the n-th case document, complete with its
    history in the §4 format (no hash chain: the KPIs do not read it)."""

    def __init__(self, city, now: datetime, seed: int = 1):
        self.city, self.now, self.rng = city, now, random.Random(seed)
        self.tz = ZoneInfo(city.timezone)
        self.streets = [j for j in city.jurisdictions.values() if j.level == "street"]
        self.categories = list(city.categories.values())
        by_place: dict[str, list] = {}
        for d in city.departments.values():
            by_place.setdefault(d.jurisdiction, []).append(d)
        self.serving = {s.id: by_place.get(s.id, []) + by_place.get(s.parent, []) + by_place.get(city.id, [])
                        for s in self.streets}
        self.prefix = uuid.uuid4().hex[:6]

    def case(self, n: int) -> dict:
        rng = self.rng
        street = rng.choice(self.streets)
        district = self.city.jurisdictions[street.parent]
        category = rng.choice(self.categories)
        hotline = category.kind == "hotline" or rng.random() < 0.4
        jurisdiction = {"district": {"id": district.id, "name": district.name},
                        "street": {"id": street.id, "name": street.name}, "community": None, "grid": None}
        local = (self.now - timedelta(days=rng.uniform(0, 365))).astimezone(self.tz)
        at = local.replace(hour=rng.randint(7, 21), minute=rng.randint(0, 59), second=0, microsecond=0)
        at = min(at.astimezone(timezone.utc), self.now - timedelta(minutes=5))
        history, status = [], "reported"
        doc = {
            "_id": f"{self.prefix}{n:08d}", "number": f"{self.prefix}-{n:08d}", "source": "hotline" if hotline else "grid",
            "category": {"code": category.code, "name": category.name, "kind": category.kind},
            "priority": "normal", "jurisdiction": jurisdiction, "scope_path": scope_path(self.city.id, jurisdiction),
            "assignment": {"department": None}, "deadlines": {"sign_by": None, "handle_by": None, "check_by": None},
            "clock": None, "flags": {"overdue": False}, "departments_seen": [], "callbacks": [],
            "created_by": "bench", "created_at": at, "description": "bench", "location": None,
        }

        def step(action, to, minutes_range, **extra):
            nonlocal at, status
            following = at + timedelta(minutes=rng.randint(*minutes_range))
            if following >= self.now:
                return False
            at = following
            history.append({"at": at, "action": action, "from": status, "to": to or status, **extra})
            status = to or status
            return True

        def dispatch():
            options = self.serving.get(street.id) or list(self.city.departments.values())
            department = rng.choice(options)
            named = {"id": department.id, "name": department.name}
            if not step("dispatch", "dispatched", (2, 30), department=named):
                return False
            doc["assignment"] = {"department": named}
            if department.id not in doc["departments_seen"]:
                doc["departments_seen"].append(department.id)
            doc["deadlines"] = {"sign_by": at + timedelta(hours=1), "handle_by": at + timedelta(hours=rng.randint(8, 72)),
                                "check_by": None}
            return True

        history.append({"at": at, "action": "report", "from": None, "to": "reported"})
        open_case = rng.random() < 0.03
        self._life(rng, step, dispatch, doc, hotline, open_case, lambda: at, lambda: status)
        doc.update(history=history, status=status, updated_at=history[-1]["at"], version=len(history))
        if doc["callbacks"]:  # recording the callback was the case's last change
            doc["updated_at"] = doc["callbacks"][-1]["at"]
        if status == "closed":
            doc["closed_at"] = max(e["at"] for e in history if e["action"] == "close")
        return doc

    def _life(self, rng, step, dispatch, doc, hotline, open_case, now_at, status):
        stop = rng.randint(1, 6) if open_case else 99
        if not step("file", "filed", (1, 20)) or stop <= 1:
            return
        if rng.random() < 0.01:
            step("void", "void", (5, 60))
            return
        if hotline and rng.random() < 0.06:
            step("merge", "merged", (5, 60))
            return
        if not dispatch() or stop <= 2:
            return
        if rng.random() < 0.08:
            if not step("return", "filed", (10, 240)):
                return
            if rng.random() < 0.5 and not step("approve_return", "filed", (5, 60)):
                return
            if not dispatch():
                return
        if not step("sign", "accepted", (3, 90)) or stop <= 3:
            return
        for attempt in range(3):
            if not step("feedback", "handled", (60, 4000)):
                return
            handle_by = doc["deadlines"]["handle_by"]
            if now_at() > handle_by and attempt == 0:
                doc["history_overdue"] = True
            if stop <= 4:
                return
            passed = rng.random() < 0.85
            if not step("check", "checked" if passed else "accepted", (10, 600), passed=passed):
                return
            if passed:
                break
        else:
            return
        if stop <= 5:
            return
        if not step("close", "closed", (5, 120)):
            return
        if hotline and rng.random() < 0.8:
            doc["callbacks"] = [{"at": min(now_at() + timedelta(hours=2), self.now - timedelta(seconds=1)), "contacted": rng.random() < 0.85,
                                 "satisfaction": rng.choice(["satisfied", "satisfied", "basic", "unsatisfied"]),
                                 "resolved": rng.random() < 0.7}]

    def cases(self, count: int):
        for n in range(count):
            doc = self.case(n)
            if doc.pop("history_overdue", False):
                due = doc["deadlines"]["handle_by"]
                doc["history"].append({"at": due + timedelta(seconds=30), "due_at": due, "action": "overdue",
                                       "from": doc["status"], "to": doc["status"]})
                doc["history"].sort(key=lambda e: e["at"])
            if doc["status"] not in ("closed", "void", "merged") and doc["deadlines"]["handle_by"] \
                    and doc["deadlines"]["handle_by"] < self.now:
                doc["flags"]["overdue"] = True
            yield doc


async def load_year(store, city, count: int, now: datetime, chunk: int = 5000, seed: int = 1) -> dict:
    """Bulk-load `count` cases of a year (ending `now`) into `store`, then rebuild the rollups.
    Returns timings; reusable by other benchmarks (bench/scale.py)."""
    year = YearOfCases(city, now, seed)
    started = time.perf_counter()
    batch = []
    loaded = 0
    for doc in year.cases(count):
        batch.append(doc)
        if len(batch) >= chunk:
            loaded += await store.cases.bulk_insert(batch)
            batch = []
            progress(f"loaded {loaded:,} cases")
    if batch:
        loaded += await store.cases.bulk_insert(batch)
    load_seconds = time.perf_counter() - started
    rollups = Rollups(store, city, BusinessCalendar.from_city_config(city.config), ZoneInfo(city.timezone))
    started = time.perf_counter()
    result = await rollups.rebuild()
    return {"cases": loaded, "load_seconds": load_seconds, "rebuild_seconds": time.perf_counter() - started,
            "rollups": rollups, **result}


async def main_async(args) -> None:
    logging.basicConfig(level=logging.WARNING)
    city = load_city(CITY)
    tz = ZoneInfo(city.timezone)
    database = f"bench_kpi_{uuid.uuid4().hex[:8]}"
    store = await open_store(args.uri, database)
    now = utcnow()
    try:
        progress(f"loading {args.cases:,} cases into {store.kind}")
        loaded = await load_year(store, city, args.cases, now, chunk=5000 if not store.persistent else 500)
        progress(f"loaded in {loaded['load_seconds']:.1f} s, rollups rebuilt in {loaded['rebuild_seconds']:.1f} s")
        calendar = BusinessCalendar.from_city_config(city.config)
        ctx = SimpleNamespace(city=city, tz=tz, calendar=calendar, cases=store.cases, storage=store,
                              rollups=loaded["rollups"])
        today = now.astimezone(tz).date()
        yesterday = today - timedelta(days=1)
        month_first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)  # last whole month
        periods = {
            "day": stats.Period.days(yesterday, yesterday, tz),
            "month": stats.Period.month_of(month_first, tz),
            "year": stats.Period.days(date(today.year, 1, 1), date(today.year, 12, 31), tz),
            "30 days": stats.Period.days(today - timedelta(days=29), today, tz),
        }
        district = sorted(j.id for j in city.jurisdictions.values() if j.level == "district")[0]
        street = sorted(j.id for j in city.jurisdictions.values() if j.level == "street" and j.parent == district)[0]
        department = "c-urban"
        scopes = {
            "city": dict(reader=EVERYTHING, scope=city.id, group_by="district", department=None),
            f"district {district}": dict(reader=Scope(within=district), scope=district, group_by="street", department=None),
            f"street {street}": dict(reader=Scope(within=street), scope=street, group_by="department", department=None),
            f"department {department}": dict(reader=Scope(department=department), scope=city.id, group_by="department",
                                             department=department),
        }
        print(f"\n{args.cases:,} cases, {store.kind} ({args.uri.split('@')[-1]}); rollups: {loaded['buckets']:,} bucket "
              f"documents, {loaded['pending']:,} pending; load {loaded['load_seconds']:.1f} s, "
              f"rebuild {loaded['rebuild_seconds']:.1f} s; {platform.node()}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}\n")
        print("| scope | period | from rollups, median ms (runs) | from the cases (old), ms | ratio | same figures |")
        print("|---|---|---|---|---|---|")
        for scope_name, kw in scopes.items():
            for period_name, period in periods.items():
                if period_name == "30 days" and scope_name != "city":
                    continue
                timings = []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    summed = await stats.compute(ctx, period=period, top=0, now=now, **kw)
                    timings.append((time.perf_counter() - started) * 1000)
                scan_ms = None
                same = "—"
                if not args.no_baseline:
                    started = time.perf_counter()
                    try:
                        scanned = await stats.compute(ctx, period=period, top=0, now=now, scan=True, **kw)
                        scan_ms = (time.perf_counter() - started) * 1000
                        same = "yes" if scanned == summed else "NO"
                    except StoreUnavailable:  # the server gave up on the full read (socket timeout)
                        same = f"baseline timed out after {time.perf_counter() - started:,.0f} s"
                median = statistics.median(timings)
                ratio = f"{scan_ms / median:,.0f}×" if scan_ms else "—"
                print(f"| {scope_name} | {period_name} | **{median:,.1f}** ({args.runs}) | "
                      f"{f'{scan_ms:,.0f}' if scan_ms else '—'} | {ratio} | {same} |", flush=True)
        started = time.perf_counter()
        await stats.compute(ctx, period=periods["month"], top=20, now=now, **scopes["city"])
        print(f"\ncity, month, with the overdue list (top 20, reads the open overdue cases): "
              f"{(time.perf_counter() - started) * 1000:,.0f} ms")
    finally:
        if store.persistent:
            await store.drop()
        await store.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--uri", default="embedded")
    p.add_argument("--cases", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-baseline", action="store_true", help="skip the full computation (slow on large stores)")
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()

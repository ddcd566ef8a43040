"""Deadline sweep benchmark (SPEC §6): `python bench/sweep.py [--cases 100000] [--no-docs]`.

Fills the embedded store with open cases of the demo city, in the state a running system
would have them in (stage clocks started over the last days, thresholds already passed
applied, `next_due_at` on the next one), then times:

  (a) a sweep that finds nothing due (median and p99 of many runs) — the bar is < 50 ms;
  (b) sweeps in which ~1% of the cases cross a threshold (cost per crossing case);
  (c) the naive way: read every open case and recompute its elapsed fraction;
  plus the sweep's range query answered by a mongomock full scan, to show what the ordered
  index saves.

Prints the figures and writes them to the `## Deadline sweep` section of docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mongomock_ng.collection  # noqa: E402

from dispatch.app import build_context  # noqa: E402
from dispatch.workflow.audit import chain_entry  # noqa: E402
from dispatch.config import load_config  # noqa: E402
from dispatch.domain import scope_path  # noqa: E402
from dispatch.store import new_case_id  # noqa: E402
from dispatch.sweep.sweeper import run_sweep, thresholds  # noqa: E402
from dispatch.workflow.service import STAGE_OF_STATUS  # noqa: E402

DOCS = ROOT / "docs" / "PERFORMANCE.md"
SECTION = "## Deadline sweep"
# A Wednesday afternoon: inside working hours on a working day.
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
STATUS_MIX = (("reported", 4), ("filed", 4), ("dispatched", 17), ("accepted", 60), ("handled", 15))
FLAG_OF = {"warn": "warning", "overdue": "overdue", "supervise": "supervised"}


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fast_hash(password: str) -> str:
    return "bench$" + password  # the bench never logs in; skip scrypt for the bootstrap users


# --------------------------------------------------------------------------------------------
# Realistic open cases
# --------------------------------------------------------------------------------------------


def grid_points(city, rng: random.Random) -> list[tuple[float, float]]:
    grids = [j for j in city.jurisdictions.values() if j.level == "grid"]
    rng.shuffle(grids)
    return [(p.x, p.y) for p in (g.geometry.representative_point() for g in grids[:500])]


def make_case(ctx, rng: random.Random, point, category, now: datetime) -> dict:
    decision = ctx.router.route(point[0], point[1], category.code, source="grid", text="", at=now)
    status = rng.choices([s for s, _ in STATUS_MIX], [w for _, w in STATUS_MIX])[0]
    if decision.department is None:
        status = "reported"
    created = now - timedelta(seconds=rng.uniform(600, 5 * 86400))
    case = {
        "_id": new_case_id(),
        "number": f"{created.astimezone(ctx.tz):%Y%m%d}-{rng.randrange(10**6):06d}",
        "source": "grid", "channel": None, "type": None,
        "description": f"{category.name}，请尽快处理", "address": None, "caller": None, "photos": [],
        "category": {"code": category.code, "name": category.name, "kind": category.kind},
        "status": status, "priority": decision.priority,
        "location": {"type": "Point", "coordinates": [point[0], point[1]]},
        "jurisdiction": decision.jurisdiction, "scope_path": scope_path(ctx.city.id, decision.jurisdiction),
        "routing": decision.as_dict(),
        "assignment": {"department": decision.department, "rule": decision.rule, "reason": decision.reason},
        "deadlines": {"sign_by": None, "handle_by": None, "check_by": None},
        "flags": {"warning": False, "overdue": False, "supervised": False, "escalated_to": None,
                  "verified": False, "extension_pending": False, "needs_location": False},
        "counters": {"returns": 0, "reworks": 0, "extensions": 0},
        "departments_seen": [decision.department["id"]] if decision.department else [],
        "clock": None, "reporters": ["gw"], "created_by": "gw", "client_id": None,
        "created_at": created, "updated_at": created, "version": 3, "history": [],
    }
    for action, to in (("report", "reported"), ("file", "filed")):
        case["history"].append(chain_entry(case["history"], {
            "at": created, "by": "gw", "action": action, "from": None, "to": to, "note": None}))
    stage = STAGE_OF_STATUS.get(status)
    if stage:
        # Most stages started recently (exponential, mean 12 h), none before the case existed.
        started = max(created, now - timedelta(seconds=rng.expovariate(1 / (12 * 3600))))
        ctx.workflow.start_stage(case, stage, started)
        settle(ctx, case, now)
    return case


def settle(ctx, case: dict, now: datetime) -> None:
    """Apply, as earlier sweeps would have, the thresholds already passed at `now`."""
    if not case.get("clock"):
        return
    steps = thresholds(ctx, case["clock"])
    for step in steps:
        if step.at <= now and step.action in FLAG_OF:
            case["flags"][FLAG_OF[step.action]] = True
    following = [step.at for step in steps if step.at > now]
    if following:
        case["next_due_at"] = following[0]
    else:
        case.pop("next_due_at", None)


async def fill(ctx, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    points = grid_points(ctx.city, rng)
    categories = [c for c in ctx.city.categories.values() if c.kind in ("component", "event")]
    collection = ctx.storage.db["cases"]
    batch = []
    for _ in range(count):
        batch.append(make_case(ctx, rng, rng.choice(points), rng.choice(categories), NOW))
        if len(batch) == 5000:
            await collection.insert_many(batch)
            batch = []
    if batch:
        await collection.insert_many(batch)


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def timed(coro_factory, runs: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = await coro_factory()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


async def naive_sweep(ctx, now: datetime) -> tuple[int, int]:
    """Without a cursor or an index: read every open case (only the fields needed), recompute
    every elapsed fraction."""
    docs = await ctx.storage.db["cases"].find(
        {"status": {"$in": list(STAGE_OF_STATUS)}}, {"clock": 1, "flags": 1}).to_list(None)
    crossing = 0
    for case in docs:
        clock = case.get("clock")
        if not clock:
            continue
        fraction = ctx.calendar.elapsed_fraction(clock["started_at"], clock["deadline"], now, clock["limit"])
        if (fraction >= ctx.warning_fraction and not case["flags"]["warning"]) or \
                (fraction >= 1 and not case["flags"]["overdue"]):
            crossing += 1
    return len(docs), crossing


def machine() -> dict:
    def run(command: str) -> str:
        try:
            return subprocess.run(command, shell=True, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return ""

    model = run("lscpu | grep 'Model name'").split(":", 1)[-1].strip() or platform.processor()
    return {"nproc": run("nproc") or str(os.cpu_count()), "cpu": model,
            "python": platform.python_version()}


async def main(args) -> dict:
    logging.disable(logging.WARNING)
    load = os.getloadavg()[0]
    config = load_config(None, ["scheduler.enabled=false"])
    ctx = await build_context(config, hasher=fast_hash)
    start = time.perf_counter()
    # Fill in steps, timing the idle sweep at each size: its cost must not follow the case count.
    scaling = []
    filled = 0
    for size in sorted({args.cases // 10, args.cases * 3 // 10, args.cases} - {0}):
        progress(f"filling to {size:,} cases")
        gc.disable()  # millions of new long-lived objects: collecting meanwhile only slows the fill
        await fill(ctx, size - filled, seed=size)
        gc.enable()
        gc.collect()
        filled = size
        times, _ = await timed(lambda: run_sweep(ctx, NOW), args.runs)
        scaling.append((size, statistics.median(times)))
    fill_seconds = time.perf_counter() - start
    collection = ctx.storage.db["cases"]
    open_cases = await collection.count_documents({})
    clocked = sum(1 for _ in collection._c._store.ordered["next_due_at"]._by_id)

    progress("(a) idle sweeps")
    idle, counts = await timed(lambda: run_sweep(ctx, NOW), args.runs)
    assert counts["examined"] == 0, counts

    progress("the range query as a full scan")
    scan_filter = {"next_due_at": {"$lte": NOW.replace(tzinfo=None) - NOW.utcoffset()}}
    async def full_scan():
        return list(mongomock_ng.collection.Collection._iter_documents(collection._c, scan_filter))

    scan_times, _ = await timed(full_scan, 3)

    progress("(b) sweeps with ~1% crossing")
    due = sorted(collection._c._store.ordered["next_due_at"]._by_id.values(), key=lambda entry: entry[:2])
    step = max(1, open_cases // 100)
    crossing = []
    for k in range(1, args.crossing_runs + 1):
        raw = due[min(len(due) - 1, k * step - 1)][1]  # naive UTC, as stored
        at = raw.replace(tzinfo=ZoneInfo("UTC"))
        t0 = time.perf_counter()
        counts = await run_sweep(ctx, at)
        elapsed = (time.perf_counter() - t0) * 1000
        crossing.append({"ms": elapsed, "examined": counts["examined"],
                         "changed": sum(counts[key] for key in ("warned", "overdue", "supervised", "escalated"))})
    # after all that, a sweep at the last instant changes nothing again
    again, counts = await timed(lambda: run_sweep(ctx, at), 5)
    assert counts["examined"] == 0, counts

    progress("(c) naive baseline")
    naive_times, (naive_read, naive_crossing) = await timed(lambda: naive_sweep(ctx, NOW), args.naive_runs)

    per_case = [c["ms"] / c["examined"] for c in crossing if c["examined"]]
    return {
        "cases": open_cases, "clocked": clocked, "fill_seconds": fill_seconds, "runs": args.runs,
        "scaling": scaling, "load": load,
        "idle_median": statistics.median(idle), "idle_p99": percentile(idle, 0.99), "idle_max": max(idle),
        "again_median": statistics.median(again),
        "scan_median": statistics.median(scan_times),
        "crossing": crossing, "per_case_ms": statistics.median(per_case) if per_case else 0.0,
        "naive_median": statistics.median(naive_times), "naive_read": naive_read,
        "naive_crossing": naive_crossing, "machine": machine(),
    }


def report(r: dict) -> str:
    m = r["machine"]
    crossing = r["crossing"]
    cross_median = statistics.median(c["ms"] for c in crossing)
    examined = statistics.median(c["examined"] for c in crossing)
    lines = [
        SECTION,
        "",
        f"`python bench/sweep.py --cases {r['cases']}` — {m['nproc']} CPU ({m['cpu']}), Python {m['python']}, "
        f"embedded store (mongomock-ng), one process; load average {r['load']:.1f} when it started "
        "(the machine is shared: other figures vary with it, the idle sweep hardly does).",
        "",
        f"{r['cases']:,} open cases of the demo city (statuses reported → handled; {r['clocked']:,} of them "
        "with a `next_due_at`, i.e. a stage clock with a threshold still ahead), created over the last "
        "five days, stage clocks started mostly in the last hours, the thresholds already passed applied, "
        "as a running system has them.",
        "",
        "| measurement | figure |",
        "|---|---|",
        f"| (a) sweep with nothing due, median of {r['runs']} | **{r['idle_median']:.3f} ms** |",
        f"| (a) same, p99 / max | {r['idle_p99']:.3f} ms / {r['idle_max']:.3f} ms |",
        f"| (b) sweep in which ~1% cross a threshold ({examined:,.0f} cases), median of {len(crossing)} "
        f"| {cross_median:.0f} ms |",
        f"| (b) cost per crossing case (read, one versioned update with history, event) "
        f"| {r['per_case_ms']:.2f} ms |",
        f"| (c) naive: read all {r['naive_read']:,} clocked cases (clock and flags only) and recompute fractions "
        f"| {r['naive_median']:.0f} ms |",
        f"| the sweep's `next_due_at <= now` query as a mongomock full scan (no ordered index) "
        f"| {r['scan_median']:.0f} ms |",
        "| idle sweep (median) at " + " / ".join(f"{n:,}" for n, _ in r["scaling"]) + " open cases | "
        + " / ".join(f"{ms:.3f} ms" for _, ms in r["scaling"]) + " |",
        f"| ratio naive / idle sweep | {r['naive_median'] / max(r['idle_median'], 1e-6):,.0f}× |",
        f"| ratio naive / 1% sweep | {r['naive_median'] / cross_median:.1f}× |",
        "",
        "How: each case carries its sweep cursor `next_due_at` (the next of warn → overdue → 督办 → 提级), "
        "indexed (`next_due` in `CASE_INDEXES`). A sweep reads only `next_due_at <= now`, earliest "
        "first in batches, so a sweep with nothing due is one index probe whatever the number of open "
        "cases, and a sweep's cost is the crossing cases times the per-case cost above. On MongoDB the "
        "B-tree index answers the range; the embedded engine keeps an equivalent ordered index "
        "(`OrderedIndex` in `dispatch/store/storage.py`, a sorted list maintained on every write) because "
        "mongomock itself scans every document (the full-scan row). The per-case cost in (b) is mostly "
        "mongomock copying the case document (the sweep reads a projection: no history but the last "
        "entry); the sweep yields to the event loop after every case, so requests are never held up for "
        "more than one case's update.",
        "",
    ]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Performance\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOCS.parent.mkdir(exist_ok=True)
    DOCS.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="open cases to create (default 100000)")
    parser.add_argument("--runs", type=int, default=200, help="runs of the idle sweep (default 200)")
    parser.add_argument("--crossing-runs", type=int, default=5, help="sweeps with ~1%% crossing (default 5)")
    parser.add_argument("--naive-runs", type=int, default=3, help="runs of the naive baseline (default 3)")
    parser.add_argument("--no-docs", action="store_true", help="only print; do not update docs/PERFORMANCE.md")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    results = asyncio.run(main(arguments))
    section = report(results)
    print(section)
    print(f"(filled {results['cases']:,} cases in {results['fill_seconds']:.1f} s; "
          f"idle sweep after the crossing runs: {results['again_median']:.3f} ms)")
    if not arguments.no_docs:
        write_docs(section)
        print(f"written to {DOCS.relative_to(ROOT)}")

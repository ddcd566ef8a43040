"""Deadline sweep benchmark (SPEC §6): `python bench/sweep.py [--uri embedded|mongodb://…] [--cases N]`.

Fills a store with open cases of the demo city through the store's public interface
(`ctx.cases.insert`), in the state a running system would have them in (stage clocks started
over the last days, thresholds already passed applied, `next_due_at` on the next one), then times:

  (a) a sweep that finds nothing due (median and p99 of many runs), at three fill levels, so
      its cost can be seen not to follow the number of open cases — the bar is < 50 ms;
  (b) sweeps in which ~1% of the cases cross a threshold (cost per crossing case);
  (c) the naive baseline in the same run: read every open case through the public case list
      (`ctx.cases.find`, pages of 1,000 by id) and recompute every elapsed fraction.

`--uri embedded` (default) runs on the in-process engine (`dispatch/store/memory.py`, a sorted
(next_due_at, id) list answers the sweep's range); a `mongodb://` URI runs on that server
(MongoDB, or FerretDB from `scripts/devdb start`) in a scratch database that is dropped at the
end. On a server the script also counts the database commands each crossing case costs
(a PyMongo `CommandListener`, registered before the client is made).

Prints a Markdown table; docs/PERFORMANCE.md quotes it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pymongo import monitoring  # noqa: E402

from dispatch.app import build_context  # noqa: E402
from dispatch.config import load_config  # noqa: E402
from dispatch.domain import scope_path  # noqa: E402
from dispatch.store import new_case_id  # noqa: E402
from dispatch.store.query import BY_ID, After, CaseQuery, StoreUnavailable  # noqa: E402
from dispatch.sweep.sweeper import run_sweep  # noqa: E402
from dispatch.workflow.stageclock import thresholds  # noqa: E402
from dispatch.workflow.audit import chain_entry  # noqa: E402
from dispatch.workflow import stageclock  # noqa: E402
from dispatch.workflow.stageclock import STAGE_OF_STATUS  # noqa: E402

# A Wednesday afternoon: inside working hours on a working day.
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
STATUS_MIX = (("reported", 4), ("filed", 4), ("dispatched", 17), ("accepted", 60), ("handled", 15))
FLAG_OF = {"warn": "warning", "overdue": "overdue", "supervise": "supervised"}


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fast_hash(password: str) -> str:
    return "bench$" + password  # the bench never logs in; skip scrypt for the bootstrap users


class Commands(monitoring.CommandListener):
    """Counts the commands every PyMongo client made after registration sends."""

    def __init__(self):
        self.counts: Counter = Counter()

    def started(self, event):
        self.counts[event.command_name] += 1

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass

    def total(self) -> int:
        return sum(self.counts.values())


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
        "number": f"{created.astimezone(ctx.tz):%Y%m%d}-{rng.randrange(10**9):09d}",
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
        stageclock.start_stage(ctx, case, stage, started)
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


async def fill(ctx, count: int, seed: int, cursors: list) -> None:
    """`count` more cases, inserted one by one through `ctx.cases.insert` (up to 32 inserts in
    flight on a server engine); each case's sweep cursor is noted in `cursors`."""
    rng = random.Random(seed)
    points = grid_points(ctx.city, rng)
    categories = [c for c in ctx.city.categories.values() if c.kind in ("component", "event")]
    pending = []
    for _ in range(count):
        case = make_case(ctx, rng, rng.choice(points), rng.choice(categories), NOW)
        if isinstance(case.get("next_due_at"), datetime):
            cursors.append((case["next_due_at"], case["_id"]))
        pending.append(ctx.cases.insert(case))
        if len(pending) == 32:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)


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
    """Without a cursor or an index: read every open case through the public case list (pages
    of 1,000 in id order) and recompute every elapsed fraction."""
    read = crossing = 0
    after = None
    while True:
        page = await ctx.cases.find(CaseQuery(open_only=True, order=BY_ID, after=after, limit=1000))
        for case in page:
            read += 1
            clock = case.get("clock")
            if not clock or clock.get("stage") != STAGE_OF_STATUS.get(case["status"]):
                continue
            fraction = ctx.calendar.elapsed_fraction(clock["started_at"], clock["deadline"], now, clock["limit"])
            if (fraction >= ctx.warning_fraction and not case["flags"]["warning"]) or \
                    (fraction >= 1 and not case["flags"]["overdue"]):
                crossing += 1
        if len(page) < 1000:
            return read, crossing
        after = After(created_at=None, case_id=page[-1]["_id"])


def machine() -> dict:
    def run(command: str) -> str:
        try:
            return subprocess.run(command, shell=True, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return ""

    model = run("grep -m1 'model name' /proc/cpuinfo").split(":", 1)[-1].strip() or platform.processor()
    memory = run("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    return {"nproc": run("nproc") or str(os.cpu_count()), "cpu": model, "memory": memory,
            "python": platform.python_version()}


async def main(args) -> dict:
    logging.disable(logging.WARNING)
    load = os.getloadavg()[0]
    server = args.uri not in ("", "embedded")
    listener = Commands()
    if server:
        monitoring.register(listener)  # before build_context makes the client
    database = f"bench_sweep_{os.getpid()}"
    config = load_config(None, ["scheduler.enabled=false", "auth.allow_random_secret=true",
                                f"storage.uri={args.uri}", f"storage.database={database}"])
    ctx = await build_context(config, hasher=fast_hash)
    try:
        return await measure(ctx, args, server, listener, load)
    finally:
        if server:
            try:
                await ctx.storage.drop()
            except Exception as exc:  # noqa: BLE001 - a busy server: say so, leave the scratch database
                print(f"could not drop the scratch database {database}: {exc}", file=sys.stderr)
        await ctx.storage.close()


async def measure(ctx, args, server: bool, listener: Commands, load: float) -> dict:
    start = time.perf_counter()
    # Fill in steps, timing the idle sweep at each size: its cost must not follow the case count.
    scaling = []
    cursors: list = []
    filled = 0
    for size in sorted({args.cases // 10, args.cases * 3 // 10, args.cases} - {0}):
        progress(f"filling to {size:,} cases")
        gc.disable()  # many new long-lived objects: collecting meanwhile only slows the fill
        await fill(ctx, size - filled, seed=size, cursors=cursors)
        gc.enable()
        gc.collect()
        filled = size
        t0 = time.perf_counter()
        try:
            times, counts = await timed(lambda: run_sweep(ctx, NOW), args.runs)
        except StoreUnavailable as exc:
            # A server that cannot answer the sweep's query within the client's socket timeout.
            print(f"idle sweep at {size:,} cases failed after {time.perf_counter() - t0:.1f} s: {exc}")
            print("idle sweep (median) at " + ", ".join(f"{n:,}: {ms:.1f} ms" for n, ms in scaling))
            raise SystemExit(1) from None
        assert counts["examined"] == 0, counts
        scaling.append((size, statistics.median(times)))
        progress(f"idle sweep at {size:,} cases: median {scaling[-1][1]:.3f} ms")
    fill_seconds = time.perf_counter() - start
    open_cases = await ctx.cases.count(CaseQuery(open_only=True))

    progress("(a) idle sweeps")
    before = listener.total()
    idle, counts = await timed(lambda: run_sweep(ctx, NOW), args.runs)
    assert counts["examined"] == 0, counts
    idle_commands = (listener.total() - before) / args.runs

    progress("(b) sweeps with ~1% crossing")
    cursors.sort()
    step = max(1, open_cases // 100)
    crossing = []
    before, by_name = listener.total(), Counter(listener.counts)
    at = NOW
    for k in range(1, args.crossing_runs + 1):
        at = cursors[min(len(cursors) - 1, k * step - 1)][0]
        t0 = time.perf_counter()
        counts = await run_sweep(ctx, at)
        elapsed = (time.perf_counter() - t0) * 1000
        crossing.append({"ms": elapsed, "examined": counts["examined"], "conflicts": counts["conflicts"],
                         "errors": counts["errors"],
                         "changed": sum(counts[key] for key in ("warned", "overdue", "supervised", "escalated"))})
    examined_total = sum(c["examined"] for c in crossing)
    crossing_commands = (listener.total() - before) / max(1, examined_total)
    crossing_by_name = {name: (listener.counts[name] - by_name.get(name, 0)) / max(1, examined_total)
                        for name in listener.counts if listener.counts[name] - by_name.get(name, 0)}
    # after all that, a sweep at the last instant changes nothing again
    again, counts = await timed(lambda: run_sweep(ctx, at), min(5, args.runs))
    assert counts["examined"] == 0, counts

    progress("(c) naive baseline")
    naive_times, (naive_read, naive_crossing) = await timed(lambda: naive_sweep(ctx, NOW), args.naive_runs)

    per_case = [c["ms"] / c["examined"] for c in crossing if c["examined"]]
    return {
        "uri": args.uri, "server": server, "kind": ctx.storage.kind,
        "cases": open_cases, "clocked": len(cursors), "fill_seconds": fill_seconds, "runs": args.runs,
        "scaling": scaling, "load": load, "load_end": os.getloadavg()[0],
        "idle_median": statistics.median(idle), "idle_p99": percentile(idle, 0.99), "idle_max": max(idle),
        "idle_commands": idle_commands,
        "again_median": statistics.median(again),
        "crossing": crossing, "per_case_ms": statistics.median(per_case) if per_case else 0.0,
        "crossing_commands": crossing_commands, "crossing_by_name": crossing_by_name,
        "naive_median": statistics.median(naive_times), "naive_read": naive_read,
        "naive_crossing": naive_crossing, "machine": machine(),
    }


def report(r: dict) -> str:
    m = r["machine"]
    crossing = r["crossing"]
    cross_median = statistics.median(c["ms"] for c in crossing)
    examined = statistics.median(c["examined"] for c in crossing)
    engine = "server engine (`mongo.py`) on " + r["uri"] if r["server"] else "embedded engine (`memory.py`)"
    lines = [
        f"`python bench/sweep.py --uri {r['uri']} --cases {r['cases']}` — {engine}; "
        f"{m['nproc']} CPU ({m['cpu']}), {m['memory']}, Python {m['python']}; "
        f"load average {r['load']:.1f} → {r['load_end']:.1f}; filled in {r['fill_seconds']:.0f} s.",
        "",
        f"{r['cases']:,} open cases ({r['clocked']:,} with a `next_due_at`).",
        "",
        "| measurement | figure |",
        "|---|---|",
        f"| (a) sweep with nothing due, median of {r['runs']} | **{r['idle_median']:.3f} ms** |",
        f"| (a) same, p99 / max | {r['idle_p99']:.3f} ms / {r['idle_max']:.3f} ms |",
        "| (a) idle sweep (median) at " + " / ".join(f"{n:,}" for n, _ in r["scaling"]) + " open cases | "
        + " / ".join(f"{ms:.3f} ms" for _, ms in r["scaling"]) + " |",
        f"| (b) sweep in which ~1% cross a threshold ({examined:,.0f} cases), median of {len(crossing)} "
        f"| {cross_median:.0f} ms |",
        f"| (b) cost per crossing case (read, one versioned update with history, event) "
        f"| {r['per_case_ms']:.3f} ms |",
        f"| (c) naive: read all {r['naive_read']:,} open cases via `find` and recompute fractions "
        f"| {r['naive_median']:.0f} ms |",
        f"| ratio naive / idle sweep | {r['naive_median'] / max(r['idle_median'], 1e-6):,.0f}× |",
        f"| ratio naive / 1% sweep | {r['naive_median'] / cross_median:.1f}× |",
    ]
    if r["server"]:
        names = ", ".join(f"{name} {n:.2f}" for name, n in sorted(r["crossing_by_name"].items()))
        lines += [
            f"| database commands per idle sweep | {r['idle_commands']:.1f} |",
            f"| database commands per crossing case | {r['crossing_commands']:.2f} ({names}) |",
        ]
    conflicts = sum(c["conflicts"] + c["errors"] for c in crossing)
    lines += ["", f"(conflicts + errors in the crossing sweeps: {conflicts}; idle sweep afterwards "
                  f"{r['again_median']:.3f} ms)"]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uri", default="embedded", help="embedded (default) or a mongodb:// URI")
    parser.add_argument("--cases", type=int, default=100_000, help="open cases to create (default 100000)")
    parser.add_argument("--runs", type=int, default=200, help="runs of the idle sweep (default 200)")
    parser.add_argument("--crossing-runs", type=int, default=5, help="sweeps with ~1%% crossing (default 5)")
    parser.add_argument("--naive-runs", type=int, default=3, help="runs of the naive baseline (default 3)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    print(report(asyncio.run(main(arguments))))

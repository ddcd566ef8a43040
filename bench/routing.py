"""Routing benchmark (SPEC §6): locate + rule match, batch and single, against a naive loop.

    python bench/routing.py [--city PATH] [--n 200000] [--single 20000] [--naive 200]
                            [--seed 2026] [--write-docs]

* draws N random points inside the city's core districts (those that have unit grids) with a
  fixed seed, and a realistic mix of inputs: ~65 % grid reports (event/component codes), ~35 %
  hotline tickets (hotline types, some event codes), texts of which some carry rule keywords,
  and times spread over the whole day (so `hours` rules fire);
* (a) batch: ``Router.route_many`` decisions/s (best and median of several runs; also the
  cost of turning every decision into its JSON dict);
* (b) single: ``Router.route`` latency p50/p99/max over 20,000 calls (wall clock and the
  thread's CPU time: on a shared machine the wall p99 also measures the scheduler);
* (c) naive baseline on a small sample: every grid polygon tested with ``contains`` in a
  Python loop (then communities, streets, districts), every rule checked in Python with zone
  distances computed against every zone of the kind (projected once, no index), departments
  found by walking the parent chain; its rate is extrapolated from the sample as measured.
  The naive decisions are compared with the engine's (rule and department) as a cross-check.

``--write-docs`` replaces the ``## Routing`` section of docs/PERFORMANCE.md with the results.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import shapely  # noqa: E402
from shapely.geometry import Point  # noqa: E402

from dispatch.rules import OutsideCity, Router  # noqa: E402
from geo.loader import load_city  # noqa: E402

DEFAULT_CITY = ROOT / "data" / "cities" / "hangzhou-demo"
GRID_TEXTS = ["", "", "", "发现问题已拍照", "巡查发现", "需尽快处理", "现场核实情况属实"]
HOTLINE_TEXTS = ["", "来电反映小区门口问题", "市民投诉，要求尽快处理", "来电咨询办理流程", "反映噪声扰民，夜间严重",
                 "来电建议增加设施", "投诉商户经营问题"]


# --------------------------------------------------------------------------- inputs


def core_area(city):
    """Union of the districts that contain unit grids (all districts if none has)."""
    with_grids = set()
    for j in city.jurisdictions.values():
        if j.level == "grid":
            k = j
            while k.parent is not None:
                k = city.jurisdictions[k.parent]
            with_grids.add(k.id)
    districts = [j for j in city.jurisdictions.values() if j.level == "district"]
    chosen = [d for d in districts if d.id in with_grids] or districts
    return [d.name for d in chosen], shapely.union_all([d.geometry for d in chosen])


def draw_points(area, n, rng):
    shapely.prepare(area)
    minx, miny, maxx, maxy = area.bounds
    xs, ys = [], []
    have = 0
    while have < n:
        x = rng.uniform(minx, maxx, 2 * (n - have) + 1000)
        y = rng.uniform(miny, maxy, x.size)
        ok = shapely.contains_xy(area, x, y)
        xs.append(x[ok])
        ys.append(y[ok])
        have += int(ok.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def draw_inputs(city, n, rng):
    codes = list(city.categories)
    field = [c for c in codes if city.categories[c].kind in ("event", "component")] or codes
    events = [c for c in field if city.categories[c].kind == "event"] or field
    hotline = [c for c in codes if city.categories[c].kind == "hotline"] or codes
    keywords = sorted({k for r in city.rules for k in (r.keywords or ())})
    is_grid = rng.random(n) < 0.65
    cats, srcs, texts = [], [], []
    for g, r1, r2, r3 in zip(is_grid.tolist(), rng.random(n).tolist(), rng.random(n).tolist(), rng.random(n).tolist()):
        if g:
            pool = events if r1 < 0.7 else field
            cats.append(pool[int(r2 * len(pool))])
            srcs.append("grid")
            texts.append(GRID_TEXTS[int(r3 * len(GRID_TEXTS))])
        else:
            pool = hotline if r1 < 0.75 else events
            cats.append(pool[int(r2 * len(pool))])
            srcs.append("hotline")
            if keywords and r3 < 0.15:
                texts.append("来电反映" + keywords[int(r3 / 0.15 * len(keywords)) % len(keywords)] + "问题")
            else:
                texts.append(HOTLINE_TEXTS[int(r3 * len(HOTLINE_TEXTS))])
    day = datetime(2026, 3, 2, tzinfo=city.tz)
    ats = [day + timedelta(seconds=int(s)) for s in rng.integers(0, 86400, n)]
    return cats, srcs, texts, ats


# --------------------------------------------------------------------------- naive baseline


class NaiveRouter:
    """The same semantics without any index: loops over every polygon, zone and rule."""

    def __init__(self, city):
        self.city = city
        self.proj = city.projection
        by_level = {lvl: [] for lvl in ("grid", "community", "street", "district")}
        for j in sorted(city.jurisdictions.values(), key=lambda j: j.id):
            by_level[j.level].append(j)
        self.by_level = by_level
        self.zones_m = {}
        for z in sorted(city.zones, key=lambda z: z.id):
            g = self.proj.geometry(shapely.segmentize(z.geometry, 0.002))
            self.zones_m.setdefault(z.kind, []).append((z, g))
        self.dept_at = {}
        for d in sorted(city.departments.values(), key=lambda d: d.id):
            self.dept_at.setdefault((d.type, d.jurisdiction), d)

    def locate(self, lng, lat):
        pt = Point(lng, lat)
        for lvl in ("grid", "community", "street", "district"):
            for j in self.by_level[lvl]:
                if j.geometry.intersects(pt):  # unprepared, one polygon at a time
                    return j
        return None

    def dept_for(self, j, dtype):
        while j is not None:
            d = self.dept_at.get((dtype, j.id))
            if d:
                return d
            j = self.city.jurisdictions.get(j.parent) if j.parent else None
        return self.dept_at.get((dtype, self.city.id))

    def route(self, lng, lat, code, source, text, at):
        j = self.locate(lng, lat)
        if j is None:
            raise OutsideCity("outside")
        local = at.astimezone(self.city.tz)
        minute = local.hour * 60 + local.minute
        x, y = self.proj.forward_one(lng, lat)
        pm = Point(x, y)
        for rule in self.city.rules.rules:
            if rule.categories is not None and code not in rule.categories:
                continue
            if rule.sources is not None and source not in rule.sources:
                continue
            if rule.hours is not None and not rule.hours.contains(minute):
                continue
            if rule.keywords and not any(k in text for k in rule.keywords):
                continue
            if rule.in_zone and not any(
                g.geom_type.endswith("Polygon") and g.intersects(pm) for _, g in self.zones_m[rule.in_zone]
            ):
                continue
            if rule.near_zone and min(g.distance(pm) for _, g in self.zones_m[rule.near_zone.kind]) > rule.near_zone.within_m:
                continue
            d = self.city.departments[rule.department] if rule.department else self.dept_for(j, rule.department_type)
            if d is not None:
                return rule.id, d.id
        fb = self.city.rules.fallback
        d = self.city.departments[fb.department] if fb.department else self.dept_for(j, fb.department_type)
        return ("fallback", d.id) if d else (None, None)


# --------------------------------------------------------------------------- measuring


def pct(values, q):
    return float(np.percentile(np.asarray(values), q))


def machine():
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        m = re.search(r"Model name:\s*(.+)", out)
        model = m.group(1).strip() if m else ""
    except OSError:
        pass
    return {
        "nproc": nproc,
        "model": model or platform.processor() or "unknown",
        "python": platform.python_version(),
        "shapely": shapely.__version__,
        "numpy": np.__version__,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--city", default=str(DEFAULT_CITY))
    ap.add_argument("--n", type=int, default=200_000, help="batch size (points)")
    ap.add_argument("--single", type=int, default=20_000, help="single-call latency samples")
    ap.add_argument("--naive", type=int, default=200, help="naive-baseline sample size")
    ap.add_argument("--runs", type=int, default=5, help="batch repetitions")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--write-docs", action="store_true", help="update the Routing section of docs/PERFORMANCE.md")
    args = ap.parse_args(argv)

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    city = load_city(args.city)
    t1 = time.perf_counter()
    router = Router(city)
    t2 = time.perf_counter()
    grids = sum(1 for j in city.jurisdictions.values() if j.level == "grid")
    print(f"city {city.name} ({city.id}): {len(city.jurisdictions)} jurisdictions, {grids} grids, "
          f"{len(city.zones)} zones, {len(city.rules)} rules + fallback, {len(city.departments)} departments")
    print(f"load_city {t1 - t0:.2f} s, Router build {t2 - t1:.2f} s")

    rng = np.random.default_rng(args.seed)
    names, area = core_area(city)
    lng, lat = draw_points(area, args.n, rng)
    cats, srcs, texts, ats = draw_inputs(city, args.n, rng)
    print(f"{args.n} points in {', '.join(names)}; seed {args.seed}")

    # ---- (a) batch
    router.route_many(lng[:5000], lat[:5000], cats[:5000], sources=srcs[:5000], texts=texts[:5000], at=ats[:5000])
    walls, cpus = [], []
    decisions = None
    for _ in range(args.runs):
        decisions = None
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        decisions = router.route_many(lng, lat, cats, sources=srcs, texts=texts, at=ats)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    w0 = time.perf_counter()
    dicts = [d.as_dict() for d in decisions if d is not None]
    as_dict_s = time.perf_counter() - w0
    located = len(dicts)
    by_rule = {}
    for d in decisions:
        if d is not None:
            by_rule[d.rule] = by_rule.get(d.rule, 0) + 1
    batch_best = args.n / min(walls)
    batch_median = args.n / statistics.median(walls)
    batch_cpu = args.n / min(cpus)
    with_dicts = args.n / (min(walls) + as_dict_s)
    del dicts
    unresolved = by_rule.get(None, 0)
    fired = sorted(((v, k) for k, v in by_rule.items() if k), reverse=True)
    print(f"(a) batch route_many: best {batch_best:,.0f} decisions/s, median {batch_median:,.0f}/s "
          f"(CPU time: {batch_cpu:,.0f}/s); with as_dict() for every decision {with_dicts:,.0f}/s")
    print(f"    {located} located, {unresolved} to manual dispatch; {len(fired)} distinct rules fired (fallback included); top: "
          + ", ".join(f"{k} {v}" for v, k in fired[:6]))

    # ---- (b) single
    m = min(args.single, args.n)
    lng_l, lat_l = lng.tolist(), lat.tolist()
    for i in range(min(2000, m)):
        router.route(lng_l[i], lat_l[i], cats[i], source=srcs[i], text=texts[i], at=ats[i])
    wall_us, cpu_us, full_us, full_cpu_us = [], [], [], []
    gc.collect()
    for i in range(m):
        a, b = time.perf_counter_ns(), time.thread_time_ns()
        d = router.route(lng_l[i], lat_l[i], cats[i], source=srcs[i], text=texts[i], at=ats[i])
        c, e = time.perf_counter_ns(), time.thread_time_ns()
        d.as_dict()
        f, g = time.perf_counter_ns(), time.thread_time_ns()
        wall_us.append((c - a) / 1000)
        cpu_us.append((e - b) / 1000)
        full_us.append((f - a) / 1000)
        full_cpu_us.append((g - b) / 1000)
    single = {
        "p50": pct(wall_us, 50), "p99": pct(wall_us, 99), "max": max(wall_us),
        "cpu_p50": pct(cpu_us, 50), "cpu_p99": pct(cpu_us, 99),
        "full_p50": pct(full_us, 50), "full_p99": pct(full_us, 99),
        "full_cpu_p50": pct(full_cpu_us, 50), "full_cpu_p99": pct(full_cpu_us, 99),
    }
    print(f"(b) single route(): p50 {single['p50']:.0f} µs, p99 {single['p99']:.0f} µs, max {single['max']:.0f} µs "
          f"(thread CPU time p50 {single['cpu_p50']:.0f} µs, p99 {single['cpu_p99']:.0f} µs); "
          f"with as_dict(): p50 {single['full_p50']:.0f} µs, p99 {single['full_p99']:.0f} µs "
          f"(CPU p50 {single['full_cpu_p50']:.0f} µs, p99 {single['full_cpu_p99']:.0f} µs)")

    # ---- (c) naive
    naive = NaiveRouter(city)
    k = min(args.naive, args.n)
    agree = 0
    t = time.perf_counter()
    results = []
    for i in range(k):
        results.append(naive.route(lng_l[i], lat_l[i], cats[i], srcs[i], texts[i], ats[i]))
    naive_s = time.perf_counter() - t
    for i, want in enumerate(results):
        d = decisions[i]
        got = (d.rule, d.department_id)
        agree += got == want
    naive_rate = k / naive_s
    print(f"(c) naive loop: {naive_rate:,.1f} decisions/s ({naive_s / k * 1000:.1f} ms per decision, "
          f"{k} decisions measured); agrees with the engine on {agree}/{k}")
    print(f"    speed-up: batch {batch_best / naive_rate:,.0f}×, single (p50) "
          f"{(naive_s / k * 1e6) / single['p50']:,.0f}×")
    load_after = os.getloadavg()
    info = machine()
    print(f"machine: {info['nproc']} CPUs, {info['model']}, Python {info['python']}, shapely {info['shapely']}, "
          f"numpy {info['numpy']}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    target_ok = batch_best >= 100_000 and single["p99"] < 500
    cpu_ok = batch_cpu >= 100_000 and single["cpu_p99"] < 500
    verdict = "met" if target_ok else ("met on CPU time, NOT on wall-clock time (machine busy)" if cpu_ok else "NOT met")
    print("SPEC §6 routing bar (≥ 100,000/s batch, p99 < 0.5 ms single): " + verdict)

    if args.write_docs:
        write_docs(args, verdict, city, grids, names, info, load_before, load_after, t1 - t0, t2 - t1,
                   batch_best, batch_median, batch_cpu, with_dicts, single, naive_rate, naive_s / k, k, agree,
                   located, unresolved, len(fired))
        print("docs/PERFORMANCE.md updated (## Routing)")
    return 0


def _load_note(single, load_before, load_after, info):
    if single["p99"] >= 500 > single["cpu_p99"]:
        return (f"Note: in this run the single-call wall p99 ({single['p99']:.0f} µs) is time spent waiting for a CPU: "
                f"the load average was {max(load_before[0], load_after[0]):.1f} on {info['nproc']} CPUs, while the same "
                f"calls' own CPU time has p99 {single['cpu_p99']:.0f} µs. On an idle machine wall ≈ CPU time.\n")
    return ""


def write_docs(args, verdict, city, grids, names, info, load_before, load_after, load_s, build_s, batch_best,
               batch_median, batch_cpu, with_dicts, single, naive_rate, naive_per, k, agree, located,
               unresolved, fired):
    path = ROOT / "docs" / "PERFORMANCE.md"
    city_arg = os.path.relpath(args.city, ROOT) if os.path.isabs(args.city) else args.city
    section = f"""## Routing

Locate (grid → community → street → district) + rule match (SPEC §6: ≥ 100,000 decisions/s in
batch, p99 < 0.5 ms for one decision, with ≥ 10,000 grids and ≥ 100 zones; side by side with a
naive loop). Script: `bench/routing.py`.

Command: `.venv/bin/python bench/routing.py --city {city_arg} --n {args.n} --single {args.single} --naive {args.naive} --write-docs`

Machine: `nproc` = {info['nproc']}, `lscpu | grep 'Model name'` = {info['model']}, Python {info['python']}
(shapely {info['shapely']}, numpy {info['numpy']}). Load average {load_before[0]:.2f} when the run
started, {load_after[0]:.2f} when it ended (the machine is shared with other work, so wall-clock
tails include time spent waiting for a CPU; the thread CPU time is shown beside them).

City: {city.name} `{city.id}` — {len(city.jurisdictions)} jurisdictions of which {grids} grids,
{len(city.zones)} zones, {len(city.rules)} rules + fallback. load_city {load_s:.1f} s, Router build {build_s:.1f} s.
Inputs: {args.n} random points inside {', '.join(names)} (seed {args.seed}); ~65 % grid reports,
~35 % hotline tickets, texts with rule keywords in ~5 %, times spread over the day.
{located} located, {unresolved} left for manual dispatch, {fired} distinct rules fired (fallback included).

| measure | result | target |
| --- | --- | --- |
| (a) batch `route_many`, best of {args.runs} | **{batch_best:,.0f} decisions/s** (median {batch_median:,.0f}/s; CPU time {batch_cpu:,.0f}/s) | ≥ 100,000/s |
| (a') batch + `as_dict()` of every decision | {with_dicts:,.0f} decisions/s | — |
| (b) single `route`, {args.single} calls, wall | **p50 {single['p50']:.0f} µs, p99 {single['p99']:.0f} µs** (max {single['max']:.0f} µs) | p99 < 500 µs |
| (b) single `route`, thread CPU time | p50 {single['cpu_p50']:.0f} µs, p99 {single['cpu_p99']:.0f} µs | — |
| (b') single `route` + `as_dict()` | wall p50 {single['full_p50']:.0f} µs, p99 {single['full_p99']:.0f} µs; CPU p50 {single['full_cpu_p50']:.0f} µs, p99 {single['full_cpu_p99']:.0f} µs | — |
| (c) naive loop (no index), {k} decisions | {naive_rate:,.1f} decisions/s ({naive_per * 1000:.1f} ms each) | — |
| speed-up vs naive | batch {batch_best / naive_rate:,.0f}×, single p50 {(naive_per * 1e6) / single['p50']:,.0f}× | — |
| naive vs engine agreement (rule, department) | {agree}/{k} | all |

SPEC §6 routing bar: **{verdict}**.

{_load_note(single, load_before, load_after, info)}
How it is fast: per level a uniform bucket grid gives candidate polygons straight from coordinate
arrays and a prepared `shapely.intersects_xy` decides (no Point objects); each grid carries its
whole chain; departments are pre-resolved per type for every jurisdiction (nearest enclosing);
rules are evaluated as numpy masks over the batch, zone conditions only for the points that
passed the cheaper tests, against ≤ 500 m pieces of each zone outline in a local metric frame.
One decision takes a plain-Python path over the same indexes (`route` and `route_many` are
tested to agree). The naive baseline's rate is extrapolated from its {k}-decision sample as measured.
"""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n\n"
    pattern = re.compile(r"^## Routing\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())

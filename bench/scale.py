"""A year of a large city (SPEC §6, issue 11 part 7): `python bench/scale.py [--cases N] [--engine server|embedded]`.

Loads N cases (default 1,000,000; about 3 % open) created over the last year, then measures the
real server (`server.py`, a separate process) over HTTP:

  * every list filter the pages use: p50 / p99 of the first page and of a deep page (the
    page after following the cursor `--deep` times);
  * the command map's default view (`/api/cases/map?zoom=12`), bytes and ms, and a close-up;
  * `/api/stats` for the city, a district and a department over a day, a month and a year,
    from the KPI rollups, which are rebuilt from the loaded cases first (a bulk load logs no
    events; `python -m dispatch.tools.rebuild_rollups` on the server engine);
  * the deadline sweep (the first one after loading, and one that finds nothing);
  * /command opened by a dispatcher in Chromium: ms until ready and until the network is idle,
    and the bytes downloaded (`--no-page` skips it);
  * intake p99 at 50 reports/s with that history loaded;
  * the server's RSS after start and after the measurements.

The cases come from the real domain code: the demo simulator (`dispatch/demo/simulator.py`)
runs `--template-hours` of a working city on an embedded store (intake, routing, the closed
loop, the sweep), and those cases are the templates; each loaded case is a template moved to a
new creation time in the year (every instant in it moved alike), with a new id and number.
(Their history hash chains are not re-computed: `/api/audit/verify` would flag them.) They
are written with `insert_many` through the store (`cases.bulk_insert`).

`--engine server` (default) starts its own FerretDB 1.24 (`$DEVDB_FERRETDB`) on the
PostgreSQL of `$DEVDB_POSTGRESQL_URL`, in a database of its own (`--pg-database`, dropped at
the end unless `--keep`), with what the store's equality buckets need from PostgreSQL
(docs/PERFORMANCE.md, "FerretDB"): `plan_cache_mode=force_custom_plan` and `enable_seqscan=off` on FerretDB's
connections and GIN indexes on the fields FerretDB filters by (`tune_postgresql`). With
`--plain` neither is done, to show the difference. `--engine embedded` runs the server in a
child process of this script (`--serve-embedded PORT`: the real application on the embedded
store, loaded through `cases.bulk_insert` before it listens).

Prints Markdown tables; docs/PERFORMANCE.md quotes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import tornado.httpclient  # noqa: E402

from dispatch.tools import tune_ferretdb  # noqa: E402

from intake import PASSWORD, SECRET, free_port, machine, percentile, report_bodies, start, stop, wait_port  # noqa: E402

PYTHON = sys.executable
OPEN_SHARE = 0.03
CITY = ROOT / "data" / "cities" / "hangzhou-demo"


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Templates from the real domain code
# --------------------------------------------------------------------------------------------


async def make_templates(hours: float, rate: float, seed: int) -> list[dict]:
    """The cases of `hours` of simulated city life (embedded store), as stored."""
    from dispatch.app import build_context
    from dispatch.config import load_config
    from dispatch.demo.simulator import Simulator
    from dispatch.store.query import BY_ID, After, CaseQuery

    config = load_config(None, [f"city.path={CITY}", "storage.uri=embedded", "scheduler.enabled=false"])
    ctx = await build_context(config)
    sim = Simulator(ctx, seed=seed, rate_per_minute=rate)
    await sim.warm_up(hours)
    docs, after = [], None
    while True:
        page = await ctx.cases.find(CaseQuery(order=BY_ID, after=after, limit=5000))
        docs += page
        if len(page) < 5000:
            break
        after = After(None, page[-1]["_id"])
    return docs


def shifted(value, delta: timedelta):
    if isinstance(value, datetime):
        return value + delta
    if isinstance(value, dict):
        return {k: shifted(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [shifted(v, delta) for v in value]
    return value


class Generator:
    """Cases over the year before `now`: closed templates anywhere in it (busier by day), open
    ones mostly in the last two weeks (a few older: long-running or suspended work)."""

    def __init__(self, templates: list[dict], now: datetime, seed: int):
        from dispatch.domain import OPEN_STATUSES

        self.rng = random.Random(seed)
        self.now = now
        self.open = [t for t in templates if t["status"] in OPEN_STATUSES]
        self.done = [t for t in templates if t["status"] not in OPEN_STATUSES]
        self.numbers: dict[str, int] = {}

    def created_at(self, open_case: bool) -> datetime:
        if open_case:
            days = self.rng.expovariate(1 / 4) if self.rng.random() < 0.9 else self.rng.uniform(0, 365)
        else:
            days = self.rng.uniform(0, 365)
        at = self.now - timedelta(days=min(days, 365))
        # Daytime-heavy: move a night-time instant into the day half the time.
        if at.hour < 8 and self.rng.random() < 0.5:
            at += timedelta(hours=10)
        return min(at, self.now - timedelta(minutes=1))

    def case(self) -> dict:
        from dispatch.store import new_case_id

        open_case = self.rng.random() < OPEN_SHARE
        template = self.rng.choice(self.open if open_case and self.open else self.done)
        created = self.created_at(open_case)
        doc = shifted(template, created - template["created_at"])
        doc["_id"] = new_case_id()
        day = created.strftime("%Y%m%d")
        self.numbers[day] = n = self.numbers.get(day, 0) + 1
        doc["number"] = f"{day}-{n:06d}"
        doc.pop("client_id", None)
        if doc.get("search_masked"):
            doc["search_masked"] = doc["number"] + doc["search_masked"][len(template.get("number") or ""):]
        return doc


# --------------------------------------------------------------------------------------------
# FerretDB of our own, and what its PostgreSQL needs
# --------------------------------------------------------------------------------------------


def pg_url(base: str, database: str, **params) -> str:
    parts = urlsplit(base)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, query, ""))


def psql(url: str, sql: str) -> str:
    done = subprocess.run(["psql", "-At", url, "-c", sql], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


def start_ferretdb(binary: str, pg_base: str, database: str, custom_plans: bool) -> tuple[subprocess.Popen, int]:
    if not psql(pg_url(pg_base, "postgres"), f"SELECT 1 FROM pg_database WHERE datname = '{database}'"):
        psql(pg_url(pg_base, "postgres"), f'CREATE DATABASE "{database}"')
    port = free_port()
    state = Path(f"/tmp/bench-scale-ferretdb-{port}")
    state.mkdir(exist_ok=True)
    # FerretDB sends `_jsonb->$1 @> $2`: under a generic plan the key is a parameter and no
    # expression index matches; custom plans see the key and use the GIN index. And a FerretDB
    # table's documents live in TOAST, so its heap looks tiny to the planner, which then costs a
    # sequential scan below the GIN scan (499 vs 656 at 20,000 cases) although the scan reads
    # every document (373 ms vs 2.8 ms): no sequential scan where an index serves.
    url = pg_url(pg_base, database) + (f"?{tune_ferretdb.FERRETDB_URL_PARAMETERS}" if custom_plans else "")
    process = start([binary, "--handler=postgresql", f"--postgresql-url={url}", f"--listen-addr=127.0.0.1:{port}",
                     "--debug-addr=-", "--telemetry=disable", f"--state-dir={state}"], str(state / "log"))
    wait_port(port, 30)
    return process, port


def tune_postgresql(pg: str, database: str) -> list[str]:
    """What a FerretDB deployment runs once (`python -m dispatch.tools.tune_ferretdb`): GIN
    indexes on the fields FerretDB filters by, then ANALYZE; returns the statements run."""
    return tune_ferretdb.tune(pg, database)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


async def load_server(uri: str, database: str, generator: Generator, n: int, batch: int, pg: str | None) -> float:
    from dispatch.store.mongo import MongoStore

    store = MongoStore(uri, database, timeout_ms=600000)
    # A fresh database: every case loaded carries its buckets and is counted in its hour's
    # slices, nothing to backfill.
    await store.cases.mark_query_fields_current()
    if pg is not None:
        # The counts are updated by `_id` (each batch adds to thousands of hours): without its
        # index every update would read the whole table.
        await store.cases.counts.collection.database.create_collection(store.cases.counts.collection.name)
        tune_ferretdb.tune(pg, database, only=("case_counts",))
    # The indexes are built after the load (as for any bulk load): PostgreSQL builds an index
    # over loaded rows far faster than it maintains it row by row.
    started = time.perf_counter()
    done = 0
    while done < n:
        docs = [generator.case() for _ in range(min(batch, n - done))]
        await store.cases.bulk_insert(docs)
        done += len(docs)
        if done % (batch * 20) == 0 or done == n:
            rate = done / (time.perf_counter() - started)
            progress(f"loaded {done:,} cases ({rate:,.0f}/s)")
    elapsed = time.perf_counter() - started
    indexing = time.perf_counter()
    await store.ensure_indexes()
    progress(f"indexes built in {time.perf_counter() - indexing:.0f} s")
    await store.close()
    return elapsed


# --------------------------------------------------------------------------------------------
# Measuring over HTTP
# --------------------------------------------------------------------------------------------


class Http:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=200)
        self.token = None

    async def login(self, username: str, password: str) -> "Http":
        other = Http.__new__(Http)
        other.base, other.client = self.base, self.client
        response = await self.client.fetch(self.base + "/api/login", method="POST",
                                           headers={"Content-Type": "application/json"},
                                           body=json.dumps({"username": username, "password": password}))
        other.token = json.loads(response.body)["token"]
        return other

    async def get(self, path: str) -> tuple[float, int, dict]:
        started = time.perf_counter()
        response = await self.client.fetch(self.base + path, headers={"Authorization": f"Bearer {self.token}"},
                                           request_timeout=300, raise_error=False)
        ms = (time.perf_counter() - started) * 1000
        if response.code != 200:
            raise RuntimeError(f"GET {path}: {response.code} {response.body[:300]!r}")
        return ms, len(response.body), json.loads(response.body)

    async def post(self, path: str, body: bytes) -> tuple[float, int]:
        started = time.perf_counter()
        response = await self.client.fetch(self.base + path, method="POST", body=body, raise_error=False,
                                           headers={"Authorization": f"Bearer {self.token}",
                                                    "Content-Type": "application/json"}, request_timeout=60)
        return (time.perf_counter() - started) * 1000, response.code


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the server and by every FerretDB and PostgreSQL process on
    the machine (run nothing else beside the benchmark): where an intake's work goes."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        who = "server" if int(entry.name) == server_pid else (
            "FerretDB" if name.startswith("ferretdb") else "PostgreSQL" if name.startswith("postgres") else None)
        if who:
            out[who] = out.get(who, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def stats_line(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} | {percentile(values, 99):.0f}"


async def list_figures(http: Http, filters: dict[str, str], reps: int, deep: int) -> list[tuple]:
    rows = []
    for name, query in filters.items():
        first, deep_ms, sizes = [], [], []
        for _ in range(reps):
            ms, size, body = await http.get(f"/api/cases?limit=50{query}")
            first.append(ms)
            sizes.append(size)
        cursor, page_at = body.get("next"), 1
        while cursor and page_at < deep:
            _, _, body = await http.get(f"/api/cases?limit=50{query}&cursor={quote(cursor)}")
            cursor, page_at = body.get("next"), page_at + 1
        if cursor:
            for _ in range(max(3, reps // 3)):
                ms, _, _ = await http.get(f"/api/cases?limit=50{query}&cursor={quote(cursor)}")
                deep_ms.append(ms)
        rows.append((name, first, deep_ms, page_at, len(body.get("items") or ()), statistics.median(sizes)))
        deep_text = f"{stats_line(deep_ms)} (page {page_at + 1})" if deep_ms else f"– (only {page_at} pages)"
        print(f"| {name} | {stats_line(first)} | {deep_text} | {statistics.median(sizes) / 1024:.0f} KB |", flush=True)
    return rows


async def intake_at(http: Http, rate: float, seconds: float) -> dict:
    bodies = report_bodies(int(rate * seconds) + 10)
    latencies, codes = [], {}
    tasks = []

    async def one(body):
        try:
            ms, code = await http.post("/api/reports", body)
        except tornado.httpclient.HTTPClientError as exc:  # a timeout is a figure too
            ms, code = 60000.0, exc.code
        latencies.append(ms)
        codes[code] = codes.get(code, 0) + 1

    started = time.perf_counter()
    for i in range(int(rate * seconds)):
        wait = started + i / rate - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.ensure_future(one(bodies[i])))
    await asyncio.gather(*tasks)
    return {"p50": statistics.median(latencies), "p99": percentile(latencies, 99), "codes": codes}


async def measure(port: int, pid: int, args, city) -> None:
    from dispatch.store.buckets import TEXT_WINDOW

    http = Http(port)
    dispatcher = await http.login("dispatcher01", "demo-dispatcher-2026")
    department_user = next(u for u in city.users if u["role"] == "department")
    department = await http.login(department_user["username"], str(department_user["password"]))
    grid = await http.login("grid01", PASSWORD)
    district = next(j for j in city.jurisdictions.values() if j.level == "district")
    street = next(j for j in city.jurisdictions.values() if j.level == "street" and j.parent == district.id)
    dept_id = department_user["department"]
    day = (datetime.now(timezone.utc) - timedelta(days=40)).date()
    filters = {
        "all (city dispatcher)": "",
        "open": "&open=true",
        "status=accepted": "&status=accepted",
        "status=closed": "&status=closed",
        "category=0101": "&category=0101",
        f"department={dept_id}": f"&department={dept_id}",
        f"district={district.id}": f"&district={district.id}",
        f"street={street.id}": f"&street={street.id}",
        "source=hotline": "&source=hotline",
        "overdue=true": "&overdue=true",
        "超期 list: open + overdue": "&open=true&overdue=true",
        "临期 list: open + warning": "&open=true&warning=true",
        "待派遣 list: status=reported,filed": "&status=reported,filed",
        "open + district + category": f"&open=true&district={district.id}&category=0101",
        f"from/to one day ({day})": f"&from={day}&to={day + timedelta(days=1)}",
        "bbox (1 km²)": "&bbox=120.16,30.25,120.17,30.26",
        f"q=垃圾 (window {TEXT_WINDOW.days} d)": "&q=" + quote("垃圾"),
        "q=<a case number>": None,
    }
    _, _, page = await dispatcher.get("/api/cases?limit=1&status=closed")
    filters["q=<a case number>"] = "&q=" + (page["items"][0]["number"] if page["items"] else "20260101-000001")
    print("\n| list (limit=50) | first p50 \\| p99 ms | deep p50 \\| p99 ms | first page size |")
    print("|---|---|---|---|")
    await list_figures(dispatcher, filters, args.reps, args.deep)
    print("\n| reader | first p50 \\| p99 ms | deep p50 \\| p99 ms | size |\n|---|---|---|---|")
    await list_figures(department, {f"department user ({dept_id}), open": "&open=true",
                                    f"department user ({dept_id}), all": ""}, args.reps, args.deep)
    await list_figures(grid, {"grid worker, mine": "&mine=true", "grid worker, scope": ""}, args.reps, args.deep)

    print("\n| map | ms (p50 \\| p99) | bytes |\n|---|---|---|")
    commander = dispatcher
    for name, path in (("default view, city (zoom 12 → street counts)", "/api/cases/map?zoom=12"),
                       ("city (zoom 11 → district counts)", "/api/cases/map?zoom=11"),
                       ("close-up (zoom 16, 1 km² box)", "/api/cases/map?zoom=16&bbox=120.16,30.25,120.17,30.26")):
        times, size = [], 0
        try:
            for _ in range(args.reps):
                ms, size, _ = await commander.get(path)
                times.append(ms)
        except Exception as exc:  # noqa: BLE001 - a refusal (503 after the store's 20 s) is a figure too
            print(f"| {name} | failed: {str(exc)[:80]} | |", flush=True)
            continue
        print(f"| {name} (first {times[0]:.0f} ms) | {stats_line(times)} | {size / 1024:.1f} KB |", flush=True)

    print("\n| /api/stats | ms (first) | ms (again) | bytes |\n|---|---|---|---|")
    # Days in the city's time zone, as the pages ask (a UTC date is the city's yesterday from
    # 16:00 UTC, and a period ending before today is read differently: both are measured).
    today = datetime.now(ZoneInfo(city.timezone)).date()
    yesterday = today - timedelta(days=1)
    # The default report groups by department (SPEC §3); /command asks the city by district and a
    # district by street.
    for scope_name, scope in (("city", ""), ("city by district (/command)", "&group_by=district"),
                              ("district", f"&scope={district.id}"),
                              ("district by street (/command)", f"&scope={district.id}&group_by=street")):
        for period, start_day, end_day in (("day", today, today), ("month", today - timedelta(days=30), today),
                                           ("year", today - timedelta(days=364), today),
                                           ("30 days to yesterday", yesterday - timedelta(days=29), yesterday),
                                           ("365 days to yesterday", yesterday - timedelta(days=364), yesterday)):
            try:
                first_ms, size, _ = await dispatcher.get(f"/api/stats?from={start_day}&to={end_day}{scope}")
                again_ms, _, _ = await dispatcher.get(f"/api/stats?from={start_day}&to={end_day}{scope}")
                print(f"| {scope_name}, {period} | {first_ms:.0f} | {again_ms:.0f} | {size / 1024:.0f} KB |", flush=True)
            except Exception as exc:  # noqa: BLE001 - a timeout is a figure too
                print(f"| {scope_name}, {period} | failed: {str(exc)[:80]} | | |", flush=True)
    for period, start_day in (("day", today), ("year", today - timedelta(days=364))):
        try:
            first_ms, size, _ = await department.get(f"/api/stats?from={start_day}&to={today}")
            print(f"| department {dept_id}, {period} | {first_ms:.0f} | | {size / 1024:.0f} KB |", flush=True)
        except Exception as exc:  # noqa: BLE001
            print(f"| department, {period} | failed: {str(exc)[:80]} | | |", flush=True)

    if not args.no_page:
        await page_figures(port)

    grid_http = grid
    before, started = cpu_seconds(pid), time.perf_counter()
    result = await intake_at(grid_http, args.rate, args.intake_seconds)
    after, wall = cpu_seconds(pid), time.perf_counter() - started
    print(f"\nintake at {args.rate:.0f} reports/s for {args.intake_seconds:.0f} s: p50 {result['p50']:.0f} ms, "
          f"p99 {result['p99']:.0f} ms, statuses {result['codes']}", flush=True)
    print(f"CPU in those {wall:.1f} s: " + ", ".join(f"{who} {after[who] - before.get(who, 0):.1f} s"
                                                     for who in sorted(after)), flush=True)
    print(f"server RSS after the measurements: {rss_mb(pid):.0f} MB", flush=True)


CHROMIUM = "/usr/bin/chromium"


async def page_figures(port: int) -> None:
    """/command as a dispatcher opens it in Chromium at 1366×768: the time until the page says it
    is ready (`body[data-ready]`: map, statistics, queue and cases drawn) and until the network
    is idle, and the bytes the page downloaded, with the largest answers."""
    from playwright.async_api import async_playwright

    base = f"http://127.0.0.1:{port}"
    print("\n| /command (dispatcher, 1366×768, Chromium) | ms | bytes |\n|---|---|---|")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            for attempt in ("cold", "again"):
                context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
                login = await context.request.post(base + "/api/login", data={
                    "username": "dispatcher01", "password": "demo-dispatcher-2026"})
                assert login.ok, await login.text()
                page = await context.new_page()
                sizes: dict[str, int] = {}
                waits: dict[str, float] = {}  # request sent → response ended, ms

                async def finished(request):
                    body = (await request.sizes())["responseBodySize"]
                    path = request.url[len(base):]
                    sizes[path] = sizes.get(path, 0) + body
                    timing = request.timing
                    if timing.get("responseEnd", -1) >= 0 and path.startswith("/api/"):
                        waits[path] = max(waits.get(path, 0), timing["responseEnd"] - max(timing.get("requestStart", 0), 0))

                page.on("requestfinished", finished)
                start = time.perf_counter()
                await page.goto(base + "/command")
                await page.wait_for_selector("body[data-ready='1']", timeout=300_000)
                ready = (time.perf_counter() - start) * 1000
                await page.wait_for_load_state("networkidle", timeout=300_000)
                idle = (time.perf_counter() - start) * 1000
                total = sum(sizes.values())
                print(f"| {attempt}: ready | {ready:.0f} | |", flush=True)
                print(f"| {attempt}: network idle, every request | {idle:.0f} | {total / 1024:.0f} KB |", flush=True)
                if attempt == "cold":
                    for path, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:4]:
                        print(f"| largest answer: `{path[:80]}` | | {size / 1024:.0f} KB |", flush=True)
                    for path, wait in sorted(waits.items(), key=lambda kv: -kv[1])[:5]:
                        print(f"| slowest answer: `{path[:80]}` | {wait:.0f} | {sizes.get(path, 0) / 1024:.0f} KB |", flush=True)
                await context.close()
        finally:
            await browser.close()


async def sweep_figures(uri: str, database: str) -> None:
    """The deadline sweep on the loaded store, in this process: the first sweep (the loaded
    open cases' passed thresholds) and then sweeps that find nothing."""
    from dispatch.app import build_context
    from dispatch.config import load_config
    from dispatch.sweep.sweeper import run_sweep

    config = load_config(None, [f"city.path={CITY}", f"storage.uri={uri}", f"storage.database={database}",
                                "scheduler.enabled=false", f"auth.secret={SECRET}"])
    ctx = await build_context(config)
    started = time.perf_counter()
    counts = await run_sweep(ctx)
    first = time.perf_counter() - started
    print(f"\nsweep, first after loading: {first * 1000:.0f} ms, {counts}", flush=True)
    idle = []
    for _ in range(10):
        started = time.perf_counter()
        counts = await run_sweep(ctx)
        idle.append((time.perf_counter() - started) * 1000)
    print(f"sweep with nothing (or little) due: p50 {statistics.median(idle):.1f} ms, max {max(idle):.1f} ms, "
          f"last {counts}", flush=True)
    await ctx.storage.close()


async def explain(uri: str, database: str) -> None:
    """What FerretDB sends PostgreSQL for a bucket read, and PostgreSQL's plan of it."""
    from pymongo import AsyncMongoClient

    client = AsyncMongoClient(uri)
    db = client[database]
    now = datetime.now(timezone.utc)
    for flt in ({"qk": f"open@d{now:%Y%m%d}"}, {"status": "accepted"}, {"created_at": {"$gte": now - timedelta(days=1)}}):
        plan = await db.command({"explain": {"find": "cases", "filter": flt, "limit": 50}})
        node = plan.get("queryPlanner", {}).get("Plan", {})
        print(f"\nexplain {flt}: filterPushdown={plan.get('filterPushdown')} → {node.get('Node Type')}"
              f" {node.get('Index Name') or ''} {node.get('Filter') or node.get('Recheck Cond') or ''}"
              f" (plans: {json.dumps(node.get('Plans', [{}])[0].get('Node Type') if node.get('Plans') else None)})",
              flush=True)
    await client.close()


async def serve_embedded(port: int, args) -> None:
    """The real application on the embedded store, `args.cases` loaded, on `port`."""
    import tornado.httpserver

    from dispatch.app import make_app
    from dispatch.config import load_config

    templates = await make_templates(args.template_hours, args.template_rate, args.seed)
    config = load_config(None, [f"city.path={CITY}", "storage.uri=embedded", "scheduler.enabled=false",
                                "auth.allow_demo_passwords=true"])
    app = await make_app(config)
    generator = Generator(templates, datetime.now(timezone.utc), args.seed)
    started = time.perf_counter()
    for done in range(0, args.cases, args.batch):
        await app.ctx.cases.bulk_insert([generator.case() for _ in range(min(args.batch, args.cases - done))])
    progress(f"embedded: loaded {args.cases:,} cases in {time.perf_counter() - started:.0f} s")
    # A bulk load logs no events: the KPI rollups are rebuilt from the cases, as after any.
    started = time.perf_counter()
    result = await app.ctx.rollups.rebuild()
    progress(f"embedded: rollups rebuilt in {time.perf_counter() - started:.0f} s ({result['buckets']:,} bucket documents)")
    server = tornado.httpserver.HTTPServer(app)
    server.listen(port, "127.0.0.1")
    await asyncio.Event().wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=("server", "embedded"), default="server")
    parser.add_argument("--pg-database", default="bench_scale")
    parser.add_argument("--plain", action="store_true", help="no GIN indexes, no custom plans")
    parser.add_argument("--keep", action="store_true", help="keep the database (and reuse it with --no-load)")
    parser.add_argument("--no-load", action="store_true")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--template-hours", type=float, default=24)
    parser.add_argument("--template-rate", type=float, default=6.0, help="simulated cases per minute")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--deep", type=int, default=20, help="the deep page: after this many pages")
    parser.add_argument("--rate", type=float, default=50.0, help="intake reports/s")
    parser.add_argument("--intake-seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-page", action="store_true", help="do not open /command in Chromium")
    parser.add_argument("--serve-embedded", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_embedded:
        await serve_embedded(args.serve_embedded, args)
        return

    from geo.loader import load_city

    city = load_city(CITY)
    print(f"# bench/scale.py: {args.cases:,} cases, engine {args.engine}"
          f"{' (plain FerretDB)' if args.plain else ''}\n\nmachine: {machine()}\n", flush=True)
    processes = []
    try:
        if args.engine == "server":
            pg_base = os.environ["DEVDB_POSTGRESQL_URL"]
            ferret, fport = start_ferretdb(os.environ["DEVDB_FERRETDB"], pg_base, args.pg_database, not args.plain)
            processes.append(ferret)
            uri, database = f"mongodb://127.0.0.1:{fport}/", "scale"
            if not args.no_load:
                progress("simulating the template cases")
                templates = await make_templates(args.template_hours, args.template_rate, args.seed)
                progress(f"{len(templates)} templates; loading")
                generator = Generator(templates, datetime.now(timezone.utc), args.seed)
                elapsed = await load_server(uri, database, generator, args.cases, args.batch,
                                            None if args.plain else pg_url(pg_base, args.pg_database))
                print(f"loaded {args.cases:,} cases in {elapsed:.0f} s ({args.cases / elapsed:,.0f}/s, "
                      f"insert_many of {args.batch} through `cases.bulk_insert`)\n", flush=True)
                # A bulk load logs no events: the KPI rollups are rebuilt from the cases (the
                # operator's command after any bulk load), before the server starts.
                started = time.perf_counter()
                subprocess.run([PYTHON, "-m", "dispatch.tools.rebuild_rollups", "--city", str(CITY),
                                "--set", f"storage.uri={uri}", "--set", f"storage.database={database}"],
                               cwd=ROOT, check=True)
                print(f"rollups rebuilt in {time.perf_counter() - started:.0f} s "
                      "(`python -m dispatch.tools.rebuild_rollups`)\n", flush=True)
            port = free_port()
            server = start([PYTHON, "server.py", "--port", str(port), "--set", "scheduler.enabled=false",
                            "--set", "auth.allow_demo_passwords=true", "--set", f"auth.secret={SECRET}",
                            "--set", f"storage.uri={uri}", "--set", f"storage.database={database}"],
                           f"/tmp/bench-scale-server-{port}.log")
            processes.append(server)
            wait_port(port, 3600)  # a start after an upgrade files the stored cases under new query keys
            if not args.plain:
                statements = tune_postgresql(pg_url(pg_base, args.pg_database), database)
                print(f"PostgreSQL: {len(statements)} GIN indexes, e.g. `{statements[0]}`\n", flush=True)
            await explain(uri, database)
        else:
            port = free_port()
            server = start([PYTHON, str(Path(__file__).resolve()), "--serve-embedded", str(port),
                            "--cases", str(args.cases), "--template-hours", str(args.template_hours),
                            "--template-rate", str(args.template_rate), "--seed", str(args.seed)],
                           f"/tmp/bench-scale-server-{port}.log")
            processes.append(server)
            wait_port(port, 3600)
            uri = database = None
        print(f"server RSS after start: {rss_mb(server.pid):.0f} MB", flush=True)
        await measure(port, server.pid, args, city)
        if uri:
            await sweep_figures(uri, database)
    finally:
        stop(processes)
        if args.engine == "server" and not args.keep:
            psql(pg_url(os.environ["DEVDB_POSTGRESQL_URL"], "postgres"), f'DROP DATABASE IF EXISTS "{args.pg_database}"')


if __name__ == "__main__":
    asyncio.run(main())

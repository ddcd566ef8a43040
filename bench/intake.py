"""HTTP intake benchmark: grid reports per second on one server process, beside a named baseline.

    .venv/bin/python bench/intake.py [--uri embedded|mongodb://…] [--seconds 8] [--concurrency 32]
                                     [--open-seconds S] [--rates 50,200] [--trips 100]

Starts the real server (`server.py`, demo city, scheduler off) as a separate process on loopback
with `storage.uri` = `--uri` (a `mongodb://` URI gets a scratch database, dropped at the end),
and measures `POST /api/reports` as the grid worker grid01:

* sustained throughput: `wrk` (C, epoll; `apt-get install wrk`) with N connections when it is
  installed, and a closed loop of N concurrent requests with Tornado's Python client;
* latency at fixed offered rates (open loop: requests sent on schedule whatever the earlier ones
  are doing, so no coordinated omission), p50 / p99, and the rate actually completed.

Baselines, measured in the same run:

* always: a bare Tornado process whose handler parses the same JSON body and answers 201 with a
  small JSON document (what one Tornado process can do on this machine);
* on a server: a raw PyMongo `insert_one` loop of a stored case document (read back from this
  run's cases, fresh `_id`) on the same server, into a collection without indexes and into one
  with the cases collection's indexes (`CASE_INDEXES`): sequential (latency) and with N inserts
  in flight (throughput). Their ratio to intake is our overhead.

On a server it also counts the database commands one intake costs: the application is started
in this process on its own port with a PyMongo `CommandListener` registered, and `--trips`
sequential reports are sent to it after a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import tornado.httpclient

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
sys.path.insert(0, str(ROOT))

BARE_SERVER = r"""
import json, sys, tornado.web, tornado.ioloop, asyncio
class Bare(tornado.web.RequestHandler):
    def post(self):
        body = json.loads(self.request.body)
        self.set_status(201)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"id": "0" * 24, "status": "reported", "category": body.get("category")}))
async def main():
    tornado.web.Application([(r"/api/reports", Bare)]).listen(int(sys.argv[1]), "127.0.0.1")
    await asyncio.Event().wait()
asyncio.run(main())
"""

PASSWORD = "demo-grid_worker-2026"
# A server store wants a fixed token key (`auth.secret`); this throwaway one lives for one run.
SECRET = "bench-" + __import__("secrets").token_hex(24)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not start")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def machine() -> str:
    def run(command: str) -> str:
        return subprocess.run(command, shell=True, capture_output=True, text=True, check=False).stdout.strip()

    model = run("grep -m1 'model name' /proc/cpuinfo").split(":", 1)[-1].strip() or platform.processor()
    memory = run("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    return (f"nproc {run('nproc')}, {model}, {memory}, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.1f}")


def report_bodies(n: int) -> list[bytes]:
    """Reports at random points inside grid01's community (its scope), common categories."""
    from geo.loader import load_city
    from shapely import Point

    city = load_city(ROOT / "data" / "cities" / "hangzhou-demo")
    worker = next(u for u in city.users if u["username"] == "grid01")
    area = city.jurisdictions[str(worker["scope"])].geometry
    minx, miny, maxx, maxy = area.bounds
    codes = [c.code for c in city.categories.values() if c.kind in ("event", "component")][:12]
    rng = random.Random(7)
    bodies = []
    while len(bodies) < n:
        lng, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if area.contains(Point(lng, lat)):
            bodies.append(json.dumps({
                "category": rng.choice(codes), "description": "基准测试上报：路边暴露垃圾",
                "location": {"type": "Point", "coordinates": [round(lng, 6), round(lat, 6)]},
            }).encode())
    return bodies


async def login(port: int) -> str:
    http = tornado.httpclient.AsyncHTTPClient()
    response = await http.fetch(
        f"http://127.0.0.1:{port}/api/login", method="POST", headers={"Content-Type": "application/json"},
        body=json.dumps({"username": "grid01", "password": PASSWORD}),
    )
    return json.loads(response.body)["token"]


# --------------------------------------------------------------------------------------------
# Load generators
# --------------------------------------------------------------------------------------------


async def closed_loop(url: str, headers: dict, bodies: list[bytes], seconds: float, concurrency: int):
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=concurrency)
    done, errors, latencies = 0, Counter(), []
    stop_at = time.perf_counter() + seconds

    async def worker(offset: int):
        nonlocal done
        i = offset
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            response = await http.fetch(url, method="POST", body=bodies[i % len(bodies)], headers=headers,
                                        raise_error=False, request_timeout=60)
            latencies.append(time.perf_counter() - start)
            if response.code in (200, 201):
                done += 1
            else:
                errors[response.code] += 1
            i += concurrency

    began = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - began
    http.close()
    return done / elapsed, errors, latencies


def wrk_throughput(url: str, headers: dict, body: bytes, seconds: float, concurrency: int):
    """Sustained rate measured by wrk (C, epoll) when it is installed: unlike the Python client it
    does not eat the CPU the server needs on a small machine. (rate of 2xx answers, errors)"""
    if not shutil.which("wrk"):
        return None, None
    script = Path(f"/tmp/bench-intake-wrk-{os.getpid()}.lua")
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body.decode())}"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "--timeout", "30s",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    script.unlink(missing_ok=True)
    total = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", out).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    ok_rate = rate * (total - errors) / total if total else 0.0
    return ok_rate, (errors, socket_errors.group(1) if socket_errors else "")


async def open_loop(url: str, headers: dict, bodies: list[bytes], seconds: float, rate: float):
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=1000)
    latencies, errors, tasks = [], Counter(), []

    async def one(body: bytes):
        start = time.perf_counter()
        response = await http.fetch(url, method="POST", body=body, headers=headers, raise_error=False,
                                    request_timeout=120)
        latencies.append(time.perf_counter() - start)
        if response.code not in (200, 201):
            errors[response.code] += 1

    began = time.perf_counter()
    for i in range(int(seconds * rate)):
        # Send on schedule whatever the previous requests are doing (no coordinated omission).
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(bodies[i % len(bodies)])))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    http.close()
    return latencies, errors, (len(latencies) - sum(errors.values())) / elapsed


async def measure(name: str, port: int, token: str | None, bodies, args) -> dict:
    url = f"http://127.0.0.1:{port}/api/reports"
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    await closed_loop(url, headers, bodies, 1.0, 8)  # warm-up
    throughput, errors, _ = await closed_loop(url, headers, bodies, args.seconds, args.concurrency)
    by_wrk, wrk_errors = wrk_throughput(url, headers, bodies[0], args.seconds, args.concurrency)
    result = {"name": name, "wrk": by_wrk, "wrk_errors": wrk_errors, "python": throughput,
              "python_errors": dict(errors), "rates": {}}
    if by_wrk is not None:
        print(f"{name:>34}: {by_wrk:8.0f} req/s sustained by wrk ({args.concurrency} connections), "
              f"errors {wrk_errors}", flush=True)
    print(f"{name:>34}: {throughput:8.0f} req/s sustained, Python client ({args.concurrency} concurrent), "
          f"errors {dict(errors)}", flush=True)
    for rate in args.rates:
        latencies, rate_errors, done = await open_loop(url, headers, bodies, args.open_seconds, rate)
        result["rates"][rate] = {"p50_ms": percentile(latencies, 50) * 1000,
                                 "p99_ms": percentile(latencies, 99) * 1000,
                                 "done_per_s": done, "errors": dict(rate_errors)}
        print(f"{name:>34}: offered {rate:.0f}/s → completed {done:.0f}/s, p50 "
              f"{result['rates'][rate]['p50_ms']:.1f} ms, p99 {result['rates'][rate]['p99_ms']:.1f} ms, "
              f"errors {dict(rate_errors)}", flush=True)
    return result


def start(cmd: list[str], log: str) -> subprocess.Popen:
    """A server process; its output goes to `log` (read it if the server does not start)."""
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def stop(processes: list[subprocess.Popen], grace: float = 20) -> None:
    """Stop what `start` started, last first: terminate, then kill what outlives `grace` seconds."""
    for process in reversed(processes):
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()


# --------------------------------------------------------------------------------------------
# Server baselines: raw PyMongo inserts, and the commands one intake costs
# --------------------------------------------------------------------------------------------


async def raw_inserts(uri: str, template: dict, seconds: float, concurrency: int) -> dict:
    """`insert_one` of `template` (fresh _id each) on the same server: sequential, then with
    `concurrency` in flight; into a bare collection and into one with the case indexes."""
    from bson import ObjectId
    from pymongo import AsyncMongoClient

    from dispatch.store.mongo import CASE_INDEXES

    client = AsyncMongoClient(uri, tz_aware=True)
    db = client[f"bench_raw_{os.getpid()}"]
    template = {k: v for k, v in template.items() if k != "_id"}
    out = {}
    try:
        for label, indexes in (("no index", []), ("case indexes", CASE_INDEXES)):
            collection = db[f"cases_{len(indexes)}"]
            if indexes:
                await collection.create_indexes(indexes)
            serial = 0

            def doc():
                nonlocal serial
                serial += 1
                # The unique fields must differ, as two cases' do.
                return {**template, "_id": str(ObjectId()), "number": f"raw-{serial}",
                        "client_key": f"raw:{serial}"}

            latencies = []
            stop_at = time.perf_counter() + seconds / 2
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                await collection.insert_one(doc())
                latencies.append(time.perf_counter() - t0)
            done = 0

            async def worker():
                nonlocal done
                while time.perf_counter() < stop_at:
                    await collection.insert_one(doc())
                    done += 1

            stop_at = time.perf_counter() + seconds
            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            parallel = done / (time.perf_counter() - began)
            out[label] = {"serial_per_s": len(latencies) / (seconds / 2),
                          "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
                          "parallel_per_s": parallel}
            print(f"{'raw insert_one, ' + label:>34}: sequential {out[label]['serial_per_s']:.0f}/s "
                  f"(p50 {out[label]['p50_ms']:.2f} ms, p99 {out[label]['p99_ms']:.2f} ms); "
                  f"{concurrency} in flight {parallel:.0f}/s", flush=True)
    finally:
        await client.drop_database(db.name)
        await client.close()
    return out


async def count_trips(uri: str, bodies: list[bytes], n: int, concurrency: int) -> dict:
    """The database commands one `POST /api/reports` costs, counted in this process."""
    from pymongo import monitoring

    from dispatch.app import make_app
    from dispatch.config import load_config
    from server import http_server

    class Listener(monitoring.CommandListener):
        def __init__(self):
            self.seen: Counter = Counter()
            self.micros: Counter = Counter()
            self.names: dict = {}

        def started(self, event):
            target = event.command.get(event.command_name)
            name = f"{event.command_name} {target}" if isinstance(target, str) else event.command_name
            self.seen[name] += 1
            self.names[event.request_id] = name

        def succeeded(self, event):
            self.micros[self.names.pop(event.request_id, event.command_name)] += event.duration_micros

        def failed(self, event):
            self.micros[self.names.pop(event.request_id, event.command_name)] += event.duration_micros

    listener = Listener()
    monitoring.register(listener)  # every client made from now on reports to it
    config = load_config(None, ["scheduler.enabled=false", "auth.allow_demo_passwords=true",
                                f"auth.secret={SECRET}", f"storage.uri={uri}",
                                f"storage.database=bench_trips_{os.getpid()}"])
    app = await make_app(config)
    server = http_server(app, config)
    port = free_port()
    server.listen(port, "127.0.0.1")
    try:
        token = await login(port)
        http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        url = f"http://127.0.0.1:{port}/api/reports"
        for body in bodies[:5]:  # warm-up (the token's revocation check is cached after the first)
            await http.fetch(url, method="POST", body=body, headers=headers)
        before, before_micros = Counter(listener.seen), Counter(listener.micros)
        began = time.perf_counter()
        for body in bodies[5:5 + n]:
            await http.fetch(url, method="POST", body=body, headers=headers)
        wall_ms = (time.perf_counter() - began) * 1000 / n
        spent, micros = listener.seen - before, listener.micros - before_micros
        # The same with `concurrency` reports in flight: claims can collide.
        before = Counter(listener.seen)
        pool = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=concurrency)
        await asyncio.gather(*(pool.fetch(url, method="POST", body=body, headers=headers, request_timeout=120)
                               for body in bodies[5 + n:5 + 2 * n]))
        pool.close()
        contended = listener.seen - before
        http.close()
    finally:
        server.stop()
        await app.ctx.storage.drop()
        await app.ctx.storage.close()
    per = {name: count / n for name, count in sorted(spent.items())}
    ms = {name: micros[name] / 1000 / max(1, spent[name]) for name in per}
    total = sum(per.values())
    print(f"{'commands per intake':>34}: {total:.2f} — "
          + ", ".join(f"{k} ×{v:.2f} ({ms[k]:.1f} ms each)" for k, v in per.items())
          + f"; one sequential intake {wall_ms:.1f} ms wall, of which database "
          + f"{sum(micros.values()) / 1000 / n:.1f} ms", flush=True)
    print(f"{'commands per intake, ' + str(concurrency) + ' in flight':>34}: "
          f"{sum(contended.values()) / n:.2f} — "
          + ", ".join(f"{k} ×{v / n:.2f}" for k, v in sorted(contended.items())), flush=True)
    return {"total": total, "by_command": per, "ms": ms}


async def stored_case(uri: str, database: str) -> dict:
    from pymongo import AsyncMongoClient

    client = AsyncMongoClient(uri, tz_aware=True)
    try:
        return await client[database]["cases"].find_one({})
    finally:
        await client.close()


async def drop_database(uri: str, database: str) -> None:
    from pymongo import AsyncMongoClient

    client = AsyncMongoClient(uri)
    try:
        await client.drop_database(database)
    finally:
        await client.close()


# --------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", default="embedded", help="embedded (default) or a mongodb:// URI")
    parser.add_argument("--seconds", type=float, default=8, help="length of each measurement")
    parser.add_argument("--open-seconds", type=float, help="length of each fixed-rate run (default: --seconds)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rates", default="50,200", help="offered rates for the latency runs (comma-separated)")
    parser.add_argument("--trips", type=int, default=100, help="reports sent to count database commands")
    args = parser.parse_args(argv)
    args.rates = [float(r) for r in args.rates.split(",") if r]
    args.open_seconds = args.open_seconds or args.seconds
    return args


async def main() -> None:
    args = parse_args()
    server_engine = args.uri not in ("", "embedded")
    database = f"bench_intake_{os.getpid()}"
    bodies = report_bodies(5000)
    print(f"machine: {machine()}; store {args.uri}; load generator in this process, servers in their own, "
          f"loopback", flush=True)
    real_port, bare_port = free_port(), free_port()
    real = start([PYTHON, "server.py", "--port", str(real_port), "--set", "scheduler.enabled=false",
                  "--set", "auth.allow_demo_passwords=true", "--set", f"auth.secret={SECRET}",
                  "--set", f"storage.uri={args.uri}", "--set", f"storage.database={database}"],
                 f"/tmp/bench-intake-server-{os.getpid()}.log")
    bare = start([PYTHON, "-c", BARE_SERVER, str(bare_port)], f"/tmp/bench-intake-bare-{os.getpid()}.log")
    try:
        wait_port(real_port)
        wait_port(bare_port)
        bare_result = await measure("bare Tornado JSON handler", bare_port, None, bodies, args)
        real_result = await measure(f"POST /api/reports ({args.uri})", real_port, await login(real_port),
                                    bodies, args)
        raw = None
        if server_engine:
            real.terminate()
            real.wait(timeout=10)
            template = await stored_case(args.uri, database)
            raw = await raw_inserts(args.uri, template, args.seconds, args.concurrency)
        for label, key in (("wrk", "wrk"), ("Python client", "python")):
            if real_result[key] is not None and bare_result[key]:
                print(f"ratio intake / bare Tornado, {label}: {real_result[key] / bare_result[key]:.2f}")
        if raw:
            for label, figures in raw.items():
                print(f"ratio intake (wrk) / raw insert_one {label}, {args.concurrency} in flight: "
                      f"{(real_result['wrk'] or real_result['python']) / figures['parallel_per_s']:.2f}")
        if server_engine:
            await count_trips(args.uri, bodies, args.trips, args.concurrency)
    finally:
        for process in (real, bare):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        if server_engine:
            await drop_database(args.uri, database)


if __name__ == "__main__":
    asyncio.run(main())

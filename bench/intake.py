"""HTTP intake benchmark: grid reports per second on one server process, embedded store.

    .venv/bin/python bench/intake.py [--seconds 10] [--concurrency 64] [--rate 200]

Starts two servers as separate processes on loopback: the real one (`server.py`, demo city,
embedded store, scheduler off) and a bare Tornado app whose handler parses the same JSON body
and answers 201 with a small JSON document — the baseline of what one Tornado process can do
on this machine. The load generator runs in this process. For each server it measures:

* sustained throughput: a closed loop with N concurrent requests for S seconds;
* latency at a fixed rate (open loop, default 200 requests/s): p50 / p99.

and prints the ratio real / bare (SPEC §6: ≥ 1,000 reports/s sustained, p99 < 50 ms at 200/s).
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
import statistics
import subprocess
import sys
import time
from pathlib import Path

import tornado.httpclient

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

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
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def report_bodies(n: int) -> list[bytes]:
    """Reports at random points inside grid01's community (its scope), common categories."""
    sys.path.insert(0, str(ROOT))
    from geo.loader import load_city

    city = load_city(ROOT / "data" / "cities" / "hangzhou-demo")
    worker = next(u for u in city.users if u["username"] == "grid01")
    area = city.jurisdictions[str(worker["scope"])].geometry
    minx, miny, maxx, maxy = area.bounds
    codes = [c.code for c in city.categories.values() if c.kind in ("event", "component")][:12]
    rng = random.Random(7)
    from shapely import Point

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
        f"http://127.0.0.1:{port}/api/login", method="POST",
        body=json.dumps({"username": "grid01", "password": "demo-grid_worker-2026"}),
    )
    return json.loads(response.body)["token"]


async def closed_loop(url: str, headers: dict, bodies: list[bytes], seconds: float, concurrency: int):
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=concurrency)
    done, errors, latencies = 0, 0, []
    stop_at = time.perf_counter() + seconds

    async def worker(offset: int):
        nonlocal done, errors
        i = offset
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            response = await http.fetch(url, method="POST", body=bodies[i % len(bodies)], headers=headers,
                                        raise_error=False)
            latencies.append(time.perf_counter() - start)
            if response.code in (200, 201):
                done += 1
            else:
                errors += 1
            i += concurrency

    began = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - began
    return done / elapsed, errors, latencies


def wrk_throughput(url: str, headers: dict, body: bytes, seconds: float, concurrency: int) -> float | None:
    """Sustained rate measured by wrk (C, epoll) when it is installed: unlike the Python client it
    does not eat the CPU the server needs on a small machine."""
    if not shutil.which("wrk"):
        return None
    script = Path("/tmp/bench-intake-wrk.lua")
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body.decode())}"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise RuntimeError(f"wrk saw {non_2xx.group(1)} error responses:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


async def open_loop(url: str, headers: dict, bodies: list[bytes], seconds: float, rate: float):
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=500)
    latencies, errors, tasks = [], 0, []

    async def one(body: bytes):
        nonlocal errors
        start = time.perf_counter()
        response = await http.fetch(url, method="POST", body=body, headers=headers, raise_error=False)
        latencies.append(time.perf_counter() - start)
        if response.code not in (200, 201):
            errors += 1

    began = time.perf_counter()
    for i in range(int(seconds * rate)):
        # Send on schedule whatever the previous requests are doing (no coordinated omission).
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(bodies[i % len(bodies)])))
    await asyncio.gather(*tasks)
    return latencies, errors


async def measure(name: str, port: int, token: str | None, bodies, args) -> dict:
    url = f"http://127.0.0.1:{port}/api/reports"
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    await closed_loop(url, headers, bodies, 1.0, 8)  # warm-up
    throughput, errors, _ = await closed_loop(url, headers, bodies, args.seconds, args.concurrency)
    by_wrk = wrk_throughput(url, headers, bodies[0], args.seconds, args.concurrency)
    latencies, rate_errors = await open_loop(url, headers, bodies, args.seconds, args.rate)
    result = {
        "name": name,
        "throughput": by_wrk or throughput,
        "python_client_throughput": throughput,
        "errors": errors + rate_errors,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }
    if by_wrk:
        print(f"{name:>28}: {by_wrk:8.0f} req/s sustained by wrk ({args.concurrency} connections); "
              f"{throughput:.0f} req/s with the Python client")
    print(f"{name:>28}: {throughput:8.0f} req/s sustained, Python client ({args.concurrency} concurrent), "
          f"at {args.rate:.0f}/s p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
          f"errors {result['errors']}")
    return result


def start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=200)
    args = parser.parse_args()

    bodies = report_bodies(5000)
    real_port, bare_port = free_port(), free_port()
    real = start([PYTHON, "server.py", "--port", str(real_port), "--set", "scheduler.enabled=false",
                  "--set", "auth.login_rate_limit=false"])
    bare = start([PYTHON, "-c", BARE_SERVER, str(bare_port)])
    try:
        wait_port(real_port)
        wait_port(bare_port)
        print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
              f"Python {platform.python_version()}; load generator in a separate process on loopback")
        bare_result = await measure("bare Tornado JSON handler", bare_port, None, bodies, args)
        real_result = await measure("POST /api/reports (real)", real_port, await login(real_port), bodies, args)
        print(f"ratio real/bare: throughput {real_result['throughput'] / bare_result['throughput']:.2f}, "
              f"p99 at {args.rate:.0f}/s {real_result['p99_ms'] / bare_result['p99_ms']:.1f}x")
        print(f"SPEC §6 targets: ≥ 1000 reports/s sustained → "
              f"{'met' if real_result['throughput'] >= 1000 else 'NOT met'}; p99 < 50 ms at 200/s → "
              f"{'met' if real_result['p99_ms'] < 50 else 'NOT met'}")
    finally:
        for process in (real, bare):
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())

"""Live-map fan-out benchmark: how fast one case change reaches 1,000 WebSocket clients.

    .venv/bin/python bench/live.py [--clients 1000] [--changes 20]

Starts the server (demo city, embedded store) as a separate process, opens N WebSocket
connections to /ws/live as the city-wide dispatcher from a few client processes, then creates
cases one at a time and, for each, measures the delay (wall clock, shared by the processes)
from sending the report to each client receiving its `case.created` event. Prints p50/p99/max over all deliveries (SPEC §6: p99 < 250 ms at 1,000 clients), next to
the baseline of the same fan-out with no clients but one (the intake round trip itself).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path

import tornado.httpclient
import tornado.websocket

sys.path.insert(0, str(Path(__file__).resolve().parent))
from intake import PYTHON, ROOT, free_port, percentile, report_bodies, start, wait_port  # noqa: E402


async def login(port: int, username: str, password: str) -> str:
    http = tornado.httpclient.AsyncHTTPClient()
    response = await http.fetch(f"http://127.0.0.1:{port}/api/login", method="POST",
                                body=json.dumps({"username": username, "password": password}))
    return json.loads(response.body)["token"]


def listener(port: int, token: str, count: int, expected: int, ready, results) -> None:
    """One client process: `count` sockets; records when each case event arrives (wall clock,
    comparable across processes)."""

    async def go():
        def request():  # one object per connection: the client writes its handshake key into it
            return tornado.httpclient.HTTPRequest(f"ws://127.0.0.1:{port}/ws/live",
                                                  headers={"Authorization": f"Bearer {token}"})

        sockets = []
        for batch in range(0, count, 100):
            sockets += await asyncio.gather(*(tornado.websocket.websocket_connect(request())
                                              for _ in range(min(100, count - batch))))
        for ws in sockets:
            assert json.loads(await ws.read_message())["type"] == "hello"
        ready.put(count)
        arrivals: list[tuple[str, float]] = []

        async def drain(ws):
            for _ in range(expected):
                message = json.loads(await ws.read_message())
                arrivals.append((message["case"]["id"], time.time()))

        await asyncio.gather(*(drain(ws) for ws in sockets))
        results.put(arrivals)
        for ws in sockets:
            ws.close()

    asyncio.run(go())


async def run(port: int, clients: int, changes: int, bodies, processes: int) -> list[float]:
    viewer = await login(port, "dispatcher01", "demo-dispatcher-2026")
    reporter = await login(port, "grid01", "demo-grid_worker-2026")
    ready, results = multiprocessing.Queue(), multiprocessing.Queue()
    shares = [clients // processes + (1 if k < clients % processes else 0) for k in range(processes)]
    workers = [multiprocessing.Process(target=listener, args=(port, viewer, n, changes, ready, results))
               for n in shares if n]
    for worker in workers:
        worker.start()
    for _ in workers:
        await asyncio.get_running_loop().run_in_executor(None, ready.get)

    http = tornado.httpclient.AsyncHTTPClient()
    sent: dict[str, float] = {}
    for i in range(changes):
        at = time.time()
        response = await http.fetch(f"http://127.0.0.1:{port}/api/reports", method="POST", body=bodies[i],
                                    headers={"Authorization": f"Bearer {reporter}"})
        sent[json.loads(response.body)["id"]] = at
        await asyncio.sleep(0.2)  # one change at a time: measure fan-out, not a backlog
    delays: list[float] = []
    for _ in workers:
        arrivals = await asyncio.get_running_loop().run_in_executor(None, results.get)
        delays += [arrived - sent[case_id] for case_id, arrived in arrivals]
    for worker in workers:
        worker.join()
    return delays


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2, help="client processes sharing the sockets")
    args = parser.parse_args()
    bodies = report_bodies(args.changes * 2)
    port = free_port()
    server = start([PYTHON, "server.py", "--port", str(port), "--set", "scheduler.enabled=false"])
    try:
        wait_port(port)
        print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
              f"{args.processes} client processes on loopback")
        base = await run(port, 1, args.changes, bodies, 1)
        print(f"{'baseline (1 client)':>22}: p50 {percentile(base, 50) * 1000:6.1f} ms, "
              f"p99 {percentile(base, 99) * 1000:6.1f} ms")
        delays = await run(port, args.clients, args.changes, bodies[args.changes:], args.processes)
        p99 = percentile(delays, 99) * 1000
        print(f"{f'{args.clients} clients':>22}: p50 {percentile(delays, 50) * 1000:6.1f} ms, p99 {p99:6.1f} ms, "
              f"max {max(delays) * 1000:6.1f} ms over {len(delays)} deliveries")
        print(f"ratio p99 {args.clients} clients / 1 client: {p99 / (percentile(base, 99) * 1000):.1f}x; "
              f"SPEC §6 target p99 < 250 ms → {'met' if p99 < 250 else 'NOT met'}")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())

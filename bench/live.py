"""Live-map fan-out benchmark: how fast one case change reaches 1,000 WebSocket clients.

    .venv/bin/python bench/live.py [--clients 1000] [--changes 20]

Starts the server (demo city, embedded store) as a separate process, opens N WebSocket
connections to /ws/live as the city-wide dispatcher, then creates cases one at a time and, for
each, measures the delay from sending the report to each client receiving its `case.created`
event. Prints p50/p99/max over all deliveries (SPEC §6: p99 < 250 ms at 1,000 clients), next to
the baseline of the same fan-out with no clients but one (the intake round trip itself).
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


async def run(port: int, clients: int, changes: int, bodies) -> list[float]:
    viewer = await login(port, "dispatcher01", "demo-dispatcher-2026")
    reporter = await login(port, "grid01", "demo-grid_worker-2026")

    def request():  # one object per connection: the client writes its handshake key into it
        return tornado.httpclient.HTTPRequest(f"ws://127.0.0.1:{port}/ws/live",
                                              headers={"Authorization": f"Bearer {viewer}"})

    sockets = []
    for batch in range(0, clients, 100):
        sockets += await asyncio.gather(*(tornado.websocket.websocket_connect(request())
                                          for _ in range(min(100, clients - batch))))
    for ws in sockets:
        assert json.loads(await ws.read_message())["type"] == "hello"

    http = tornado.httpclient.AsyncHTTPClient()
    delays: list[float] = []
    for i in range(changes):
        sent = time.perf_counter()
        response = await http.fetch(f"http://127.0.0.1:{port}/api/reports", method="POST", body=bodies[i],
                                    headers={"Authorization": f"Bearer {reporter}"})
        case_id = json.loads(response.body)["id"]

        async def receive(ws):
            while True:
                message = json.loads(await ws.read_message())
                if message.get("case", {}).get("id") == case_id:
                    return time.perf_counter() - sent

        delays += await asyncio.gather(*(receive(ws) for ws in sockets))
        await asyncio.sleep(0.05)
    for ws in sockets:
        ws.close()
    return delays


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    bodies = report_bodies(args.changes * 2)
    port = free_port()
    server = start([PYTHON, "server.py", "--port", str(port), "--set", "scheduler.enabled=false"])
    try:
        wait_port(port)
        print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
              f"clients in a separate process on loopback")
        base = await run(port, 1, args.changes, bodies)
        print(f"{'baseline (1 client)':>22}: p50 {percentile(base, 50) * 1000:6.1f} ms, "
              f"p99 {percentile(base, 99) * 1000:6.1f} ms")
        delays = await run(port, args.clients, args.changes, bodies[args.changes:])
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

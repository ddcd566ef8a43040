"""Live-map fan-out benchmark: how fast one case change reaches N WebSocket clients.

    .venv/bin/python bench/live.py [--clients 1000] [--changes 20] [--processes 2]
    .venv/bin/python bench/live.py --servers 2 --clients 10000 --processes 4 [--changes 20] [--gap 1]

One server (default): `server.py` on the embedded store, in its own process. Opens N WebSocket
connections to /ws/live as the city-wide dispatcher from `--processes` client processes, then
creates cases one at a time and, for each, measures the delay (wall clock, shared by the
processes) from sending the report to each client receiving its `case.created` event. Prints
p50/p99/max over all deliveries (SPEC §6: p99 < 250 ms at 1,000 clients), next to the baseline
of the same fan-out with one client (the intake round trip itself).

`--servers 2` (issue 11 part 8: 10,000 clients on two processes, p99 < 500 ms): two
`server.py` processes on one FerretDB database. The bench starts its own FerretDB 1.24
(`$DEVDB_FERRETDB`) on the PostgreSQL of `$DEVDB_POSTGRESQL_URL`, in a database of its own
(`--pg-database`, dropped at the end), like bench/scale.py. The client processes connect
straight to the two ports, half the sockets each (no nginx: a proxy would add its own hop, not
the fan-out measured here); reports are posted alternately to each process, so half the
changes reach a client through the other process (its log tail, dispatch/live/tail.py). The
delay is reported for "same process" (the client's server wrote the change) and "other
process" deliveries, and overall. The server's per-user and per-address socket caps are raised
for the run with `--set`. Memory per idle client: each server's RSS (VmRSS) before the clients
connect and once they all are connected and idle, (after − before) / its clients.

Prints Markdown tables; docs/PERFORMANCE.md quotes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import tornado.httpclient
import tornado.websocket

sys.path.insert(0, str(Path(__file__).resolve().parent))
from intake import PYTHON, SECRET, free_port, machine, percentile, report_bodies, start, stop, wait_port  # noqa: E402
from scale import pg_url, psql, rss_mb, start_ferretdb  # noqa: E402

CREATED = '"type":"case.created"'  # the hub's compact JSON: matched without parsing every frame


async def login(port: int, username: str, password: str) -> str:
    http = tornado.httpclient.AsyncHTTPClient()
    response = await http.fetch(f"http://127.0.0.1:{port}/api/login", method="POST",
                                headers={"Content-Type": "application/json"},
                                body=json.dumps({"username": username, "password": password}))
    return json.loads(response.body)["token"]


def listener(port: int, token: str, count: int, expected: int, batch: int, timeout: float, ready, results) -> None:
    """One client process: `count` sockets to one server; records when each `case.created`
    arrives (wall clock, comparable across processes). Frames are parsed after the run, so a
    socket's receipt time does not wait for the parsing of the frames before it."""

    async def go():
        def request():  # one object per connection: the client writes its handshake key into it
            return tornado.httpclient.HTTPRequest(f"ws://127.0.0.1:{port}/ws/live", connect_timeout=120,
                                                  request_timeout=120,
                                                  headers={"Authorization": f"Bearer {token}"})

        async def connect():
            for attempt in range(5):
                try:
                    return await tornado.websocket.websocket_connect(request())
                except (OSError, tornado.httpclient.HTTPClientError):
                    if attempt == 4:
                        raise
                    await asyncio.sleep(1 + attempt)

        sockets = []
        for start_at in range(0, count, batch):
            sockets += await asyncio.gather(*(connect() for _ in range(min(batch, count - start_at))))
        for ws in sockets:
            hello = json.loads(await ws.read_message())
            assert hello["type"] == "hello", hello
        ready.put(count)
        arrivals: list[tuple[str, float]] = []

        async def drain(ws):
            seen = 0
            while seen < expected:
                message = await ws.read_message()
                if message is None:
                    return
                if CREATED in message:
                    arrivals.append((message, time.time()))
                    seen += 1

        try:
            await asyncio.wait_for(asyncio.gather(*(drain(ws) for ws in sockets)), timeout)
        except asyncio.TimeoutError:
            pass  # counted as missing deliveries by the caller
        results.put((port, [(json.loads(m)["case"]["id"], at) for m, at in arrivals]))
        for ws in sockets:
            ws.close()

    asyncio.run(go())


async def run(ports: list[int], clients: int, changes: int, bodies, processes: int, batch: int, gap: float,
              when_idle=None) -> dict:
    """`clients` sockets over `processes` client processes, each process on one server port (in
    turn); `changes` reports posted to the ports in turn. Returns the delays (s) of the
    deliveries by kind ("all", "same", "other") and the number expected."""
    viewer = await login(ports[0], "dispatcher01", "demo-dispatcher-2026")
    reporter = await login(ports[0], "grid01", "demo-grid_worker-2026")  # one secret: valid on every port
    ready, results = multiprocessing.Queue(), multiprocessing.Queue()
    shares = [clients // processes + (1 if k < clients % processes else 0) for k in range(processes)]
    timeout = changes * gap + 120
    workers = [multiprocessing.Process(target=listener, args=(ports[k % len(ports)], viewer, n, changes, batch,
                                                              timeout, ready, results))
               for k, n in enumerate(shares) if n]
    loop = asyncio.get_running_loop()
    for worker in workers:
        worker.start()
    for _ in workers:
        await loop.run_in_executor(None, ready.get)
    if when_idle is not None:
        await when_idle()

    http = tornado.httpclient.AsyncHTTPClient()
    sent: dict[str, tuple[float, int]] = {}
    posts: list[float] = []  # the report's round trip: the part of each delay before the fan-out
    for i in range(changes):
        port = ports[i % len(ports)]
        at = time.time()
        response = await http.fetch(f"http://127.0.0.1:{port}/api/reports", method="POST", body=bodies[i],
                                    headers={"Authorization": f"Bearer {reporter}", "Content-Type": "application/json"},
                                    request_timeout=60)
        sent[json.loads(response.body)["id"]] = (at, port)
        posts.append(time.time() - at)
        await asyncio.sleep(gap)  # one change at a time: measure fan-out, not a backlog
    delays: dict[str, list[float]] = {"all": [], "same": [], "other": []}
    for _ in workers:
        port, arrivals = await loop.run_in_executor(None, results.get)
        for case_id, arrived in arrivals:
            if case_id not in sent:
                continue  # a change from before this run
            at, written_on = sent[case_id]
            delays["all"].append(arrived - at)
            delays["same" if written_on == port else "other"].append(arrived - at)
    for worker in workers:
        worker.join()
    return {"delays": delays, "expected": clients * changes, "posts": posts}


def ms(values: list[float], p: float) -> str:
    return f"{percentile(values, p) * 1000:,.1f}" if values else "—"


def table(rows: list[tuple[str, dict]], kinds: list[str]) -> None:
    print("| clients | deliveries | p50 ms | p99 ms | max ms |")
    print("| --- | --- | --- | --- | --- |")
    for label, result in rows:
        for kind in kinds:
            values = result["delays"][kind]
            count = f"{len(values):,}"
            if kind == "all":
                missing = result["expected"] - len(values)
                count += f" of {result['expected']:,}" if missing else ""
            name = label if kind == "all" else f"{label}, {kind} process"
            top = f"{max(values) * 1000:,.1f}" if values else "—"
            print(f"| {name} | {count} | {ms(values, 50)} | {ms(values, 99)} | {top} |")
        posts = result["posts"]
        print(f"| {label}: the report's POST round trip | {len(posts)} | {ms(posts, 50)} | {ms(posts, 99)} | "
              f"{max(posts) * 1000:,.1f} |")


def raise_open_files(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = hard if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        raise SystemExit(f"open files limit {soft} < {needed} needed by one process")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2, help="client processes sharing the sockets")
    parser.add_argument("--servers", type=int, default=1, help="1: embedded store; more: that many on FerretDB")
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between two changes")
    parser.add_argument("--batch", type=int, default=100, help="handshakes at once per client process")
    parser.add_argument("--pg-database", default="bench_live")
    args = parser.parse_args()
    if args.processes % args.servers:
        parser.error("--processes must be a multiple of --servers (each client process talks to one server)")
    per_server = -(-args.clients // args.servers)
    # Each process holds its sockets plus a margin (files, the database, the log).
    raise_open_files(max(per_server, -(-args.clients // args.processes)) + 200)
    bodies = report_bodies(args.changes * 2)
    load = os.getloadavg()
    print(f"# bench/live.py: {args.clients:,} clients, {args.servers} server process(es), "
          f"{args.processes} client processes, {args.changes} changes {args.gap} s apart\n")
    print(f"machine: {machine()} (1/5/15-min load {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start)\n",
          flush=True)
    caps = str(per_server + 100)
    common = ["--set", "scheduler.enabled=false", "--set", "auth.allow_demo_passwords=true",
              "--set", f"auth.secret={SECRET}", "--set", f"server.live_sockets_per_user={caps}",
              "--set", f"server.live_sockets_per_address={caps}"]
    processes: list[subprocess.Popen] = []
    try:
        if args.servers > 1:
            pg_base = os.environ["DEVDB_POSTGRESQL_URL"]
            ferret, fport = start_ferretdb(os.environ["DEVDB_FERRETDB"], pg_base, args.pg_database, False)
            processes.append(ferret)
            common += ["--set", f"storage.uri=mongodb://127.0.0.1:{fport}/", "--set", "storage.database=live"]
        ports = [free_port() for _ in range(args.servers)]
        servers = [start([PYTHON, "server.py", "--port", str(port), *common], f"/tmp/bench-live-server-{port}.log")
                   for port in ports]
        processes += servers
        for port in ports:
            wait_port(port, 120)

        base = await run(ports, len(ports), args.changes, bodies, len(ports), args.batch, args.gap)
        rss: dict[str, list[float]] = {"before": [rss_mb(s.pid) for s in servers]}

        async def when_idle():
            await asyncio.sleep(5)  # handshakes done, buffers settled
            rss["after"] = [rss_mb(s.pid) for s in servers]

        many = await run(ports, args.clients, args.changes, bodies[args.changes:], args.processes, args.batch,
                         args.gap, when_idle)
        kinds = ["all", "same", "other"] if args.servers > 1 else ["all"]
        table([(f"baseline, 1 client per server ({len(ports)})", base), (f"{args.clients:,} clients", many)], kinds)
        p99, p99_base = percentile(many["delays"]["all"], 99) * 1000, percentile(base["delays"]["all"], 99) * 1000
        bar = 500 if args.servers > 1 else 250
        print(f"\nratio p99 {args.clients:,} clients / baseline: {p99 / p99_base:.1f}x; "
              f"target p99 < {bar} ms → {'met' if p99 < bar else 'NOT met'}\n")
        print("| server process | clients | RSS before MB | RSS idle with clients MB | KB per idle client |")
        print("| --- | --- | --- | --- | --- |")
        for k, (before, after) in enumerate(zip(rss["before"], rss["after"])):
            share = sum(args.clients // args.processes + (1 if j < args.clients % args.processes else 0)
                        for j in range(args.processes) if j % args.servers == k)
            print(f"| {k + 1} (port {ports[k]}) | {share:,} | {before:,.1f} | {after:,.1f} | "
                  f"{(after - before) * 1024 / share:,.1f} |")
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        stop(processes, 30)
        if args.servers > 1:
            psql(pg_url(os.environ["DEVDB_POSTGRESQL_URL"], "postgres"), f'DROP DATABASE IF EXISTS "{args.pg_database}"')


if __name__ == "__main__":
    asyncio.run(main())

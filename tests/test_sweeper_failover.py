"""Exactly one sweeper, with failover (SPEC §7, issue 11 part 5): two server processes on one
FerretDB database run the scheduler; one holds the lease and sweeps. SIGKILL it and the other
takes the lease when it lapses and sweeps on, and no threshold is recorded twice."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from pymongo import AsyncMongoClient

from engines import new_database_name, server_uri
from small_city import write_small_city
from support import ROOT, start_server
from test_durability import SECRET, Http, ServerProcess, poll
from test_sweep import dispatched_case, local, stored, system_actions

LEASE_SECONDS = 4
SWEEP_SECONDS = 1
# The machine is shared and may be loaded: beyond lease + one interval, this much is tolerated
# for the new leader's process to get its turn.
GRACE_SECONDS = 15
THRESHOLDS = ["warn", "overdue", "supervise", "escalate"]


class SweepingServer(ServerProcess):
    """`python server.py` on the small city with the scheduler on, a short lease and interval."""

    def __init__(self, uri: str, database: str, city: str):
        super().__init__(uri, database)
        self.city = city

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "server.py", "--port", str(self.port), "--city", self.city,
             "--set", f"storage.uri={self.uri}", "--set", f"storage.database={self.database}",
             "--set", f"auth.secret={SECRET}", "--set", "scheduler.enabled=true",
             "--set", f"scheduler.sweep_seconds={SWEEP_SECONDS}", "--set", f"scheduler.lease_seconds={LEASE_SECONDS}"],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        return Http(f"http://127.0.0.1:{self.port}")


async def lease_holder_pid(leases) -> int | None:
    lease = await leases.find_one({"_id": "scheduler"})
    if lease is None or lease["expires_at"] <= datetime.now(timezone.utc):
        return None
    return int(lease["holder"].split(":")[1])


async def test_killing_the_sweeping_process_hands_the_sweep_over(tmp_path):
    uri, database = server_uri(), new_database_name()
    city = str(write_small_city(tmp_path))
    # This process makes the cases (its own clock pinned in the past: long overdue at once).
    server, client = await start_server(Path(city), f"storage.database={database}", engine="server")
    mongo = AsyncMongoClient(uri, tz_aware=True)
    leases = mongo[database]["leases"]
    processes = [SweepingServer(uri, database, city), SweepingServer(uri, database, city)]
    try:
        for process in processes:
            await process.ready(process.start())

        async def leader_known():
            return await lease_holder_pid(leases) in {p.proc.pid for p in processes}
        await poll(leader_known, 60, 0.2)
        leader_pid = await lease_holder_pid(leases)
        leader = next(p for p in processes if p.proc.pid == leader_pid)
        follower = next(p for p in processes if p is not leader)

        first = await dispatched_case(client, local("2026-01-05 09:00"))

        async def swept(case_id):
            return system_actions(await stored(client.ctx, case_id)) == THRESHOLDS
        await poll(lambda: swept(first), 60, 0.2)

        leader.kill()
        killed_at = time.monotonic()
        second = await dispatched_case(client, local("2026-01-05 09:00"), "另一处河面漂浮物")
        await poll(lambda: swept(second), LEASE_SECONDS + SWEEP_SECONDS + GRACE_SECONDS, 0.1)
        took = time.monotonic() - killed_at
        print(f"failover: the second process swept {took:.1f} s after the SIGKILL "
              f"(lease {LEASE_SECONDS} s, interval {SWEEP_SECONDS} s)")
        assert await lease_holder_pid(leases) == follower.proc.pid

        # Two more sweeps by the new leader (each renews the lease with the next term): nothing
        # recorded twice, on either case.
        term = (await leases.find_one({"_id": "scheduler"}))["term"]

        async def swept_twice_more():
            lease = await leases.find_one({"_id": "scheduler"})
            return lease["term"] >= term + 2 and lease["holder"].split(":")[1] == str(follower.proc.pid)
        await poll(swept_twice_more, 30, 0.2)
        for case_id in (first, second):
            assert system_actions(await stored(client.ctx, case_id)) == THRESHOLDS
    finally:
        for process in processes:
            process.stop()
        await mongo.close()
        server.stop()
        await client.ctx.storage.close()


"""What only a real database server can show, proven over the wire (FerretDB on PostgreSQL in CI):

* a SIGKILL of the server in the middle of a stream of reports loses nothing it acknowledged,
  stores nothing twice, and a replay by `client_id` returns the original case;
* a database outage gives clear 503s within seconds, `/healthz` says so, and the server
  recovers by itself when the database is back, losing nothing acknowledged;
* attachments survive a restart with the cases.

These start processes of their own: the server as `python server.py`, and for the outage a
FerretDB of its own on the shared PostgreSQL (DEVDB_FERRETDB and DEVDB_POSTGRESQL_URL, set by
`scripts/devdb env`), so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

import pytest
import tornado.httpclient
import tornado.iostream

from engines import server_uri, new_database_name
from support import DEMO_CITY, ROOT, Client, loaded_city, login_as, start_server
from test_intake import report_body

SECRET = "durability-test-secret-0123456789abcdef"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
       b"\x00\x00\x00\x0cIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def devdb_env(name: str) -> str:
    value = os.environ.get(name)
    if value:
        return value
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not set: CI must run the database-outage test (eval \"$(scripts/devdb env)\")")
    pytest.skip(f"needs {name}: eval \"$(scripts/devdb env)\"")


async def poll(condition, timeout: float, interval: float = 0.1):
    """Await `condition()` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


class Http(Client):
    """The tests' JSON client, against a server in another process: no answer (the server is
    down or was killed) is (None, None)."""

    def __init__(self, base: str):
        super().__init__(base, app=None)

    async def call(self, method: str, path: str, body=None, raw: bytes | None = None, content_type=None,
                   timeout: float = 20):
        headers = {"Content-Type": content_type} if content_type else None
        try:
            status, payload = await self.request(method, path, body, raw=raw, headers=headers, timeout=timeout)
        except (ConnectionError, OSError, tornado.iostream.StreamClosedError, tornado.httpclient.HTTPClientError):
            return None, None
        return (None, None) if status == 599 else (status, payload)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Child:
    """A child process the test may kill outright (`proc`: its Popen)."""

    proc = None

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


class ServerProcess(Child):
    """`python server.py` on a database of the test's own."""

    def __init__(self, uri: str, database: str):
        self.uri, self.database = uri, database
        self.port = free_port()
        self.proc = None
        self.log = tempfile.TemporaryFile()

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "server.py", "--port", str(self.port),
             "--set", f"storage.uri={self.uri}", "--set", f"storage.database={self.database}",
             "--set", "auth.allow_demo_passwords=true", "--set", f"auth.secret={SECRET}",
             "--set", "scheduler.enabled=false"],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        return Http(f"http://127.0.0.1:{self.port}")

    async def ready(self, http: Http):
        async def up():
            assert self.proc.poll() is None, self.output()
            status, _ = await http.call("GET", "/healthz", timeout=2)
            return status == 200
        await poll(up, 60, 0.2)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]


@pytest.fixture
async def database():
    from pymongo import AsyncMongoClient

    uri, name = server_uri(), new_database_name()
    yield uri, name
    client = AsyncMongoClient(uri)
    await client.drop_database(name)
    await client.close()


async def test_sigkill_mid_stream_loses_no_acknowledged_case(database):
    uri, name = database
    server = ServerProcess(uri, name)
    http = server.start()
    try:
        await server.ready(http)
        clients = []
        for _ in range(2):  # two phones of one grid worker, sending at once
            client = Http(http.base)
            await client.login(*user_of_demo("grid_worker", 0))
            clients.append(client)
        city, _ = loaded_city(str(DEMO_CITY))
        acknowledged: dict[str, tuple[Http, dict, str]] = {}
        photo_status, photo = await clients[0].call("POST", "/api/attachments", raw=PNG, content_type="image/png")
        assert photo_status == 201, photo

        async def stream(client: Http, prefix: str):
            n = 0
            while True:
                n += 1
                client_id = f"{prefix}-{n}"
                body = report_body_for(city, client_id, photos=[photo["id"]] if prefix == "w0" and n == 1 else None)
                status, case = await client.call("POST", "/api/reports", body, timeout=5)
                if status is None:
                    return  # the server is gone
                assert status == 201, case
                acknowledged[client_id] = (client, body, case["id"])

        streams = [asyncio.ensure_future(stream(c, f"w{i}")) for i, c in enumerate(clients)]
        await poll(lambda: _ready_count(acknowledged, 20), 60)
        server.kill()  # SIGKILL: no shutdown, no flush
        await asyncio.gather(*streams)

        http = server.start()
        await server.ready(http)
        for client in clients:
            client.base = http.base  # tokens are signed with the configured secret: still valid
        dispatcher = Http(http.base)
        await dispatcher.login(*user_of_demo("dispatcher", 0))
        seen = []
        path = "/api/cases?limit=500"
        while path:
            status, page = await dispatcher.call("GET", path)
            assert status == 200, page
            seen += [c["id"] for c in page["items"]]
            path = f"/api/cases?limit=500&cursor={page['next']}" if page["next"] else None
        assert len(seen) == len(set(seen))
        assert {case_id for _, _, case_id in acknowledged.values()} <= set(seen)
        for client_id, (client, body, case_id) in acknowledged.items():
            status, again = await client.call("POST", "/api/reports", body)
            assert (status, again["id"]) == (200, case_id), client_id
        status, audit = await dispatcher.call("GET", "/api/audit/verify")
        assert status == 200 and audit["ok"] and audit["checked"] == len(seen), audit
        status, data = await clients[0].call("GET", f"/api/attachments/{photo['id']}")
        assert (status, data) == (200, PNG)
    finally:
        server.stop()


def _ready_count(acknowledged: dict, count: int):
    async def check():
        return len(acknowledged) >= count
    return check()


def user_of_demo(role: str, index: int) -> tuple[str, str]:
    city, _ = loaded_city(str(DEMO_CITY))
    users = [u for u in city.users if u["role"] == role]
    return users[index]["username"], str(users[index]["password"])


def report_body_for(city, client_id: str, photos=None) -> dict:
    body = report_body(SimpleNamespace(city=city), client_id=client_id)
    if photos:
        body["photos"] = photos
    return body


# -- a database outage ------------------------------------------------------------------------


class PrivateFerretDB(Child):
    """A FerretDB of this test's own on the shared PostgreSQL: killing it is an outage for the
    server under test only."""

    def __init__(self, url_parameters: str = ""):
        self.binary = devdb_env("DEVDB_FERRETDB")
        self.postgresql = devdb_env("DEVDB_POSTGRESQL_URL")
        self.url_parameters = url_parameters  # for its `--postgresql-url` (tests/test_tune_ferretdb.py)
        self.port = free_port()
        self.state = tempfile.TemporaryDirectory()
        self.proc = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    async def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "--handler=postgresql",
             f"--postgresql-url={self.postgresql}" + (f"?{self.url_parameters}" if self.url_parameters else ""),
             f"--listen-addr=127.0.0.1:{self.port}", "--debug-addr=-", "--telemetry=disable",
             f"--state-dir={self.state.name}", "--log-level=error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        async def answers():
            from pymongo import AsyncMongoClient

            client = AsyncMongoClient(self.uri, serverSelectionTimeoutMS=500)
            try:
                await client.admin.command("ping")
                return True
            except Exception:  # noqa: BLE001 - not up yet
                return False
            finally:
                await client.close()
        await poll(answers, 30, 0.2)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.kill()
        self.state.cleanup()


async def test_database_outage_gives_503_and_the_server_recovers_by_itself():
    ferret = PrivateFerretDB()
    await ferret.start()
    server, client = await start_server(DEMO_CITY, f"storage.uri={ferret.uri}",
                                        f"storage.database={new_database_name()}", "auth.allow_demo_passwords=true",
                                        f"auth.secret={SECRET}", engine="embedded")
    try:
        worker = await login_as(client, "grid_worker")
        dispatcher = await login_as(client, "dispatcher")
        status, before = await worker.post("/api/reports", report_body(client.ctx, client_id="outage-0"))
        assert status == 201

        ferret.kill()
        started = time.monotonic()
        status, body = await dispatcher.get("/api/cases?limit=5")
        assert status == 503 and body["error"]["code"] == "store_unavailable", body
        assert time.monotonic() - started < 15
        status, body = await worker.post("/api/reports", report_body(client.ctx, client_id="outage-1"))
        assert status == 503 and body["error"]["code"] == "store_unavailable", body
        status, health = await client.get("/healthz")
        assert status == 503 and health["status"] == "unavailable"

        await ferret.start()  # the same port: the server's client reconnects by itself

        async def recovered():
            status, _ = await client.get("/healthz")
            return status == 200
        await poll(recovered, 30, 0.5)
        status, again = await dispatcher.get(f"/api/cases/{before['id']}")
        assert status == 200 and again["number"] == before["number"]
        status, retried = await worker.post("/api/reports", report_body(client.ctx, client_id="outage-1"))
        assert status in (200, 201), retried  # the retry after the 503 stores it once
        status, replay = await worker.post("/api/reports", report_body(client.ctx, client_id="outage-1"))
        assert (status, replay["id"]) == (200, retried["id"])
    finally:
        server.stop()
        await client.ctx.storage.drop()
        await client.ctx.storage.close()
        ferret.stop()


def test_a_server_store_will_not_start_without_a_shared_secret(database):
    uri, name = database
    result = subprocess.run(
        [sys.executable, "server.py", "--port", str(free_port()), "--set", f"storage.uri={uri}",
         "--set", f"storage.database={name}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "auth.secret" in result.stderr, result.stderr


async def test_acknowledged_case_survives_a_restart_of_the_server(database):
    uri, name = database
    overrides = (f"storage.uri={uri}", f"storage.database={name}", "auth.allow_demo_passwords=true",
                 f"auth.secret={SECRET}")
    server, client = await start_server(DEMO_CITY, *overrides, engine="embedded")
    worker = await login_as(client, "grid_worker")
    status, case = await worker.post("/api/reports", report_body(client.ctx, client_id="restart-1"))
    assert status == 201 and client.ctx.storage.persistent
    server.stop()
    await client.ctx.storage.close()

    server, client = await start_server(DEMO_CITY, *overrides, engine="embedded")
    try:
        dispatcher = await login_as(client, "dispatcher")
        status, again = await dispatcher.get(f"/api/cases/{case['id']}")
        assert status == 200 and again["number"] == case["number"] and again["history"] == case["history"]
        worker = await login_as(client, "grid_worker")
        status, same = await worker.post("/api/reports", report_body(client.ctx, client_id="restart-1"))
        assert status == 200 and same["id"] == case["id"]
    finally:
        server.stop()
        await client.ctx.storage.close()


async def test_a_change_whose_writer_died_before_logging_it_is_logged_by_the_relay():
    """The case write and its log entry are two writes on a server (no transactions): a process
    that dies between them leaves a claim carrying the event, and housekeeping logs it, once."""
    from datetime import datetime, timedelta, timezone

    from engines import open_test_store
    from test_store_contract import case

    store = await open_test_store("server")
    try:
        start = await store.events.last_seq()
        logged = store.cases._log

        async def dies_before_logging(event):
            raise ConnectionError("the process died here")

        store.cases._log = dies_before_logging
        doc = case(1)
        with pytest.raises(ConnectionError):
            await store.cases.insert(doc)
        store.cases._log = logged
        assert await store.events.after(start, 10) == []  # written, not yet logged
        assert (await store.cases.get(doc["_id"]))["version"] == 1

        later = datetime.now(timezone.utc) + timedelta(seconds=10)
        await store.housekeeping(later)
        await store.housekeeping(later)  # twice: still once
        events = await store.events.after(start, 10)
        assert [(e["type"], e["case_id"], e["version"]) for e in events] == [("case.created", doc["_id"], 1)]
    finally:
        await store.close_for_test()

"""Several server processes on one database (SPEC §7), proven with two `python server.py`
processes on FerretDB:

* a report posted to one process reaches WebSocket clients of both within a second (every
  process follows the store's event log);
* a client that loses its process and reconnects to the other with `since=<last id>` catches up
  with no gap and no duplicate (the numbers are the log's, the same in every process);
* a token issued by one process is honoured by the other (one configured secret).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import tornado.httpclient
import tornado.websocket

from engines import new_database_name, server_uri
from test_durability import Http, ServerProcess, poll, report_body_for, user_of_demo
from support import DEMO_CITY, loaded_city


@pytest.fixture
async def two_processes():
    from pymongo import AsyncMongoClient

    uri, name = server_uri(), new_database_name()
    servers = [ServerProcess(uri, name), ServerProcess(uri, name)]
    clients = [server.start() for server in servers]
    try:
        for server, client in zip(servers, clients):
            await server.ready(client)
        yield servers, clients
    finally:
        for server in servers:
            server.stop()
        mongo = AsyncMongoClient(uri)
        await mongo.drop_database(name)
        await mongo.close()


class Feed:
    """A WebSocket client of /ws/live that keeps every message it receives."""

    def __init__(self, base: str, token: str, since: int | None = None):
        self.url = base.replace("http://", "ws://") + "/ws/live" + (f"?since={since}" if since is not None else "")
        self.token = token
        self.messages: list[dict] = []
        self.socket = None
        self._reader = None

    async def open(self) -> "Feed":
        request = tornado.httpclient.HTTPRequest(self.url, headers={"Authorization": f"Bearer {self.token}"})
        self.socket = await tornado.websocket.websocket_connect(request)
        self._reader = asyncio.ensure_future(self._read())
        await poll(self._said_hello, 10)
        return self

    async def _said_hello(self):
        return any(m["type"] == "hello" for m in self.messages)

    async def _read(self):
        while True:
            message = await self.socket.read_message()
            if message is None:
                return
            self.messages.append(json.loads(message))

    def has_case(self, case_id: str) -> bool:
        return any(e["case"]["id"] == case_id for e in self.case_events())

    def case_events(self) -> list[dict]:
        return [m for m in self.messages if m["type"] in ("case.created", "case.updated")]

    def hello_id(self) -> int:
        return next(m["id"] for m in self.messages if m["type"] == "hello")

    def close(self):
        if self.socket is not None:
            self.socket.close()
        if self._reader is not None:
            self._reader.cancel()


async def report_seen_by(worker, city, client_id: str, feeds) -> dict:
    """A grid report sent through `worker`, once every feed has it: within a second of the
    write (with room for a loaded CI), whichever process took it."""
    sent = time.monotonic()
    status, case = await worker.call("POST", "/api/reports", report_body_for(city, client_id))
    assert status == 201, case

    async def everyone_has_it():
        return all(feed.has_case(case["id"]) for feed in feeds)
    await poll(everyone_has_it, 5, 0.02)
    assert time.monotonic() - sent < 1.5
    return case


async def test_a_report_on_one_process_reaches_the_clients_of_both(two_processes):
    servers, clients = two_processes
    worker = clients[0]
    await worker.login(*user_of_demo("grid_worker", 0))
    watcher = Http(clients[1].base)
    await watcher.login(*user_of_demo("dispatcher", 0))  # a token from process 1 ...
    feeds = [await Feed(clients[0].base, watcher.token).open(),  # ... honoured by process 0
             await Feed(clients[1].base, watcher.token).open()]
    try:
        city, _ = loaded_city(str(DEMO_CITY))
        case = await report_seen_by(worker, city, "mp-1", feeds)
        ids = [[e["id"] for e in feed.case_events() if e["case"]["id"] == case["id"]] for feed in feeds]
        assert ids[0] == ids[1]  # the same number in every process
    finally:
        for feed in feeds:
            feed.close()


async def test_a_client_resumes_on_the_other_process_with_no_gap(two_processes):
    servers, clients = two_processes
    worker = clients[0]
    await worker.login(*user_of_demo("grid_worker", 0))
    watcher = Http(clients[1].base)
    await watcher.login(*user_of_demo("dispatcher", 0))
    city, _ = loaded_city(str(DEMO_CITY))

    feed = await Feed(clients[1].base, watcher.token).open()
    for n in range(3):
        status, _ = await worker.call("POST", "/api/reports", report_body_for(city, f"before-{n}"))
        assert status == 201

    async def got_three():
        return len(feed.case_events()) >= 3
    await poll(got_three, 5, 0.02)
    last = feed.case_events()[-1]["id"]
    feed.close()
    servers[1].kill()  # its process dies; the client comes back through the other one

    for n in range(4):  # changes while the client is away
        status, _ = await worker.call("POST", "/api/reports", report_body_for(city, f"while-away-{n}"))
        assert status == 201
    resumed = await Feed(clients[0].base, watcher.token, since=last).open()
    try:
        async def caught_up():
            return len(resumed.case_events()) >= 4
        await poll(caught_up, 5, 0.02)
        ids = [e["id"] for e in resumed.case_events()]
        assert ids == list(range(last + 1, last + 5))  # no gap, no duplicate
    finally:
        resumed.close()

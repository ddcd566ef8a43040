"""Several server processes behind nginx (SPEC §7), end to end: Debian's nginx, run by the test
as a child process with the shipped site file (deploy/nginx/citydispatch.conf) on a loopback
port, in front of two `python server.py` processes on FerretDB:

* a report posted through nginx reaches WebSocket clients connected through nginx on both
  processes (and clients connected to each process directly) within a second;
* one process is killed: its clients are cut off, reconnect through nginx with
  `since=<last id>` and catch up with no gap and no duplicate, while nginx sends new reports to
  the process that is left.

Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from engines import new_database_name, server_uri
from support import DEMO_CITY, ROOT, loaded_city
from test_durability import SECRET, Http, ServerProcess, free_port, poll, report_body_for, user_of_demo
from test_multiprocess import Feed, report_seen_by

SITE = ROOT / "deploy" / "nginx" / "citydispatch.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("nginx is not installed: CI must run the nginx test (bash setup.sh --test)")
    pytest.skip("needs nginx: apt-get install nginx-light")


class Upstream(ServerProcess):
    """`python server.py` that believes X-Forwarded-For from nginx (127.0.0.1)."""

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "server.py", "--port", str(self.port),
             "--set", f"storage.uri={self.uri}", "--set", f"storage.database={self.database}",
             "--set", "auth.allow_demo_passwords=true", "--set", f"auth.secret={SECRET}",
             "--set", "scheduler.enabled=false", "--set", "server.trusted_proxies=127.0.0.1"],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        return Http(f"http://127.0.0.1:{self.port}")


def site_config(listen_port: int, upstream_ports: list[int]) -> str:
    """The shipped site file, listening on a loopback port, with the test's processes upstream."""
    text = SITE.read_text(encoding="utf-8")
    servers = "".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;\n" for port in upstream_ports)
    text, count = re.subn(r"(?m)^    server 127\.0\.0\.1:8888 [^\n]*\n", servers, text)
    assert count == 1, "the site file's upstream server line changed; update this test"
    text, count = re.subn(r"(?m)^(\s*)listen 80;", rf"\1listen 127.0.0.1:{listen_port};", text)
    assert count == 1, "the site file's listen line changed; update this test"
    return text


class Nginx:
    """nginx in the foreground, everything it writes in a temporary directory."""

    def __init__(self, upstream_ports: list[int]):
        self.binary = nginx_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="citydispatch-nginx-"))
        self.port = free_port()
        self.proc = None
        d = self.dir
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (d / sub).mkdir()
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the temp directory
        (d / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "  log_format upstream '$request_uri $status $upstream_addr';\n"
            f"  access_log {d}/access.log upstream;\n"
            f"  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n"
            f"  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n"
            + site_config(self.port, upstream_ports) + "}\n", encoding="utf-8")
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-e", str(self.dir / "error.log"),
             "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    async def ready(self):
        http = Http(self.base)

        async def up():
            assert self.proc.poll() is None, self.errors()
            status, _ = await http.call("GET", "/healthz", timeout=2)
            return status == 200
        await poll(up, 30, 0.1)

    def errors(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def access_log(self) -> list[str]:
        path = self.dir / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # nginx: fast shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
async def behind_nginx():
    from pymongo import AsyncMongoClient

    uri, name = server_uri(), new_database_name()
    nginx_binary()  # skip (or fail under CI) before starting anything
    servers = [Upstream(uri, name), Upstream(uri, name)]
    direct = [server.start() for server in servers]
    proxy = Nginx([server.port for server in servers])
    try:
        for server, client in zip(servers, direct):
            await server.ready(client)
        proxy.start()
        await proxy.ready()
        yield proxy, servers, direct
    finally:
        proxy.stop()
        for server in servers:
            server.stop()
        mongo = AsyncMongoClient(uri)
        await mongo.drop_database(name)
        await mongo.close()


def closed(feed: Feed) -> bool:
    return feed._reader is not None and feed._reader.done()


def case_ids(feed: Feed) -> list[int]:
    return [e["id"] for e in feed.case_events()]


async def test_reports_through_nginx_reach_both_processes_and_survive_losing_one(behind_nginx):
    proxy, servers, direct = behind_nginx
    city, _ = loaded_city(str(DEMO_CITY))
    worker = Http(proxy.base)
    await worker.login(*user_of_demo("grid_worker", 0))
    watcher = Http(proxy.base)
    await watcher.login(*user_of_demo("dispatcher", 0))

    # Four clients through nginx, one after another: round robin gives each process two. And
    # one client straight on each process, which sees every change whoever took the report.
    via_nginx = [await Feed(proxy.base, watcher.token).open() for _ in range(4)]
    on_each = [await Feed(client.base, watcher.token).open() for client in direct]
    feeds = via_nginx + on_each
    resumed: list[Feed] = []
    try:
        await report_seen_by(worker, city, "nginx-1", feeds)
        assert len({tuple(case_ids(feed)) for feed in feeds}) == 1  # one number, whichever process

        for n in range(2):
            status, _ = await worker.call("POST", "/api/reports", report_body_for(city, f"nginx-before-{n}"))
            assert status == 201

        async def three_each():
            return all(len(feed.case_events()) >= 3 for feed in feeds)
        await poll(three_each, 5, 0.02)

        # Process 1 dies: nginx drops the WebSockets it carried to it.
        servers[1].kill()

        async def cut_off():
            return [feed for feed in via_nginx if closed(feed)] if closed(on_each[1]) else None
        lost = await poll(cut_off, 10, 0.02)
        assert 0 < len(lost) < len(via_nginx), "nginx should have spread the clients over both processes"
        assert not closed(on_each[0])
        dead = f"127.0.0.1:{servers[1].port}"
        ws_upstreams = [line.split()[-1] for line in proxy.access_log() if line.startswith("/ws/live")]
        assert ws_upstreams and set(ws_upstreams) == {dead}, ws_upstreams  # only the dead process's ended
        lost.append(on_each[1])

        # Changes while they are away go through nginx to the process that is left.
        for n in range(3):
            status, created = await worker.call("POST", "/api/reports", report_body_for(city, f"nginx-away-{n}"))
            assert status == 201, created

        # They come back through nginx where they left off.
        for feed in lost:
            since = case_ids(feed)[-1]
            resumed.append(await Feed(proxy.base, watcher.token, since=since).open())
        status, _ = await worker.call("POST", "/api/reports", report_body_for(city, "nginx-after"))
        assert status == 201

        survivor = on_each[0]

        stayed = [feed for feed in via_nginx if feed not in lost]

        async def all_caught_up():
            # Each client is written to on its own: wait for every one still connected, not only
            # the one straight on the survivor, before comparing what they saw.
            return len(survivor.case_events()) >= 7 and all(
                case_ids(feed)[-1:] == case_ids(survivor)[-1:] for feed in resumed + stayed)
        await poll(all_caught_up, 10, 0.02)
        expected = case_ids(survivor)
        assert expected == list(range(expected[0], expected[0] + 7))  # the log's numbers: no gap
        for old, new in zip(lost, resumed):
            assert case_ids(old) + case_ids(new) == expected  # no gap, no duplicate across the reconnect
        assert all(case_ids(feed) == expected for feed in stayed)
    finally:
        for feed in feeds + resumed:
            feed.close()
    assert "[emerg]" not in proxy.errors()

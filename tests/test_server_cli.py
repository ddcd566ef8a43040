"""`python server.py --workers N` (config `server.workers`): refused on the embedded store and for
nonsense values, before anything starts; on a server store N worker processes share the port, a
worker that dies is started again and SIGTERM to the first process stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import server
from dispatch.config import load_config
from engines import new_database_name, server_uri
from support import ROOT
from test_durability import SECRET, Http, free_port, poll


def test_workers_defaults_to_one():
    assert load_config(None, [])["server"]["workers"] == 1
    args = server.parse_args([])
    assert server.worker_count(server.build_config(args)) == 1


def test_workers_from_the_command_line_and_from_config():
    uri = "storage.uri=mongodb://127.0.0.1:1/"
    assert server.worker_count(server.build_config(server.parse_args(["--workers", "3", "--set", uri]))) == 3
    assert server.worker_count(server.build_config(server.parse_args(["--set", "server.workers=4", "--set", uri]))) == 4


@pytest.mark.parametrize("argv", [["--workers", "2"], ["--set", "server.workers=2"]])
def test_several_workers_on_the_embedded_store_are_refused(argv, capsys):
    assert server.main(argv) == 2  # refused before binding or forking anything
    err = capsys.readouterr().err
    assert "启动失败" in err and "server.workers=2" in err and "内置存储" in err


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "true"])
def test_nonsense_worker_counts_are_refused(value, capsys):
    assert server.main(["--set", f"server.workers={value}"]) == 2
    assert "server.workers 必须是正整数" in capsys.readouterr().err


def children_of(pid: int) -> set[int]:
    """Live (not zombie) child processes of `pid`, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def kill_tree(proc: subprocess.Popen) -> None:
    """After a failed test: the server and its workers, if still running, killed."""
    if proc.poll() is None:
        for pid in children_of(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait(10)


async def test_workers_share_a_port_and_a_dead_worker_is_replaced():
    from pymongo import AsyncMongoClient

    uri, name = server_uri(), new_database_name()
    port = free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "server.py", "--workers", "2", "--port", str(port),
         "--set", f"storage.uri={uri}", "--set", f"storage.database={name}",
         "--set", "auth.allow_demo_passwords=true", "--set", f"auth.secret={SECRET}",
         "--set", "scheduler.enabled=false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def output(last: int | None = 4000) -> str:
        log.seek(0)
        return log.read().decode(errors="replace")[-last if last else 0:]

    http = Http(f"http://127.0.0.1:{port}")
    try:
        async def serving():
            assert proc.poll() is None, output()
            status, _ = await http.call("GET", "/healthz", timeout=2)
            return status == 200 and len(children_of(proc.pid)) == 2
        await poll(serving, 60, 0.2)
        first = children_of(proc.pid)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)

        async def replaced():
            now = children_of(proc.pid)
            return len(now) == 2 and victim not in now and now
        workers = await poll(replaced, 30, 0.2)
        for _ in range(10):  # whichever worker takes the connection, it answers
            status, _ = await http.call("GET", "/healthz", timeout=5)
            assert status == 200, output()

        proc.terminate()  # the first process passes it on to every worker
        assert proc.wait(30) == 0, output()

        async def all_gone():
            return not any(_alive(pid) for pid in workers)
        await poll(all_gone, 15, 0.2)
        # The whole log: shutdown messages after it once pushed the restart out of the last
        # 4,000 characters (seen in CI).
        assert "重新启动" in output(None), output()
    finally:
        kill_tree(proc)
        mongo = AsyncMongoClient(uri)
        await mongo.drop_database(name)
        await mongo.close()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"

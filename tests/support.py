"""Test support: start a server on a city package, and a JSON client that logs in."""

from __future__ import annotations

import contextlib
import functools
import json
import os
from pathlib import Path

import tornado.httpclient
import tornado.httpserver
import tornado.netutil

from dispatch.app import make_app
from dispatch.access.auth import hash_password
from dispatch.config import load_config
from dispatch.rules import Router
from engines import storage_overrides
from geo.loader import load_city

ROOT = Path(__file__).resolve().parent.parent
DEMO_CITY = ROOT / "data" / "cities" / "hangzhou-demo"


@functools.lru_cache(maxsize=None)
def cached_hash(password: str) -> str:
    # scrypt is slow on purpose; tests build many apps with the same few passwords.
    return hash_password(password)


@functools.lru_cache(maxsize=4)
def loaded_city(path: str):
    city = load_city(path)
    return city, Router(city)


class Client:
    """A tiny JSON client bound to one server; `login` keeps the bearer token."""

    def __init__(self, base: str, app):
        self.base = base
        self.app = app
        self.token: str | None = None
        self.http = tornado.httpclient.AsyncHTTPClient()

    @property
    def ctx(self):
        return self.app.ctx

    async def request(self, method: str, path: str, body=None, raw: bytes | None = None, headers=None,
                      timeout: float = 60):
        headers = dict(headers or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            headers.setdefault("Content-Type", "application/json")
        if method in ("POST", "PUT", "PATCH") and data is None:
            data = b""
        response = await self.http.fetch(
            self.base + path, method=method, body=data, headers=headers, raise_error=False,
            request_timeout=timeout,
        )
        content_type = response.headers.get("Content-Type", "")
        if response.body and "json" not in content_type and not content_type.startswith("text/"):
            return response.code, response.body  # binary, e.g. a photo
        text = response.body.decode() if response.body else ""
        try:
            payload = json.loads(text) if text else None
        except ValueError:
            payload = text
        return response.code, payload

    async def get(self, path, **kw):
        return await self.request("GET", path, **kw)

    async def post(self, path, body=None, **kw):
        return await self.request("POST", path, body, **kw)

    async def login(self, username: str, password: str) -> dict:
        status, body = await self.post("/api/login", {"username": username, "password": password})
        assert status == 200, body
        self.token = body["token"]
        return body["user"]

    def as_user(self) -> "Client":
        """Another client on the same server, with its own token."""
        return Client(self.base, self.app)


def free_port() -> int:
    """A port that was free a moment ago (racy: prefer binding port 0 and keeping the socket)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The storage engine the API tests run on: `embedded` (default) or `server` (MONGODB_URI).
ENGINE = os.environ.get("TEST_ENGINE", "embedded")


async def start_server(city_path: Path, *overrides: str, engine: str | None = None):
    """A server on a fresh store of `engine` (default: TEST_ENGINE), on a port the OS chose.

    On the server engine the test gets a database of its own, dropped when the test closes
    the store (`await client.ctx.storage.close()`)."""
    city, router = loaded_city(str(city_path))
    config = load_config(None, [f"city.path={city_path}", "scheduler.enabled=false",
                                *storage_overrides(engine or ENGINE), *overrides])
    app = await make_app(config, city, router=router, hasher=cached_hash)
    if (engine or ENGINE) == "server":
        drop_on_close(app.ctx.storage)
    server = tornado.httpserver.HTTPServer(app, max_body_size=16 * 1024 * 1024)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")  # no race for a "free" port
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    return server, Client(f"http://127.0.0.1:{port}", app)


@contextlib.asynccontextmanager
async def serving(city_path: Path, *overrides: str, engine: str | None = None):
    """`start_server` for the length of a `with`: the client, then the server stopped and its
    store closed (dropped on the server engine). Every server fixture is one of these."""
    server, client = await start_server(city_path, *overrides, engine=engine)
    try:
        yield client
    finally:
        server.stop()
        await client.ctx.storage.close()


def drop_on_close(store) -> None:
    if not store.persistent:
        return
    close = store.close

    async def drop_then_close():
        await store.drop()
        await close()

    store.close = drop_then_close


def user_of(ctx, role: str, index: int = 0) -> dict:
    """The city package's `index`-th account with this role."""
    return [u for u in ctx.city.users if u["role"] == role][index]


async def login_as(client: Client, role: str, index: int = 0) -> Client:
    """A new client on the same server, logged in as a bootstrap account of that role."""
    other = client.as_user()
    user = user_of(client.ctx, role, index)
    await other.login(user["username"], str(user["password"]))
    return other

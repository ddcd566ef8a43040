"""Test support: start a server on a city package, and a JSON client that logs in."""

from __future__ import annotations

import functools
import json
import socket
from pathlib import Path

import tornado.httpclient
import tornado.httpserver

from dispatch.app import make_app
from dispatch.access.auth import hash_password
from dispatch.config import load_config
from dispatch.rules import Router
from geo.package import load_city

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    async def request(self, method: str, path: str, body=None, raw: bytes | None = None, headers=None):
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
            request_timeout=60,
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


async def start_server(city_path: Path, *overrides: str):
    city, router = loaded_city(str(city_path))
    config = load_config(None, [f"city.path={city_path}", "scheduler.enabled=false", *overrides])
    app = await make_app(config, city, router=router, hasher=cached_hash)
    port = free_port()
    server = tornado.httpserver.HTTPServer(app, max_body_size=16 * 1024 * 1024)
    server.listen(port, "127.0.0.1")
    return server, Client(f"http://127.0.0.1:{port}", app)


def user_of(ctx, role: str, index: int = 0) -> dict:
    """The city package's `index`-th account with this role."""
    return [u for u in ctx.city.users if u["role"] == role][index]


async def login_as(client: Client, role: str, index: int = 0) -> Client:
    """A new client on the same server, logged in as a bootstrap account of that role."""
    other = client.as_user()
    user = user_of(client.ctx, role, index)
    await other.login(user["username"], str(user["password"]))
    return other

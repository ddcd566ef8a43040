"""WS /ws/live — case.created / case.updated events for the cases in the user's scope.

Authenticate with `Authorization: Bearer` (programs), the session cookie (pages), or a first
message `{"type": "auth", "token": "..."}`. Reconnect with `?since=<last event id>` to catch up.

A socket lives as long as its session: when the token expires, is logged out or revoked (password
reset, disabled account), the server sends `{"type": "error", "error": {"code": ...}}` and closes
with 4401. One user may hold `server.live_sockets_per_user` sockets and one address
`server.live_sockets_per_address`; one more is told so and closed with 4429.
"""

from __future__ import annotations

import json
import logging

import tornado.websocket
from tornado.ioloop import IOLoop

from dispatch.access.auth import SESSION_COOKIE, User
from dispatch.access.policy import permitted
from dispatch.handlers.base import AllowOn405, client_address, trusted_networks

log = logging.getLogger(__name__)

AUTH_TIMEOUT_SECONDS = 10
CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_MANY = 4429

# Why a feed ends → what the client is told.
ENDINGS = {
    "invalid_token": "登录凭据无效或已过期",
    "session_expired": "登录已过期，请重新登录",
    "session_ended": "登录已失效（已注销、密码已重置或账号已停用），请重新登录",
}


class LiveHandler(AllowOn405, tornado.websocket.WebSocketHandler):
    access = {"GET": ("live", "subscribe")}  # checked through dispatch.access.policy like every handler
    subscriber = None
    user: User | None = None
    address: str | None = None  # counted in the hub's per-address tally while open

    @property
    def ctx(self):
        return self.application.ctx

    def check_origin(self, origin: str) -> bool:
        # Same-origin pages only; programs without an Origin header use a bearer token.
        host = self.request.headers.get("Host", "")
        return origin.split("://", 1)[-1] == host

    async def open(self):
        server = self.ctx.config["server"]
        address = client_address(self.request, trusted_networks(server["trusted_proxies"]))
        if self.ctx.live.per_address[address] >= int(server["live_sockets_per_address"]):
            self._refuse_too_many(f"此地址的实时连接过多（上限 {server['live_sockets_per_address']} 个）")
            return
        self.address = address
        self.ctx.live.per_address[address] += 1
        token = self._header_token() or self.get_cookie(SESSION_COOKIE)
        if token:
            await self._authenticate(token)
        else:
            self._auth_timer = IOLoop.current().call_later(AUTH_TIMEOUT_SECONDS, self._auth_timeout)

    def _header_token(self) -> str | None:
        header = self.request.headers.get("Authorization", "")
        return header[len("Bearer "):].strip() if header.startswith("Bearer ") else None

    async def _authenticate(self, token: str) -> None:
        ctx = self.ctx
        claims = ctx.tokens.claims(token)
        user = await ctx.sessions.user_for_claims(claims)  # expiry, logout and disabling honoured
        if user is None or not permitted(user, *self.access["GET"]):
            self._end("invalid_token")
            return
        if self.ws_connection is None:
            return  # the client left while we were reading the session
        server = ctx.config["server"]
        if ctx.live.per_user[user.username] >= int(server["live_sockets_per_user"]):
            self._refuse_too_many(f"此账号的实时连接过多（上限 {server['live_sockets_per_user']} 个）")
            return
        self.user = user
        since = self.get_query_argument("since", None)
        since = int(since) if since and since.isdigit() else None
        self._send({"type": "hello", "user": self.user.public(), "id": ctx.live.sequence})
        self.subscriber = ctx.live.join(self.user, self._write, since, session=claims, end=self._end)
        ctx.live.watch_sessions(ctx.sessions.alive, float(server["live_recheck_seconds"]))

    def _auth_timeout(self):
        if self.user is None:
            self.close(CLOSE_UNAUTHORIZED, "authentication timeout")

    def _end(self, why: str) -> None:
        """The session is gone: say why, then close (the hub has already dropped the subscriber)."""
        self._error(why, ENDINGS[why])
        self.close(CLOSE_UNAUTHORIZED, why.replace("_", " "))

    def _refuse_too_many(self, message: str) -> None:
        self._error("too_many_connections", message)
        self.close(CLOSE_TOO_MANY, "too many connections")

    def _error(self, code: str, message: str) -> None:
        try:
            self._send({"type": "error", "error": {"code": code, "message": message}})
        except tornado.websocket.WebSocketClosedError:
            pass

    async def on_message(self, message):
        if self.user is not None:
            return  # the feed is one-way once authenticated
        try:
            data = json.loads(message)
        except (ValueError, TypeError):
            data = None
        if not isinstance(data, dict) or data.get("type") != "auth" or not isinstance(data.get("token"), str):
            self.close(4400, "expected an auth message")
            return
        await self._authenticate(data["token"])

    def _write(self, payload: bytes) -> None:
        protocol = self.ws_connection
        if protocol is None or protocol.is_closing():
            raise tornado.websocket.WebSocketClosedError()
        # The hub fans one event out to every client synchronously. `write_message` would wrap
        # each frame in its own asyncio Task (half the cost of a 1,000-client fan-out); writing
        # the text frame straight to the stream buffers it the same way. Tornado is pinned.
        protocol._write_frame(True, 0x1, payload)

    def _send(self, data: dict) -> None:
        self.write_message(json.dumps(data, ensure_ascii=False))

    def on_close(self):
        live = self.ctx.live
        if self.subscriber is not None:
            live.leave(self.subscriber)
        if self.address is not None:
            live.per_address[self.address] -= 1
            if live.per_address[self.address] <= 0:
                del live.per_address[self.address]
            self.address = None


routes = [(r"/ws/live", LiveHandler)]

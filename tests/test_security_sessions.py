"""Sessions and the network edge: what a hostile review found, one regression test per finding.

5  the live feed ends with the session (logout, reset, disabling, expiry)
6  the client address is the TCP peer unless a configured proxy forwards it; hashing is bounded
7  guessing elsewhere never locks a user out; a trusted device is exempt from the account slow-down
10 login and logout only take JSON bodies
11 the XSRF token is bound to the session and only accepted in the header
13 half-sent headers do not hold a connection open
14 WebSockets per user and per address are capped
16 reveal: the operator who took the call, the callback operators, admins
17 bodies over the connection limit get a JSON 413
18 tokens are PyJWT HS256 with exp/iat/jti/sub; revocation by jti

Every test here runs the server as server.py builds it (`server.http_server`).
"""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace

import jwt
import pytest
import tornado.httpclient
import tornado.httputil
import tornado.websocket

from dispatch.app import make_app
from dispatch.config import ConfigError, load_config
from dispatch.handlers.base import client_address, trusted_networks
from security_world import NAME_A, PHONE_A, World, city_data
from small_city import write_small_city
from support import Client, cached_hash, free_port, loaded_city

STRONG = "Lake-Breeze-2048!"


async def edge_world(tmp_path_factory, *overrides: str, populate: bool = False) -> World:
    import server as server_module

    path = write_small_city(tmp_path_factory.mktemp("edge-city"), city_data())
    city, router = loaded_city(str(path))
    config = load_config(None, [f"city.path={path}", "scheduler.enabled=false", *overrides])
    app = await make_app(config, city, router=router, hasher=cached_hash)
    srv = server_module.http_server(app, config)
    port = free_port()
    srv.listen(port, "127.0.0.1")
    world = World(Client(f"http://127.0.0.1:{port}", app), srv)
    if populate:
        await world.populate()
    return world


@pytest.fixture
async def worlds(tmp_path_factory):
    made = []

    async def make(*overrides, populate=False):
        world = await edge_world(tmp_path_factory, *overrides, populate=populate)
        made.append(world)
        return world

    yield make
    for world in made:
        world.server.stop()
        await world.ctx.storage.close()


async def call(world, method, path, body=None, headers=None, raw_body=None, http=None):
    """(status, headers, parsed body); JSON bodies say so unless the test says otherwise."""
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
    if method in ("POST", "PATCH") and data is None:
        data = b"{}"
    response = await (http or world.client.http).fetch(world.client.base + path, method=method, body=data, headers=hdrs,
                                             raise_error=False, follow_redirects=False)
    text = response.body.decode() if response.body else ""
    return response.code, response.headers, (json.loads(text) if text.startswith("{") else text)


async def login(world, username, password="x", headers=None, http=None):
    return await call(world, "POST", "/api/login", {"username": username, "password": password},
                      headers=headers, http=http)


def cookies_of(headers) -> dict:
    return {c.split("=", 1)[0]: c.split(";", 1)[0].split("=", 1)[1] for c in headers.get_list("Set-Cookie")}


async def connect(world, token=None, headers=None):
    url = world.client.base.replace("http://", "ws://") + "/ws/live"
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    return await tornado.websocket.websocket_connect(tornado.httpclient.HTTPRequest(url, headers=hdrs))


async def next_message(ws, timeout=5.0):
    raw = await asyncio.wait_for(ws.read_message(), timeout)
    return json.loads(raw) if raw is not None else None


async def ended(ws, timeout=5.0):
    """The frames until the server closes the socket (fails if it stays open past `timeout`)."""
    frames, deadline = [], time.monotonic() + timeout
    while True:
        message = await next_message(ws, max(0.01, deadline - time.monotonic()))
        if message is None:
            return frames
        frames.append(message)


async def http_raw(world, data: bytes, timeout=5.0) -> bytes:
    """Send bytes on a fresh connection; everything the server answers until it closes."""
    port = int(world.client.base.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


# -- 5. the live feed ends with the session -------------------------------------------------------


async def test_logout_closes_the_open_live_feed(worlds):
    world = await worlds()
    _, _, body = await login(world, "disp-city")
    token = body["token"]
    ws = await connect(world, token)
    assert (await next_message(ws))["type"] == "hello"
    status, _, _ = await call(world, "POST", "/api/logout", {}, headers={"Authorization": f"Bearer {token}"})
    assert status == 200
    frames = await ended(ws)
    assert [f["error"]["code"] for f in frames] == ["session_ended"] and ws.close_code == 4401
    assert world.ctx.live.subscribers == set()


@pytest.mark.parametrize("change", [{"password": "Quiet-River-4096?"}, {"disabled": True}])
async def test_password_reset_and_disabling_close_the_live_feed(worlds, change):
    world = await worlds("server.live_recheck_seconds=0.1")
    ws = await connect(world, world.ctx.tokens.issue("disp-a"))
    assert (await next_message(ws))["type"] == "hello"
    status, _ = await world.as_("admin").request("PATCH", "/api/admin/users/disp-a", change)
    assert status == 200
    frames = await ended(ws)
    assert frames[-1]["error"]["code"] == "session_ended" and ws.close_code == 4401


async def test_an_expired_token_stops_the_feed(worlds):
    world = await worlds("server.live_recheck_seconds=0.1")
    ttl = world.ctx.tokens.ttl
    token = world.ctx.tokens.issue("disp-city", now=time.time() - ttl + 1.5)  # expires in 1.5 s
    ws = await connect(world, token)
    assert (await next_message(ws))["type"] == "hello"
    frames = await ended(ws, timeout=6)
    assert frames[-1]["error"]["code"] in ("session_expired", "session_ended") and ws.close_code == 4401


# -- 6. the client's address ---------------------------------------------------------------------


def fake_request(peer: str, forwarded: list[str] = ()):
    headers = tornado.httputil.HTTPHeaders()
    for value in forwarded:
        headers.add("X-Forwarded-For", value)
    return SimpleNamespace(remote_ip=peer, headers=headers)


def test_client_address_trusts_forwarded_headers_only_from_configured_proxies():
    none, proxies = trusted_networks([]), trusted_networks(["10.0.0.0/8", "192.0.2.1"])
    assert client_address(fake_request("203.0.113.5", ["1.2.3.4"]), none) == "203.0.113.5"
    assert client_address(fake_request("203.0.113.5", ["1.2.3.4"]), proxies) == "203.0.113.5"  # peer not a proxy
    assert client_address(fake_request("10.0.0.1", ["1.2.3.4"]), proxies) == "1.2.3.4"
    # The client may write anything on the left; the right-most untrusted entry is what a proxy saw.
    assert client_address(fake_request("10.0.0.1", ["6.6.6.6, 5.6.7.8, 192.0.2.1"]), proxies) == "5.6.7.8"
    assert client_address(fake_request("10.0.0.1", ["6.6.6.6", "5.6.7.8"]), proxies) == "5.6.7.8"  # two headers
    assert client_address(fake_request("10.0.0.1", ["not-an-ip"]), proxies) == "10.0.0.1"
    assert client_address(fake_request("10.0.0.1", ["10.0.0.9, 10.0.0.8"]), proxies) == "10.0.0.9"
    assert client_address(fake_request("10.0.0.1"), proxies) == "10.0.0.1"


def test_trusted_proxies_from_the_command_line_and_checked():
    config = load_config(None, ["server.trusted_proxies=10.0.0.0/8, 192.0.2.1"])
    assert config["server"]["trusted_proxies"] == ["10.0.0.0/8", "192.0.2.1"]
    assert load_config()["server"]["trusted_proxies"] == []
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_config(None, ["server.trusted_proxies=10.0.0.0/8,nonsense"])


async def test_rotating_forwarded_for_does_not_escape_the_address_limit(worlds):
    world = await worlds()
    statuses = []
    for i in range(25):  # address_max_failures: 20; a new made-up address in every attempt
        status, _, _ = await login(world, f"nobody{i}", "wrong", headers={"X-Forwarded-For": f"198.51.100.{i}",
                                                                         "X-Real-IP": f"198.51.100.{i}"})
        statuses.append(status)
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}


async def test_reveal_audit_records_the_real_address(worlds):
    world = await worlds(populate=True)
    cA = world.cases["cA"]
    op1 = {"Authorization": f"Bearer {world.as_('op1').token}"}
    status, _, _ = await call(world, "POST", f"/api/cases/{cA}/reveal", {"reason": "回访"},
                              headers={**op1, "X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6"})
    assert status == 200
    status, body = await world.as_("admin").get(f"/api/admin/audit?kind=reveals&case={cA}")
    assert [r["address"] for r in body["items"]] == ["127.0.0.1"]


async def test_behind_a_trusted_proxy_the_forwarded_address_counts(worlds):
    world = await worlds("server.trusted_proxies=127.0.0.1", populate=True)
    cA = world.cases["cA"]
    status, _, _ = await call(world, "POST", f"/api/cases/{cA}/reveal", {"reason": "回访"},
                              headers={"Authorization": f"Bearer {world.as_('op1').token}",
                                       "X-Forwarded-For": "6.6.6.6, 203.0.113.7"})
    assert status == 200
    status, body = await world.as_("admin").get(f"/api/admin/audit?kind=reveals&case={cA}")
    assert [r["address"] for r in body["items"]] == ["203.0.113.7"]


async def test_concurrent_password_hashing_is_bounded(worlds, monkeypatch):
    import dispatch.handlers.auth as auth_handlers

    running, peak = [0], [0]

    def slow_check(password, stored):
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        time.sleep(0.2)
        running[0] -= 1
        return False

    monkeypatch.setattr(auth_handlers, "check_password", slow_check)
    world = await worlds("server.trusted_proxies=127.0.0.1")  # spread over addresses: no address limit
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=64)  # really 30 at once
    started = time.monotonic()
    results = await asyncio.gather(*[
        login(world, f"nobody{i}", "wrong", headers={"X-Forwarded-For": f"198.51.100.{i}"}, http=http)
        for i in range(30)])
    http.close()
    statuses = sorted(status for status, _, _ in results)
    assert peak[0] <= 2  # hash_concurrency
    assert statuses.count(401) == 10 and statuses.count(503) == 20  # 2 hashing + 8 queued, the rest refused
    refused = [(headers, body) for status, headers, body in results if status == 503]
    assert all(b["error"]["code"] == "busy" and h["Retry-After"] == "1" for h, b in refused)
    assert time.monotonic() - started < 10 * 0.2 / 2 + 2


# -- 7. no lockout of the real user --------------------------------------------------------------


async def test_guessing_from_one_address_does_not_lock_out_the_user_elsewhere(worlds):
    world = await worlds("server.trusted_proxies=127.0.0.1")
    attacker, victim = {"X-Forwarded-For": "203.0.113.9"}, {"X-Forwarded-For": "10.1.1.1"}
    statuses = [(await login(world, "disp-a", "wrong", headers=attacker))[0] for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    status, _, _ = await login(world, "disp-a", "x", headers=victim)
    assert status == 200


async def test_guessing_from_many_addresses_only_slows_and_the_trusted_device_is_exempt(worlds):
    world = await worlds("server.trusted_proxies=127.0.0.1", "auth.account_slow_after=3",
                         "auth.account_slow_seconds=30")
    status, headers, _ = await login(world, "disp-a", headers={"X-Forwarded-For": "10.1.1.1"})
    assert status == 200
    device = [c for c in headers.get_list("Set-Cookie") if c.startswith("device=")][0]
    assert "httponly" in device.lower() and "path=/api/login" in device.lower() and "samesite=strict" in device.lower()
    device_cookie = {"Cookie": device.split(";", 1)[0]}
    for i in range(5):  # the 4th takes the account's one slot per 30 s, the 5th is refused
        await login(world, "disp-a", "wrong", headers={"X-Forwarded-For": f"203.0.113.{i}"})
    # A new device elsewhere waits a little — never a lock.
    status, _, body = await login(world, "disp-a", headers={"X-Forwarded-For": "10.2.2.2"})
    assert (status, body["error"]["code"]) == (429, "too_many_attempts")
    assert 0 < body["error"]["retry_after"] <= 30
    # A forged device cookie does not help.
    status, _, _ = await login(world, "disp-a", headers={"X-Forwarded-For": "10.4.4.4", "Cookie": "device=forged"})
    assert status == 429
    # The browser the user logged in with before is not slowed at all.
    status, _, _ = await login(world, "disp-a", headers={"X-Forwarded-For": "10.3.3.3", **device_cookie})
    assert status == 200


# -- 10. JSON only at login and logout -------------------------------------------------------------


async def test_login_and_logout_refuse_non_json_bodies(worlds):
    world = await worlds()
    form = json.dumps({"username": "disp-a", "password": "x"}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "text/plain; charset=application/json"):
        status, _, body = await call(world, "POST", "/api/login", raw_body=form, headers={"Content-Type": content_type})
        assert (status, body["error"]["code"]) == (415, "unsupported_media_type"), content_type
    status, _, body = await call(world, "POST", "/api/login", raw_body=form,
                                 headers={"Content-Type": "application/json; charset=UTF-8"})
    assert status == 200
    token = body["token"]
    status, _, body = await call(world, "POST", "/api/logout", raw_body=b"",
                                 headers={"Content-Type": "text/plain", "Authorization": f"Bearer {token}"})
    assert (status, body["error"]["code"]) == (415, "unsupported_media_type")
    assert (await call(world, "GET", "/api/me", headers={"Authorization": f"Bearer {token}"}))[0] == 200


# -- 11. the XSRF token is the session's, in the header only --------------------------------------


async def test_xsrf_token_is_bound_to_the_session_and_refused_in_the_url(worlds):
    world = await worlds()
    _, headers_a, _ = await login(world, "op1")
    _, headers_b, _ = await login(world, "op1")
    a, b = cookies_of(headers_a), cookies_of(headers_b)
    assert a["_xsrf"] != b["_xsrf"]
    ticket = {"type": "help", "content": "求助", "category": "H02"}
    session_a = f"session={a['session']}; _xsrf={a['_xsrf']}"
    cases = [
        ({"Cookie": session_a, "X-XSRFToken": b["_xsrf"]}, ""),  # another session's token
        ({"Cookie": f"session={a['session']}; _xsrf=planted", "X-XSRFToken": "planted"}, ""),  # double submit
        ({"Cookie": session_a}, f"?_xsrf={a['_xsrf']}"),  # in the URL
        ({"Cookie": session_a, "X-XSRFToken": ""}, ""),
    ]
    for headers, query in cases:
        status, _, body = await call(world, "POST", "/api/tickets" + query, ticket, headers=headers)
        assert (status, body["error"]["code"]) == (403, "xsrf_failed"), (headers, query)
    status, _, body = await call(world, "POST", "/api/tickets", ticket,
                                 headers={"Cookie": session_a, "X-XSRFToken": a["_xsrf"]})
    assert status == 201, body


# -- 13. slow headers --------------------------------------------------------------------------------


async def test_half_sent_headers_are_cut_off(worlds):
    world = await worlds("server.header_timeout=0.5")
    started = time.monotonic()
    answer = await http_raw(world, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", timeout=5)
    assert answer == b"" and time.monotonic() - started < 3  # closed, not kept for an hour


def test_server_timeouts_come_from_the_configuration():
    import server as server_module

    config = load_config(None, ["server.header_timeout=7", "server.body_timeout=33"])
    srv = server_module.http_server(SimpleNamespace(), config)
    assert srv.conn_params.header_timeout == 7 and srv.conn_params.body_timeout == 33
    assert srv.xheaders is False
    defaults = server_module.http_server(SimpleNamespace(), load_config()).conn_params
    assert (defaults.header_timeout, defaults.body_timeout) == (10, 60)


# -- 14. WebSocket caps ------------------------------------------------------------------------------


async def test_live_sockets_are_capped_per_user_and_per_address(worlds):
    world = await worlds("server.live_sockets_per_user=2", "server.live_sockets_per_address=4")
    token = world.ctx.tokens.issue("disp-city")
    sockets = [await connect(world, token) for _ in range(2)]
    for ws in sockets:
        assert (await next_message(ws))["type"] == "hello"
    extra = await connect(world, token)
    frames = await ended(extra)
    assert frames[0]["error"]["code"] == "too_many_connections" and extra.close_code == 4429
    other = await connect(world, world.ctx.tokens.issue("disp-a"))  # another user: fine
    assert (await next_message(other))["type"] == "hello"
    waiting = await connect(world)  # not yet authenticated: counts for the address too
    over = await connect(world, world.ctx.tokens.issue("admin"))
    frames = await ended(over)
    assert frames[0]["error"]["code"] == "too_many_connections" and over.close_code == 4429
    sockets[0].close()  # a closed socket frees its place
    deadline = time.monotonic() + 5
    while world.ctx.live.per_user.get("disp-city") != 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    again = await connect(world, token)
    assert (await next_message(again))["type"] == "hello"
    for ws in (sockets[1], other, waiting, again):
        ws.close()


# -- 16. who may reveal ------------------------------------------------------------------------------


async def reveal(world, username, label="cA"):
    return await world.as_(username).post(f"/api/cases/{world.cases[label]}/reveal", {"reason": "回访核实"})


async def test_reveal_is_for_the_call_taker_the_callback_operators_and_admins(worlds):
    world = await worlds(populate=True)
    for username in ("op1", "admin"):
        status, body = await reveal(world, username)
        assert status == 200 and body["caller"] == {"name": NAME_A, "phone": PHONE_A}, username
    status, body = await reveal(world, "op2")  # an operator with no part in this call
    assert (status, body["error"]["code"]) == (403, "not_case_operator")
    for username in ("disp-a", "disp-city", "cmd-city", "a1so", "gw1"):
        status, body = await reveal(world, username)
        assert (status, body["error"]["code"]) == (403, "role_forbidden"), username
    # Handled by the department: now the 回访 is due and op2 may take it, so op2 may call back.
    cA = world.cases["cA"]
    for action, extra in (("sign", {}), ("feedback", {"result": "已处理"})):
        status, body = await world.as_("a1so").post(f"/api/cases/{cA}/actions/{action}", extra)
        assert status == 200, body
    status, _ = await reveal(world, "op2")
    assert status == 200
    status, body = await world.as_("op2").post(f"/api/cases/{cA}/actions/check",
                                               {"passed": True, "satisfaction": "satisfied", "resolved": True})
    assert status == 200, body
    status, _ = await reveal(world, "op2")  # who did the callback may call again
    assert status == 200
    status, body = await world.as_("admin").get(f"/api/admin/audit?kind=reveals&case={cA}")
    assert [r["by"] for r in body["items"]] == ["op2", "op2", "admin", "op1"]


async def test_reveal_roles_are_a_setting(worlds):
    world = await worlds("auth.reveal_roles=call_taker,dispatcher", populate=True)
    assert (await reveal(world, "disp-a"))[0] == 200
    assert (await reveal(world, "op1"))[0] == 200
    assert (await reveal(world, "admin"))[1]["error"]["code"] == "role_forbidden"
    with pytest.raises(ConfigError, match="reveal_roles"):
        load_config(None, ["auth.reveal_roles=call_taker,everyone"])


# -- 17. bodies over the connection limit ----------------------------------------------------------


def response_of(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


async def test_a_declared_body_over_the_limit_gets_a_json_413_unread(worlds):
    world = await worlds()
    answer = await http_raw(world, b"POST /api/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                   b"Content-Length: 50000000\r\n\r\n{\"a\":")  # the rest never comes
    status, body = response_of(answer)
    assert status == 413 and body["error"]["code"] == "body_too_large"


async def test_a_chunked_body_over_the_limit_gets_a_json_413(worlds):
    world = await worlds("server.max_request_bytes=4096")
    chunk = b"x" * 1000
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(10)) + b"0\r\n\r\n"
    answer = await http_raw(world, b"POST /api/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    status, body = response_of(answer)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    assert (await call(world, "GET", "/healthz"))[0] == 200  # the server is fine


# -- 18. JWT -------------------------------------------------------------------------------------------


async def test_tokens_are_hs256_jwts_and_logout_revokes_the_jti(worlds):
    world = await worlds()
    _, _, body = await login(world, "op1")
    token = body["token"]
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) == {"sub", "iat", "exp", "jti"} and claims["sub"] == "op1"
    assert claims["exp"] - claims["iat"] == pytest.approx(world.ctx.tokens.ttl, abs=1)
    # An unsigned ("alg": "none") or re-signed copy is worthless.
    forged = jwt.encode({**claims, "sub": "admin"}, key=None, algorithm="none")
    assert world.ctx.tokens.claims(forged) is None
    assert world.ctx.tokens.claims(jwt.encode({**claims, "sub": "admin"}, "a-guessed-secret-" * 3, algorithm="HS256")) is None
    await call(world, "POST", "/api/logout", {}, headers={"Authorization": f"Bearer {token}"})
    assert await world.ctx.sessions.revoked.contains(claims["jti"])
    assert (await call(world, "GET", "/api/me", headers={"Authorization": f"Bearer {token}"}))[0] == 401

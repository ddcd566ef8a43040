"""Accounts: tokens and their revocation, login throttling, the admin API and CLI, and the
refusal of users.yaml's public passwords on a real database."""

from __future__ import annotations

import asyncio
import io
import json
import time
from argparse import Namespace
from datetime import datetime, timezone

import pytest
import tornado.httpclient
import tornado.websocket

import dispatch.app
from dispatch.tools import admin_cli
from dispatch.access.auth import (
    Accounts, TokenSigner, bootstrap_users, check_password, demo_passwords_refused, hash_password,
    password_problem,
)
from dispatch.errors import ApiError
from dispatch.store import open_store
from dispatch.access.throttle import Backoff, LoginThrottle, RateLimit
from security_world import close_world, make_world
from engines import open_test_store
from support import cached_hash, loaded_city
from dispatch.store.query import CaseQuery

STRONG = "Lake-Breeze-2048!"


@pytest.fixture
async def world(tmp_path_factory):
    w = await make_world(tmp_path_factory, "auth.login_max_failures=3", populate=False)
    yield w
    await close_world(w)


async def raw(client, method, path, body=None, headers=None):
    """(status, headers, parsed body): for Retry-After and Set-Cookie."""
    hdrs = dict(headers or {})
    if method == "POST":
        hdrs.setdefault("Content-Type", "application/json")  # login and logout refuse anything else
    if client.token:
        hdrs.setdefault("Authorization", f"Bearer {client.token}")
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    response = await client.http.fetch(client.base + path, method=method, body=data, headers=hdrs,
                                       raise_error=False, follow_redirects=False)
    text = response.body.decode() if response.body else ""
    return response.code, response.headers, (json.loads(text) if text.startswith("{") else text)


# -- passwords and tokens -----------------------------------------------------------------------


def test_scrypt_hashes_are_salted_and_checked():
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$")
    assert check_password("correct horse", a) and not check_password("wrong", a)
    assert not check_password("x", "md5$abc") and not check_password("x", None)


def test_password_rules():
    assert password_problem("short") and password_problem("aaaaaaaaaaaa")
    assert password_problem("operator01-secret", "operator01")
    assert password_problem(STRONG) is None


def test_tokens_are_signed_expiring_jwts_with_a_jti():
    import jwt

    signer = TokenSigner("secret", 60)
    now = time.time()
    token = signer.issue("op1", now=now)
    claims = signer.claims(token)
    assert claims["sub"] == "op1" and claims["iat"] == int(now * 1000) / 1000 and claims["exp"] == int(now + 60)
    assert len(claims["jti"]) == 24
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert signer.claims(signer.issue("op1", now=now - 60 - TokenSigner.LEEWAY - 1)) is None  # expired
    body, sig = token.rsplit(".", 1)
    assert signer.claims(body + "." + sig[:-2] + ("AA" if not sig.endswith("AA") else "BB")) is None  # forged
    assert TokenSigner("other", 60).claims(token) is None
    assert signer.claims("x" * 5000) is None and signer.claims({"$ne": 1}) is None


def test_a_token_is_valid_the_instant_it_is_issued():
    """`iat` was rounded to the millisecond: issued in the last half-millisecond of a second, it
    named the next second, and PyJWT refused the token as issued in the future when it was read
    at once (the login's XSRF cookie: a 500 seen once in CI)."""
    import jwt

    signer = TokenSigner("secret", 60)
    for fraction in (0.9995, 0.99951, 0.9999, 0.99999):
        now = int(time.time()) - 1 + fraction
        iat = jwt.decode(signer.issue("op1", now=now), options={"verify_signature": False})["iat"]
        assert iat <= now and int(iat) == int(now)
    # Another host's clock a few seconds ahead: its tokens are still good here.
    assert signer.claims(signer.issue("op1", now=time.time() + TokenSigner.LEEWAY - 1))["sub"] == "op1"


async def test_logout_revokes_the_bearer_token(world):
    client = world.client.as_user()
    await client.login("op1", "x")
    assert (await client.get("/api/me"))[0] == 200
    status, body = await client.post("/api/logout", {})
    assert status == 200 and body["revoked"] is True
    status, body = await client.get("/api/me")
    assert (status, body["error"]["code"]) == (401, "invalid_token")
    status, body = await client.post("/api/logout", {})  # a dead token: nothing to revoke, still fine
    assert status == 200 and body["revoked"] is False


async def test_logout_with_the_cookie_revokes_it_and_clears_it(world):
    client = world.client.as_user()
    status, headers, body = await raw(client, "POST", "/api/login", {"username": "op1", "password": "x"})
    cookies = {c.split("=", 1)[0]: c.split(";", 1)[0].split("=", 1)[1] for c in headers.get_list("Set-Cookie")}
    assert "httponly" in [c for c in headers.get_list("Set-Cookie") if c.startswith("session=")][0].lower()
    cookie = f"session={cookies['session']}; _xsrf={cookies['_xsrf']}"
    status, _, _ = await raw(client, "GET", "/api/me", headers={"Cookie": cookie})
    assert status == 200
    status, _, body = await raw(client, "POST", "/api/logout", headers={"Cookie": cookie})
    assert status == 200 and body["revoked"] is False  # no XSRF header: not authenticated, cookie cleared only
    status, _, body = await raw(client, "POST", "/api/logout",
                                headers={"Cookie": cookie, "X-XSRFToken": cookies["_xsrf"]})
    assert status == 200 and body["revoked"] is True
    status, _, _ = await raw(client, "GET", "/api/me", headers={"Cookie": cookie})
    assert status == 401


async def test_cookie_writes_need_the_xsrf_header(world):
    client = world.client.as_user()
    _, headers, _ = await raw(client, "POST", "/api/login", {"username": "op1", "password": "x"})
    cookies = {c.split("=", 1)[0]: c.split(";", 1)[0].split("=", 1)[1] for c in headers.get_list("Set-Cookie")}
    cookie = f"session={cookies['session']}; _xsrf={cookies['_xsrf']}"
    body = {"type": "help", "content": "求助", "category": "H02"}
    status, _, payload = await raw(client, "POST", "/api/tickets", body, headers={"Cookie": cookie})
    assert (status, payload["error"]["code"]) == (403, "xsrf_failed")
    assert await world.ctx.cases.count(CaseQuery()) == 0
    status, _, payload = await raw(client, "POST", "/api/tickets", body,
                                   headers={"Cookie": cookie, "X-XSRFToken": cookies["_xsrf"]})
    assert status == 201, payload


async def test_revoked_token_cannot_open_the_live_feed(world):
    client = world.client.as_user()
    await client.login("disp-a", "x")
    await client.post("/api/logout", {})
    url = world.client.base.replace("http://", "ws://") + "/ws/live"
    ws = await tornado.websocket.websocket_connect(
        tornado.httpclient.HTTPRequest(url, headers={"Authorization": f"Bearer {client.token}"}))
    first = json.loads(await ws.read_message())
    assert first["type"] == "error" and await ws.read_message() is None
    assert ws.close_code == 4401


# -- throttling -----------------------------------------------------------------------------------


@pytest.fixture(params=["embedded", "server"])
async def limits(request):
    """The store's rate-limit events, on each engine: where the throttles count."""
    store = await open_test_store(request.param)
    yield store.limits
    await store.close_for_test()


async def test_backoff_grows_exponentially_and_is_capped(limits):
    backoff = Backoff(limits, "t", free=3, window=86400, base=30, cap=900)
    now, locks = 0.0, []
    for _ in range(60):  # an attacker retrying the moment each lock ends, for hours
        lock = await backoff.fail("k", now)
        locks.append(lock)
        now += lock or 1
    assert locks[:2] == [0, 0]
    assert locks[2:9] == [30, 60, 120, 240, 480, 900, 900]
    assert max(locks) == 900 and set(locks[8:]) == {900}
    assert now > 12 * 3600  # 60 guesses took the attacker more than half a day
    # And a lock never outlives the cap, however long the attacker keeps going.
    assert await backoff.retry_after("k", now) <= 900


async def test_attempts_during_a_lock_do_not_extend_it(limits):
    backoff = Backoff(limits, "t", free=2, window=3600, base=30, cap=900)
    await backoff.fail("k", 0)
    assert await backoff.fail("k", 1) == 30  # locked until 31
    for t in range(2, 31):  # hammering while locked
        await backoff.fail("k", t)
    assert await backoff.retry_after("k", 31) == 0
    assert await backoff.failures("k", 31) == 2


async def test_failures_leave_the_window_and_housekeeping_forgets_them():
    store = await open_store("embedded", "test")
    backoff = Backoff(store.limits, "t", free=2, window=100, base=30, cap=900)
    start = time.time() - 3 * 86400
    await backoff.fail("k", start)
    await backoff.fail("k", start + 1)
    assert await backoff.failures("k", start + 150) == 0
    assert await backoff.failures("k", start + 50) == 2
    for i in range(100):
        await backoff.fail(f"user{i}", start + 200)
    await store.housekeeping(datetime.now(timezone.utc))  # events older than two days go
    assert await store.limits.purge(datetime.now(timezone.utc)) == 0
    await store.close()


async def test_guessing_elsewhere_never_locks_the_account(limits):
    now = [0.0]
    throttle = LoginThrottle(limits, pair_free=3, address_free=20, account_slow_after=5, account_interval=2,
                             clock=lambda: now[0])
    for _ in range(10):
        await throttle.failed("op1", "203.0.113.9")  # somebody guessing elsewhere
    assert await throttle.admit("op1", "203.0.113.9") > 0  # that address is locked for this account
    assert await throttle.admit("op1", "10.0.0.1") == 0  # the real user's desk: at most slowed...
    assert await throttle.admit("op1", "10.0.0.2") == 2  # ...one attempt per 2 s on the account
    assert await throttle.admit("op1", "10.0.0.2", trusted_device=True) == 0  # the user's own browser is exempt
    now[0] = 2.0
    assert await throttle.admit("op1", "10.0.0.2") == 0  # the next slot


async def test_address_limit_catches_a_guesser_across_accounts(limits):
    now = [0.0]
    throttle = LoginThrottle(limits, pair_free=5, address_free=20, clock=lambda: now[0])
    for i in range(21):
        await throttle.failed(f"user{i}", "203.0.113.9")
    assert await throttle.admit("fresh-user", "203.0.113.9") == 30
    assert await throttle.admit("fresh-user", "10.0.0.1") == 0


async def test_no_lock_outlasts_the_cap(limits):
    now = [0.0]
    throttle = LoginThrottle(limits, pair_free=1, address_free=1, cap=900, clock=lambda: now[0])
    for _ in range(100):  # an attacker trying as fast as it is allowed, for a day
        wait = await throttle.admit("op1", "203.0.113.9")
        assert wait <= 900
        now[0] += wait
        await throttle.failed("op1", "203.0.113.9")
    assert await throttle.admit("op1", "203.0.113.9") <= 900


async def test_rate_limit_window(limits):
    now = [0.0]
    limit = RateLimit(limits, "r", 2, 60, clock=lambda: now[0])
    assert await limit.take("a") == 0 and await limit.take("a") == 0
    assert await limit.take("a") == 60 and await limit.take("b") == 0
    now[0] = 61
    assert await limit.take("a") == 0


async def test_rate_limit_is_not_passed_by_concurrent_takes(limits):
    limit = RateLimit(limits, "r", 3, 60)
    waits = await asyncio.gather(*[limit.take("a") for _ in range(10)])
    assert waits.count(0) <= 3


async def test_login_is_throttled_with_retry_after_and_success_resets(world):
    client = world.client.as_user()
    for _ in range(3):  # auth.login_max_failures=3 in this world
        status, _, body = await raw(client, "POST", "/api/login", {"username": "disp-a", "password": "wrong"})
        assert (status, body["error"]["code"]) == (401, "invalid_credentials")
    status, headers, body = await raw(client, "POST", "/api/login", {"username": "disp-a", "password": "wrong"})
    assert (status, body["error"]["code"]) == (429, "too_many_attempts")
    assert int(headers["Retry-After"]) == 30 and body["error"]["retry_after"] == 30
    status, _, _ = await raw(client, "POST", "/api/login", {"username": "disp-a", "password": "x"})
    assert status == 429  # even the right password waits: the lock is on (account, this address)
    status, _, _ = await raw(client, "POST", "/api/login", {"username": "op1", "password": "x"})
    assert status == 200  # other accounts are not affected
    throttle = world.ctx.throttle
    assert (await throttle.failures("disp-a", "127.0.0.1"))["pair"] == 3
    world.ctx.clock.advance(seconds=31)  # the 30 s pass
    status, _, _ = await raw(client, "POST", "/api/login", {"username": "disp-a", "password": "x"})
    assert status == 200
    failures = await throttle.failures("disp-a", "127.0.0.1")
    assert failures["pair"] == 0 and failures["account"] == 0  # success resets


async def test_unknown_accounts_are_throttled_like_real_ones(world):
    client = world.client.as_user()
    statuses = [(await raw(client, "POST", "/api/login", {"username": "nobody", "password": "x"}))[0]
                for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


# -- the admin API ----------------------------------------------------------------------------------


async def test_admin_creates_lists_resets_disables_and_enables_accounts(world):
    admin = world.as_("admin")
    status, body = await admin.post("/api/admin/users", {
        "username": "op9", "password": STRONG, "role": "operator", "scope": "990100", "name": "新接线员"})
    assert status == 201 and body["username"] == "op9" and "password_hash" not in body
    status, body = await admin.post("/api/admin/users", {
        "username": "op9", "password": STRONG, "role": "operator", "scope": "990100"})
    assert (status, body["error"]["code"]) == (409, "user_exists")
    status, body = await admin.get("/api/admin/users")
    assert status == 200 and "op9" in [u["username"] for u in body["items"]]
    assert not any("password_hash" in u or "tokens_valid_after" in u for u in body["items"])

    user = world.client.as_user()
    await user.login("op9", STRONG)
    assert (await user.get("/api/me"))[0] == 200

    new_password = "Quiet-River-4096?"
    status, body = await admin.request("PATCH", "/api/admin/users/op9", {"password": new_password})
    assert status == 200
    assert (await user.get("/api/me"))[0] == 401  # a reset revokes every token
    status, _ = await world.client.as_user().post("/api/login", {"username": "op9", "password": STRONG})
    assert status == 401
    await user.login("op9", new_password)

    status, body = await admin.request("PATCH", "/api/admin/users/op9", {"disabled": True})
    assert status == 200 and body["disabled"] is True
    assert (await user.get("/api/me"))[0] == 401
    status, _ = await world.client.as_user().post("/api/login", {"username": "op9", "password": new_password})
    assert status == 401
    status, body = await admin.request("PATCH", "/api/admin/users/op9", {"disabled": False})
    assert status == 200 and body["disabled"] is False
    await user.login("op9", new_password)

    status, body = await admin.get("/api/admin/audit?kind=admin_audit")
    assert [(r["action"], r["target"]) for r in body["items"]] == [
        ("enable", "op9"), ("disable", "op9"), ("reset_password", "op9"), ("create_user", "op9")]


async def test_admin_api_validates(world):
    admin = world.as_("admin")
    base = {"username": "new1", "password": STRONG, "role": "operator", "scope": "990100"}
    cases = [
        ({**base, "password": "short"}, 400, "weak_password"),
        ({**base, "role": "root"}, 400, "invalid_value"),
        ({**base, "scope": "nowhere"}, 422, "unknown_scope"),
        ({**base, "role": "department"}, 422, "unknown_department"),
        ({**base, "department": "A1-so"}, 400, "invalid_value"),
        ({**base, "username": "$where"}, 400, "invalid_value"),
        ({**base, "username": {"$ne": 1}}, 400, "invalid_type"),
        ({**base, "is_admin": True}, 400, "unknown_field"),
        ({**base, "password": 12345678901}, 400, "invalid_type"),
    ]
    for body, status, code in cases:
        got, payload = await admin.post("/api/admin/users", body)
        assert (got, payload["error"]["code"]) == (status, code), body
    assert await world.ctx.users.get("new1") is None
    got, payload = await admin.request("PATCH", "/api/admin/users/admin", {"disabled": True})
    assert (got, payload["error"]["code"]) == (409, "cannot_disable_self")
    got, payload = await admin.request("PATCH", "/api/admin/users/ghost", {"disabled": True})
    assert (got, payload["error"]["code"]) == (404, "user_not_found")
    got, payload = await admin.request("PATCH", "/api/admin/users/op1", {})
    assert (got, payload["error"]["code"]) == (400, "missing_field")
    got, payload = await admin.request("PATCH", "/api/admin/users/op1", {"role": "admin"})
    assert (got, payload["error"]["code"]) == (400, "unknown_field")


# -- the CLI ----------------------------------------------------------------------------------------


def test_cli_refuses_the_embedded_store(capsys):
    assert admin_cli.main(["--set", "storage.uri=embedded", "list"]) == 2
    err = capsys.readouterr().err
    assert "内嵌存储" in err and "/api/admin/users" in err


async def test_cli_commands_on_a_store(tmp_path_factory):
    """The commands themselves, on an embedded store standing in for MongoDB."""
    from small_city import write_small_city

    city, _ = loaded_city(write_small_city(tmp_path_factory.mktemp("cli-city")))
    storage = await open_store("embedded", "cli")
    users = storage.users
    accounts = Accounts(users, city, hasher=cached_hash)
    out = io.StringIO()

    def args(command, **kw):
        return Namespace(command=command, password_stdin=True, **kw)

    assert await admin_cli.run(args("create-user", username="boss", role="admin", scope=city.id,
                                    department=None, name="局长"), accounts, out, io.StringIO(STRONG + "\n")) == 0
    assert check_password(STRONG, (await users.get("boss"))["password_hash"])
    await admin_cli.run(args("reset-password", username="boss"), accounts, out, io.StringIO("Another-Secret-77\n"))
    doc = await users.get("boss")
    assert check_password("Another-Secret-77", doc["password_hash"]) and doc["tokens_valid_after"] > 0
    await admin_cli.run(args("disable", username="boss"), accounts, out)
    assert (await users.get("boss"))["disabled"] is True
    await admin_cli.run(args("enable", username="boss"), accounts, out)
    assert (await users.get("boss"))["disabled"] is False
    await admin_cli.run(args("list"), accounts, out)
    assert "boss" in out.getvalue() and "admin" in out.getvalue()
    with pytest.raises(ApiError) as err:
        await admin_cli.run(args("create-user", username="weak", role="operator", scope=city.id, department=None,
                                 name=None), accounts, out, io.StringIO("123\n"))
    assert err.value.code == "weak_password"
    await storage.close()


# -- users.yaml's public passwords on a real database ------------------------------------------


def test_demo_passwords_are_refused_only_on_a_persistent_store():
    assert demo_passwords_refused({"auth": {}}, persistent=True)
    assert not demo_passwords_refused({"auth": {"allow_demo_passwords": True}}, persistent=True)
    assert not demo_passwords_refused({"auth": {}}, persistent=False)


async def test_bootstrap_creates_no_account_when_refusing(tmp_path_factory):
    from small_city import write_small_city

    city, _ = loaded_city(write_small_city(tmp_path_factory.mktemp("boot-city")))
    storage = await open_store("embedded", "boot")
    users = storage.users
    assert await bootstrap_users(users, city, cached_hash, refuse_demo=True) == 0
    assert await users.all() == []
    assert await bootstrap_users(users, city, cached_hash) == len(city.users)
    await storage.close()


async def test_server_on_a_persistent_store_refuses_the_published_passwords(tmp_path_factory, monkeypatch):
    original = dispatch.app.open_store

    async def persistent_storage(uri, database):
        storage = await original(uri, database)
        storage.persistent = True  # stands in for mongodb:// (no MongoDB server in the test run)
        return storage

    monkeypatch.setattr(dispatch.app, "open_store", persistent_storage)
    world = await make_world(tmp_path_factory, "auth.allow_demo_passwords=false", populate=False)
    try:
        assert await world.ctx.users.all() == []  # users.yaml accounts were not created
        # An account created earlier with a published password (e.g. before the switch):
        await world.ctx.users.insert_if_absent({"_id": "op1", "password_hash": cached_hash("x"), "role": "operator",
                                                "scope": "990100", "disabled": False})
        status, body = await world.client.as_user().post("/api/login", {"username": "op1", "password": "x"})
        assert (status, body["error"]["code"]) == (403, "demo_password_refused")
    finally:
        await close_world(world)


async def test_allow_demo_passwords_lets_a_demo_run_on_mongodb(tmp_path_factory, monkeypatch):
    original = dispatch.app.open_store

    async def persistent_storage(uri, database):
        storage = await original(uri, database)
        storage.persistent = True
        return storage

    monkeypatch.setattr(dispatch.app, "open_store", persistent_storage)
    world = await make_world(tmp_path_factory, "auth.allow_demo_passwords=true", populate=False)
    try:
        status, _ = await world.client.as_user().post("/api/login", {"username": "op1", "password": "x"})
        assert status == 200
    finally:
        await close_world(world)

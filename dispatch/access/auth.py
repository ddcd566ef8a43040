"""Accounts: password hashing (scrypt), JWT session tokens and their revocation, account
administration, and the bootstrap accounts of the city package (refused on a real database)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from dataclasses import dataclass

import jwt

from dispatch.errors import bad_request, conflict, not_found, unprocessable
from dispatch.clock import utcnow
from geo.city import ROLES  # noqa: F401 - the city model's roles (re-exported)

log = logging.getLogger(__name__)

# The web pages carry the same signed token in an HttpOnly cookie instead of a header.
SESSION_COOKIE = "session"


# scrypt is memory-hard (N=2^14, r=8 → 16 MiB per hash) and in the standard library.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, maxmem=64 * 1024 * 1024, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except (AttributeError, ValueError):
        return False
    if scheme != "scrypt":
        return False
    salt = base64.b64decode(salt_b64)
    digest = hashlib.scrypt(password.encode(), salt=salt, maxmem=64 * 1024 * 1024, **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


@dataclass(frozen=True)
class User:
    username: str
    role: str
    scope: str
    department: str | None = None
    name: str | None = None

    def public(self) -> dict:
        return {
            "username": self.username,
            "role": self.role,
            "scope": self.scope,
            "department": self.department,
            "name": self.name,
        }

    @classmethod
    def from_doc(cls, doc: dict) -> "User":
        return cls(doc["_id"], doc["role"], doc["scope"], doc.get("department"), doc.get("name"))


def _derive(master: bytes, purpose: str) -> bytes:
    """One key per purpose from the one secret: a session token can never pass for a device
    cookie or an XSRF token, and a short `auth.secret` still gives a full-length HMAC key."""
    return hmac.new(master, b"citydispatch/" + purpose.encode(), hashlib.sha256).digest()


def issued_ms(claims: dict) -> int:
    """`iat` in milliseconds: a password reset revokes every token issued before it
    (`tokens_valid_after`), and a login right after the reset must not fall in its second."""
    return int(round(claims["iat"] * 1000))


class TokenSigner:
    """JWTs (RFC 7519) through PyJWT, HS256 only: `sub` (username), `iat` (seconds, to the
    millisecond), `exp`, `jti` (random id; logout revokes it). The same secret derives the keys
    of the XSRF token bound to a session and of the trusted-device cookie."""

    ALGORITHM = "HS256"
    REQUIRED = ["sub", "iat", "exp", "jti"]
    # Seconds the clocks of two server hosts may differ by: a token issued by a host whose
    # clock runs ahead is not refused as issued in the future by another.
    LEEWAY = 5

    def __init__(self, secret: str | None, ttl_seconds: int):
        # Empty secret: a random one per start (tokens do not survive a restart).
        master = secret.encode() if secret else secrets.token_bytes(32)
        self._key = _derive(master, "session")
        self._xsrf_key = _derive(master, "xsrf")
        self._device_key = _derive(master, "device")
        self.ttl = int(ttl_seconds)

    def issue(self, username: str, now: float | None = None) -> str:
        now = time.time() if now is None else now
        # Cut, never rounded, to the millisecond: a rounded-up `iat` lies in the future for the
        # first half-millisecond, and a token checked that soon (the login's own XSRF cookie)
        # was refused as not yet valid.
        payload = {"sub": username, "iat": math.floor(now * 1000) / 1000, "exp": int(now + self.ttl),
                   "jti": secrets.token_hex(12)}
        return jwt.encode(payload, self._key, algorithm=self.ALGORITHM)

    def claims(self, token) -> dict | None:
        """`{sub, iat, exp, jti}` of a genuine, unexpired token; None if forged, malformed or expired."""
        return self._decode(token, self._key, self.REQUIRED)

    def verify(self, token) -> str | None:
        """The username the token was issued to, or None if forged, malformed or expired.

        Signature and expiry only: `Sessions.user_for` also honours logout and disabling.
        """
        claims = self.claims(token)
        return claims["sub"] if claims else None

    def xsrf_token(self, claims: dict) -> str:
        """The XSRF token of one session: only the holder of that session's cookie gets it (at
        login), and it dies with the session — unlike a double-submit value anybody can pick."""
        return hmac.new(self._xsrf_key, claims["jti"].encode(), hashlib.sha256).hexdigest()

    def xsrf_matches(self, claims: dict, presented) -> bool:
        return isinstance(presented, str) and hmac.compare_digest(presented.encode(), self.xsrf_token(claims).encode())

    def device_token(self, username: str, days: float) -> str:
        """The trusted-device cookie: this browser logged in as `username` successfully."""
        now = time.time()
        payload = {"sub": username, "iat": int(now), "exp": int(now + days * 86400), "typ": "device"}
        return jwt.encode(payload, self._device_key, algorithm=self.ALGORITHM)

    def device_user(self, token) -> str | None:
        claims = self._decode(token, self._device_key, ["sub", "exp", "typ"])
        return claims["sub"] if claims and claims.get("typ") == "device" else None

    def _decode(self, token, key: bytes, required: list[str]) -> dict | None:
        if not isinstance(token, str) or len(token) > 1024:
            return None
        try:
            # `algorithms` is fixed: the token's own `alg` header never chooses (no "none", no RS/HS mix-up).
            claims = jwt.decode(token, key, algorithms=[self.ALGORITHM], options={"require": required},
                                leeway=self.LEEWAY)
        except jwt.PyJWTError:
            return None
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("iat", 0), (int, float)):
            return None
        if "jti" in required and not isinstance(claims.get("jti"), str):
            return None
        return claims


class Sessions:
    """Tokens in use: which user a token stands for right now, and revoking them.

    A token dies when it expires, when it is logged out (its `jti` is kept in `revoked` until
    the token would have expired anyway), and when its user is disabled or has the password
    reset (`tokens_valid_after` on the user: every token issued before that instant).

    Whether a jti is revoked is cached for a few seconds: one process sees its own logouts at
    once; with several processes on one MongoDB, another process's logout takes effect within
    `cache_seconds`. Disabling and resets are read from the user document on every request.
    """

    def __init__(self, signer: TokenSigner, users, revoked, cache_seconds: float = 5.0, clock=time.monotonic):
        self.signer = signer
        self.users = users
        self.revoked = revoked
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._known: dict[str, tuple[bool, float]] = {}  # jti → (revoked, checked at)

    async def user_for(self, token) -> User | None:
        return await self.user_for_claims(self.signer.claims(token))

    async def user_for_claims(self, claims: dict | None) -> User | None:
        """The user a verified token's claims stand for right now, or None."""
        if claims is None:
            return None
        doc = await self.users.get(claims["sub"])
        return User.from_doc(doc) if await self._alive(claims, doc) else None

    async def alive(self, sessions: list[dict]) -> list[bool]:
        """Whether each of these sessions (claims) still stands, reading each user only once:
        what the live feed checks its open sockets with."""
        docs: dict[str, dict | None] = {}
        verdicts = []
        for claims in sessions:
            username = claims["sub"]
            if username not in docs:
                docs[username] = await self.users.get(username)
            verdicts.append(await self._alive(claims, docs[username]))
        return verdicts

    async def _alive(self, claims: dict, doc: dict | None) -> bool:
        if claims["exp"] <= time.time() or await self._is_revoked(claims["jti"]):
            return False
        if doc is None or doc.get("disabled"):
            return False
        return issued_ms(claims) >= int(doc.get("tokens_valid_after") or 0)

    async def revoke(self, token) -> bool:
        """Log one token out; False if it was not a live token anyway."""
        claims = self.signer.claims(token)
        if claims is None:
            return False
        await self.revoked.add(claims["jti"], claims["sub"], claims["exp"])
        self._known[claims["jti"]] = (True, self.clock())
        return True

    async def revoke_all(self, username: str) -> None:
        """Every token of this user issued until now stops working (reset, disable)."""
        await self.users.update(username, revoke_all_fields())

    async def _is_revoked(self, jti: str) -> bool:
        now = self.clock()
        known = self._known.get(jti)
        if known is not None and (known[0] or now - known[1] < self.cache_seconds):
            return known[0]
        revoked = await self.revoked.contains(jti)
        if len(self._known) > 100_000:
            self._known.clear()
        self._known[jti] = (revoked, now)
        return revoked


def revoke_all_fields() -> dict:
    """User fields that kill every token issued until now (`iat` is in milliseconds)."""
    return {"tokens_valid_after": int(time.time() * 1000) + 1}


# -- accounts ---------------------------------------------------------------------------------

USERNAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{1,63}"
PASSWORD_MIN = 10
PASSWORD_MAX = 256


def password_problem(password: str, username: str = "") -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password) < PASSWORD_MIN:
        return f"密码至少 {PASSWORD_MIN} 个字符"
    if len(password) > PASSWORD_MAX:
        return f"密码最多 {PASSWORD_MAX} 个字符"
    if username and username.lower() in password.lower():
        return "密码不能包含用户名"
    if len(set(password)) < 4:
        return "密码过于简单"
    return None


def demo_passwords_refused(config: dict, persistent: bool) -> bool:
    """users.yaml is public in the repository: on a real database its passwords are refused
    unless `auth.allow_demo_passwords` says this is a demo on purpose."""
    return persistent and not config.get("auth", {}).get("allow_demo_passwords", False)


def is_demo_password(city, username: str, password: str) -> bool:
    """The password is the one users.yaml publishes for this account."""
    return any(item.get("username") == username and str(item.get("password")) == password
               for item in getattr(city, "users", None) or [])


async def bootstrap_users(users_store, city, hasher=hash_password, refuse_demo: bool = False) -> int:
    """Create the city package's accounts that do not exist yet; never overwrite a password.

    With `refuse_demo` (a real MongoDB without `auth.allow_demo_passwords`) none are created:
    their passwords are published in the repository.
    """
    if refuse_demo:
        if city.users:
            log.warning(
                "存储为 MongoDB: 拒绝用 users.yaml 中公开的演示密码创建 %d 个账号（%s）。请用 "
                "`python -m dispatch.tools.admin_cli create-user` 创建账号，或在 config.yaml 设置 "
                "auth.allow_demo_passwords: true（仅限演示）",
                len(city.users), ", ".join(str(u["username"]) for u in city.users),
            )
        return 0
    created = 0
    for item in city.users:
        if await users_store.get(item["username"]) is not None:
            continue
        doc = {
            "_id": item["username"],
            "password_hash": hasher(str(item["password"])),
            "role": item["role"],
            "scope": str(item["scope"]),
            "department": item.get("department"),
            "name": item.get("name") or item["username"],
            "disabled": False,
        }
        if await users_store.insert_if_absent(doc):
            created += 1
    if created:
        log.info("created %d bootstrap accounts from users.yaml", created)
    return created


def account_view(doc: dict) -> dict:
    """An account as administrators see it: never the hash, never token bookkeeping."""
    return {
        "username": doc["_id"],
        "role": doc["role"],
        "scope": doc["scope"],
        "department": doc.get("department"),
        "name": doc.get("name"),
        "disabled": bool(doc.get("disabled")),
        "created_at": _iso(doc.get("created_at")),
        "password_changed_at": _iso(doc.get("password_changed_at")),
    }


def _iso(value):
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else value


class Accounts:
    """Creating accounts, resetting passwords, disabling and enabling: the admin API and the CLI.

    Every check raises an `ApiError` (the CLI prints its message). Resetting a password and
    disabling an account revoke every token the account holds.
    """

    def __init__(self, users, city, hasher=hash_password):
        self.users = users
        self.city = city
        self.hasher = hasher

    def check_new(self, username, password, role, scope, department, name) -> dict:
        """The account document for these fields, or the ApiError that says what is wrong."""
        if not isinstance(username, str) or not re.fullmatch(USERNAME_PATTERN, username):
            raise bad_request("用户名须为 2~64 位字母、数字或 _ . -，以字母或数字开头", code="invalid_value",
                              field="username")
        if role not in ROLES:
            raise bad_request(f"角色无效，可选: {', '.join(ROLES)}", code="invalid_value", field="role")
        if scope != self.city.id and scope not in self.city.jurisdictions:
            raise unprocessable(f"未知的辖区 {scope}", code="unknown_scope", field="scope")
        if role == "department":
            if not department or department not in self.city.departments:
                raise unprocessable(f"部门账号须指定本市已有的部门，收到 {department!r}", code="unknown_department",
                                    field="department")
        elif department:
            raise bad_request("只有部门账号（role=department）可以指定部门", code="invalid_value", field="department")
        self.check_password(password, username)
        return {
            "_id": username, "role": role, "scope": scope, "department": department if role == "department" else None,
            "name": name or username, "disabled": False,
        }

    def check_password(self, password, username: str) -> None:
        problem = password_problem(password, username) if isinstance(password, str) else "密码必须是字符串"
        if problem:
            raise bad_request(problem, code="weak_password", field="password")

    async def create(self, username, password, role, scope, department=None, name=None) -> dict:
        doc = self.check_new(username, password, role, scope, department, name)
        now = _now()
        doc.update({"password_hash": await _hash(self.hasher, password), "created_at": now, "password_changed_at": now})
        if not await self.users.insert_if_absent(doc):
            raise conflict(f"账号 {username} 已存在", code="user_exists")
        return doc

    async def reset_password(self, username: str, password) -> dict:
        await self.get(username)
        self.check_password(password, username)
        fields = {"password_hash": await _hash(self.hasher, password), "password_changed_at": _now(),
                  **revoke_all_fields()}
        return await self.users.update(username, fields)

    async def set_disabled(self, username: str, disabled: bool) -> dict:
        await self.get(username)
        fields = {"disabled": disabled, **(revoke_all_fields() if disabled else {})}
        return await self.users.update(username, fields)

    async def set_scope(self, username: str, scope: str) -> dict:
        """Move an account to another jurisdiction; its tokens are revoked, so every page it has
        open signs in again and sees the new scope."""
        await self.get(username)
        if scope != self.city.id and scope not in self.city.jurisdictions:
            raise unprocessable(f"未知的辖区 {scope}", code="unknown_scope", field="scope")
        return await self.users.update(username, {"scope": scope, **revoke_all_fields()})

    async def get(self, username: str) -> dict:
        doc = await self.users.get(username)
        if doc is None:
            raise not_found(f"账号 {username} 不存在", code="user_not_found")
        return doc

    async def all(self) -> list[dict]:
        return await self.users.all()


def _now():
    return utcnow()


async def _hash(hasher, password: str) -> str:
    """scrypt takes tens of milliseconds: off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, hasher, password)

"""Accounts: password hashing (scrypt), signed expiring tokens and their revocation, account
administration, and the bootstrap accounts of the city package (refused on a real database)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from dispatch.errors import bad_request, conflict, not_found, unprocessable

log = logging.getLogger(__name__)

# The web pages carry the same signed token in an HttpOnly cookie instead of a header.
SESSION_COOKIE = "session"

ROLES = ("grid_worker", "operator", "dispatcher", "department", "commander", "admin")

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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """`payload.signature`, HMAC-SHA256 over the JSON payload; the payload carries the expiry."""

    def __init__(self, secret: str | None, ttl_seconds: int):
        self._key = (secret or secrets.token_hex(32)).encode()
        self.ttl = int(ttl_seconds)

    def issue(self, username: str, now: float | None = None) -> str:
        now = time.time() if now is None else now
        # `iat` in milliseconds: a password reset revokes every token issued before it
        # (`tokens_valid_after`), and a login right after the reset must not fall in its second.
        payload = {"u": username, "iat": int(now * 1000), "exp": int(now + self.ttl),
                   "n": secrets.token_hex(12)}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return body + "." + _b64(self._sign(body))

    def claims(self, token, now: float | None = None) -> dict | None:
        """`{u, iat, exp, n}` of a genuine, unexpired token; None if forged, malformed or expired."""
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 1024:
            return None
        body, signature = token.split(".")
        try:
            if not hmac.compare_digest(_unb64(signature), self._sign(body)):
                return None
            payload = json.loads(_unb64(body))
        except (ValueError, TypeError):
            return None
        now = time.time() if now is None else now
        if not isinstance(payload, dict):
            return None
        exp, username, nonce = payload.get("exp"), payload.get("u"), payload.get("n")
        if not isinstance(exp, int) or exp < now or not isinstance(username, str) or not isinstance(nonce, str):
            return None
        iat = payload.get("iat")
        if not isinstance(iat, int):
            iat = (exp - self.ttl) * 1000
        return {"u": username, "iat": iat, "exp": exp, "n": nonce}

    def verify(self, token, now: float | None = None) -> str | None:
        """The username the token was issued to, or None if forged, malformed or expired.

        Signature and expiry only: `Sessions.user_for` also honours logout and disabling.
        """
        claims = self.claims(token, now)
        return claims["u"] if claims else None

    def _sign(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode(), hashlib.sha256).digest()


class Sessions:
    """Tokens in use: which user a token stands for right now, and revoking them.

    A token dies when it expires, when it is logged out (its nonce is kept in `revoked` until
    the token would have expired anyway), and when its user is disabled or has the password
    reset (`tokens_valid_after` on the user: every token issued before that instant).

    Whether a nonce is revoked is cached for a few seconds: one process sees its own logouts at
    once; with several processes on one MongoDB, another process's logout takes effect within
    `cache_seconds`. Disabling and resets are read from the user document on every request.
    """

    def __init__(self, signer: TokenSigner, users, revoked, cache_seconds: float = 5.0, clock=time.monotonic):
        self.signer = signer
        self.users = users
        self.revoked = revoked
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._known: dict[str, tuple[bool, float]] = {}  # nonce → (revoked, checked at)

    async def user_for(self, token) -> User | None:
        claims = self.signer.claims(token)
        if claims is None or await self._is_revoked(claims["n"]):
            return None
        doc = await self.users.get(claims["u"])
        if doc is None or doc.get("disabled"):
            return None
        if claims["iat"] < int(doc.get("tokens_valid_after") or 0):
            return None
        return User.from_doc(doc)

    async def revoke(self, token) -> bool:
        """Log one token out; False if it was not a live token anyway."""
        claims = self.signer.claims(token)
        if claims is None:
            return False
        await self.revoked.add(claims["n"], claims["u"], claims["exp"])
        self._known[claims["n"]] = (True, self.clock())
        return True

    async def revoke_all(self, username: str) -> None:
        """Every token of this user issued until now stops working (reset, disable)."""
        await self.users.update(username, revoke_all_fields())

    async def _is_revoked(self, nonce: str) -> bool:
        now = self.clock()
        known = self._known.get(nonce)
        if known is not None and (known[0] or now - known[1] < self.cache_seconds):
            return known[0]
        revoked = await self.revoked.contains(nonce)
        if len(self._known) > 100_000:
            self._known.clear()
        self._known[nonce] = (revoked, now)
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

    async def get(self, username: str) -> dict:
        doc = await self.users.get(username)
        if doc is None:
            raise not_found(f"账号 {username} 不存在", code="user_not_found")
        return doc

    async def all(self) -> list[dict]:
        return await self.users.all()


def _now():
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def _hash(hasher, password: str) -> str:
    """scrypt takes tens of milliseconds: off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, hasher, password)

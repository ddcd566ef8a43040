"""Accounts: password hashing, signed expiring tokens, bootstrap users from the city package."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass

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
        payload = {"u": username, "exp": int(now + self.ttl), "n": secrets.token_hex(8)}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return body + "." + _b64(self._sign(body))

    def verify(self, token: str, now: float | None = None) -> str | None:
        """The username the token was issued to, or None if forged, malformed or expired."""
        if not isinstance(token, str) or token.count(".") != 1:
            return None
        body, signature = token.split(".")
        try:
            if not hmac.compare_digest(_unb64(signature), self._sign(body)):
                return None
            payload = json.loads(_unb64(body))
        except (ValueError, TypeError):
            return None
        now = time.time() if now is None else now
        if not isinstance(payload, dict) or payload.get("exp", 0) < now:
            return None
        username = payload.get("u")
        return username if isinstance(username, str) else None

    def _sign(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode(), hashlib.sha256).digest()


async def bootstrap_users(users_store, city, hasher=hash_password) -> int:
    """Create the city package's accounts that do not exist yet; never overwrite a password."""
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

"""Login throttling and per-user rate limits, counted in the store so every server process
shares them (SPEC §7: security state lives in the database).

Password guessing is slowed three ways, none of which lets a stranger lock a user out:

* **per (account, address)** — `free` failures within a day from one address lock that
  account *for that address* for an exponentially growing time (30 s, 60 s, 2 min, ...) capped at
  `cap` (15 min). Attempts refused during a lock are not counted, so an attacker cannot push the
  lock further out by hammering, and no lock outlasts the cap. The real user at another address
  is not affected.
* **per client address** — the same back-off over all accounts tried from one address (window:
  an hour): what catches a guesser trying many accounts.
* **per account** — after `account_slow_after` failures within a day from anywhere, attempts on
  the account are spaced at least `account_interval` seconds apart (429 with a Retry-After of a
  few seconds): it slows a guesser spread over many addresses, it never locks. A browser holding
  the account's trusted-device cookie (set at a successful login) is exempt.

A successful login clears the failures of the account and of (account, address). Refused
attempts never reach the password hash, and at most `hash_concurrency` hashes run at once with
`hash_queue` more waiting (beyond that: 503 at once), so guessing cannot starve real logins of CPU.
That last bound is per process on purpose: it protects this process's CPU.

The rules are here; the counting is the store's `limits` repository (one event per failure,
per slot taken, per reveal: inserts, never an increment, which FerretDB 1.24 would lose), so N
server processes allow the attempts of one, not N times as many. Times are wall-clock seconds
(`clock`, default `time.time`), the same in every process. Events older than two days are
deleted by the store's `housekeeping`, so no window here may be longer than a day.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from datetime import datetime, timezone

from dispatch.errors import ApiError


def _at(seconds: float) -> datetime:
    """A clock reading as the store keeps it: UTC, whole milliseconds."""
    return datetime.fromtimestamp(math.floor(seconds * 1000) / 1000, timezone.utc)


def _key(*parts: str) -> str:
    """Parts joined unambiguously; control characters escaped (PostgreSQL's jsonb refuses NUL)."""
    def escaped(part: str) -> str:
        return "".join(c if c.isprintable() and c not in "\\|" else f"\\u{ord(c):04x}" for c in part)
    return "|".join(escaped(p) for p in parts)


class Backoff:
    """Failures of one key within a sliding window → how long that key is locked.

    The lock is computed from the failures themselves: the latest one, at t, locks the key until
    t + min(cap, base · 2^(n − free)), n being the failures in the window ending at t. A failure
    while locked is not recorded."""

    def __init__(self, limits, prefix: str, free: int, window: float, base: float, cap: float):
        self.limits = limits
        self.prefix = prefix
        self.free = free
        self.window = window
        self.base = base
        self.cap = cap

    def _key(self, key: str) -> str:
        return _key(self.prefix, key)

    async def _failures(self, key: str, now: float) -> list[float]:
        # The lock of the latest failure is at most `cap` long, and it counted a window back.
        return [t.timestamp() for t in await self.limits.times(self._key(key), _at(now - self.window - self.cap))]

    def _locked_until(self, times: list[float]) -> float:
        if not times:
            return 0.0
        last = times[-1]
        over = sum(1 for t in times if t > last - self.window) - self.free
        if over < 0:
            return 0.0
        return last + min(self.cap, self.base * 2 ** min(over, 32))

    async def retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` may try again (0: now)."""
        return max(0.0, self._locked_until(await self._failures(key, now)) - now)

    async def fail(self, key: str, now: float) -> float:
        """Record a failure; returns the lock it caused in seconds (0: none yet)."""
        times = await self._failures(key, now)
        locked_until = self._locked_until(times)
        if locked_until > now:
            return locked_until - now  # refused attempts do not extend a lock
        await self.limits.record(self._key(key), _at(now))
        return max(0.0, self._locked_until([*times, _at(now).timestamp()]) - now)

    async def failures(self, key: str, now: float) -> int:
        return await self.limits.count(self._key(key), _at(now - self.window))

    async def reset(self, key: str) -> None:
        await self.limits.clear(self._key(key))


class Slowdown:
    """Failures of one key within a sliding window → a minimum spacing between attempts once
    there are `free` of them. Never a lock: the wait is at most `interval`.

    Taking the slot records a slot event whose id names the `interval`-long period it falls in,
    so of two processes taking it at once only one gets it (an insert-once claim); a slot taken
    within the last `interval` refuses the attempt."""

    def __init__(self, limits, prefix: str, free: int, window: float, interval: float):
        self.limits = limits
        self.prefix = prefix
        self.free = free
        self.window = window
        self.interval = interval

    async def admit(self, key: str, now: float) -> float:
        """0 and the key's next slot is taken; else seconds until the slot frees."""
        if await self.failures(key, now) < self.free:
            return 0.0
        slots = _key(self.prefix + ":slot", key)
        taken = await self.limits.times(slots, _at(now - self.interval))
        if taken:
            return max(0.001, taken[-1].timestamp() + self.interval - now)
        period = math.floor(now / self.interval) if self.interval > 0 else now
        if not await self.limits.record(slots, _at(now), f"{slots}#{period}"):
            return max(0.001, (period + 1) * self.interval - now)  # another process took it
        return 0.0

    async def fail(self, key: str, now: float) -> None:
        await self.limits.record(_key(self.prefix, key), _at(now))

    async def failures(self, key: str, now: float) -> int:
        return await self.limits.count(_key(self.prefix, key), _at(now - self.window))

    async def reset(self, key: str) -> None:
        await self.limits.clear(_key(self.prefix, key))
        await self.limits.clear(_key(self.prefix + ":slot", key))


class HashingLimit:
    """At most `concurrency` password hashes at once (each is ~16 MiB and tens of ms of scrypt),
    at most `queue` more waiting; beyond that the request is refused at once (503)."""

    def __init__(self, concurrency: int = 2, queue: int = 8):
        self.concurrency = max(1, int(concurrency))
        self.queue = max(0, int(queue))
        self._semaphore = asyncio.Semaphore(self.concurrency)
        self._pending = 0  # running + waiting

    async def run(self, fn, *args):
        if self._pending >= self.concurrency + self.queue:
            raise ApiError(503, "busy", "登录请求过多，请稍后再试", retry_after=1)
        self._pending += 1
        try:
            async with self._semaphore:
                return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
        finally:
            self._pending -= 1


class LoginThrottle:
    def __init__(self, limits, *, pair_free: int = 5, address_free: int = 20, account_slow_after: int = 10,
                 account_interval: float = 2.0, pair_window: float = 86400.0, address_window: float = 3600.0,
                 account_window: float = 86400.0, base: float = 30.0, cap: float = 900.0,
                 hash_concurrency: int = 2, hash_queue: int = 8, clock=time.time):
        # A pair's failures are remembered for a day: a patient guesser at one address stays at
        # the cap (at most one guess per `cap`, ~96 a day). An address's for an hour: a busy office
        # behind one NAT address recovers quickly from its typos.
        self.pairs = Backoff(limits, "login:pair", pair_free, pair_window, base, cap)
        self.addresses = Backoff(limits, "login:addr", address_free, address_window, base, cap)
        self.accounts = Slowdown(limits, "login:acct", account_slow_after, account_window, account_interval)
        self.hashing = HashingLimit(hash_concurrency, hash_queue)  # this process's CPU: per process
        self.clock = clock

    @classmethod
    def from_config(cls, auth: dict, limits, clock=time.time) -> "LoginThrottle":
        return cls(
            limits, clock=clock,
            pair_free=int(auth.get("login_max_failures", 5)),
            address_free=int(auth.get("address_max_failures", 20)),
            cap=float(auth.get("lockout_max_seconds", 900)),
            account_slow_after=int(auth.get("account_slow_after", 10)),
            account_interval=float(auth.get("account_slow_seconds", 2)),
            hash_concurrency=int(auth.get("hash_concurrency", 2)),
            hash_queue=int(auth.get("hash_queue", 8)),
        )

    async def admit(self, username: str, address: str, trusted_device: bool = False) -> int:
        """Whole seconds the caller must wait before this attempt is even checked (0: go, and
        the attempt takes the account's slot if the account is being slowed)."""
        now = self.clock()
        wait = max(await self.addresses.retry_after(address, now),
                   await self.pairs.retry_after(pair_key(username, address), now))
        if not wait and not trusted_device:
            wait = await self.accounts.admit(username, now)
        return math.ceil(wait)

    async def failed(self, username: str, address: str) -> None:
        now = self.clock()
        await self.pairs.fail(pair_key(username, address), now)
        await self.addresses.fail(address, now)
        await self.accounts.fail(username, now)

    async def succeeded(self, username: str, address: str) -> None:
        await self.pairs.reset(pair_key(username, address))
        await self.accounts.reset(username)

    async def failures(self, username: str, address: str) -> dict:
        """Failures now counted against the pair, the address and the account."""
        now = self.clock()
        return {"pair": await self.pairs.failures(pair_key(username, address), now),
                "address": await self.addresses.failures(address, now),
                "account": await self.accounts.failures(username, now)}


def pair_key(username: str, address: str) -> str:
    return _key(username, address)


class RateLimit:
    """At most `limit` events per key within a sliding window (e.g. caller reveals per user).

    An event is recorded first and counted after, and withdrawn if it is over the limit: of
    several taken at once in several processes, none gets past the limit (at worst one more is
    refused than had to be)."""

    def __init__(self, limits, prefix: str, limit: int, window: float, clock=time.time):
        self.limits = limits
        self.prefix = prefix
        self.limit = limit
        self.window = window
        self.clock = clock

    async def take(self, key: str) -> int:
        """Count one event; 0 if allowed, else the whole seconds until one would be."""
        now, key = self.clock(), _key(self.prefix, key)
        event_id = f"{key}#{secrets.token_hex(8)}"
        await self.limits.record(key, _at(now), event_id)
        times = await self.limits.times(key, _at(now - self.window))
        if len(times) <= self.limit:
            return 0
        await self.limits.remove(event_id)
        return max(1, math.ceil(times[0].timestamp() + self.window - now))

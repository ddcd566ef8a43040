"""Login throttling and per-user rate limits, kept in this process's memory.

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

The state is per process: N server processes allow at most N times the attempts, still bounded.
Keys are pruned so that a flood of made-up usernames cannot grow memory without limit.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from dataclasses import dataclass, field

from dispatch.errors import ApiError


@dataclass
class _Track:
    failures: collections.deque = field(default_factory=collections.deque)
    locked_until: float = 0.0


class Backoff:
    """Failures of one key within a sliding window → how long that key is locked."""

    def __init__(self, free: int, window: float, base: float, cap: float, max_keys: int = 100_000):
        self.free = free
        self.window = window
        self.base = base
        self.cap = cap
        self.max_keys = max_keys
        self._tracks: dict[str, _Track] = {}

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` may try again (0: now)."""
        track = self._tracks.get(key)
        return max(0.0, track.locked_until - now) if track else 0.0

    def fail(self, key: str, now: float) -> float:
        """Record a failure; returns the lock it caused in seconds (0: none yet)."""
        track = self._tracks.get(key)
        if track is None:
            self._prune(now)
            track = self._tracks[key] = _Track()
        if track.locked_until > now:
            return track.locked_until - now  # refused attempts do not extend a lock
        self._expire(track, now)
        track.failures.append(now)
        over = len(track.failures) - self.free  # the free-th failure locks for `base`
        if over < 0:
            return 0.0
        lock = min(self.cap, self.base * 2 ** min(over, 32))
        track.locked_until = now + lock
        return lock

    def failures(self, key: str, now: float) -> int:
        track = self._tracks.get(key)
        if track is None:
            return 0
        self._expire(track, now)
        return len(track.failures)

    def reset(self, key: str) -> None:
        self._tracks.pop(key, None)

    def _expire(self, track: _Track, now: float) -> None:
        while track.failures and track.failures[0] <= now - self.window:
            track.failures.popleft()

    def _prune(self, now: float) -> None:
        if len(self._tracks) < self.max_keys:
            return
        for key in [k for k, t in self._tracks.items()
                    if t.locked_until <= now and (not t.failures or t.failures[-1] <= now - self.window)]:
            del self._tracks[key]
        if len(self._tracks) >= self.max_keys:
            # Still full of live keys (a flood): forget the oldest half rather than grow.
            for key in list(self._tracks)[: self.max_keys // 2]:
                del self._tracks[key]


class Slowdown:
    """Failures of one key within a sliding window → a minimum spacing between attempts once
    there are `free` of them. Never a lock: the wait is at most `interval`."""

    def __init__(self, free: int, window: float, interval: float, max_keys: int = 100_000):
        self.free = free
        self.window = window
        self.interval = interval
        self.max_keys = max_keys
        self._failures: dict[str, collections.deque] = {}
        self._next: dict[str, float] = {}  # key → earliest next attempt while slowed

    def admit(self, key: str, now: float) -> float:
        """0 and the key's next slot is taken; else seconds until the slot frees."""
        if self.failures(key, now) < self.free:
            return 0.0
        wait = self._next.get(key, 0.0) - now
        if wait > 0:
            return wait
        self._next[key] = now + self.interval
        return 0.0

    def fail(self, key: str, now: float) -> None:
        failures = self._failures.get(key)
        if failures is None:
            if len(self._failures) >= self.max_keys:
                # A flood of made-up names: forget the oldest half rather than grow.
                for old in list(self._failures)[: self.max_keys // 2]:
                    self._failures.pop(old, None)
                    self._next.pop(old, None)
            failures = self._failures[key] = collections.deque()
        failures.append(now)

    def failures(self, key: str, now: float) -> int:
        failures = self._failures.get(key)
        if failures is None:
            return 0
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return len(failures)

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)
        self._next.pop(key, None)


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
    def __init__(self, *, pair_free: int = 5, address_free: int = 20, account_slow_after: int = 10,
                 account_interval: float = 2.0, pair_window: float = 86400.0, address_window: float = 3600.0,
                 account_window: float = 86400.0, base: float = 30.0, cap: float = 900.0,
                 hash_concurrency: int = 2, hash_queue: int = 8, clock=time.monotonic):
        # A pair's failures are remembered for a day: a patient guesser at one address stays at
        # the cap (at most one guess per `cap`, ~96 a day). An address's for an hour: a busy office
        # behind one NAT address recovers quickly from its typos.
        self.pairs = Backoff(pair_free, pair_window, base, cap)
        self.addresses = Backoff(address_free, address_window, base, cap)
        self.accounts = Slowdown(account_slow_after, account_window, account_interval)
        self.hashing = HashingLimit(hash_concurrency, hash_queue)
        self.clock = clock

    @classmethod
    def from_config(cls, auth: dict) -> "LoginThrottle":
        return cls(
            pair_free=int(auth.get("login_max_failures", 5)),
            address_free=int(auth.get("address_max_failures", 20)),
            cap=float(auth.get("lockout_max_seconds", 900)),
            account_slow_after=int(auth.get("account_slow_after", 10)),
            account_interval=float(auth.get("account_slow_seconds", 2)),
            hash_concurrency=int(auth.get("hash_concurrency", 2)),
            hash_queue=int(auth.get("hash_queue", 8)),
        )

    def admit(self, username: str, address: str, trusted_device: bool = False) -> int:
        """Whole seconds the caller must wait before this attempt is even checked (0: go, and
        the attempt takes the account's slot if the account is being slowed)."""
        now = self.clock()
        wait = max(self.addresses.retry_after(address, now), self.pairs.retry_after(_pair(username, address), now))
        if not wait and not trusted_device:
            wait = self.accounts.admit(username, now)
        return math.ceil(wait)

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        self.pairs.fail(_pair(username, address), now)
        self.addresses.fail(address, now)
        self.accounts.fail(username, now)

    def succeeded(self, username: str, address: str) -> None:
        self.pairs.reset(_pair(username, address))
        self.accounts.reset(username)


def _pair(username: str, address: str) -> str:
    return username + "\x00" + address


class RateLimit:
    """At most `limit` events per key within a sliding window (e.g. caller reveals per user)."""

    def __init__(self, limit: int, window: float, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self.clock = clock
        self._events: dict[str, collections.deque] = {}

    def take(self, key: str) -> int:
        """Count one event; 0 if allowed, else the whole seconds until one would be."""
        now = self.clock()
        events = self._events.setdefault(key, collections.deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return max(1, math.ceil(events[0] + self.window - now))
        events.append(now)
        return 0

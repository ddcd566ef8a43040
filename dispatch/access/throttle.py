"""Login throttling and per-user rate limits, kept in this process's memory.

Password guessing is slowed twice over:

* **per account** — `free` failures within the sliding window (a day) lock the account for
  an exponentially growing time (30 s, 60 s, 2 min, ...) capped at `cap` (15 min). Attempts
  refused during a lock are not counted, so an attacker cannot push the lock further out by
  hammering, and no lock outlasts the cap. An address from which the account recently logged
  in successfully is exempt from the account lock: somebody guessing elsewhere cannot keep the
  real user out of their own account.
* **per client address** — the same back-off over all accounts tried from one address (window:
  an hour), which is what catches the attacker (guessing many accounts, or one account).

A successful login clears the account's failures. Refused attempts never reach the password
hash, so throttling also bounds the CPU an attacker can make scrypt burn.

The state is per process: N server processes allow at most N times the attempts, still bounded.
Keys are pruned so that a flood of made-up usernames cannot grow memory without limit.
"""

from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass, field


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


class LoginThrottle:
    def __init__(self, *, account_free: int = 5, address_free: int = 20, account_window: float = 86400.0,
                 address_window: float = 3600.0, base: float = 30.0, cap: float = 900.0,
                 trust_seconds: float = 30 * 86400.0, clock=time.monotonic):
        # An account's failures are remembered for a day: a patient guesser stays at the cap
        # (at most one guess per `cap`, ~96 a day). An address's for an hour: a busy office
        # behind one NAT address recovers quickly from its typos.
        self.accounts = Backoff(account_free, account_window, base, cap)
        self.addresses = Backoff(address_free, address_window, base, cap)
        self.trust_seconds = trust_seconds
        self.clock = clock
        # (username, address) → until when that address is trusted for that account.
        self._trusted: collections.OrderedDict[tuple[str, str], float] = collections.OrderedDict()

    @classmethod
    def from_config(cls, auth: dict) -> "LoginThrottle":
        return cls(
            account_free=int(auth.get("login_max_failures", 5)),
            address_free=int(auth.get("address_max_failures", 20)),
            cap=float(auth.get("lockout_max_seconds", 900)),
        )

    def retry_after(self, username: str, address: str) -> int:
        """Whole seconds the caller must wait before this attempt is even checked (0: go)."""
        now = self.clock()
        wait = self.addresses.retry_after(address, now)
        if not self._is_trusted(username, address, now):
            wait = max(wait, self.accounts.retry_after(username, now))
        return math.ceil(wait)

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        self.accounts.fail(username, now)
        self.addresses.fail(address, now)

    def succeeded(self, username: str, address: str) -> None:
        self.accounts.reset(username)
        self._trusted[(username, address)] = self.clock() + self.trust_seconds
        self._trusted.move_to_end((username, address))
        while len(self._trusted) > 100_000:
            self._trusted.popitem(last=False)

    def _is_trusted(self, username: str, address: str, now: float) -> bool:
        until = self._trusted.get((username, address))
        return until is not None and until > now


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

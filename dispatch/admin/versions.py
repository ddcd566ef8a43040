"""Versions of the city configuration: read, check, publish, roll back, and adopt in this process.

A version is numbered 1, 2, ... across all kinds (`calendar`, `zones`, `departments`,
`categories`, `rules`, `addresses`: geo.loader.KIND_FILES) and records who, when, why, which
kinds it set and its diff from the version before. Version 1 is the package folder, stored the
first time an administrator reads or changes the configuration (a deployment nobody
administers never copies its package into the database). One number for all kinds, because the
kinds refer to each other (rules name categories, departments and zone kinds): an editor who
saw version 7 publishes 8 only if 8 is still free (insert-once in the store), so two editors
never both win and the loser gets 409 with nothing of the winner's lost.

Publishing logs a `config.published` event after the write; every process's LogTail hands it
to `follow`, which builds the new City and Router and swaps them into the Context in one step
(`Context.adopt`). Open cases keep their assignment and the running stage its deadline (both
are stored on the case); a stage started later reads the new limits.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from datetime import datetime

from dispatch.admin import checks
from dispatch.admin.diff import diff, same_items
from dispatch.clock import utcnow
from dispatch.errors import conflict, not_found, unprocessable
from dispatch.rules import Router
from geo.city import City
from geo.errors import CityPackageError
from geo.loader import KIND_FILES, city_from_items, package_items

log = logging.getLogger(__name__)

KINDS = tuple(KIND_FILES)
EVENT = "config.published"
SYSTEM = "system"

_PROBLEM = re.compile(
    r"^(?P<file>[\w.-]+): (?:(?P<item>(?:[a-z]+ #\d+(?: \(id [^)]*\))?|[a-z]+ [\w.-]+|line \d+(?: \([^)]*\))?"
    r"|fallback|[a-z_]+\[\d+\])): )?(?P<problem>.*)$", re.S)


def problem_view(text: str) -> dict:
    """A loader line `file: item: problem` as {file, item, problem, text}."""
    m = _PROBLEM.match(text)
    if not m:
        return {"file": None, "item": None, "problem": text, "text": text}
    return {"file": m["file"], "item": m["item"], "problem": m["problem"], "text": text}


def invalid(problems: list[str]):
    return unprocessable(f"配置有 {len(problems)} 处问题，未发布任何更改", code="invalid_config",
                         problems=[problem_view(p) for p in problems])


def package_fingerprint(path: str) -> str:
    """What the package folder's configurable files hold (to notice a folder changed after it
    was stored as version 1)."""
    digest = hashlib.sha256()
    for file in KIND_FILES.values():
        full = os.path.join(path, file)
        if os.path.exists(full):
            with open(full, "rb") as fh:
                digest.update(file.encode() + b"\0" + fh.read() + b"\0")
    return digest.hexdigest()


def version_view(doc: dict) -> dict:
    at = doc.get("at")
    return {
        "version": doc["_id"],
        "at": at.isoformat(timespec="seconds") if isinstance(at, datetime) else at,
        "by": doc.get("by"),
        "note": doc.get("note") or "",
        "kinds": doc.get("changed") or [],
        "diff": doc.get("diff") or {},
        "rollback_of": doc.get("rollback_of"),
    }


class CityConfig:
    """The city configuration of one Context: its versions in the store, the version this
    process serves (`version`, with every kind's items cached), publishing and following."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.versions = ctx.storage.config
        self.events = ctx.storage.events
        self.version = 0  # 0: the package folder as loaded, nothing stored yet
        self._items: dict | None = None  # kind → items of `version` (None: not read yet)
        self._package = ctx.city  # jurisdictions and accounts always come from the folder
        self._lock = asyncio.Lock()

    # -- starting and following ------------------------------------------------------------

    async def start(self) -> None:
        """Serve the stored head version if the store has one that is not this folder's own."""
        head = await self.versions.head()
        if head == 0:
            return
        first = await self.versions.version(1)
        fingerprint = package_fingerprint(self._package.path) if self._package.path else None
        if head == 1 and (first or {}).get("package", {}).get("fingerprint") == fingerprint:
            self._served(1)  # the folder is version 1: the City in hand is it
            return
        if head == 1:
            log.warning("城市包 %s 与数据库中的第 1 版配置不同：以数据库中的版本为准（导出命令可写出当前版本）",
                        self._package.path)
        await self.follow(head)

    async def follow(self, version: int) -> None:
        """Serve `version` if it is newer than the one served (the LogTail's hook)."""
        async with self._lock:
            if version <= self.version:
                return
            items = await self._read_all(version)
            unchanged = [k for k in KINDS if self._items is not None and same_items(items[k], self._items[k])]
            try:
                city = city_from_items(self._package, items, reuse=self.ctx.city, unchanged=unchanged)
            except CityPackageError as exc:  # stored versions were checked; say so loudly if not
                log.error("配置第 %s 版无法使用，继续使用第 %s 版: %s", version, self.version, exc)
                return
            self._adopt(city, version, items)

    def _adopt(self, city: City, version: int, items: dict) -> None:
        router = Router(city)
        self._items, self.version = items, version
        self.ctx.adopt(city, router, version)
        log.info("城市配置: 已启用第 %s 版", version)

    def _served(self, version: int) -> None:
        """The City in hand is `version` (the folder it was loaded from was stored as it)."""
        self.version = version
        self.ctx.adopt(self.ctx.city, self.ctx.router, version)

    async def _read_all(self, version: int) -> dict:
        out = {}
        for kind in KINDS:
            held = await self.versions.items(kind, version)
            out[kind] = held[1] if held else None
        return out

    async def _seeded(self) -> None:
        """Store the folder as version 1 if nothing is stored yet (another process may win)."""
        if self.version or await self.versions.head():
            return
        items = package_items(self._package.path)
        await self.versions.publish({
            "_id": 1, "by": SYSTEM, "at": utcnow(), "note": f"城市包 {os.path.basename(self._package.path)}",
            "diff": {}, "package": {"path": self._package.path,
                                    "fingerprint": package_fingerprint(self._package.path)},
        }, items)

    async def _current(self) -> tuple[int, dict]:
        """The stored head version and its items, served by this process from now on."""
        await self._seeded()
        head = await self.versions.head()
        if head != self.version or self._items is None:
            if head == 1 and self.version in (0, 1):
                async with self._lock:
                    self._items = await self._read_all(1)
                    self._served(1)
            else:
                await self.follow(head)
        return self.version, self._items

    # -- reading ---------------------------------------------------------------------------

    async def get(self, kind: str) -> dict:
        version, items = await self._current()
        return {"version": version, "items": items[kind] if items[kind] is not None else _empty(kind)}

    async def history(self, limit: int) -> list[dict]:
        await self._seeded()
        return [version_view(doc) for doc in await self.versions.history(limit)]

    # -- checking --------------------------------------------------------------------------

    async def proposed(self, kind: str, proposed) -> City:
        """The City `proposed` items of `kind` would make over the current version (422 if none)."""
        _version, current = await self._current()
        return await self.check(kind, proposed, current)

    async def check(self, kind: str, proposed, current: dict) -> City:
        """The City `proposed` items of `kind` would make, or the 422 listing every problem."""
        items = {**current, kind: proposed}
        problems, city = [], None
        try:
            city = city_from_items(self._package, items, reuse=self.ctx.city, unchanged=[k for k in KINDS if k != kind])
        except CityPackageError as exc:
            problems += exc.errors
        problems += await checks.in_use_problems(kind, current[kind], proposed, self.ctx.cases, self.ctx.users)
        if city is not None:  # where things lie can only be asked of items that parse
            problems += checks.place_problems(kind, city, proposed)
        if problems:
            raise invalid(problems)
        return city

    # -- publishing ------------------------------------------------------------------------

    async def publish(self, user, kind: str, seen: int, proposed, note: str, allow=None) -> dict:
        """Publish `proposed` as the new items of `kind` over version `seen`; `allow(before,
        after)` may refuse (the scope of the admin). 409 if `seen` is not the head any more."""
        version, current = await self._current()
        if seen != version:
            raise stale(seen, version)
        if allow is not None:
            allow(current[kind], proposed)
        if same_items(current[kind], proposed):
            raise unprocessable("与当前版本相同，没有需要发布的更改", code="no_change")
        city = await self.check(kind, proposed, current)
        changes = {kind: diff(kind, current[kind], proposed)}
        return await self._publish(user, version, {kind: proposed}, changes, note, city, current)

    async def rollback(self, user, target: int, note: str) -> dict:
        """A new version whose every kind is as it was in version `target`."""
        version, current = await self._current()
        if not 1 <= target <= version:
            raise not_found(f"没有第 {target} 版配置", code="version_not_found")
        old = await self._read_all(target)
        changed = {k: old[k] for k in KINDS if not same_items(old[k], current[k])}
        if not changed:
            raise unprocessable(f"当前配置与第 {target} 版相同，无需回滚", code="no_change")
        try:
            city = city_from_items(self._package, {**current, **changed}, reuse=self.ctx.city,
                                   unchanged=[k for k in KINDS if k not in changed])
        except CityPackageError as exc:
            raise invalid(exc.errors) from None
        problems = []
        for kind, items in changed.items():
            problems += await checks.in_use_problems(kind, current[kind], items, self.ctx.cases, self.ctx.users)
        if problems:
            raise invalid(problems)
        changes = {kind: diff(kind, current[kind], items) for kind, items in changed.items()}
        return await self._publish(user, version, changed, changes, note or f"回滚到第 {target} 版", city, current,
                                   rollback_of=target)

    async def _publish(self, user, version: int, changed: dict, changes: dict, note: str, city: City,
                       current: dict, **extra) -> dict:
        doc = {"_id": version + 1, "by": user.username, "at": utcnow(), "note": note or "", "diff": changes, **extra}
        if not await self.versions.publish(doc, changed):
            raise stale(version, await self.versions.head())
        async with self._lock:
            if self.version == version:
                self._adopt(city, version + 1, {**current, **changed})
        # After the write, once: every other process follows it from the log. `case_id` None:
        # readers of the log that go by case (the KPI rollups) find no case to count in it.
        await self.events.record({"key": f"config:{version + 1}", "type": EVENT, "case_id": None,
                                  "version": version + 1, "kinds": sorted(changed), "at": doc["at"]})
        return version_view({**doc, "changed": sorted(changed)})


def stale(seen: int, head: int):
    return conflict(f"配置已被他人更新（您看到的是第 {seen} 版，当前是第 {head} 版），请刷新后重新修改",
                    code="stale_version", current=head)


def _empty(kind: str):
    return {} if kind in ("calendar", "rules") else []

"""People's names by username, for the pages: cases record who acted by username (`by`); the
pages show the person (`by_name`). History entries written since names were recorded carry
`by_name` from the moment they were written; the rest (older entries, results, checks, answers)
take the name from here.

One lookup per process, held by the Context: a dict read synchronously while a case is rendered,
loaded from the users repository at start and loaded again in the background when it is older
than `max_age` seconds, or sooner (at most once per `retry` seconds) when it meets a username it
does not know: an account made since, perhaps by another process. The username stands in until
the name has come."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

log = logging.getLogger(__name__)

SYSTEM = "system"


class PeopleNames:
    # The age of a cache, not a moment of the case's life: the process's monotonic time, which
    # the tests and the simulator leave alone when they move the domain clock.
    def __init__(self, users: Any, clock: Callable[[], float] = time.monotonic, max_age: float = 60.0,
                 retry: float = 1.0):
        self._users = users
        self._clock = clock
        self._max_age = max_age
        self._retry = retry
        self._names: dict[str, str] = {SYSTEM: "系统"}
        self._loaded_at = float("-inf")
        self._loading: asyncio.Task | None = None

    async def load(self) -> None:
        self._loaded_at = self._clock()
        names = {SYSTEM: "系统"}
        for doc in await self._users.all():
            names[doc["_id"]] = doc.get("name") or doc["_id"]
        self._names = names

    def name(self, username: str) -> str:
        known = self._names.get(username)
        if self._loading is None and self._clock() - self._loaded_at > (self._max_age if known else self._retry):
            self._reload_soon()
        return known or username

    def _reload_soon(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._loaded_at = self._clock()  # one try per period, whatever it gives

        async def reload():
            try:
                await self.load()
            except Exception:  # a name is a nicety: the username stands in until the next try
                log.exception("reloading people's names failed")
            finally:
                self._loading = None

        self._loading = loop.create_task(reload())


def with_names(case: dict, name: Callable[[str], str]) -> dict:
    """`case` (its API form) with `by_name` beside every `by` that has none: history entries and
    the records of one act (result, check, callback, answer, suspension, extension request...),
    and the lists of them (feedbacks, supervisions...)."""
    def named(item):
        if isinstance(item, dict) and isinstance(item.get("by"), str) and "by_name" not in item:
            return {**item, "by_name": name(item["by"])}
        return item

    out = dict(case)
    for key, value in case.items():
        if isinstance(value, list):
            out[key] = [named(item) for item in value]
        elif isinstance(value, dict):
            out[key] = named(value)
    return out

"""The command map's counts (GET /api/cases/map below the close-up zoom): open cases per
district, street or community, all of them or only the overdue ones.

Where the KPI rollups hold the answer — a whole place (the city, the reader's district or
street, an area drilled into), by district or street — they give it from a few documents
whatever the history (`Rollups.open_counts`). Anything else (a map filtered by category,
department, source or status; a department's or a grid worker's share; community badges; the
count of a box close up) is counted over the open cases; on a server store such a count is kept
for a few seconds per (query, level), so the open cases of a year are read once per interval,
not once per viewer.
"""

from __future__ import annotations

import time

from dispatch.kpi.rollups import Rollups, open_counts_place
from dispatch.store.query import CaseQuery

KEPT_SECONDS = 15.0
KEPT_MAX = 512  # distinct (query, level) kept at once; beyond it the kept counts are dropped


class MapCounts:
    def __init__(self, cases, rollups: Rollups, city, persistent: bool):
        self.cases, self.rollups, self.city, self.persistent = cases, rollups, city, persistent
        self._kept: dict[tuple[CaseQuery, str], tuple[float, dict]] = {}

    def adopt(self, city) -> None:
        """Follow a published city configuration (its jurisdictions may have changed)."""
        self.city = city
        self._kept.clear()

    async def open_counts(self, query: CaseQuery, level: str) -> dict[str, dict]:
        """{jurisdiction id at `level`: {open, overdue}} of the open cases `query` matches."""
        place = open_counts_place(self.city, query) if level in ("district", "street") else None
        if place is not None:
            since = await self.cases.history_start()
            if since is None:
                return {}
            await self.rollups.fresh()
            return await self.rollups.open_counts(scope=place, level=level, since=since,
                                                  overdue_only=query.overdue is True)
        if not self.persistent:  # in memory, counting is cheaper than keeping
            return await self.cases.open_counts(query, level)
        held = self._kept.get((query, level))
        if held is not None and time.monotonic() - held[0] < KEPT_SECONDS:
            return held[1]
        counts = await self.cases.open_counts(query, level)
        if len(self._kept) >= KEPT_MAX:
            self._kept.clear()
        self._kept[(query, level)] = (time.monotonic(), counts)
        return counts

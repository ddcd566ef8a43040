"""The open cases of the last weeks by place, in this process's memory, for the similar-case
and repeat-request look-up of every keystroke.

A box query on the store reads every recent case on the embedded engine and scans the
collection on FerretDB (range filters are not pushed down), which took most of a `GET
/api/assist`. This index is loaded once from the store and then follows the event log (every
case change reaches every process's bus), so a look-up reads the few cells around the place.
Until it is loaded, the caller falls back to the store.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from dispatch.domain import OPEN_STATUSES
from dispatch.store.query import After, CaseQuery

log = logging.getLogger(__name__)

CELL_DEG = 0.005  # ~500 m of latitude


def _cell(lng: float, lat: float) -> tuple[int, int]:
    return (math.floor(lng / CELL_DEG), math.floor(lat / CELL_DEG))


class NearbyIndex:
    def __init__(self, days: int):
        self.days = days
        self.ready = False
        self._cells: dict[tuple[int, int], dict[str, dict]] = {}
        self._where: dict[str, tuple[int, int]] = {}
        self._pending: list[dict] = []  # changes seen while loading, applied after

    def _put(self, case: dict) -> None:
        case_id = case.get("_id")
        if case_id is None:
            return
        old = self._where.pop(case_id, None)
        if old is not None:
            self._cells.get(old, {}).pop(case_id, None)
        coords = (case.get("location") or {}).get("coordinates")
        if case.get("status") not in OPEN_STATUSES or not coords:
            return
        cell = _cell(coords[0], coords[1])
        self._cells.setdefault(cell, {})[case_id] = case
        self._where[case_id] = cell

    def on_case(self, case: dict) -> None:
        if self.ready:
            self._put(case)
        else:
            self._pending.append(case)

    async def load(self, cases, now: datetime) -> None:
        after, since, n = None, now - timedelta(days=self.days), 0
        while True:
            page = await cases.find(CaseQuery(open_only=True, created_from=since, after=after, limit=500))
            for doc in page:
                doc.pop("history", None)
                self._put(doc)
                n += 1
            if len(page) < 500:
                break
            after = After(page[-1]["created_at"], page[-1]["_id"])
        for case in self._pending:
            self._put(case)
        self._pending.clear()
        self.ready = True
        log.info("接线辅助: 已载入 %d 件近期未结案件的位置", n)

    def near(self, lng: float, lat: float, radius_m: float, since: datetime) -> list[dict]:
        """Open cases created since `since` in the cells within `radius_m` of the place (the
        caller measures the exact distance)."""
        reach_lat = math.ceil(radius_m / 110_540 / CELL_DEG)
        reach_lng = math.ceil(radius_m / (111_320 * max(0.2, math.cos(math.radians(lat)))) / CELL_DEG)
        cx, cy = _cell(lng, lat)
        out = []
        for x in range(cx - reach_lng, cx + reach_lng + 1):
            for y in range(cy - reach_lat, cy + reach_lat + 1):
                for case in self._cells.get((x, y), {}).values():
                    if case["created_at"] >= since:
                        out.append(case)
        return out

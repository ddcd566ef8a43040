"""GET /api/cases, /api/cases.geojson, /api/cases/{id}: finding and reading cases."""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime, timezone

from dispatch import validation as v
from dispatch.domain import SOURCES, STATUSES, to_feature
from dispatch.errors import bad_request, not_found
from dispatch.handlers.base import BaseHandler
from dispatch.access.policy import can_read_case, case_scope, text_search
from dispatch.store.query import LEVELS, After, Box, CaseQuery
from geo.metric import A, F, geodesic_distance_m


def encode_cursor(case: dict) -> str:
    created = case["created_at"]
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    raw = json.dumps([int(created.timestamp() * 1000), case["_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> After:
    """The last case of the previous page, in (created_at desc, _id desc) order."""
    millis, case_id = v.query_cursor(cursor)
    return After(datetime.fromtimestamp(millis / 1000, timezone.utc), case_id)


class CaseQueryMixin:
    """Turns the SPEC §3 list filters into the store's `CaseQuery`, the reader's scope included.

    Beyond the SPEC's filters: `open=true` (not closed/void/merged), `mine=true` (cases I
    reported) and `near=lng,lat,metres` (similar cases nearby, ≤ 5 km; items get `distance_m`).
    """

    near: tuple[float, float, float] | None = None

    def case_query(self, limit: int) -> CaseQuery:
        ctx = self.ctx
        arg = lambda name: self.get_query_argument(name, None)  # noqa: E731

        box = None
        if arg("near"):
            self.near = self._near(arg("near"))
            box = self._around(*self.near)
        if arg("bbox"):
            west, south, east, north = v.query_bbox(arg("bbox"))
            bbox = Box(west, south, east, north)
            box = bbox if box is None else Box(max(box.west, bbox.west), max(box.south, bbox.south),
                                               min(box.east, bbox.east), min(box.north, bbox.north))
        jurisdictions = tuple(
            (level, tuple(ids)) for level in LEVELS if (ids := v.query_list(arg(level), level))
        )
        q = (arg("q") or "").strip()
        if len(q) > 100:
            raise bad_request("参数 q 过长", code="invalid_parameter", field="q")
        cursor = arg("cursor")
        return CaseQuery(
            scope=case_scope(self.user, ctx.city.id),
            statuses=tuple(v.query_list(arg("status"), "status", STATUSES) or ()),
            open_only=bool(v.query_bool(arg("open"), "open")),
            categories=tuple(v.query_list(arg("category"), "category") or ()),
            departments=tuple(v.query_list(arg("department"), "department") or ()),
            jurisdictions=jurisdictions,
            sources=tuple(v.query_list(arg("source"), "source", SOURCES) or ()),
            overdue=v.query_bool(arg("overdue"), "overdue"),
            reporter=self.user.username if v.query_bool(arg("mine"), "mine") else None,
            box=box,
            text=text_search(self.user, q) if q else None,
            created_from=v.query_time(arg("from"), "from", ctx.tz),
            created_to=v.query_time(arg("to"), "to", ctx.tz),
            after=decode_cursor(cursor) if cursor else None,
            limit=limit,
        )

    @staticmethod
    def _near(raw: str) -> tuple[float, float, float]:
        return v.query_near(raw)

    @staticmethod
    def _around(lng: float, lat: float, radius: float) -> Box:
        """A box that contains the circle; the exact distance is checked after the query."""
        dlat = math.degrees(radius / (A * (1 - F)))  # the polar radius: the box is never too small
        dlng = dlat / max(math.cos(math.radians(lat)), 0.01)
        return Box(lng - dlng, lat - dlat, lng + dlng, lat + dlat)

    def within_near(self, docs: list[dict]) -> list[dict]:
        if not self.near:
            return docs
        lng, lat, radius = self.near
        kept = []
        for doc in docs:
            x, y = doc["location"]["coordinates"][:2]
            d = geodesic_distance_m(lng, lat, x, y)
            if d <= radius:
                kept.append(dict(doc, distance_m=round(d)))
        return kept


class CasesHandler(CaseQueryMixin, BaseHandler):
    access = {"GET": ("case", "read")}

    async def get(self):
        user = self.require_user()
        limit = v.query_int(self.get_query_argument("limit", None), "limit", default=50, low=1, high=500)
        docs = await self.ctx.cases.find(self.case_query(limit + 1))
        more = len(docs) > limit
        docs = docs[:limit]
        cursor_doc = docs[-1] if docs else None
        docs = self.within_near(docs)
        # Items carry `actions` too: computed in Python from the document in hand (no query),
        # so a queue can show its buttons without reading each case again.
        self.send({
            "items": [self.case_json(doc, user) for doc in docs],
            "next": encode_cursor(cursor_doc) if more else None,
        })


class CasesGeoJSONHandler(CaseQueryMixin, BaseHandler):
    access = {"GET": ("case", "read")}

    async def get(self):
        user = self.require_user()
        limit = v.query_int(self.get_query_argument("limit", None), "limit", default=2000, low=1, high=10000)
        docs = self.within_near(await self.ctx.cases.find(self.case_query(limit)))
        self.set_header("Content-Type", "application/geo+json; charset=UTF-8")
        self.send({
            "type": "FeatureCollection",
            "features": [to_feature(doc, user, self.ctx.tz, self.ctx.workflow.timer(doc))
                         for doc in docs if doc.get("location")],
        })


class CaseHandler(BaseHandler):
    access = {"GET": ("case", "read")}

    async def get(self, case_id: str):
        user = self.require_user()
        case = await self.ctx.cases.get(case_id)
        # Outside the user's scope the case is reported as absent, not as forbidden: its
        # existence is itself information.
        if case is None or not can_read_case(user, case, self.ctx.city.id):
            raise not_found("案件不存在或不在您的权限范围内", code="case_not_found")
        self.send(self.case_json(case, user))


routes = [
    (r"/api/cases", CasesHandler),
    (r"/api/cases\.geojson", CasesGeoJSONHandler),
    (r"/api/cases/([A-Za-z0-9_-]{1,64})", CaseHandler),
]

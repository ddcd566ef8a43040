"""GET /api/cases, /api/cases.geojson, /api/cases/{id}: finding and reading cases."""

from __future__ import annotations

import base64
import json
import math
import re
from datetime import datetime, timezone

from dispatch import validation as v
from dispatch.domain import OPEN_STATUSES, SOURCES, STATUSES, to_api, to_feature
from dispatch.errors import bad_request, not_found
from dispatch.handlers.base import BaseHandler
from dispatch.access.policy import can_read_case, case_read_filter

SORT = [("created_at", -1), ("_id", -1)]


def encode_cursor(case: dict) -> str:
    created = case["created_at"]
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    raw = json.dumps([int(created.timestamp() * 1000), case["_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict:
    """The filter for "after this case" in (created_at desc, _id desc) order."""
    try:
        millis, case_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(millis, int) or not isinstance(case_id, str):
            raise ValueError
        created = datetime.fromtimestamp(millis / 1000, timezone.utc)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise bad_request("参数 cursor 无效", code="invalid_parameter", field="cursor") from None
    return {"$or": [{"created_at": {"$lt": created}}, {"created_at": created, "_id": {"$lt": case_id}}]}


EARTH_RADIUS_M = 6371008.8


def distance_m(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


class CaseQueryMixin:
    """Turns the SPEC §3 list filters into one MongoDB filter, scope included.

    Beyond the SPEC's filters: `open=true` (not closed/void/merged), `mine=true` (cases I
    reported) and `near=lng,lat,metres` (similar cases nearby, ≤ 5 km; items get `distance_m`).
    """

    near: tuple[float, float, float] | None = None

    def case_filter(self) -> dict:
        ctx = self.ctx
        arg = lambda name: self.get_query_argument(name, None)  # noqa: E731
        clauses = [case_read_filter(self.user, ctx.city.id)]

        statuses = v.query_list(arg("status"), "status", STATUSES)
        if statuses:
            clauses.append({"status": {"$in": statuses}})
        if v.query_bool(arg("open"), "open"):
            clauses.append({"status": {"$in": list(OPEN_STATUSES)}})
        if v.query_bool(arg("mine"), "mine"):
            clauses.append({"reporters": self.user.username})
        if arg("near"):
            self.near = self._near(arg("near"))
            clauses.append({"location": {"$geoWithin": {"$geometry": self._around(*self.near)}}})
        categories = v.query_list(arg("category"), "category")
        if categories:
            clauses.append({"category.code": {"$in": categories}})
        departments = v.query_list(arg("department"), "department")
        if departments:
            clauses.append({"assignment.department.id": {"$in": departments}})
        for level in ("district", "street", "community", "grid"):
            ids = v.query_list(arg(level), level)
            if ids:
                clauses.append({f"jurisdiction.{level}.id": {"$in": ids}})
        sources = v.query_list(arg("source"), "source", SOURCES)
        if sources:
            clauses.append({"source": {"$in": sources}})
        overdue = v.query_bool(arg("overdue"), "overdue")
        if overdue is not None:
            clauses.append({"flags.overdue": overdue})
        bbox = arg("bbox")
        if bbox:
            clauses.append({"location": {"$geoWithin": {"$geometry": self._bbox_polygon(bbox)}}})
        q = (arg("q") or "").strip()
        if q:
            if len(q) > 100:
                raise bad_request("参数 q 过长", code="invalid_parameter", field="q")
            pattern = {"$regex": re.escape(q)}
            clauses.append({"$or": [{"description": pattern}, {"number": pattern}, {"address": pattern}]})
        start, end = v.query_time(arg("from"), "from", ctx.tz), v.query_time(arg("to"), "to", ctx.tz)
        if start or end:
            span = {}
            if start:
                span["$gte"] = start
            if end:
                span["$lt"] = end
            clauses.append({"created_at": span})
        clauses = [c for c in clauses if c]
        if not clauses:
            return {}
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    @staticmethod
    def _near(raw: str) -> tuple[float, float, float]:
        parts = raw.split(",")
        if len(parts) != 3:
            raise bad_request("参数 near 应为 经度,纬度,半径米", code="invalid_parameter", field="near")
        lng, lat, radius = (v.query_float(p, "near") for p in parts)
        v.coordinate_pair(lng, lat, "near")
        if not 0 < radius <= 5000:
            raise bad_request("参数 near 的半径必须在 0~5000 米之间", code="invalid_parameter", field="near")
        return lng, lat, radius

    @staticmethod
    def _around(lng: float, lat: float, radius: float) -> dict:
        """A box that contains the circle; the exact distance is checked after the query
        (`$centerSphere` would do both, but the embedded engine lacks it)."""
        dlat = math.degrees(radius / EARTH_RADIUS_M)
        dlng = dlat / max(math.cos(math.radians(lat)), 0.01)
        w, e, s, n = lng - dlng, lng + dlng, lat - dlat, lat + dlat
        return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}

    def within_near(self, docs: list[dict]) -> list[dict]:
        if not self.near:
            return docs
        lng, lat, radius = self.near
        kept = []
        for doc in docs:
            x, y = doc["location"]["coordinates"][:2]
            d = distance_m(lng, lat, x, y)
            if d <= radius:
                kept.append(dict(doc, distance_m=round(d)))
        return kept

    @staticmethod
    def _bbox_polygon(raw: str) -> dict:
        west, south, east, north = v.query_bbox(raw)
        ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
        return {"type": "Polygon", "coordinates": [ring]}


class CasesHandler(CaseQueryMixin, BaseHandler):
    access = {"GET": ("case", "read")}

    async def get(self):
        user = self.require_user()
        limit = v.query_int(self.get_query_argument("limit", None), "limit", default=50, low=1, high=500)
        query = self.case_filter()
        cursor = self.get_query_argument("cursor", None)
        if cursor:
            query = {"$and": [query, decode_cursor(cursor)]} if query else decode_cursor(cursor)
        docs = await self.ctx.cases.find(query, SORT, limit + 1)
        more = len(docs) > limit
        docs = docs[:limit]
        cursor_doc = docs[-1] if docs else None
        docs = self.within_near(docs)
        self.send({
            "items": [to_api(doc, user, self.ctx.tz) for doc in docs],
            "next": encode_cursor(cursor_doc) if more else None,
        })


class CasesGeoJSONHandler(CaseQueryMixin, BaseHandler):
    access = {"GET": ("case", "read")}

    async def get(self):
        user = self.require_user()
        limit = v.query_int(self.get_query_argument("limit", None), "limit", default=2000, low=1, high=10000)
        docs = self.within_near(await self.ctx.cases.find(self.case_filter(), SORT, limit))
        self.set_header("Content-Type", "application/geo+json; charset=UTF-8")
        self.send({
            "type": "FeatureCollection",
            "features": [to_feature(doc, user, self.ctx.tz) for doc in docs if doc.get("location")],
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
        self.send(to_api(case, user, self.ctx.tz))


routes = [
    (r"/api/cases", CasesHandler),
    (r"/api/cases\.geojson", CasesGeoJSONHandler),
    (r"/api/cases/([A-Za-z0-9_-]{1,64})", CaseHandler),
]

"""GET /api/cases, /api/cases.geojson, /api/cases/{id}: finding and reading cases."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timezone

from dispatch import validation as v
from dispatch.domain import SOURCES, STATUSES, to_api, to_feature
from dispatch.errors import bad_request, not_found
from dispatch.handlers.base import BaseHandler
from dispatch.policy import can_read_case, case_read_filter

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


class CaseQueryMixin:
    """Turns the SPEC §3 list filters into one MongoDB filter, scope included."""

    def case_filter(self) -> dict:
        ctx = self.ctx
        arg = lambda name: self.get_query_argument(name, None)  # noqa: E731
        clauses = [case_read_filter(self.user, ctx.city.id)]

        statuses = v.query_list(arg("status"), "status", STATUSES)
        if statuses:
            clauses.append({"status": {"$in": statuses}})
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
    def _bbox_polygon(raw: str) -> dict:
        parts = raw.split(",")
        if len(parts) != 4:
            raise bad_request("参数 bbox 应为 最小经度,最小纬度,最大经度,最大纬度", code="invalid_parameter", field="bbox")
        west, south, east, north = (v.query_float(p, "bbox") for p in parts)
        v.coordinate_pair(west, south, "bbox")
        v.coordinate_pair(east, north, "bbox")
        if west >= east or south >= north:
            raise bad_request("参数 bbox 的最小值必须小于最大值", code="invalid_parameter", field="bbox")
        ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
        return {"type": "Polygon", "coordinates": [ring]}


class CasesHandler(CaseQueryMixin, BaseHandler):
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
        self.send({
            "items": [to_api(doc, user, self.ctx.tz) for doc in docs],
            "next": encode_cursor(docs[-1]) if more else None,
        })


class CasesGeoJSONHandler(CaseQueryMixin, BaseHandler):
    async def get(self):
        user = self.require_user()
        limit = v.query_int(self.get_query_argument("limit", None), "limit", default=2000, low=1, high=10000)
        docs = await self.ctx.cases.find(self.case_filter(), SORT, limit)
        self.set_header("Content-Type", "application/geo+json; charset=UTF-8")
        self.send({
            "type": "FeatureCollection",
            "features": [to_feature(doc, user, self.ctx.tz) for doc in docs if doc.get("location")],
        })


class CaseHandler(BaseHandler):
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

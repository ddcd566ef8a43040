"""GET /api/cases, /api/cases.geojson, /api/cases/{id}: finding and reading cases."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from dataclasses import replace
from datetime import datetime, timezone

from dispatch import validation as v
from dispatch.domain import SOURCES, STATUSES, to_feature
from dispatch.errors import bad_request, not_found
from dispatch.handlers.base import BaseHandler
from dispatch.access.policy import can_read_case, case_scope, text_search
from dispatch.clock import utcnow
from dispatch.store.buckets import CASE_NUMBER, TEXT_WINDOW
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
    searched: dict | None = None  # the window a text search read (None: no text search)

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
        created_from = v.query_time(arg("from"), "from", ctx.tz)
        created_to = v.query_time(arg("to"), "to", ctx.tz)
        if q and not CASE_NUMBER.match(q):
            # No text index on FerretDB: a search reads a bounded recent window (the answer's
            # `searched` says which); a case number is one equality, at any age.
            window_end = created_to or utcnow()
            created_from = max(created_from or window_end - TEXT_WINDOW, window_end - TEXT_WINDOW)
            self.searched = {"from": created_from, "to": created_to}
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
            warning=bool(v.query_bool(arg("warning"), "warning")),
            supervised=bool(v.query_bool(arg("supervised"), "supervised")),
            return_pending=bool(v.query_bool(arg("return_pending"), "return_pending")),
            reporter=self.user.username if v.query_bool(arg("mine"), "mine") else None,
            box=box,
            text=text_search(self.user, q) if q else None,
            created_from=created_from,
            created_to=created_to,
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

    def searched_note(self) -> dict:
        """`{"searched": {"from", "to"}}` when the list was a windowed text search."""
        if self.searched is None:
            return {}
        iso = lambda at: at.astimezone(self.ctx.tz).isoformat(timespec="seconds") if at else None  # noqa: E731
        return {"searched": {"from": iso(self.searched["from"]), "to": iso(self.searched["to"])}}

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
        docs, resume = await self.ctx.cases.find_page(self.case_query(limit + 1))
        more = len(docs) > limit
        docs = docs[:limit]
        if more:
            next_cursor = encode_cursor(docs[-1])
        elif resume is not None:
            # The store stopped at its read budget (a rare filter over a long history): a short
            # page, and the cursor where it stopped.
            next_cursor = encode_cursor({"created_at": resume.created_at, "_id": resume.case_id})
        else:
            next_cursor = None
        docs = self.within_near(docs)
        # Items carry `actions` too: computed in Python from the document in hand (no query),
        # so a queue can show its buttons without reading each case again.
        body = {
            "items": [self.case_json(doc, user) for doc in docs],
            "next": next_cursor,
            **self.searched_note(),
        }
        # `count=true`: how many cases match in all (a badge must not show a page's length).
        # `near` is a box here, so its count is an upper bound; the pages do not ask for both.
        if v.query_bool(self.get_query_argument("count", None), "count"):
            body["total"] = await self.ctx.cases.count(replace(self.case_query(limit), after=None))
        self.send(body)


class CasesGeoJSONHandler(CaseQueryMixin, BaseHandler):
    access = {"GET": ("case", "read")}

    async def get(self):
        user = self.require_user()
        limit = v.query_int(self.get_query_argument("limit", None), "limit", default=2000, low=1, high=10000)
        # One walk (bounded reads, like a list page): an export of a rare filter over years does
        # not read the whole history.
        docs, _ = await self.ctx.cases.find_page(self.case_query(limit))
        docs = self.within_near(docs)
        self.set_header("Content-Type", "application/geo+json; charset=UTF-8")
        self.send({
            "type": "FeatureCollection",
            "features": [to_feature(doc, user, self.ctx.tz, self.ctx.workflow.timer(doc))
                         for doc in docs if doc.get("location")],
        })


# The command map (GET /api/cases/map): at city and district zoom, open cases counted per
# jurisdiction; individual cases only from CASE_ZOOM on, open ones, newest first, at most
# MAP_CASE_CAP, with how many more the view holds.
MAP_LEVELS = ((11, "district"), (13, "street"), (14, "community"))  # zoom ≤ n → counted by level
CASE_ZOOM = 15
MAP_CASE_CAP = 300


class CasesMapHandler(CaseQueryMixin, BaseHandler):
    """`zoom` (the map's), `bbox` and the list filters. Below CASE_ZOOM: `{level, regions:
    [{id, name, open, overdue}], total}`; from it on (a bbox is then required): `{level: "case",
    features, more}` — `more` open cases in the box beyond those shown."""
    access = {"GET": ("case", "read")}

    async def get(self):
        user = self.require_user()
        zoom = v.query_int(self.get_query_argument("zoom", None), "zoom", default=12, low=0, high=22)
        query = dataclasses.replace(self.case_query(MAP_CASE_CAP), open_only=True)
        city = self.ctx.city
        if zoom < CASE_ZOOM:
            level = next(name for top, name in MAP_LEVELS + ((CASE_ZOOM, "community"),) if zoom <= top)
            counts = await self.ctx.map_counts.open_counts(dataclasses.replace(query, box=None), level)
            regions = sorted(
                ({"id": jid, "name": city.jurisdictions[jid].name, **n} for jid, n in counts.items()
                 if jid in city.jurisdictions),
                key=lambda r: (-r["open"], r["id"]))
            total = {"open": sum(r["open"] for r in regions), "overdue": sum(r["overdue"] for r in regions)}
            self.send({"level": level, "zoom": zoom, "regions": regions, "total": total})
            return
        if query.box is None:
            raise bad_request("地图放大到案件时需要参数 bbox", code="invalid_parameter", field="bbox")
        docs, _ = await self.ctx.cases.find_page(query)
        features = [to_feature(doc, user, self.ctx.tz) for doc in self.within_near(docs) if doc.get("location")]
        in_box = await self.ctx.map_counts.open_counts(dataclasses.replace(query, limit=1), "district")
        total = sum(n["open"] for n in in_box.values())
        self.send({"level": "case", "zoom": zoom, "features": features,
                   "more": max(0, total - len(features))})


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
    (r"/api/cases/map", CasesMapHandler),
    (r"/api/cases/([A-Za-z0-9_-]{1,64})", CaseHandler),
]

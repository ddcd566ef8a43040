"""The city's reference data: jurisdictions (GeoJSON), departments and categories."""

from __future__ import annotations

import json

from dispatch import validation as v
from dispatch.handlers.base import BaseHandler

LEVELS = ("district", "street", "community", "grid")


class JurisdictionsHandler(BaseHandler):
    async def get(self):
        self.require_user()
        levels = v.query_list(self.get_query_argument("level", None), "level", LEVELS, 1)
        level = levels[0] if levels else None
        cache = self.ctx.cache
        key = ("jurisdictions.geojson", level)
        if key not in cache:
            # Thousands of grids: serialise once per level, not per request.
            data = self.ctx.city.jurisdiction_geojson(level)
            cache[key] = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        self.set_header("Content-Type", "application/geo+json; charset=UTF-8")
        self.set_header("Cache-Control", "private, max-age=3600")
        self.finish(cache[key])


class DepartmentsHandler(BaseHandler):
    async def get(self):
        self.require_user()
        city = self.ctx.city
        items = [
            {"id": d.id, "name": d.name, "type": d.type, "jurisdiction": d.jurisdiction}
            for d in city.departments.values()
        ]
        self.send({"items": items})


class CategoriesHandler(BaseHandler):
    async def get(self):
        self.require_user()
        items = []
        for c in self.ctx.city.categories.values():
            items.append({
                "code": c.code, "name": c.name, "kind": c.kind, "group": c.group,
                "priority": c.priority, "limits": c.limits, "urgent_limits": c.urgent_limits,
                "auto_dispatch": c.auto_dispatch,
            })
        self.send({"items": items})


routes = [
    (r"/api/jurisdictions\.geojson", JurisdictionsHandler),
    (r"/api/departments", DepartmentsHandler),
    (r"/api/categories", CategoriesHandler),
]

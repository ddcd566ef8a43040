"""The city's reference data: jurisdictions (GeoJSON), departments and categories; and the
names the pages show for statuses, actions and stages (`/api/labels`)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import box, mapping

from dispatch import validation as v
from dispatch.errors import unprocessable
from dispatch.handlers.base import BaseHandler
from dispatch.workflow.service import labels
from geo.city import LEVELS



@dataclass(frozen=True)
class JurisdictionSelection:
    """One (level, within) selection, serialised once: each feature's JSON and its geometry
    (with a spatial index) so a `bbox` request only joins the features it touches."""

    fragments: list
    tree: shapely.STRtree | None

    def body(self, bbox: tuple | None = None) -> bytes:
        if bbox is None:
            chosen = self.fragments
        elif self.tree is None:
            chosen = []
        else:
            hits = np.sort(self.tree.query(box(*bbox), predicate="intersects"))
            chosen = [self.fragments[i] for i in hits]
        return b'{"type":"FeatureCollection","features":[' + b",".join(chosen) + b"]}"


def select_jurisdictions(city, level: str | None, within: str | None) -> JurisdictionSelection:
    """The jurisdictions of `level` (all levels when None) inside `within` — or containing it:
    `level=community&within=<grid id>` is that grid's community."""
    if within is None or within == city.id:
        allowed = None
    else:
        allowed = city.descendants(within) | set(city.ancestors(within))
    chosen = [
        j for j in city.jurisdictions.values()
        if (level is None or j.level == level) and (allowed is None or j.id in allowed)
    ]
    fragments = [
        json.dumps({
            "type": "Feature", "id": j.id,
            "properties": {"id": j.id, "name": j.name, "level": j.level, "parent": j.parent},
            "geometry": mapping(j.geometry),
        }, ensure_ascii=False, separators=(",", ":")).encode()
        for j in chosen
    ]
    tree = shapely.STRtree([j.geometry for j in chosen]) if chosen else None
    return JurisdictionSelection(fragments, tree)


class JurisdictionsHandler(BaseHandler):
    """`level=` one level; `within=<jurisdiction id>` only that jurisdiction's part of the
    tree (its descendants and ancestors); `bbox=west,south,east,north` only the features whose
    geometry intersects the box."""
    access = {"GET": ("reference", "read")}

    async def get(self):
        self.require_user()
        city = self.ctx.city
        levels = v.query_list(self.get_query_argument("level", None), "level", LEVELS, 1)
        level = levels[0] if levels else None
        within = (self.get_query_argument("within", None) or "").strip() or None
        if within is not None and within != city.id and within not in city.jurisdictions:
            raise unprocessable(f"辖区 {within[:64]} 不存在", code="unknown_jurisdiction", field="within")
        bbox = v.query_bbox(self.get_query_argument("bbox", None))
        layers = self.ctx.jurisdiction_layers
        key = (level, None if within == city.id else within)
        if key not in layers:
            # Thousands of grids: serialise once per (level, within), not per request.
            layers[key] = select_jurisdictions(city, level, within)
        self.set_header("Content-Type", "application/geo+json; charset=UTF-8")
        self.set_header("Cache-Control", "private, max-age=3600")
        self.finish(layers[key].body(bbox))


class DepartmentsHandler(BaseHandler):
    access = {"GET": ("reference", "read")}

    async def get(self):
        self.require_user()
        city = self.ctx.city
        items = [
            {"id": d.id, "name": d.name, "type": d.type, "jurisdiction": d.jurisdiction}
            for d in city.departments.values()
        ]
        self.send({"items": items})


class CategoriesHandler(BaseHandler):
    access = {"GET": ("reference", "read")}

    async def get(self):
        self.require_user()
        items = []
        for c in self.ctx.city.categories.values():
            items.append({
                "code": c.code, "name": c.name, "kind": c.kind, "group": c.group,
                "priority": c.priority, "limits": c.limits, "urgent_limits": c.urgent_limits,
                "auto_dispatch": c.auto_dispatch, "keywords": list(c.keywords),
            })
            # Everyday words for the category search (categories.yaml `keywords`, when the loader has them).
            items[-1]["keywords"] = list(getattr(c, "keywords", None) or ())
        self.send({"items": items})


class LabelsHandler(BaseHandler):
    """The workflow's own words (`dispatch.workflow.service.labels`): the pages keep no copy."""
    access = {"GET": ("labels", "read")}

    async def get(self):
        self.require_user()
        self.set_header("Cache-Control", "private, max-age=3600")
        self.send(labels())


routes = [
    (r"/api/labels", LabelsHandler),
    (r"/api/jurisdictions\.geojson", JurisdictionsHandler),
    (r"/api/departments", DepartmentsHandler),
    (r"/api/categories", CategoriesHandler),
]

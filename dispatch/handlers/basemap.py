"""GET /api/basemap/{layer}.geojson: the city package's optional base-map layers (roads, points
of interest), drawn by the pages under the cases. A layer the package lacks is 404; /api/me
lists the layers there are (`map.layers`)."""

from __future__ import annotations

import json

from dispatch.errors import not_found
from dispatch.handlers.base import BaseHandler
from geo.loader import BASE_LAYERS


class BaseMapLayerHandler(BaseHandler):
    access = {"GET": ("reference", "read")}

    async def get(self, layer: str):
        self.require_user()
        collection = self.ctx.city.base_layers.get(layer)
        if collection is None:
            raise not_found(f"本城市没有 {layer} 图层", code="layer_not_found")
        self.set_header("Content-Type", "application/geo+json; charset=UTF-8")
        self.set_header("Cache-Control", "private, max-age=3600")
        self.finish(json.dumps(collection, ensure_ascii=False, separators=(",", ":")))


routes = [(r"/api/basemap/(%s)\.geojson" % "|".join(BASE_LAYERS), BaseMapLayerHandler)]

"""GET /api/openapi.json — the OpenAPI 3.1 description of this API (dispatch/openapi.py)."""

from __future__ import annotations

import json

from dispatch.handlers.base import BaseHandler
from dispatch.openapi import document


class OpenAPIHandler(BaseHandler):
    access = {"GET": ("openapi", "read")}

    async def get(self):
        cache = self.ctx.cache
        if "openapi.json" not in cache:
            cache["openapi.json"] = json.dumps(document(self.ctx.city), ensure_ascii=False, separators=(",", ":")).encode()
        self.set_header("Cache-Control", "public, max-age=300")
        self.finish(cache["openapi.json"])


routes = [(r"/api/openapi\.json", OpenAPIHandler)]

"""GET /api/openapi.json — the OpenAPI 3.1 description of this API (dispatch/openapi.py)."""

from __future__ import annotations

import json

from dispatch.handlers.base import BaseHandler
from dispatch.openapi import document


class OpenAPIHandler(BaseHandler):
    access = {"GET": ("openapi", "read")}

    async def get(self):
        ctx = self.ctx
        if ctx.openapi_json is None:
            ctx.openapi_json = json.dumps(document(ctx.city), ensure_ascii=False, separators=(",", ":")).encode()
        self.set_header("Cache-Control", "public, max-age=300")
        self.finish(ctx.openapi_json)


routes = [(r"/api/openapi\.json", OpenAPIHandler)]

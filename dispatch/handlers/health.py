"""GET /healthz — liveness, storage engine and whether data survives a restart."""

from dispatch.handlers.base import BaseHandler
from dispatch.store.query import RETRY_AFTER_SECONDS


class HealthHandler(BaseHandler):
    access = {"GET": ("health", "read")}

    async def get(self):
        ctx = self.ctx
        ok = await ctx.storage.ping()
        if not ok:
            self.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
        self.send(
            {
                "status": "ok" if ok else "unavailable",
                "storage": ctx.storage.kind,
                "persistent": ctx.storage.persistent,
                "storage_note": None if ctx.storage.persistent else "内嵌内存库：数据仅保存在内存中，服务停止即丢失",
                "city": {"id": ctx.city.id, "name": ctx.city.name},
                "live_clients": len(ctx.live.subscribers),
            },
            200 if ok else 503,
        )


routes = [(r"/healthz", HealthHandler)]

"""POST /api/reports — a grid worker's report (网格上报)."""

from dispatch.handlers.base import BaseHandler


class ReportsHandler(BaseHandler):
    access = {"POST": ("report", "create")}

    async def post(self):
        await self.intake("report")


routes = [(r"/api/reports", ReportsHandler)]

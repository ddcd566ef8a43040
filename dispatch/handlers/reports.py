"""POST /api/reports — a grid worker's report (网格上报)."""

from dispatch.domain import to_api
from dispatch.handlers.base import BaseHandler


class ReportsHandler(BaseHandler):
    access = {"POST": ("report", "create")}

    async def post(self):
        user = self.require_user()
        result = await self.ctx.intake.report(user, self.json_body())
        self.send(to_api(result.case, user, self.ctx.tz, self.ctx.workflow.actions(user, result.case)), 201 if result.created else 200)


routes = [(r"/api/reports", ReportsHandler)]

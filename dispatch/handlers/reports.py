"""POST /api/reports — a grid worker's report (网格上报)."""

from dispatch.handlers.base import BaseHandler


class ReportsHandler(BaseHandler):
    access = {"POST": ("report", "create")}

    async def post(self):
        user = self.require_user()
        result = await self.ctx.intake.report(user, self.json_body())
        self.send(self.case_json(result.case, user), 201 if result.created else 200)


routes = [(r"/api/reports", ReportsHandler)]

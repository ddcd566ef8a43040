"""POST /api/tickets — a 12345 hotline ticket (热线工单)."""

from dispatch.domain import to_api
from dispatch.handlers.base import BaseHandler


class TicketsHandler(BaseHandler):
    access = {"POST": ("ticket", "create")}

    async def post(self):
        user = self.require_user()
        result = await self.ctx.intake.ticket(user, self.json_body())
        self.send(to_api(result.case, user, self.ctx.tz, self.ctx.workflow.actions(user, result.case)), 201 if result.created else 200)


routes = [(r"/api/tickets", TicketsHandler)]

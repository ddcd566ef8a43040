"""POST /api/tickets — a 12345 hotline ticket (热线工单)."""

from dispatch.handlers.base import BaseHandler


class TicketsHandler(BaseHandler):
    access = {"POST": ("ticket", "create")}

    async def post(self):
        user = self.require_user()
        result = await self.ctx.intake.ticket(user, self.json_body())
        self.send(self.case_json(result.case, user), 201 if result.created else 200)


routes = [(r"/api/tickets", TicketsHandler)]

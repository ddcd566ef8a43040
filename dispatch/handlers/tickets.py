"""POST /api/tickets — a 12345 hotline ticket (热线工单)."""

from dispatch.handlers.base import BaseHandler


class TicketsHandler(BaseHandler):
    access = {"POST": ("ticket", "create")}

    async def post(self):
        await self.intake("ticket")


routes = [(r"/api/tickets", TicketsHandler)]

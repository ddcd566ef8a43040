"""POST /api/cases/{id}/actions/{action} — one step of the closed loop (SPEC §4)."""

from dispatch.handlers.base import BaseHandler


class CaseActionHandler(BaseHandler):
    access = {"POST": ("case", "act")}

    async def post(self, case_id: str, action: str):
        user = self.require_user()
        # Most actions need nothing but the action itself: an empty body is an empty object.
        body = self.json_body() if (self.request.body or b"").strip() else {}
        case = await self.ctx.workflow.act(user, case_id, action, body)
        self.send(self.case_json(case, user))


routes = [(r"/api/cases/([A-Za-z0-9_-]{1,64})/actions/([a-z_]{1,40})", CaseActionHandler)]

"""POST /api/cases/{id}/reveal `{reason}` — the caller's name and phone, unmasked, on purpose.

Everyone but the operator who took the call and admins sees `张*` / `138****5678`. Those whom
`dispatch.access.policy.reveal_refusal` allows (`auth.reveal_roles`; by default the operator who
took the call, the operators doing that case's 回访 callback, and admins) may ask for the real
values, giving a reason. Every reveal is recorded in the `reveals` audit collection (who, when,
which case, why, from which address), and each user may reveal at most `auth.reveals_per_hour`
callers per hour (counted in the store, so across all server processes), so that an account
cannot be used to harvest the phone book.
"""

from __future__ import annotations

from dispatch import validation as v
from dispatch.errors import ApiError, not_found
from dispatch.handlers.base import BaseHandler
from dispatch.access.policy import reveal_refusal


class RevealHandler(BaseHandler):
    access = {"POST": ("caller", "reveal")}

    async def post(self, case_id: str):
        user = self.require_user()
        body = self.json_body()
        reason = v.text(body, "reason", required=True, max_len=200, allow_empty=False)
        case = await self.ctx.cases.get(case_id)
        if case is None:
            raise not_found("案件不存在或不在您的权限范围内", code="case_not_found")
        refusal = reveal_refusal(user, case, self.ctx.city.id, self.ctx.config["auth"]["reveal_roles"])
        if refusal is not None:
            raise refusal  # 404 for a case the user cannot read, like every read
        caller = case.get("caller") or {}
        if not caller.get("name") and not caller.get("phone"):
            raise not_found("此案件没有来电人信息", code="no_caller")
        wait = await self.ctx.reveal_limit.take(user.username)
        if wait:
            raise ApiError(429, "too_many_reveals", f"查看来电人信息过于频繁，请 {wait} 秒后再试", retry_after=wait)
        now = self.ctx.clock.now()
        await self.ctx.audit_log.record("reveals", {
            "at": now, "by": user.username, "role": user.role, "case_id": case["_id"],
            "number": case.get("number"), "reason": reason, "address": self.client_ip,
        })
        self.send({
            "case_id": case["_id"],
            "number": case.get("number"),
            "caller": {"name": caller.get("name"), "phone": caller.get("phone")},
            # The callers of repeats merged into this case: a callback reaches everyone who asked.
            "callers": [{"name": c.get("name"), "phone": c.get("phone"), "number": c.get("number")}
                        for c in case.get("callers") or []],
            "revealed_at": now.astimezone(self.ctx.tz).isoformat(timespec="seconds"),
            "audited": True,
        })


routes = [(r"/api/cases/([A-Za-z0-9_-]{1,64})/reveal", RevealHandler)]

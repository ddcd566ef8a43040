"""GET /api/audit/verify — which cases have a history whose hash chain no longer holds.

`?case=<id>` checks one case the user can read; without it, every case in the user's scope
(admins, commanders and dispatchers only), read in pages so the whole store is never in memory.
"""

from dispatch.workflow.audit import verify_chain
from dispatch.errors import not_found
from dispatch.handlers.base import BaseHandler
from dispatch.access.policy import can_read_case, case_scope
from dispatch.store.query import BY_ID, After, CaseQuery, Scope

PAGE = 500


def _finding(case: dict) -> dict | None:
    history = case.get("history") or []
    index = verify_chain(history)
    if index is None:
        return None
    return {"id": case["_id"], "number": case.get("number"), "index": index, "entries": len(history)}


class AuditVerifyHandler(BaseHandler):
    access = {"GET": ("audit", "verify")}

    async def get(self):
        user = self.require_user()
        case_id = self.get_query_argument("case", None)
        if case_id:
            case = await self.ctx.cases.get(case_id)
            if case is None or not can_read_case(user, case, self.ctx.city.id):
                raise not_found("案件不存在或不在您的权限范围内", code="case_not_found")
            finding = _finding(case)
            checked, broken = 1, [finding] if finding else []
        else:
            self.authorize("audit", "verify_all")  # the whole scope, not one case
            checked, broken = await self._scan(case_scope(user, self.ctx.city.id))
        self.send({"checked": checked, "ok": not broken, "broken": broken})

    async def _scan(self, scope: Scope) -> tuple[int, list]:
        checked, broken, last = 0, [], None
        while True:
            after = After(None, last) if last else None
            page = await self.ctx.cases.find(CaseQuery(scope=scope, order=BY_ID, after=after, limit=PAGE))
            for case in page:
                finding = _finding(case)
                if finding:
                    broken.append(finding)
            checked += len(page)
            if len(page) < PAGE:
                return checked, broken
            last = page[-1]["_id"]


routes = [(r"/api/audit/verify", AuditVerifyHandler)]

"""GET /api/stats/trend: cases per day and the top problem types of a jurisdiction (the command
centre's trend panel; see dispatch/kpi/trend.py).

Parameters: `scope` (a jurisdiction inside the caller's own; default the caller's scope),
`days` (1–90, default 30), `category`, `department` (narrow the counts like the page's filters).
"""

from __future__ import annotations

from datetime import datetime, timezone

from dispatch import validation as v
from dispatch.access.policy import case_scope, report_scope
from dispatch.errors import unprocessable
from dispatch.handlers.base import BaseHandler
from dispatch.kpi import trend


class StatsTrendHandler(BaseHandler):
    access = {"GET": ("stats", "read")}

    async def get(self):
        user = self.require_user()
        ctx = self.ctx
        arg = lambda name: self.get_query_argument(name, None)  # noqa: E731
        scope = report_scope(user, ctx.city, v.text({"scope": arg("scope")}, "scope", max_len=64) or None)
        days = v.query_int(arg("days"), "days", default=30, low=1, high=trend.MAX_DAYS)
        category = v.text({"category": arg("category")}, "category", max_len=64) or None
        if category and category not in ctx.city.categories:
            raise unprocessable(f"未知的案件类别 {category}", code="unknown_category", field="category")
        department = v.text({"department": arg("department")}, "department", max_len=64) or None
        if department and department not in ctx.city.departments:
            raise unprocessable(f"未知的部门 {department}", code="unknown_department", field="department")
        if user.role == "department":
            department = user.department  # a department sees its own share only
        self.send(await trend.compute(ctx, reader=case_scope(user, ctx.city.id), scope=scope, days=days,
                                      now=datetime.now(timezone.utc), category=category, department=department))


routes = [(r"/api/stats/trend", StatsTrendHandler)]

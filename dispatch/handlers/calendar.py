"""GET /api/calendar/add?from=<instant>&duration=<2wd|4wh|30m…>: an instant plus a duration on
the city's business calendar (working hours, weekends, holidays), so a page can preview a
deadline before asking for it — e.g. the new 处置时限 of an extension request, computed the way
approving it will (dispatch/workflow/transitions.py: calendar.add(deadline, duration))."""

from __future__ import annotations

from datetime import timezone

from dispatch import validation as v
from dispatch.errors import bad_request
from dispatch.handlers.base import BaseHandler


class CalendarAddHandler(BaseHandler):
    access = {"GET": ("reference", "read")}

    async def get(self):
        self.require_user()
        ctx = self.ctx
        start = v.query_time(self.get_query_argument("from", None), "from", ctx.tz)
        if start is None:
            raise bad_request("缺少参数 from", code="missing_parameter", field="from")
        raw = (self.get_query_argument("duration", None) or "").strip()
        try:
            duration = ctx.calendar.parse_duration(raw)
            at = ctx.calendar.add(start, duration)
        except (ValueError, OverflowError, ArithmeticError):
            raise bad_request("参数 duration 应为时长，如 30m、4h、4wh、2wd", code="invalid_parameter", field="duration") from None
        self.send({"from": start.astimezone(ctx.tz).isoformat(timespec="seconds"),
                   "duration": raw, "at": at.astimezone(ctx.tz).isoformat(timespec="seconds"),
                   "at_utc": at.astimezone(timezone.utc).isoformat(timespec="seconds")})


routes = [(r"/api/calendar/add", CalendarAddHandler)]

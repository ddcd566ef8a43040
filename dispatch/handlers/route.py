"""GET /api/route — the routing decision for a point and category, without creating a case."""

from dispatch import validation as v
from dispatch.domain import SOURCES
from dispatch.errors import bad_request, unprocessable
from dispatch.handlers.base import BaseHandler
from dispatch.rules import OutsideCity


class RouteHandler(BaseHandler):
    access = {"GET": ("route", "read")}

    async def get(self):
        self.require_user()
        lng = v.query_float(self.get_query_argument("lng", None), "lng")
        lat = v.query_float(self.get_query_argument("lat", None), "lat")
        if lng is None or lat is None:
            raise bad_request("需要参数 lng 和 lat", code="missing_parameter")
        lng, lat = v.coordinate_pair(lng, lat, "lng/lat")
        code = self.get_query_argument("category", "")
        if code not in self.ctx.city.categories:
            raise unprocessable(f"未知的案件类别代码 {code}", code="unknown_category", field="category")
        source = (v.query_list(self.get_query_argument("source", None), "source", SOURCES, 1) or ["grid"])[0]
        text = self.get_query_argument("text", "")[:2000]
        try:
            decision = self.ctx.router.route(lng, lat, code, source=source, text=text, at=self.ctx.clock.now())
        except OutsideCity as exc:
            raise unprocessable(str(exc), code="outside_city") from None
        self.send(decision.as_dict())


routes = [(r"/api/route", RouteHandler)]

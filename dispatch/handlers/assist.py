"""The operator assist (SPEC §9).

* `GET /api/assist?text=&lng=&lat=&phone=&category=` (operator, dispatcher) → suggested
  categories with the department the rules would pick, knowledge articles, similar open cases,
  the caller's recent tickets and `repeat_of`; case summaries masked as the case views are.
* `POST /api/admin/assist/train` (admin) → retrains the category suggestion and answers
  `{version, examples, ...}` once the new model is live in every process; 422 when there is too
  little to learn from (the previous model stays).
* `GET /api/admin/assist/train` (admin) → the model in use: `{version, examples, trained_at}`.
"""

from __future__ import annotations

from dispatch import validation as v
from dispatch.assist.classifier import TooLittleData
from dispatch.errors import bad_request, unprocessable
from dispatch.handlers.base import BaseHandler

MAX_TEXT = 4000  # as a ticket's content


class AssistHandler(BaseHandler):
    access = {"GET": ("assist", "read")}

    async def get(self):
        user = self.require_user()
        text = self.get_query_argument("text", "")
        if len(text) > MAX_TEXT:
            raise bad_request(f"text 过长（{len(text)} 字），最多 {MAX_TEXT} 字", code="too_long", field="text")
        lng = v.query_float(self.get_query_argument("lng", None), "lng")
        lat = v.query_float(self.get_query_argument("lat", None), "lat")
        if (lng is None) != (lat is None):
            raise bad_request("lng 和 lat 需要同时给出", code="missing_parameter", field="lng" if lng is None else "lat")
        place = v.coordinate_pair(lng, lat, "lng/lat") if lng is not None else None
        category = self.get_query_argument("category", "") or None
        if category is not None and category not in self.ctx.city.categories:
            raise unprocessable(f"未知的案件类别代码 {category}", code="unknown_category", field="category")
        phone = self.get_query_argument("phone", None)
        self.send(await self.ctx.assist.answer(user, text.strip(), place, phone, category))


class TrainHandler(BaseHandler):
    access = {"POST": ("assist", "train"), "GET": ("assist", "train")}

    async def get(self):
        self.send(self.ctx.assist.suggester.status())

    async def post(self):
        self.require_user()
        try:
            result = await self.ctx.assist.suggester.train(by=f"管理员 {self.user.username}")
        except TooLittleData as exc:
            raise unprocessable(str(exc), code="too_little_data") from None
        self.send(result)


routes = [
    (r"/api/assist", AssistHandler),
    (r"/api/admin/assist/train", TrainHandler),
]

"""GET /api/addresses?q=<text>&limit=10 — door-plate (门楼牌) suggestions for the operator console.

The operator types part of an address; the city's address book (`geo.geocode.AddressBook`)
answers with normalized-prefix matches first, then substring matches.

Contract:

* roles: operator, dispatcher, admin (those who record or correct a case's address); others 403;
* `q` empty, blank or absent → 200 `{"items": []}` (an autocomplete box asks while the operator
  clears it; that is not an error); longer than 100 characters → 400;
* `limit` 1–50, default 10;
* → `{"items": [{"address", "lng", "lat"}]}`.
"""

from __future__ import annotations

from dispatch import validation as v
from dispatch.errors import bad_request
from dispatch.handlers.base import BaseHandler

MAX_QUERY = 100


class AddressesHandler(BaseHandler):
    access = {"GET": ("address", "search")}

    async def get(self):
        self.require_role("operator", "dispatcher", "admin")
        q = self.get_query_argument("q", "") or ""
        if len(q) > MAX_QUERY:
            raise bad_request(f"参数 q 过长（最多 {MAX_QUERY} 个字）", code="invalid_parameter", field="q")
        limit = v.query_int(self.get_query_argument("limit", None), "limit", default=10, low=1, high=50)
        q = q.strip()
        items = self.ctx.city.addresses.suggest(q, limit) if q else []
        self.send({"items": items})


routes = [(r"/api/addresses", AddressesHandler)]

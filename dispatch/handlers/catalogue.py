"""The dispatch catalogue (派单目录) and the disputes raised against it (派单异议).

* `GET /api/catalogue` → `{items: [entry], disputes: {total}}`: which department type handles
  which category at which level, published from the rules (`dispatch.rules.catalogue`), with
  the entries an approved 退单 disputed marked (`disputes`, `disputed`).
* `GET /api/catalogue.csv` → the same table for Excel (UTF-8 with a BOM).
* `GET /api/catalogue/disputes?limit=` → the approved returns, newest first, each with the
  catalogue entry it disputes (category, rule, department type, level), for the admin to review.
"""

from __future__ import annotations

from dispatch import validation as v
from dispatch.handlers.base import BaseHandler
from dispatch.rules import catalogue
from dispatch.workflow.joint import DISPUTES

# Every approved return is read to mark the catalogue: plenty for years of disputes in a city.
MAX_DISPUTES = 10_000


class CatalogueMixin:
    async def rows(self) -> list[dict]:
        records = await self.ctx.audit_log.recent(DISPUTES, MAX_DISPUTES)
        return catalogue.entries(self.ctx.city, catalogue.dispute_counts(records))


class CatalogueHandler(CatalogueMixin, BaseHandler):
    access = {"GET": ("catalogue", "read")}

    async def get(self):
        rows = await self.rows()
        self.send({"items": rows, "disputes": {"total": sum(row["disputes"] for row in rows)},
                   "levels": catalogue.LEVEL_NAMES})


class CatalogueCsvHandler(CatalogueMixin, BaseHandler):
    access = {"GET": ("catalogue", "read")}

    async def get(self):
        body = catalogue.to_csv(await self.rows())
        self.set_header("Content-Type", "text/csv; charset=UTF-8")
        self.set_header("Content-Disposition", 'attachment; filename="catalogue.csv"')
        self.finish(body)


class DisputesHandler(BaseHandler):
    access = {"GET": ("catalogue", "disputes")}

    async def get(self):
        limit = v.query_int(self.get_query_argument("limit", None), "limit", default=100, low=1, high=1000)
        records = await self.ctx.audit_log.recent(DISPUTES, limit)
        self.send({"items": [_view(record, self.ctx.tz) for record in records]})


def _view(record: dict, tz) -> dict:
    out = {"id": record["_id"], **{k: val for k, val in record.items() if k != "_id"}}
    out["at"] = record["at"].astimezone(tz).isoformat(timespec="seconds")
    return out


routes = [
    (r"/api/catalogue", CatalogueHandler),
    (r"/api/catalogue\.csv", CatalogueCsvHandler),
    (r"/api/catalogue/disputes", DisputesHandler),
]

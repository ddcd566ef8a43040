"""GET /api/stats (KPIs as JSON) and GET /api/stats.csv / .xlsx (the same table, exported).

Parameters: `scope` (a jurisdiction id inside the caller's scope; default the caller's scope),
`from`/`to` (ISO dates in city time, `to` included; default the current month), `group_by`
(department | district | street | community), `top` (length of the overdue list).
"""

from __future__ import annotations

import csv
import io

from dispatch.kpi import stats
from dispatch import validation as v
from dispatch.errors import bad_request
from dispatch.handlers.base import BaseHandler
from dispatch.access.policy import case_scope, report_scope

class StatsMixin:
    async def report(self) -> dict:
        user = self.require_user()  # roles: ("stats", "read") in dispatch.access.policy
        ctx = self.ctx
        arg = lambda name: self.get_query_argument(name, None)  # noqa: E731
        scope = report_scope(user, ctx.city, v.text({"scope": arg("scope")}, "scope", max_len=64) or None)
        group_by = v.choice({"group_by": arg("group_by")}, "group_by", stats.GROUP_BY, default="department")
        top = v.query_int(arg("top"), "top", default=stats.DEFAULT_TOP, low=0, high=500)
        now = ctx.clock.now()
        try:
            period = stats.parse_period(arg("from"), arg("to"), ctx.tz, now)
        except stats.PeriodError as exc:
            raise bad_request(str(exc), code="invalid_parameter", field=exc.field) from None
        return await stats.compute(
            ctx, reader=case_scope(user, ctx.city.id), scope=scope, period=period,
            group_by=group_by, department=user.department if user.role == "department" else None,
            top=top, now=now,
        )


class StatsHandler(StatsMixin, BaseHandler):
    access = {"GET": ("stats", "read")}

    async def get(self):
        self.send(await self.report())


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class StatsExportHandler(StatsMixin, BaseHandler):
    access = {"GET": ("stats", "read")}

    async def get(self, fmt: str):
        report = await self.report()
        headers, lines = stats.table(report)
        period = report["period"]
        name = f"kpi-{report['scope']['id']}-{period['first_day']}-{period['last_day']}-{report['group_by']}.{fmt}"
        if fmt == "csv":
            body, content_type = to_csv(headers, lines), "text/csv; charset=UTF-8"
        else:
            body, content_type = to_xlsx(headers, lines, report), XLSX_TYPE
        self.set_header("Content-Type", content_type)
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(body)


def to_csv(headers: list[str], lines: list[list]) -> bytes:
    """UTF-8 with a BOM: without it Excel reads the Chinese headers as GBK mojibake."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows([["" if cell is None else cell for cell in line] for line in lines])
    return "\ufeff".encode() + buf.getvalue().encode("utf-8")


def to_xlsx(headers: list[str], lines: list[list], report: dict) -> bytes:
    """Sheet 1 the table (total last, bold), sheet 2 what each figure means."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = "KPI"
    sheet.append(headers)
    for line in lines:
        sheet.append(line)
    bold = Font(bold=True)
    for cell in sheet[1]:
        cell.font = bold
    for cell in sheet[sheet.max_row]:
        cell.font = bold
    sheet.freeze_panes = "C2"
    sheet.column_dimensions["A"].width = 24

    notes = book.create_sheet("口径说明")
    scope, period = report["scope"], report["period"]
    notes.append(["辖区", f"{scope['name']}（{scope['id']}）"])
    notes.append(["统计期", f"{period['first_day']} 至 {period['last_day']}"])
    notes.append(["生成时间", report["generated_at"]])
    notes.append([])
    notes.append(["指标", "口径"])
    for figure in stats.FIGURES:
        notes.append([figure.name, figure.formula])
    notes.column_dimensions["A"].width = 26
    notes.column_dimensions["B"].width = 90

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


routes = [
    (r"/api/stats", StatsHandler),
    (r"/api/stats\.(csv|xlsx)", StatsExportHandler),
]

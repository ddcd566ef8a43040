"""GET /api/calendar/add: a deadline preview on the city's business calendar."""

from urllib.parse import quote

from support import login_as


async def test_working_days_skip_the_weekend(demo):
    department = await login_as(demo, "department")
    # Friday 2026-11-27 16:00 + 1 working day → Monday 16:00 (the demo city works Mon–Fri).
    status, body = await department.get("/api/calendar/add?from=" + quote("2026-11-27T16:00:00+08:00") + "&duration=1wd")
    assert status == 200, body
    assert body["at"].startswith("2026-11-30T16:00")


async def test_bad_input_is_400(demo):
    department = await login_as(demo, "department")
    for query in ("duration=1wd", "from=2026-11-27&duration=soon", "from=yesterday&duration=1wd"):
        status, body = await department.get("/api/calendar/add?" + query)
        assert status == 400, (query, body)

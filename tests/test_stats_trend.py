"""GET /api/stats/trend: the command centre's trend panel (cases per day, top problem types) and
the departments serving the scope (its department filter)."""

from datetime import datetime, timezone

from support import login_as

HUBIN = [120.1584, 30.2560]  # 湖滨街道东坡路社区


async def grid_report(demo, category: str, description: str) -> dict:
    grid = await login_as(demo, "grid_worker")
    status, case = await grid.post("/api/reports", {
        "category": category, "description": description, "location": {"type": "Point", "coordinates": HUBIN},
    })
    assert status == 201, case
    return case


async def test_days_and_top_types_count_todays_reports(demo):
    for _ in range(2):
        await grid_report(demo, "S0406", "人行道机动车违停")
    await grid_report(demo, "S0102", "暴露垃圾")
    commander = await login_as(demo, "commander")
    status, body = await commander.get("/api/stats/trend?days=30")
    assert status == 200, body
    assert len(body["days"]) == 30
    today = datetime.now(timezone.utc).astimezone(demo.ctx.tz).date().isoformat()
    assert body["days"][-1]["day"] == today
    assert body["days"][-1]["reported"] == 3 and sum(d["reported"] for d in body["days"]) == 3
    assert [(t["code"], t["count"]) for t in body["top_categories"]] == [("S0406", 2), ("S0102", 1)]
    status, only = await commander.get("/api/stats/trend?days=7&category=S0102")
    assert status == 200 and len(only["days"]) == 7
    assert [(t["code"], t["count"]) for t in only["top_categories"]] == [("S0102", 1)]


async def test_a_street_commander_sees_the_streets_departments_only(demo):
    await grid_report(demo, "S0406", "人行道机动车违停")
    street = await login_as(demo, "commander", 1)  # 湖滨街道
    status, body = await street.get("/api/stats/trend")
    assert status == 200
    assert body["scope"]["name"] == "湖滨街道"
    names = {d["name"] for d in body["departments"]}
    assert "上城区湖滨街道办事处" in names and "上城区城管局" in names
    assert "拱墅区城管局" not in names  # another district's
    status, body = await street.get("/api/stats/trend?scope=330100")
    assert status == 403


async def test_bad_parameters(demo):
    commander = await login_as(demo, "commander")
    for query, code in [("days=0", 400), ("days=91", 400), ("category=NOPE", 422), ("department=nope", 422)]:
        status, body = await commander.get(f"/api/stats/trend?{query}")
        assert status == code, (query, body)
    grid = await login_as(demo, "grid_worker")
    status, _ = await grid.get("/api/stats/trend")
    assert status == 403

"""KPIs by community (社区): the command centre's drill-down 区 → 街道 → 社区 asks a street's
report grouped by community, and a community's report (issue 12). The rollups keep districts
and streets only, so these read the cases; the figures must still agree with the street's."""

from __future__ import annotations

import csv
import io

from support import login_as

HUBIN = [120.1584, 30.2560]  # 湖滨街道东坡路社区


async def grid_report(demo, description: str) -> dict:
    grid = await login_as(demo, "grid_worker")
    status, case = await grid.post("/api/reports", {
        "category": "S0406", "description": description, "location": {"type": "Point", "coordinates": HUBIN},
    })
    assert status == 201, case
    return case


def figures(row: dict) -> dict:
    return {k["key"]: k["value"] for k in row["kpis"]}


async def test_a_streets_report_by_community_names_every_community_and_counts_its_cases(demo):
    case = await grid_report(demo, "人行道机动车违停")
    await grid_report(demo, "人行道又有机动车违停")
    street, community = case["jurisdiction"]["street"], case["jurisdiction"]["community"]
    city = demo.ctx.city
    communities = sorted(j.id for j in city.jurisdictions.values() if j.level == "community" and j.parent == street["id"])
    commander = await login_as(demo, "commander")

    status, report = await commander.get(f"/api/stats?scope={street['id']}&group_by=community&top=0")
    assert status == 200, report
    assert report["group_by"] == "community" and report["scope"]["id"] == street["id"]
    rows = {r["group"]["id"]: r for r in report["rows"]}
    assert sorted(rows) == communities  # every community of the street, the empty ones too
    assert {r["group"]["street"] for r in report["rows"]} == {street["name"]}
    assert rows[community["id"]]["group"]["name"] == community["name"]
    assert figures(rows[community["id"]])["reported"] == 2
    assert sum(figures(r)["reported"] for r in report["rows"]) == figures(report["total"])["reported"] == 2

    # The community itself, by department: the same two cases.
    status, inside = await commander.get(f"/api/stats?scope={community['id']}&group_by=department&top=0")
    assert status == 200, inside
    assert inside["scope"] == {"id": community["id"], "name": community["name"], "level": "community"}
    assert figures(inside["total"])["reported"] == 2

    status, text = await commander.get(f"/api/stats.csv?scope={street['id']}&group_by=community")
    assert status == 200
    header, *lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert header[:3] == ["社区", "编码", "所属街道"]
    line = next(line for line in lines if line[1] == community["id"])
    assert line[:3] == [community["name"], community["id"], street["name"]]


async def test_a_street_commander_drills_into_the_communities_of_the_street_only(demo):
    case = await grid_report(demo, "人行道机动车违停")
    street = await login_as(demo, "commander", 1)  # 湖滨街道
    status, report = await street.get("/api/stats?group_by=community&top=0")
    assert status == 200, report
    assert report["scope"]["id"] == case["jurisdiction"]["street"]["id"]
    assert case["jurisdiction"]["community"]["id"] in {r["group"]["id"] for r in report["rows"]}
    other = next(j.id for j in demo.ctx.city.jurisdictions.values()
                 if j.level == "community" and j.parent != case["jurisdiction"]["street"]["id"])
    status, refused = await street.get(f"/api/stats?scope={other}&group_by=community")
    assert status == 403, refused

"""The dispatch catalogue (派单目录, dispatch/rules/catalogue.py): published from the rules as
JSON, as a CSV Excel opens, and as the /catalogue page."""

from __future__ import annotations

import csv
import io

import pytest

from dispatch.rules import catalogue
from test_workflow import World, city_dir, world  # noqa: F401  (fixtures)

pytestmark = pytest.mark.asyncio


def rows_of(items: list[dict], code: str) -> list[tuple]:
    return [(r["rule"], r["department_type"], tuple(r["levels"])) for r in items if r["category"] == code]


async def test_each_category_lists_the_rules_that_can_send_it_somewhere(world: World):
    status, body = await world.as_("disp-a").get("/api/catalogue")
    assert status == 200, body
    items = body["items"]
    assert {r["category"] for r in items} == set(world.ctx.city.categories)
    # 河道漂浮物: a gas keyword first, the river rule near a river, else the street office.
    assert rows_of(items, "0105") == [
        ("gas-keyword", "gas", ("city",)),
        ("river-water", "water", ("district",)),
        ("fallback", "street_office", ("street",)),
    ]
    # 社区求助: the community-help rule has no condition, so nothing after it applies.
    assert rows_of(items, "H02")[-1] == ("community-help", "community_service", ("district", "community", "grid"))
    river = next(r for r in items if r["category"] == "0105" and r["rule"] == "river-water")
    assert river["conditions"] == "距河道 30 米内" and river["level_names"] == "区级"
    assert river["department_examples"] == "甲区林水局" and river["disputed"] is False
    night = next(r for r in items if r["rule"] == "noise-night")
    assert night["conditions"] == "来源为热线；时段 22:00-06:00"


async def test_the_csv_opens_in_excel(world: World):
    status, body = await world.as_("disp-a").get("/api/catalogue")
    assert status == 200
    client = world.as_("disp-a")
    response = await client.http.fetch(client.base + "/api/catalogue.csv", raise_error=False,
                                       headers={"Authorization": f"Bearer {client.token}"})
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.body.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(response.body.decode("utf-8-sig"))))
    assert table[0] == [title for _, title in catalogue.CSV_COLUMNS]
    assert len(table) == len(body["items"]) + 1
    first = body["items"][0]
    assert table[1][:3] == [first["category"], first["category_name"], first["group"]]


async def test_a_cell_that_looks_like_a_formula_is_quoted():
    data = catalogue.to_csv([{"category": "=HYPERLINK(\"x\")", "category_name": "+1", "conditions": "-2"}])
    row = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))[1]
    assert row[0] == "'=HYPERLINK(\"x\")" and row[1] == "'+1" and row[6] == "'-2"


async def test_who_reads_the_catalogue_and_its_disputes(world: World):
    for username in ("disp-a", "op1", "a1so", "cmd-a1", "admin"):
        status, _ = await world.as_(username).get("/api/catalogue")
        assert status == 200, username
    status, body = await world.as_("gw1").get("/api/catalogue")
    assert status == 403 and body["error"]["code"] == "role_forbidden"
    for username, expected in (("admin", 200), ("disp-a", 200), ("a1so", 403), ("op1", 403)):
        status, _ = await world.as_(username).get("/api/catalogue/disputes")
        assert status == expected, username
    status, body = await world.as_("admin").get("/api/catalogue/disputes?limit=0")
    assert status == 400, body


async def test_a_manual_dispatch_disputes_the_entries_of_that_department_type(world: World):
    case = await world.report("0201", text="井盖缺失")  # routed by the manhole rule to 一街道城管中队
    cid = case["id"]
    await world.ok("disp-a", cid, "file")
    await world.ok("disp-a", cid, "dispatch", {"department": "city-um"})  # by hand, to the city's bureau
    await world.ok("cityum", cid, "return", {"reason": "应由街道城管中队处置"})
    await world.ok("disp-a", cid, "approve_return")
    assert (await world.stored(cid))["history"][-1]["catalogue_entry"] == "0201|manual|urban_management|city"
    status, body = await world.as_("disp-a").get("/api/catalogue")
    assert status == 200
    # The entry of 0201 that sends it to urban management (at city, district or street level).
    assert [(r["category"], r["rule"]) for r in body["items"] if r["disputed"]] == [("0201", "manhole")]
    status, disputes = await world.as_("admin").get("/api/catalogue/disputes")
    assert [d["key"] for d in disputes["items"]] == ["0201|manual|urban_management|city"]

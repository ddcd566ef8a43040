"""Door plates written the way people say them (issue 12, bug 11): with or without the province,
city, district, street and community, with a bare number; the address book and the console's
suggestions read both sides the same way."""

from urllib.parse import quote

import pytest

from geo.geocode import AddressBook, plate_of
from support import login_as

BOOK = AddressBook([
    ("上城区湖滨街道东坡路3号", 120.1628, 30.2504),
    ("杭州市上城区东坡路30号", 120.1630, 30.2510),
    ("上城区湖滨街道东坡路12弄", 120.1632, 30.2512),
    ("甲区和平路1号", 1.0, 2.0),
    ("乙区和平路1号", 3.0, 4.0),
    ("上城区新市街5号", 120.17, 30.26),
], city_name="杭州市")


@pytest.mark.parametrize("text", [
    "东坡路3号", "东坡路3", "杭州市上城区东坡路3号", "浙江省杭州市上城区东坡路3号", "上城区东坡路3号",
    "湖滨街道东坡路3号", "上城区湖滨街道东坡路3号", "东坡路３号", "东坡路3号楼",
])
def test_one_plate_many_spellings(text):
    assert BOOK.lookup(text)[2] == "上城区湖滨街道东坡路3号"


def test_plate_of_cuts_only_real_prefixes():
    assert plate_of("上城区湖滨街道东坡路3号") == ("上城区", "东坡路3号")
    assert plate_of("东坡路3号") == ("", "东坡路3号")
    assert plate_of("新市街5号") == ("", "新市街5号")  # 新市 is not a district: 街5号 is no road


def test_a_bare_number_falls_back_to_a_lane():
    assert BOOK.lookup("东坡路12")[2] == "上城区湖滨街道东坡路12弄"


def test_no_guess_across_districts():
    assert BOOK.lookup("和平路1号") is None  # two districts have it
    assert BOOK.lookup("乙区和平路1号")[:2] == (3.0, 4.0)
    assert BOOK.lookup("乙区东坡路3号") is None  # 乙区 has no 东坡路
    assert BOOK.lookup("甲区和平路1号门口")[:2] == (1.0, 2.0)


def test_suggest_puts_the_named_plate_first():
    assert [s["address"] for s in BOOK.suggest("东坡路3")][:2] == ["上城区湖滨街道东坡路3号", "杭州市上城区东坡路30号"]
    assert [s["address"] for s in BOOK.suggest("杭州市上城区东坡路3号")] == ["上城区湖滨街道东坡路3号"]
    assert {s["address"] for s in BOOK.suggest("和平路1")} == {"甲区和平路1号", "乙区和平路1号"}
    assert [s["address"] for s in BOOK.suggest("乙区和平路1")] == ["乙区和平路1号"]


@pytest.mark.parametrize("typed", ["东坡路3", "杭州市上城区东坡路3号", "浙江省杭州市上城区湖滨街道东坡路3号"])
async def test_console_suggestions_read_prefixes_and_bare_numbers(demo, typed):
    operator = await login_as(demo, "operator")
    status, body = await operator.get("/api/addresses?q=" + quote(typed))
    assert status == 200
    assert body["items"][0]["address"] == "上城区湖滨街道东坡路3号"


def test_nearest_door_plate():
    assert BOOK.nearest(120.1628, 30.2504) == ("上城区湖滨街道东坡路3号", 0)
    address, metres = BOOK.nearest(120.1629, 30.2505)
    assert address == "上城区湖滨街道东坡路3号" and 5 < metres < 20
    assert BOOK.nearest(120.30, 30.30) is None  # nothing within 200 m


async def test_cases_carry_their_nearest_door_plate_and_community(demo):
    # A grid report by GPS: the community always; no door plate within 200 m of this point.
    grid = await login_as(demo, "grid_worker")
    status, case = await grid.post("/api/reports", {
        "category": "S0406", "description": "违停", "location": {"type": "Point", "coordinates": [120.1584, 30.2560]},
    })
    assert status == 201, case
    community = case["jurisdiction"]["community"]["name"]
    assert case["place"] == {"door_plate": None, "community": community, "text": community}
    # A ticket located by its address: that door plate, and its community.
    operator = await login_as(demo, "operator")
    status, ticket = await operator.post("/api/tickets", {
        "type": "complaint", "content": "餐馆油烟直排", "address": "杭州市上城区东坡路3号",
        "caller": {"name": "李先生", "phone": "13812345678"},
    })
    assert status == 201, ticket
    place = ticket["place"]
    assert place["door_plate"] == {"address": "上城区湖滨街道东坡路3号", "distance_m": 0}
    assert place["community"] == ticket["jurisdiction"]["community"]["name"]
    assert place["text"] == f"东坡路3号 · {place['community']}"
    status, again = await operator.get(f"/api/cases/{ticket['id']}")
    assert status == 200 and again["place"] == place

"""GET /api/addresses: door-plate suggestions for the operator console's address box.

Contract (see dispatch/handlers/addresses.py): operator/dispatcher/admin only; an empty or
blank `q` is not an error but an empty list (the box asks while being cleared); `limit` 1–50.
"""

from urllib.parse import quote

import pytest

from support import login_as


async def test_suggestions_match_and_carry_coordinates(demo):
    operator = await login_as(demo, "operator")
    status, body = await operator.get("/api/addresses?q=%E4%B8%9C%E5%9D%A1%E8%B7%AF")  # 东坡路
    assert status == 200
    items = body["items"]
    assert 0 < len(items) <= 10
    for item in items:
        assert "东坡路" in item["address"]
        assert isinstance(item["lng"], float) and isinstance(item["lat"], float)
        # The suggestion geocodes back to the same point: what the ticket will be located at.
        assert demo.ctx.city.addresses.lookup(item["address"])[:2] == (item["lng"], item["lat"])


async def test_prefix_with_city_and_full_width_digits(demo):
    operator = await login_as(demo, "operator")
    address = demo.ctx.city.addresses.entries[0][0]  # e.g. 杭州市上城区延安路1号
    status, body = await operator.get("/api/addresses?q=" + quote(address))
    assert status == 200 and body["items"][0]["address"] == address
    # Full-width digits are normalized (the operator's IME often types them).
    wide = address.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    status, body = await operator.get("/api/addresses?q=" + quote(wide))
    assert status == 200 and body["items"][0]["address"] == address


@pytest.mark.parametrize("limit, expected", [("1", 1), ("3", 3), ("", 10), ("50", 50)])
async def test_limit(demo, limit, expected):
    operator = await login_as(demo, "operator")
    status, body = await operator.get("/api/addresses?q=%E8%B7%AF&limit=" + limit)  # 路: thousands match
    assert status == 200 and len(body["items"]) == expected


@pytest.mark.parametrize("limit", ["0", "51", "-1", "abc", "1.5"])
async def test_bad_limit_is_400(demo, limit):
    operator = await login_as(demo, "operator")
    status, body = await operator.get("/api/addresses?q=%E8%B7%AF&limit=" + limit)
    assert status == 400 and body["error"]["code"] == "invalid_parameter"


@pytest.mark.parametrize("query", ["", "?q=", "?q=%20%20", "?q=%E3%80%80"])
async def test_empty_query_is_an_empty_list(demo, query):
    operator = await login_as(demo, "operator")
    status, body = await operator.get("/api/addresses" + query)
    assert status == 200 and body == {"items": []}


async def test_too_long_query_is_400(demo):
    operator = await login_as(demo, "operator")
    status, body = await operator.get("/api/addresses?q=" + "a" * 101)
    assert status == 400 and body["error"]["field"] == "q"


async def test_no_match_is_empty(demo):
    operator = await login_as(demo, "operator")
    status, body = await operator.get("/api/addresses?q=%E7%81%AB%E6%98%9F%E5%A4%A7%E9%81%93")  # 火星大道
    assert status == 200 and body == {"items": []}


@pytest.mark.parametrize("role, allowed", [
    ("operator", True), ("dispatcher", True), ("admin", True),
    ("grid_worker", False), ("department", False), ("commander", False),
])
async def test_roles(demo, role, allowed):
    client = await login_as(demo, role)
    status, body = await client.get("/api/addresses?q=%E4%B8%9C%E5%9D%A1%E8%B7%AF")
    assert status == {True: 200, False: 403}[allowed], (role, body)
    assert bool(body.get("items")) is allowed and (body.get("error") or {}).get("code", "role_forbidden") == "role_forbidden"


async def test_needs_login(demo):
    status, body = await demo.get("/api/addresses?q=%E4%B8%9C%E5%9D%A1%E8%B7%AF")
    assert status == 401

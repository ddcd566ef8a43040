"""/admin imports in a browser: a door-plate CSV with bad coordinates is refused line by line and
a good one is published; a zones GeoJSON is shown against the current zones on the map before
publishing, and one with a self-intersection is refused."""

from __future__ import annotations

import json

from browser_support import open_page, user, wait_for
from support import DEMO_CITY, loaded_city


async def _true(value):
    return value


async def admin_page(browser, server, tab: str):
    admin = user(server, "admin")
    page, guard = await open_page(browser, server, admin["username"], admin["password"], "/admin")
    await page.get_by_role("tab", name=tab).click()
    return page, guard


async def test_a_door_plate_csv_with_bad_coordinates_is_refused_then_a_good_one_published(browser, server):
    page, guard = await admin_page(browser, server, "门牌地址")
    bad = "address,lng,lat\n上城区示例路1号,120.17,30.25\n上城区示例路2号,东经120度,30.25\n上城区示例路3号,120.17,95\n"
    await page.get_by_label("导入门牌 CSV").set_input_files(files=[
        {"name": "plates.csv", "mimeType": "text/csv", "buffer": bad.encode()}])
    await page.get_by_text("已读取 3 条门牌").wait_for()
    await page.get_by_label("修改说明").fill("导入新门牌")
    await page.get_by_role("button", name="发布", exact=True).click()
    problems = page.locator(".problems")
    await problems.get_by_text("配置有 2 处问题").wait_for()
    assert await problems.get_by_text("应为 address,lng,lat 三列，且 lng（经度）、lat（纬度）为数字").count() == 1
    assert await problems.get_by_text("坐标超出范围（经度须在 -180 到 180 之间，纬度须在 -90 到 90 之间）").count() == 1
    assert server.ctx.config_version == 1

    good = "address,lng,lat\n上城区示例路1号,120.17,30.25\n"
    await page.get_by_label("导入方式").select_option("merge")
    await page.get_by_label("导入门牌 CSV").set_input_files(files=[
        {"name": "plates.csv", "mimeType": "text/csv", "buffer": good.encode()}])
    await page.get_by_text("已读取 1 条门牌").wait_for()
    await page.get_by_role("button", name="发布", exact=True).click()
    await page.get_by_text("已发布第 2 版").wait_for()
    await wait_for(lambda: _true(server.ctx.config_version == 2))
    assert server.ctx.city.addresses.lookup("上城区示例路1号")[:2] == (120.17, 30.25)
    package, _ = loaded_city(str(DEMO_CITY))
    assert len(server.ctx.city.addresses) == len(package.addresses) + 1
    guard.assert_clean(allow_console=("422",))


async def test_a_zones_file_is_diffed_on_the_map_and_a_self_intersection_refused(browser, server):
    page, guard = await admin_page(browser, server, "区域与辖区")
    status, current = await (await _admin_client(server)).get("/api/admin/config/zones")
    zones = current["items"][1:]  # the first one removed
    zones.append({"type": "Feature", "properties": {"id": "new-park", "name": "新公园", "kind": "park"},
                  "geometry": {"type": "Polygon", "coordinates": [[[120.16, 30.26], [120.17, 30.27], [120.17, 30.26],
                                                                   [120.16, 30.27], [120.16, 30.26]]]}})
    await page.get_by_label("导入区域 GeoJSON").set_input_files(files=[{
        "name": "zones.geojson", "mimeType": "application/geo+json",
        "buffer": json.dumps({"type": "FeatureCollection", "features": zones}).encode()}])
    await page.locator('li[data-diff="added"]').get_by_text("新增 1 个：new-park").wait_for()
    removed = current["items"][0]["properties"]["id"]
    assert await page.locator('li[data-diff="removed"]').get_by_text(f"删除 1 个：{removed}").count() == 1
    assert await page.locator(".admin-map path").count() > len(zones)  # the zones and the district outlines
    await page.get_by_label("修改说明").fill("新增公园")
    await page.get_by_role("button", name="发布", exact=True).click()
    problems = page.locator(".problems")
    await problems.get_by_text("几何图形无效：自相交（位置 [").wait_for()
    assert server.ctx.config_version == 1
    guard.assert_clean(allow_console=("422",))


async def _admin_client(server):
    from browser_support import client_as

    return await client_as(server, user(server, "admin")["username"])

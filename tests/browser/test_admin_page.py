"""/admin in a browser: an admin changes a time limit and a routing rule, dry-runs and publishes;
a new report follows the new rule while an open one keeps its department; rollback restores the
old behaviour."""

from __future__ import annotations

from browser_support import client_as, open_page, screenshot, user, wait_for, wait_until

GARBAGE_BIN = "B0305"  # 垃圾箱: auto-dispatched, routed by rule `streetscape` to 城管 (urban_management)
WORKER = 1  # the second grid worker: part of the first one's patch lies outside the scenic area


def street_point(server, worker) -> list:
    """A place in the worker's patch where rule `streetscape` routes a garbage bin (no park or
    scenic area around it), as the package has it."""
    city = server.ctx.city
    for jid in sorted(city.descendants(worker["scope"])):
        p = city.jurisdictions[jid].geometry.representative_point()
        where = [round(p.x, 6), round(p.y, 6)]
        if server.ctx.router.route(*where, GARBAGE_BIN, source="grid").rule == "streetscape":
            return where
    raise AssertionError("no street place in the worker's patch")


async def report_bin(server, note: str, where=None) -> dict:
    worker = user(server, "grid_worker", WORKER)
    client = await client_as(server, worker["username"])
    status, case = await client.post("/api/reports", {
        "category": GARBAGE_BIN, "description": f"垃圾箱满溢 {note}",
        "location": {"type": "Point", "coordinates": where}})
    assert status == 201, case
    return await server.ctx.cases.get(case["id"])


async def publish(page, note: str) -> None:
    await page.get_by_label("修改说明").fill(note)
    await page.get_by_role("button", name="发布", exact=True).click()
    await page.get_by_text("已发布第").first.wait_for()


async def test_an_admin_changes_a_limit_and_a_rule_then_rolls_back(browser, server):
    admin = user(server, "admin")
    where = street_point(server, user(server, "grid_worker", WORKER))
    before = await report_bin(server, "（改规则之前）", where)
    old_department = before["assignment"]["department"]["id"]
    assert server.ctx.city.departments[old_department].type == "urban_management"
    assert before["clock"]["limit"] == "30m"

    page, guard = await open_page(browser, server, admin["username"], admin["password"], "/admin")
    await page.get_by_role("tab", name="事件分类与时限").click()
    await page.get_by_label(f"{GARBAGE_BIN} 签收时限").fill("2h")
    await publish(page, "垃圾箱签收时限放宽到 2 小时")
    await wait_for(lambda: _async(server.ctx.config_version == 2))

    await page.get_by_role("tab", name="派遣规则").click()
    card = page.locator('article[data-rule="streetscape"]')
    await card.get_by_label("streetscape 部门类型").select_option("street_office")
    await page.get_by_role("button", name="试运行").click()
    dry_run = page.locator(".dry-run")
    await dry_run.get_by_text("1 件会改派").wait_for()
    assert await dry_run.get_by_text(before["number"]).count() == 1
    await screenshot(page, "admin-rules-dry-run")
    await publish(page, "市容类改由属地街道办处置")
    await wait_for(lambda: _async(server.ctx.config_version == 3))
    # The page sends back every item as it got it but the one edited: the diffs name only that.
    limits, rule = await server.ctx.storage.config.version(2), await server.ctx.storage.config.version(3)
    assert limits["diff"]["categories"]["changed"] == [GARBAGE_BIN] and limits["diff"]["categories"]["counts"]["changed"] == 1
    assert rule["diff"]["rules"]["changed"] == ["streetscape"] and not rule["diff"]["rules"]["reordered"]

    after = await report_bin(server, "（改规则之后）", where)
    new_department = after["assignment"]["department"]["id"]
    assert server.ctx.city.departments[new_department].type == "street_office"
    assert after["clock"]["limit"] == "2h"  # the stage started after the change
    kept = await server.ctx.cases.get(before["_id"])
    assert kept["assignment"]["department"]["id"] == old_department  # the open case keeps its department
    assert kept["deadlines"]["sign_by"] == before["deadlines"]["sign_by"]  # and its running deadline

    await page.get_by_role("tab", name="版本历史与回滚").click()
    first = page.locator('article[data-version="1"]')
    await first.get_by_role("button", name="回滚到此版本").click()
    await first.get_by_role("button", name="确认回滚").click()
    await page.get_by_text("已回滚到第 1 版").wait_for()
    await wait_until(page, "() => !!document.querySelector('article[data-version=\"4\"]')")
    rolled = await report_bin(server, "（回滚之后）", where)
    assert rolled["assignment"]["department"]["id"] == old_department
    assert rolled["clock"]["limit"] == "30m"
    guard.assert_clean()


async def test_a_bad_rule_is_refused_with_every_problem_and_nothing_changes(browser, server):
    admin = user(server, "admin")
    page, guard = await open_page(browser, server, admin["username"], admin["password"], "/admin")
    await page.get_by_role("tab", name="派遣规则").click()
    card = page.locator('article[data-rule="streetscape"]')
    await card.get_by_label("streetscape 分类代码").fill("B0305, X9999")
    await card.get_by_label("streetscape 时段").fill("25:00-26:00")
    await page.get_by_label("修改说明").fill("错误的规则")
    await page.get_by_role("button", name="发布", exact=True).click()
    problems = page.locator(".problems")
    await problems.get_by_text("配置有 2 处问题").wait_for()
    assert await problems.get_by_text("类别 X9999 不存在").count() == 1
    assert await problems.get_by_text("时段 '25:00-26:00' 无效：时间超出范围").count() == 1
    assert server.ctx.config_version == 1
    guard.assert_clean(allow_console=("422",))


async def _async(value):
    return value

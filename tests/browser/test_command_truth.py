"""The command centre tells one truth per panel (issue 12, improvement 2): drill-down from the
city to a district and a street and back, the 30-day trend and the top types, a street
commander's own header and department list."""

from __future__ import annotations

from browser_support import client_as, user, wait_until
from test_command_page import open_command, report

GROUP_NAMES = """() => {
  const chart = echarts.getInstanceByDom(document.getElementById('group-chart'));
  const o = chart && chart.getOption();
  return o && o.yAxis && o.yAxis[0].data;
}"""


async def test_drill_down_from_city_to_district_and_back(server, browser):
    await report(server, "人行道上有三辆机动车违停")
    await report(server, "湖滨路口暴露垃圾", category="S0102")
    page, guard = await open_command(browser, server, "dispatcher")
    await wait_until(page, f"() => ({GROUP_NAMES})() && ({GROUP_NAMES})().includes('上城区')")
    assert "杭州市" in await page.inner_text("#drill-trail")

    # Click 上城区's bar: the statistics cover 上城区, broken down by street.
    names = await page.evaluate(GROUP_NAMES)
    index = names.index("上城区")
    # (ECharts draws on a canvas: the click is given to the chart as its own event.)
    await page.evaluate("""(i) => echarts.getInstanceByDom(document.getElementById('group-chart'))
        .trigger('click', { dataIndex: i, componentType: 'series' })""", index)
    await page.wait_for_selector("#drill-trail .drill-here:has-text('上城区')")
    await wait_until(page, "() => document.getElementById('group-title').textContent === '各街道案件情况'")
    await wait_until(page, f"() => ({GROUP_NAMES})() && ({GROUP_NAMES})().includes('湖滨街道')")
    await wait_until(page, "() => document.getElementById('kpi-period').textContent.includes('上城区')")
    assert await page.get_attribute("#cmd", "data-scope") == "330102"

    # Back up through the trail.
    await page.click("#drill-trail button:has-text('杭州市')")
    await wait_until(page, "() => document.getElementById('group-title').textContent === '各区县案件情况'")
    assert await page.get_attribute("#cmd", "data-scope") == server.ctx.city.id
    guard.assert_clean()


async def test_trend_and_top_types_follow_the_category_filter(server, browser):
    await report(server, "人行道上有三辆机动车违停")
    await report(server, "人行道上又有机动车违停")
    await report(server, "湖滨路口暴露垃圾", category="S0102")
    page, guard = await open_command(browser, server, "dispatcher")
    await page.click("#tab-trend")
    await wait_until(page, "() => document.getElementById('trend-chart').dataset.reported === '3'")
    assert "近30天" in await page.inner_text("#status-sub")
    await page.click("#tab-top")
    await page.wait_for_selector("#top-types .top-type")
    assert await page.get_attribute("#top-types .top-type:first-child", "data-code") == "S0406"
    await page.select_option("#f-category", "S0102")
    await wait_until(page, "() => document.querySelectorAll('#top-types .top-type').length === 1")
    assert await page.get_attribute("#top-types .top-type", "data-code") == "S0102"
    assert "按筛选" in await page.inner_text("#status-sub")
    await page.click("#tab-status")
    assert await page.is_visible("#status-chart")
    guard.assert_clean()


async def test_street_commander_sees_the_street_in_the_header_and_its_departments(server, browser):
    page, guard = await open_command(browser, server, "commander", 1)  # 吴指挥（湖滨街道）
    assert "湖滨街道" in await page.inner_text("header.app-header .brand")
    commander = await client_as(server, "commander_hubin")
    status, body = await commander.get("/api/stats/trend?days=1")
    assert status == 200
    serving = sorted(d["id"] for d in body["departments"])
    listed = await page.eval_on_selector_all("#f-department option[value]:not([value=''])", "os => os.map((o) => o.value)")
    assert sorted(listed) == serving
    assert "d330105-urban" not in listed  # 拱墅区城管局 serves another district
    guard.assert_clean()

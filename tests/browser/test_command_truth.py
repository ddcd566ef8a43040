"""The command centre tells one truth per panel (issue 12, improvement 2): drill-down from the
city to a district and a street and back, the 30-day trend and the top types, a street
commander's own header and department list."""

from __future__ import annotations

from browser_support import client_as, open_page, screenshot, user, wait_until
from test_command_page import open_command, report
from test_day_bugs import closed_hotline_case

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

    # On to 湖滨街道, broken down by community, and into the community, by department.
    await click_bar(page, "湖滨街道")
    await wait_until(page, "() => document.getElementById('group-title').textContent === '各社区案件情况'")
    await wait_until(page, f"() => ({GROUP_NAMES})() && ({GROUP_NAMES})().includes('东坡路社区')")
    await click_bar(page, "东坡路社区")
    await page.wait_for_selector("#drill-trail .drill-here:has-text('东坡路社区')")
    await wait_until(page, "() => document.getElementById('group-title').textContent === '各部门案件情况'")
    community = next(j for j in server.ctx.city.jurisdictions.values() if j.level == "community" and j.name == "东坡路社区")
    assert await page.get_attribute("#cmd", "data-scope") == community.id
    await wait_until(page, "() => document.getElementById('kpi-period').textContent.includes('东坡路社区')")
    assert await page.locator("#drill-trail .drill-hint").count() == 0  # the last level

    # Back up through the trail.
    await page.click("#drill-trail button:has-text('杭州市')")
    await wait_until(page, "() => document.getElementById('group-title').textContent === '各区县案件情况'")
    assert await page.get_attribute("#cmd", "data-scope") == server.ctx.city.id
    guard.assert_clean()


async def click_bar(page, name: str) -> None:
    """Click the area chart's bar named `name` (ECharts draws on a canvas: the click is given
    to the chart as its own event)."""
    index = (await page.evaluate(GROUP_NAMES)).index(name)
    await page.evaluate("""(i) => echarts.getInstanceByDom(document.getElementById('group-chart'))
        .trigger('click', { dataIndex: i, componentType: 'series' })""", index)


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


# Where each gauge's percentage is drawn (ECharts paints it on the canvas: its text element's
# box, moved to page coordinates) and where its label lies (a DOM node under the gauge).
GAUGE_BOXES = """() => [...document.querySelectorAll('#rates .rate')].map((node) => {
  const holder = node.querySelector('.rate-gauge');
  const chart = echarts.getInstanceByDom(holder);
  const texts = chart.getZr().storage.getDisplayList().filter((e) => e.style && typeof e.style.text === 'string' && e.style.text);
  const origin = holder.getBoundingClientRect();
  const boxes = texts.map((e) => {
    const r = e.getBoundingRect().clone();
    r.applyTransform(e.getComputedTransform());
    return { text: e.style.text, top: origin.top + r.y, bottom: origin.top + r.y + r.height,
             left: origin.left + r.x, right: origin.left + r.x + r.width };
  });
  const label = node.querySelector('.rate-label').getBoundingClientRect();
  return { kpi: node.dataset.kpi, boxes, label: { top: label.top, bottom: label.bottom, left: label.left, right: label.right },
           gauge: { left: origin.left, right: origin.right } };
})"""


async def test_gauge_percentages_stay_clear_of_their_labels_at_1366(server, browser):
    await report(server, "人行道上有三辆机动车违停")
    await closed_hotline_case(server)  # 满意率, 结案率 … have a basis
    account = user(server, "dispatcher")
    page, guard = await open_page(browser, server, account["username"], account["password"], "/command",
                                  viewport={"width": 1366, "height": 768})
    await page.wait_for_selector("body[data-ready='1']", timeout=30000)
    # Every gauge drawn, and at least one with a real percentage (a case was closed today).
    await wait_until(page, f"""() => {{ const g = ({GAUGE_BOXES})();
      return g.length >= 4 && g.every((x) => x.boxes.length === 1) && g.some((x) => x.boxes[0].text.endsWith('%')); }}""")
    gauges = await page.evaluate(GAUGE_BOXES)
    for g in gauges:
        (figure,) = g["boxes"]
        assert figure["bottom"] <= g["label"]["top"], g  # the percentage ends above its label
        assert g["gauge"]["left"] <= figure["left"] and figure["right"] <= g["gauge"]["right"], g
    await screenshot(page, "command-gauges-1366")
    guard.assert_clean()

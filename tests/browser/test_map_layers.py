"""A map a person can read (issue 12, improvement 1): the city package's roads and places are
drawn with their names when zoomed in, and community areas are labelled."""

from __future__ import annotations

from browser_support import screenshot, wait_until
from test_command_page import open_command, report

CLICK_BAR = """(name) => { const c = echarts.getInstanceByDom(document.getElementById('group-chart'));
  const i = c.getOption().yAxis[0].data.indexOf(name);
  if (i < 0) return false;
  c.trigger('click', { dataIndex: i, componentType: 'series' });
  return true; }"""


async def test_roads_places_and_community_names_on_the_command_map(server, browser):
    await report(server, "人行道上有三辆机动车违停")  # in 湖滨街道
    page, guard = await open_command(browser, server, "dispatcher")
    city = server.ctx.city
    await wait_until(page, "() => document.getElementById('map').dataset.roads && document.getElementById('map').dataset.pois")
    assert int(await page.get_attribute("#map", "data-roads")) == len(city.base_layers["roads"]["features"])
    assert await page.locator("#map path.map-road").count() >= len(city.base_layers["roads"]["features"])
    # Zoomed out, names are hidden; drilled into 上城区 → 湖滨街道, the map is close enough to read them.
    assert await page.is_hidden("#map .leaflet-tooltip.road-name >> nth=0")
    await wait_until(page, CLICK_BAR, arg="上城区")
    await page.wait_for_selector("#drill-trail .drill-here:has-text('上城区')")
    await wait_until(page, CLICK_BAR, arg="湖滨街道")
    await page.wait_for_selector("#drill-trail .drill-here:has-text('湖滨街道')")
    await wait_until(page, "() => !document.getElementById('map').classList.contains('road-names-hidden')")
    await page.wait_for_selector("#map .leaflet-tooltip.road-name:has-text('东坡路')", state="visible")
    await page.wait_for_selector("#map .leaflet-tooltip.poi-name:has-text('湖滨公园')", state="visible")
    await wait_until(page, "() => Number(document.getElementById('map').dataset.communityLabels) > 0")
    assert await page.locator("#map .community-name span").count() > 0
    await screenshot(page, "command-drilled-street")
    guard.assert_clean()

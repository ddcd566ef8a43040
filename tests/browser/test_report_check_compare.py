"""核查 on site (issue 12, improvement 3): the report's photo and the department's side by
side, and a way to open the case's location in the phone's map app."""

from __future__ import annotations

from browser_support import wait_for, wait_until
from dispatch.store.query import Change
from support import login_as
from test_report_page import LAT, LNG, handled_case, open_report, png


async def test_check_task_compares_before_and_after_and_opens_the_map_app(server, browser):
    worker = await login_as(server, "grid_worker")
    status, before = await worker.request("POST", "/api/attachments", raw=png(64, 48), headers={"Content-Type": "image/png"})
    assert status == 201, before
    case = await handled_case(server, "S0101", "彩钢棚已拆除，现场已清理")
    # The report's own photo, as if taken when reporting (handled_case reports without one).
    stored = await server.ctx.cases.get(case["id"])
    assert await server.ctx.cases.update(case["id"], stored["version"], Change(sets={"photos": [before["id"]]}))

    page, guard = await open_report(browser, server)
    await page.click("#tab-check")
    task = page.locator(f".check-task[data-case-id='{case['id']}']")
    await task.wait_for()
    sides = task.locator(".compare .compare-side")
    assert await sides.count() == 2
    assert [await sides.nth(i).locator("figcaption").inner_text() for i in range(2)] == ["上报时", "处置后"]
    await wait_until(page, f"""() => [...document.querySelectorAll(".check-task[data-case-id='{case['id']}'] .compare img")]
        .filter((img) => img.naturalWidth > 0).length === 2""")
    boxes = [await sides.nth(i).bounding_box() for i in range(2)]
    assert abs(boxes[0]["y"] - boxes[1]["y"]) < 2 and boxes[0]["x"] < boxes[1]["x"]  # side by side

    opened = []
    await page.expose_function("__opened", lambda url: opened.append(url))
    await page.evaluate("() => { window.open = (url) => { window.__opened(url); return null; }; }")
    await task.locator(".btn-map-app").click()

    async def asked():
        return opened

    await wait_for(asked)
    assert f"{LNG},{LAT}" in opened[0] and "wgs84" in opened[0]
    guard.assert_clean()

"""Department tools (issue 12, improvement 4): search and 批量签收 in the queue, hotline tickets
titled by what they are about, the new deadline previewed before asking for an extension, and
no doubled punctuation when a quick reason is added to a typed one."""

from __future__ import annotations

from datetime import datetime

from browser_support import client_as, wait_until
from test_dept_page import dispatched_case, open_workbench


async def test_search_and_batch_sign(server, browser):
    cases = [await dispatched_case(server, text) for text in
             ("东坡路3号门口垃圾桶满溢，异味明显", "小区路灯坏了一个月", "餐馆油烟直排，楼上无法开窗")]
    page, guard = await open_workbench(server, browser)
    await page.wait_for_selector(".q-item >> nth=2")
    # A hotline ticket filed as 投诉 is titled by its content, the type as a tag.
    first = page.locator(f".q-item[data-number='{cases[0]['number']}'] .q-category")
    assert "12345 投诉" in await first.inner_text() and "东坡路3号门口垃圾桶满溢" in await first.inner_text()

    await page.fill("#queue-search", "油烟")
    await wait_until(page, "() => document.querySelectorAll('.q-item').length === 1")
    assert await page.get_attribute(".q-item", "data-number") == cases[2]["number"]
    await page.fill("#queue-search", "")
    await wait_until(page, "() => document.querySelectorAll('.q-item').length === 3")

    assert "3" in await page.inner_text("#batch-sign")
    page.once("dialog", lambda d: d.accept())
    await page.click("#batch-sign")
    await page.wait_for_selector(".toast:has-text('已签收 3 件')")
    for case in cases:
        assert (await server.ctx.cases.get(case["id"]))["status"] == "accepted"
    assert await page.is_hidden("#batch-sign")
    guard.assert_clean()


async def test_extension_dialog_previews_the_new_deadline(server, browser):
    case = await dispatched_case(server, "路灯线路老化需要整体更换")
    department = await client_as(server, "dept_hubin")
    status, signed = await department.post(f"/api/cases/{case['id']}/actions/sign", {})
    assert status == 200
    page, guard = await open_workbench(server, browser)
    await page.locator(f".q-item[data-number='{case['number']}']").click()
    await page.click("#detail [data-action=request_extension]")
    await page.locator("dialog.dlg #ext-duration").select_option("2wd")
    expected = server.ctx.calendar.add(datetime.fromisoformat(signed["deadlines"]["handle_by"]), "2wd")
    stamp = f"{expected.month}月{expected.day}日 {expected:%H:%M}"
    await wait_until(page, "(s) => document.getElementById('ext-preview').textContent.includes(s)", arg=stamp)
    assert "新的处置时限" in await page.inner_text("#ext-preview")
    guard.assert_clean()


async def test_quick_reasons_join_without_doubled_punctuation(server, browser):
    case = await dispatched_case(server, "井盖缺失")
    page, guard = await open_workbench(server, browser)
    await page.locator(f".q-item[data-number='{case['number']}']").click()
    await page.click("#detail [data-action=return]")
    dialog = page.locator("dialog.dlg")
    await dialog.locator("#return-reason").fill("不属于本部门职责。")
    await dialog.locator(".chip >> nth=0").click()
    value = await dialog.locator("#return-reason").input_value()
    assert "。；" not in value and value.startswith("不属于本部门职责；")
    guard.assert_clean()

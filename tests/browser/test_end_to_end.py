"""The whole closed loop in real pages, each user in their own browser context, all open at once:
a grid worker reports offline on a phone (queued, then sent once), the dispatcher sees it live on
/command and files + dispatches it to 湖滨街道办事处, the department signs and feeds back on /dept,
the grid worker passes the check on /report, the dispatcher closes it from the case panel — and
the command centre's KPIs follow, without any page being reloaded."""

from __future__ import annotations

import asyncio

from browser_support import DESKTOP, PHONE, open_page, screenshot, user, wait_until, stored_cases
from dispatch.workflow.audit import verify_chain

WIDE = {"width": 1920, "height": 1080}
DEPARTMENT = "s330102001-office"  # 上城区湖滨街道办事处 (dept_hubin)
LNG, LAT = 120.1584, 30.2560      # 东坡路社区, grid01's community
CATEGORY = "S0101"                # 私搭乱建: not auto-dispatched, it waits for the dispatcher
DESCRIPTION = "东坡路沿街商铺后院违规搭建彩钢棚约 10 平方米"
RESULT = "已责令业主自行拆除彩钢棚，现场已清理完毕"
OFFLINE_NOISE = ("ERR_INTERNET_DISCONNECTED", "WebSocket connection", "net::ERR_FAILED")
KPI = ".count[data-kpi='{}'] .count-value"


def account(server, username: str) -> dict:
    return next(u for u in server.ctx.city.users if u["username"] == username)


async def kpi_value(page, key: str) -> int:
    return int((await page.text_content(KPI.format(key))).replace(",", "").strip())


async def wait_status(server, case_id: str, status: str, timeout: float = 15.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        doc = await server.ctx.cases.get(case_id)
        if doc and doc["status"] == status:
            return doc
        assert loop.time() < deadline, f"case {case_id} is {doc and doc['status']}, expected {status}"
        await asyncio.sleep(0.1)


async def test_closed_loop_across_the_four_pages(server, browser):
    dispatcher, department, worker = user(server, "dispatcher"), account(server, "dept_hubin"), user(server, "grid_worker")
    (command, command_guard), (dept, dept_guard), (report, report_guard) = await asyncio.gather(
        open_page(browser, server, dispatcher["username"], dispatcher["password"], "/command", viewport=WIDE),
        open_page(browser, server, department["username"], str(department["password"]), "/dept", viewport=DESKTOP),
        open_page(browser, server, worker["username"], worker["password"], "/report", viewport=PHONE,
                  geolocation={"longitude": LNG, "latitude": LAT}, permissions=["geolocation"]),
    )

    # 1. The command centre and the department's workbench are up; note the KPIs.
    await command.wait_for_selector("body[data-ready='1']", timeout=30000)
    await command.wait_for_selector(KPI.format("reported"))
    await dept.wait_for_selector("#live-state.online")
    reported_before = await kpi_value(command, "reported")
    closed_before = await kpi_value(command, "closed")

    # 2. The grid worker reports without a network: queued, then sent exactly once.
    await report.wait_for_selector("html[data-offline-ready]")
    await report.wait_for_selector(".gps-ok")
    await report.click("#category-button")
    await report.fill("#category-search", "私搭乱建")
    await report.click(f".category-item[data-code='{CATEGORY}']")
    await report.wait_for_selector("#route-department")
    await report.context.set_offline(True)
    await report.fill("#description", DESCRIPTION)
    await report.click("#submit-report")
    await report.wait_for_selector("#done-title:has-text('待网络恢复后自动发送')")
    await report.wait_for_selector("#queue-text:has-text('离线：1 条上报待发送')")
    assert await stored_cases(server.ctx, description=DESCRIPTION) == []
    await report.context.set_offline(False)
    await report.wait_for_selector("#queue-text:has-text('已自动补发 1 条')", timeout=45000)
    cases = await stored_cases(server.ctx, description=DESCRIPTION)
    assert len(cases) == 1, cases
    case = cases[0]
    cid, number = case["_id"], case["number"]
    assert case["source"] == "grid" and case["category"]["code"] == CATEGORY and case["status"] == "reported"

    # 3. It reaches the command page live (ticker + dispatch queue); 立案, then 派遣 to 湖滨街道办事处.
    await command.wait_for_selector(f"#ticker .tk-button[title='查看案件 {number}']", timeout=15000)
    row = command.locator(f"#work-list .qi[data-id='{cid}']")
    await row.wait_for(timeout=15000)
    await row.locator(".qi-actions button[title='立案，稍后再派遣']").click()
    await wait_status(server, cid, "filed")
    # The row is redrawn for the filed case: no 立案 button any more.
    await row.locator(".qi-actions button[title='立案，稍后再派遣']").wait_for(state="detached", timeout=15000)
    await row.locator(".qi-dispatch").click()
    await row.locator("select").select_option(DEPARTMENT)
    await row.locator("button[type=submit]:has-text('确认派遣')").click()
    await row.wait_for(state="detached", timeout=15000)
    stored = await wait_status(server, cid, "dispatched")
    assert stored["assignment"]["department"]["id"] == DEPARTMENT

    # 4. The department's queue shows it live; 签收, then 处置反馈 in the page.
    item = dept.locator(f".q-item[data-number='{number}']")
    await item.wait_for(timeout=15000)
    await item.click()
    await dept.wait_for_selector(f"#detail .cd-number:has-text('{number}')")
    await dept.click("#detail [data-action=sign]")
    await wait_status(server, cid, "accepted")
    await dept.click("#detail [data-action=feedback]")
    dialog = dept.locator("dialog.dlg")
    await dialog.wait_for()
    await dialog.locator("#fb-result").fill(RESULT)
    await dialog.locator("button[type=submit]").click()
    await dialog.wait_for(state="detached")
    stored = await wait_status(server, cid, "handled")
    assert stored["result"]["text"] == RESULT
    await dept.wait_for_selector("#detail .timeline")
    await screenshot(dept, "e2e-dept")

    # 5. The grid worker's 核查任务 tab has it (live); 核查通过.
    await report.click("#tab-check")
    task = report.locator(f".check-task[data-case-id='{cid}']")
    await task.wait_for(timeout=15000)
    assert RESULT in await task.text_content()
    await task.locator(".check-pass-button").click()
    await task.locator(".check-note").fill("现场复核，彩钢棚已拆除")
    await task.locator(".check-confirm").scroll_into_view_if_needed()
    await screenshot(report, "e2e-report-check")
    await task.locator(".check-confirm").click()
    await task.wait_for(state="detached")
    stored = await wait_status(server, cid, "checked")
    assert stored["check"]["passed"] is True

    # 6. The dispatcher opens the case from the ticker and closes it (结案) in the case panel.
    await command.locator(f"#ticker .tk-button[title='查看案件 {number}']").first.click()
    await command.wait_for_selector(f"#drawer:not([hidden]) .cd-number:has-text('{number}')")
    close = command.locator("#drawer .cd-actions button[data-action='close']")
    await close.wait_for(timeout=15000)
    await close.click()
    await command.click("dialog.dlg button[type=submit]")
    stored = await wait_status(server, cid, "closed")
    actions = [entry["action"] for entry in stored["history"]]
    for step in ("file", "dispatch", "sign", "feedback", "check", "close"):
        assert step in actions, actions
    assert verify_chain(stored["history"]) is None
    # The panel follows: the case is closed, only 重新办理 is offered now.
    await command.wait_for_selector("#drawer .cd-actions button[data-action='reopen']", timeout=15000)
    assert await close.count() == 0

    # 7. The KPI panel follows the live events (debounced refresh): one more report, one more closed.
    await wait_until(command, 
        "([sel, n]) => Number(document.querySelector(sel).textContent.replace(/,/g, '')) > n",
        arg=[KPI.format("reported"), reported_before], timeout=45000)
    await wait_until(command, 
        "([sel, n]) => Number(document.querySelector(sel).textContent.replace(/,/g, '')) > n",
        arg=[KPI.format("closed"), closed_before], timeout=45000)
    assert await kpi_value(command, "reported") == reported_before + 1
    assert await kpi_value(command, "closed") == closed_before + 1
    await command.wait_for_timeout(1500)  # the charts animate to the new figures
    await screenshot(command, "e2e-command")

    # Sent once, for good: the phone's queue did not send it again along the way.
    assert len(await stored_cases(server.ctx, description=DESCRIPTION)) == 1

    # 8. No console errors or off-host requests anywhere (the phone's offline spell excepted).
    command_guard.assert_clean()
    dept_guard.assert_clean()
    report_guard.assert_clean(allow_console=OFFLINE_NOISE)

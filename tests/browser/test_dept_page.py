"""The department workbench (/dept) as 湖滨街道办事处 (dept_hubin): the queue with live
countdowns, 签收 → 处置反馈 with a photo compressed in the browser, a case dispatched while the
page is open appearing without reload, and 退单 with a reason."""

from __future__ import annotations

import struct
import zlib

from browser_support import DESKTOP, client_as, open_page, screenshot, user, wait_for, wait_until
from dispatch.store.query import Change

DEPARTMENT = "s330102001-office"  # 上城区湖滨街道办事处 (departments.yaml)
ADDRESS = "上城区湖滨街道东坡路3号"


async def dispatched_case(server, content: str) -> dict:
    """An operator's ticket, filed and dispatched to 湖滨街道办事处 by the dispatcher (API)."""
    operator = await client_as(server, user(server, "operator")["username"])
    dispatcher = await client_as(server, user(server, "dispatcher")["username"])
    status, case = await operator.post("/api/tickets", {
        "type": "complaint", "content": content, "address": ADDRESS, "category": "H-complaint",
        "caller": {"name": "陈女士", "phone": "13500003333"},
    })
    assert status == 201, case
    for action, body in [("file", {}), ("dispatch", {"department": DEPARTMENT})]:
        status, case = await dispatcher.post(f"/api/cases/{case['id']}/actions/{action}", body)
        assert status == 200, (action, case)
    assert case["status"] == "dispatched"
    return case


def png(width=320, height=240) -> bytes:
    """A small real PNG (a colour gradient) for the photo picker."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 120)) for x in range(width))
        for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def open_workbench(server, browser):
    account = next(u for u in server.ctx.city.users if u["username"] == "dept_hubin")
    page, guard = await open_page(browser, server, account["username"], str(account["password"]), "/dept",
                                  viewport=DESKTOP)
    await page.wait_for_selector("#live-state.online")
    return page, guard


async def test_queue_sign_feedback_with_photo_and_live_arrival(server, browser):
    case = await dispatched_case(server, "东坡路3号门口垃圾桶满溢，异味明显")
    page, guard = await open_workbench(server, browser)

    item = page.locator(f".q-item[data-number='{case['number']}']")
    await item.wait_for()
    countdown = item.locator(".q-countdown")
    assert "签收剩余" in await countdown.inner_text()
    assert "1" == await page.inner_text("#tab-dispatched .tab-count")
    # The countdown is live: redrawn every second from the case in memory, no request needed.
    selector = f".q-item[data-number='{case['number']}'] .q-countdown"
    await page.eval_on_selector(selector, "node => { node.textContent = 'x'; }")
    await wait_until(page, "sel => document.querySelector(sel).textContent.startsWith('签收剩余')",
                                 arg=selector, timeout=3000)

    # 签收
    await item.click()
    await page.wait_for_selector("#detail .cd-number")
    assert case["number"] in await page.inner_text("#detail .cd-number")
    assert await page.locator("#detail [data-action=feedback]").count() == 0  # not before signing
    await page.click("#detail [data-action=sign]")
    await wait_for(lambda: _status(server, case["id"], "accepted"))
    await page.wait_for_selector("#detail [data-action=feedback]")
    assert await page.locator("#detail [data-action=sign]").count() == 0
    assert "处置剩余" in await page.inner_text("#detail .cd-countdown")
    assert "签收" in await page.inner_text("#detail .timeline")
    await screenshot(page, "dept-detail")

    # 处置反馈 with a photo: compressed to JPEG in the page, uploaded, attached.
    await page.click("#detail [data-action=feedback]")
    dialog = page.locator("dialog.dlg")
    await dialog.wait_for()
    await dialog.locator("#fb-result").fill("已安排保洁员清运垃圾并冲洗地面，现场恢复整洁")
    await dialog.locator("#fb-photos").set_input_files(
        files=[{"name": "现场.png", "mimeType": "image/png", "buffer": png()}])
    await dialog.locator(".upload-item.done").wait_for()
    await dialog.locator("button[type=submit]").click()
    await dialog.wait_for(state="detached")
    stored = await wait_for(lambda: _status(server, case["id"], "handled"))
    assert stored["result"]["text"].startswith("已安排保洁员")
    assert len(stored["result"]["photos"]) == 1
    photo = await server.ctx.attachments.get(stored["result"]["photos"][0])
    assert photo["content_type"] == "image/jpeg"  # re-encoded in the browser
    assert photo["owner"] == "dept_hubin"
    await page.wait_for_selector("#detail .cd-photos img")
    await page.click("#tab-handled")
    await page.wait_for_selector(f".q-item[data-number='{case['number']}']")

    # A case dispatched while the page is open appears at once, with a toast.
    await page.click("#tab-all")
    second = await dispatched_case(server, "东坡路人行道地砖松动，老人差点绊倒")
    await page.wait_for_selector(f".q-item[data-number='{second['number']}'].fresh", timeout=10000)
    await page.wait_for_selector(f".toast:has-text('新派遣案件 {second['number']}')")
    guard.assert_clean()


async def _status(server, case_id, status):
    doc = await server.ctx.cases.get(case_id)
    return doc if doc and doc["status"] == status else None


async def test_queue_order_and_deadline_colours(server, browser):
    """Overdue first (red), then warning (yellow: < 20% of the time left), then the rest."""
    from datetime import datetime, timedelta, timezone

    calm = await dispatched_case(server, "绿化带杂草丛生")
    warning = await dispatched_case(server, "路边井盖松动")
    overdue = await dispatched_case(server, "店外占道经营")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    for case, start, deadline in [(warning, now - timedelta(hours=2), now + timedelta(minutes=10)),
                                  (overdue, now - timedelta(hours=2), now - timedelta(minutes=5))]:
        doc = await server.ctx.cases.get(case["id"])
        updated = await server.ctx.cases.update(case["id"], doc["version"], Change(sets={
            "deadlines.sign_by": deadline, "clock.started_at": start, "clock.deadline": deadline,
            "clock.warn_at": start + (deadline - start) * 0.8}))
        assert updated is not None
    page, guard = await open_workbench(server, browser)
    await page.wait_for_selector(f".q-item[data-number='{calm['number']}']")
    numbers = await page.eval_on_selector_all(".q-item", "nodes => nodes.map(n => n.dataset.number)")
    assert numbers == [overdue["number"], warning["number"], calm["number"]]
    assert "level-overdue" in await page.get_attribute(f".q-item[data-number='{overdue['number']}'] .q-countdown", "class")
    assert "签收超期" in await page.inner_text(f".q-item[data-number='{overdue['number']}'] .q-countdown")
    assert "level-warning" in await page.get_attribute(f".q-item[data-number='{warning['number']}'] .q-countdown", "class")
    assert "level-ok" in await page.get_attribute(f".q-item[data-number='{calm['number']}'] .q-countdown", "class")
    assert await page.inner_text(".sum-overdue b") == "1"
    # The most urgent case is opened at once on a desktop.
    await page.wait_for_selector(f"#detail .cd-number:has-text('{overdue['number']}')")
    await page.wait_for_selector("#detail .cd-map .leaflet-interactive")
    await screenshot(page, "dept-queue")
    guard.assert_clean()


async def test_return_needs_a_reason(server, browser):
    case = await dispatched_case(server, "小区内部道路破损，应由物业维修")
    page, guard = await open_workbench(server, browser)
    await page.locator(f".q-item[data-number='{case['number']}']").click()
    await page.click("#detail [data-action=return]")
    dialog = page.locator("dialog.dlg")
    await dialog.wait_for()
    await dialog.locator("button[type=submit]").click()  # no reason yet
    assert "退单原因" in await dialog.locator(".error-text").inner_text()
    await dialog.locator(".chip").first.click()
    await dialog.locator("#return-reason").fill("小区内部道路属物业管理范围，请转物业或住建部门处理")
    await dialog.locator("button[type=submit]").click()
    await dialog.wait_for(state="detached")
    stored = await wait_for(lambda: _return_pending(server, case["id"]))
    assert stored["counters"]["returns"] == 1 and stored["status"] == "dispatched"
    assert stored["returns"][0]["reason"].startswith("小区内部道路")
    # Under review (派单异议): still listed, marked, its buttons gone until the dispatcher decides.
    await page.wait_for_selector(f".q-item[data-number='{case['number']}'] .badge-return")
    await page.wait_for_selector("#detail .joint-return")
    assert await page.locator("#detail [data-action=sign]").count() == 0
    dispatcher = await client_as(server, user(server, "dispatcher")["username"])
    status, _ = await dispatcher.post(f"/api/cases/{case['id']}/actions/approve_return", {})
    assert status == 200
    # Approved: gone from the queue; the detail says where it went.
    await page.locator(f".q-item[data-number='{case['number']}']").wait_for(state="detached")
    assert "退回指挥中心" in await page.inner_text("#detail .detail-note")
    guard.assert_clean()


async def _return_pending(server, case_id):
    doc = await server.ctx.cases.get(case_id)
    return doc if doc and doc["flags"].get("return_pending") else None


async def test_extension_request_and_stale_buttons(server, browser):
    case = await dispatched_case(server, "路灯线路老化需要整体更换")
    department = await client_as(server, "dept_hubin")
    status, _ = await department.post(f"/api/cases/{case['id']}/actions/sign", {})
    assert status == 200
    page, guard = await open_workbench(server, browser)
    await page.locator(f".q-item[data-number='{case['number']}']").click()
    await page.click("#detail [data-action=request_extension]")
    dialog = page.locator("dialog.dlg")
    await dialog.wait_for()
    await dialog.locator("#ext-duration").select_option("2wd")
    await dialog.locator("#ext-reason").fill("需协调供电公司停电施工")
    await dialog.locator("button[type=submit]").click()
    await dialog.wait_for(state="detached")
    stored = await server.ctx.cases.get(case["id"])
    assert stored["flags"]["extension_pending"] is True
    assert stored["extension_request"]["duration"] == "2wd"
    await page.wait_for_selector("#detail .flag-extension")
    assert await page.locator("#detail [data-action=request_extension]").count() == 0

    # The case is returned behind the page's back (another session): the page shows the review
    # and the buttons follow the server.
    status, _ = await department.post(f"/api/cases/{case['id']}/actions/return", {"reason": "另一终端退单"})
    assert status == 200
    await page.wait_for_selector("#detail .joint-return")
    assert await page.locator("#detail [data-action=feedback]").count() == 0
    guard.assert_clean()


async def test_summoned_department_checks_in(server, browser):
    """吹哨: a case assigned elsewhere, 湖滨街道办事处 summoned — it shows under 待报到 with 报到."""
    operator = await client_as(server, user(server, "operator")["username"])
    dispatcher = await client_as(server, user(server, "dispatcher")["username"])
    status, case = await operator.post("/api/tickets", {
        "type": "report", "content": "东坡路沿街店铺违规搭建雨棚", "address": ADDRESS, "category": "H-report"})
    assert status == 201
    for action, body in [("file", {}), ("dispatch", {"department": "d330102-urban"}),
                         ("escalate", {"departments": [DEPARTMENT]})]:
        status, case = await dispatcher.post(f"/api/cases/{case['id']}/actions/{action}", body)
        assert status == 200, (action, case)
    page, guard = await open_workbench(server, browser)
    await page.click("#tab-summoned")
    item = page.locator(f".q-item[data-number='{case['number']}']")
    await item.click()
    await page.click("#detail [data-action=checkin]")
    dialog = page.locator("dialog.dlg")
    await dialog.locator("button[type=submit]").click()
    await dialog.wait_for(state="detached")

    async def checked_in():
        doc = await server.ctx.cases.get(case["id"])
        return doc["summons"][0]["checked_in_at"] is not None

    await wait_for(checked_in)
    await item.wait_for(state="detached")  # not ours to handle: it leaves the queue
    guard.assert_clean()

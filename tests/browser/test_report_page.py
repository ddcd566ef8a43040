"""The grid worker page /report on a phone: report with GPS, route preview and a photo; the
offline queue (survives a reload, sent exactly once); check tasks (核查) updated live."""

from __future__ import annotations

import struct
import zlib

from browser_support import DESKTOP, PHONE, open_page, screenshot, user, wait_until, stored_cases
from dispatch.domain import utcnow
from support import login_as

# 东坡路社区 (grid01's community), in one of its grids.
LNG, LAT = 120.1584, 30.2560
# Inside the city's bounding box but outside every district: the server says "outside".
OUTSIDE = (118.40, 30.50)
OFFLINE_NOISE = ("ERR_INTERNET_DISCONNECTED", "WebSocket connection", "net::ERR_FAILED")


def png(width: int, height: int) -> bytes:
    """A real (decodable) RGB PNG with a gradient, made without an imaging library."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 128)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's SOF marker."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    raise AssertionError("no SOF marker")


def photo_file(width=2000, height=1000, name="现场.png") -> dict:
    return {"name": name, "mimeType": "image/png", "buffer": png(width, height)}


async def open_report(browser, server, **kw):
    worker = user(server, "grid_worker")
    return await open_page(browser, server, worker["username"], worker["password"], "/report", viewport=PHONE,
                           geolocation={"longitude": LNG, "latitude": LAT}, permissions=["geolocation"], **kw)


async def pick_category(page, query: str, code: str):
    await page.click("#category-button")
    await page.fill("#category-search", query)
    await page.click(f".category-item[data-code='{code}']")
    await page.wait_for_selector("#category-search", state="detached")


async def login_user(server, username: str):
    account = next(u for u in server.ctx.city.users if u["username"] == username)
    client = server.as_user()
    await client.login(username, str(account["password"]))
    return client


async def all_cases(server) -> list[dict]:
    return await stored_cases(server.ctx)


# -- (a) a report from the phone ----------------------------------------------------------------


async def test_report_with_route_preview_and_photo(server, browser):
    page, guard = await open_report(browser, server)
    await page.wait_for_selector(".gps-ok")

    # Search picks the category; only component/event kinds are offered.
    await page.click("#category-button")
    await page.fill("#category-search", "暴露")
    assert await page.locator(".category-item").count() == 1
    await page.fill("#category-search", "H-")
    await page.wait_for_selector(".category-list .empty")
    await page.fill("#category-search", "s0102")
    await page.click(".category-item[data-code='S0102']")
    assert "暴露垃圾" in await page.text_content("#category-value")

    # The preview says what the server's router says.
    expected = server.ctx.router.route(LNG, LAT, "S0102", source="grid", text="", at=utcnow()).as_dict()
    grid = expected["jurisdiction"]["grid"]
    await page.wait_for_selector(f"#route-grid[data-id='{grid['id']}']")
    assert expected["department"]["name"] in await page.text_content("#route-department")
    assert await page.text_content("#route-street") == expected["jurisdiction"]["street"]["name"]
    assert await page.is_enabled("#submit-report")

    # Outside the city: a red message and no submit; back inside: the preview returns.
    await page.context.set_geolocation({"longitude": OUTSIDE[0], "latitude": OUTSIDE[1]})
    await page.click("#locate-button")
    await page.wait_for_selector("#outside-city")
    assert "不在杭州市范围内" in await page.text_content("#outside-city")
    assert await page.is_disabled("#submit-report")
    await page.context.set_geolocation({"longitude": LNG, "latitude": LAT})
    await page.click("#locate-button")
    await page.wait_for_selector(f"#route-grid[data-id='{grid['id']}']")

    # A big photo is shrunk to ≤ 1600 px JPEG in the browser and uploaded at once.
    await page.set_input_files("#photo-input", files=[photo_file()])
    await page.wait_for_selector(".photo-tile[data-state='done']")
    await page.fill("#description", "平海路口垃圾堆积，约 2 平方米")
    await page.locator("#route-preview").scroll_into_view_if_needed()
    await screenshot(page, "report-new")

    await page.click("#submit-report")
    await page.wait_for_selector("#done-number")
    number = (await page.text_content("#done-number")).strip()
    assert expected["department"]["name"] in await page.text_content("#report-done")
    await screenshot(page, "report-done")

    cases = await stored_cases(server.ctx, number=number)
    assert len(cases) == 1
    case = cases[0]
    assert case["category"]["code"] == "S0102" and case["source"] == "grid"
    assert case["description"] == "平海路口垃圾堆积，约 2 平方米"
    assert case["location"]["coordinates"] == [LNG, LAT]
    assert case["jurisdiction"]["grid"]["id"] == grid["id"]
    assert case["assignment"]["department"]["id"] == expected["department"]["id"]
    assert case["client_id"] and len(case["photos"]) == 1
    photo = await server.ctx.attachments.get(case["photos"][0])
    assert photo["content_type"] == "image/jpeg"
    assert jpeg_size(bytes(photo["data"])) == (1600, 800)

    # 我的上报 lists it with status, department and deadline; the detail shows the photo.
    await page.click("#report-again")
    await page.click("#tab-mine")
    item = page.locator(f".case-item[data-case-id='{case['_id']}']")
    await item.wait_for()
    text = await item.text_content()
    assert number in text and "暴露垃圾" in text and expected["department"]["name"] in text
    assert await page.text_content("#badge-mine") == "1"
    assert await item.locator(".tag.deadline").count() == 1
    await screenshot(page, "report-mine")
    await item.click()
    await page.wait_for_selector(".sheet .cd .timeline .tl-item")
    await wait_until(page, "document.querySelector('.sheet .cd .cd-thumb img').naturalWidth > 0")
    await screenshot(page, "report-detail")
    guard.assert_clean(allow_console=("status of 422",))


async def test_nine_photos_fill_the_grid_and_leave_no_add_tile(server, browser):
    """The ninth photo takes the add tile's place; the tile's absence was written as the text
    "null" after the photos."""
    page, guard = await open_report(browser, server)
    await page.wait_for_selector(".gps-ok")
    await page.set_input_files("#photo-input", files=[photo_file(400, 300, f"现场{i}.png") for i in range(9)])
    await wait_until(page, "() => document.querySelectorAll('.photo-tile[data-state=\"done\"]').length === 9")
    assert await page.locator(".photo-add").count() == 0
    assert "null" not in await page.inner_text(".photo-grid")
    assert "9/9" in await page.inner_text(".photo-count")
    guard.assert_clean()


# -- (b) without a network ----------------------------------------------------------------------


async def test_offline_report_is_queued_survives_reload_and_is_sent_once(server, browser):
    page, guard = await open_report(browser, server)
    context = page.context
    await page.wait_for_selector("html[data-offline-ready]")  # the page can start offline now
    await page.wait_for_selector(".gps-ok")
    await pick_category(page, "道路不洁", "S0104")
    await page.wait_for_selector("#route-department")

    await context.set_offline(True)
    await page.set_input_files("#photo-input", files=[photo_file(800, 600)])
    await page.wait_for_selector(".photo-tile[data-state='local']")
    await page.fill("#description", "人行道油污一片")
    await page.click("#submit-report")
    await page.wait_for_selector("#done-title:has-text('待网络恢复后自动发送')")
    await page.wait_for_selector("#queue-text:has-text('离线：1 条上报待发送')")
    await screenshot(page, "report-offline")
    assert await all_cases(server) == []

    # A reload without a network: the page starts from the service worker, the queue is kept.
    await page.reload()
    await page.wait_for_selector("#queue-text:has-text('离线：1 条上报待发送')")
    await page.click("#tab-mine")
    await page.wait_for_selector(".case-item.queued:has-text('人行道') >> text=待发送（离线）")
    await screenshot(page, "report-offline-mine")
    assert await all_cases(server) == []

    # Back online: the photo, then the report, sent once; the banner says so.
    await context.set_offline(False)
    await page.wait_for_selector("#queue-text:has-text('已自动补发 1 条')", timeout=45000)
    cases = await all_cases(server)
    assert len(cases) == 1
    case = cases[0]
    assert case["category"]["code"] == "S0104" and case["description"] == "人行道油污一片"
    assert case["client_id"] and len(case["photos"]) == 1
    assert (await server.ctx.attachments.get(case["photos"][0]))["content_type"] == "image/jpeg"
    await page.wait_for_selector(f".case-item[data-case-id='{case['_id']}']")
    assert await page.locator(".case-item.queued").count() == 0
    # Another flush (a reload, the retry timer) sends nothing more.
    await page.reload()
    await page.wait_for_selector(f".case-item[data-case-id='{case['_id']}']")
    await page.wait_for_timeout(1500)
    assert len(await all_cases(server)) == 1
    assert await page.locator("#queue-banner").is_hidden()
    guard.assert_clean(allow_console=OFFLINE_NOISE)


# -- (c) check tasks ----------------------------------------------------------------------------


async def handled_case(server, category: str, result: str) -> dict:
    """A grid case taken through 立案 → 派遣 → 签收 → 处置反馈 (with a photo) by the API."""
    worker = await login_as(server, "grid_worker")
    dispatcher = await login_as(server, "dispatcher")
    department = await login_user(server, "dept_hubin")
    status, case = await worker.post("/api/reports", {
        "category": category, "description": "违规搭建彩钢棚", "client_id": f"api-{category}",
        "location": {"type": "Point", "coordinates": [LNG, LAT]}})
    assert status == 201, case
    cid = case["id"]
    for who, action, body in ((dispatcher, "file", {}), (dispatcher, "dispatch", {"department": "s330102001-office"}),
                              (department, "sign", {})):
        status, case = await who.post(f"/api/cases/{cid}/actions/{action}", body)
        assert status == 200, (action, case)
    status, photo = await department.request("POST", "/api/attachments", raw=png(64, 48), headers={"Content-Type": "image/png"})
    assert status == 201, photo
    status, case = await department.post(f"/api/cases/{cid}/actions/feedback", {"result": result, "photos": [photo["id"]]})
    assert status == 200 and case["status"] == "handled", case
    return case


async def test_check_tasks_pass_and_rework(server, browser):
    page, guard = await open_report(browser, server)
    await page.click("#tab-check")
    await page.wait_for_selector("#check-list .empty:has-text('暂无待核查任务')")

    # Cases handled while the page is open arrive live.
    first = await handled_case(server, "S0101", "彩钢棚已拆除，现场已清理")
    second = await handled_case(server, "S0402", "已劝离占道摊贩")
    task = page.locator(f".check-task[data-case-id='{first['id']}']")
    await task.wait_for(timeout=15000)
    await page.wait_for_selector(f".check-task[data-case-id='{second['id']}']", timeout=15000)
    assert await page.text_content("#badge-check") == "2"
    text = await task.text_content()
    assert "彩钢棚已拆除，现场已清理" in text and "湖滨街道办事处" in text
    await wait_until(page, 
        f"document.querySelector(\".check-task[data-case-id='{first['id']}'] .feedback img\").naturalWidth > 0")
    await screenshot(page, "report-check")

    # 核查通过 with a note and a photo.
    await task.locator(".check-pass-button").click()
    await task.locator(".check-note").fill("现场复核，已清理干净")
    await task.locator("input[type=file]").set_input_files(files=[photo_file(400, 300)])
    await task.locator(".photo-tile[data-state='done']").wait_for()
    await task.locator(".check-confirm").scroll_into_view_if_needed()
    await screenshot(page, "report-check-form")
    await task.locator(".check-confirm").click()
    await task.wait_for(state="detached")
    stored = await server.ctx.cases.get(first["id"])
    assert stored["status"] == "checked"
    assert stored["check"]["passed"] is True and stored["check"]["note"] == "现场复核，已清理干净"
    assert len(stored["check"]["photos"]) == 1

    # 不通过 needs a reason; then the case goes back to the department (返工).
    other = page.locator(f".check-task[data-case-id='{second['id']}']")
    await other.locator(".check-fail-button").click()
    await other.locator(".check-confirm").click()
    await other.locator(".error-text:has-text('请填写需要返工的原因')").wait_for()
    await other.locator(".check-note").fill("摊位仍在，未整改到位")
    await other.locator(".check-confirm").click()
    await other.wait_for(state="detached")
    stored = await server.ctx.cases.get(second["id"])
    assert stored["status"] == "accepted" and stored["counters"]["reworks"] == 1
    await page.wait_for_selector("#check-list .empty:has-text('暂无待核查任务')")
    assert await page.locator("#badge-check").is_hidden()

    # 我的上报 was empty when the page opened: both reports arrived live, with today's status.
    await page.click("#tab-mine")
    await page.wait_for_selector(f".case-item[data-case-id='{first['id']}'] .status-checked:has-text('待结案')")
    await page.wait_for_selector(f".case-item[data-case-id='{second['id']}'] .status-accepted:has-text('处置中')")
    guard.assert_clean()


# -- no GPS ---------------------------------------------------------------------------------------


async def test_without_gps_permission_the_pin_starts_in_the_workers_community(server, browser):
    worker = user(server, "grid_worker")
    page, guard = await open_page(browser, server, worker["username"], worker["password"], "/report", viewport=DESKTOP)
    await page.wait_for_selector(".gps-error")
    assert "定位权限被拒绝" in await page.text_content("#gps-status")
    await pick_category(page, "S0109", "S0109")
    community = await page.wait_for_selector("#route-community[data-id]")
    assert await community.get_attribute("data-id") == worker["scope"]
    await screenshot(page, "report-desktop")
    guard.assert_clean()

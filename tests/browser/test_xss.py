"""Hostile text typed by users is shown as text on every page, never parsed as HTML.

Each payload goes into every field a user controls (address, description/content, caller name,
notes, return reason, feedback result) of cases made through the API. Then each page that shows
them is opened, lists and details are walked and map markers hovered so their tooltips open.
After each view: no payload ran (window.__xss unset), none became an element (no <img src=x>,
<svg onload>, <meta http-equiv>, inline <script>, javascript: link, on* attribute), the page
did not navigate (the <meta refresh> target /phish is never requested), and the payload's text
is there to read where the page shows that field.

The CSP already refuses inline script and handlers, so window.__xss alone would prove little:
the element check and the <meta http-equiv="refresh"> payload (which CSP does not stop) are what
catch an HTML sink.
"""

from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import urlsplit

import pytest

from browser_support import DESKTOP, PHONE, client_as, open_page, user, wait_until
from test_hotline_page import choose_address

PAYLOADS = [
    "<img src=x onerror=window.__xss=1>",
    "<svg onload=window.__xss=1>",
    '<meta http-equiv="refresh" content="0;url=/phish">',
    '"><script>window.__xss=1</script>',
    '<a href="javascript:window.__xss=1">x</a>',
]
DEPARTMENT = "s330102001-office"  # 上城区湖滨街道办事处, account dept_hubin
ADDRESS = "上城区湖滨街道东坡路3号"  # in addresses.csv: the hotline tickets lie east of it, the first within 500 m
GRID = (120.1584, 30.2560)  # in 湖滨街道: the grid reports lie east of it, in two rows
STREET = "330102001"  # 湖滨街道: the reporting grid worker's scope (grid workers report only inside it)
STREET_WORKER = {"username": "grid_hubin", "password": "Xss-Street-Worker-2026!", "role": "grid_worker",
                 "scope": STREET, "name": "街道网格员"}
WIDE = {"width": 1920, "height": 1080}
SPACING = 0.003  # ≈ 290 m: markers of different cases stay apart (unclustered) at street zoom

# Elements a payload would have become had it been parsed as HTML.
PARSED = """() => [...document.querySelectorAll(
    'img[src="x"], svg[onload], meta[http-equiv], script:not([src]), a[href^="javascript:" i], [onerror], [onload]')]
  .map((n) => n.outerHTML.slice(0, 120))"""


def point(origin, i: int, dlat: float = 0.0) -> dict:
    return {"type": "Point", "coordinates": [round(origin[0] + SPACING * i, 6), round(origin[1] + dlat, 6)]}


def caller_of(i: int) -> str:
    # Not the case's own payload: the caller's name is masked wherever it appears in free text.
    return PAYLOADS[(i + 1) % len(PAYLOADS)]


# -- cases holding the payloads ------------------------------------------------------------------


async def act(client, case: dict, action: str, body: dict) -> dict:
    status, doc = await client.post(f"/api/cases/{case['id']}/actions/{action}", body)
    assert status == 200, (action, doc)
    return doc


async def through_to_handled(server, case: dict, text: str) -> dict:
    """file → dispatch → 退单 → 同意退单 → dispatch → sign → 督办 → feedback, each with the payload as note,
    reason or result."""
    dispatcher = await client_as(server, user(server, "dispatcher")["username"])
    department = await client_as(server, "dept_hubin")
    case = await act(dispatcher, case, "file", {"note": text})
    case = await act(dispatcher, case, "dispatch", {"department": DEPARTMENT, "note": text})
    case = await act(department, case, "return", {"reason": text})
    case = await act(dispatcher, case, "approve_return", {"note": text})
    case = await act(dispatcher, case, "dispatch", {"department": DEPARTMENT, "note": text})
    case = await act(department, case, "sign", {"note": text})
    case = await act(dispatcher, case, "supervise", {"note": text})
    case = await act(department, case, "feedback", {"result": text, "note": text})
    assert case["status"] == "handled"
    return case


async def hotline_ticket(server, i: int, text: str, located: bool = True) -> dict:
    operator = await client_as(server, user(server, "operator")["username"])
    body = {"type": "complaint", "category": "H-complaint", "content": text, "address": text,
            "caller": {"name": caller_of(i), "phone": "13500003333"}}
    if located:
        lng, lat, _ = server.ctx.city.addresses.lookup(ADDRESS)
        body["location"] = point((lng, lat), i)
    status, case = await operator.post("/api/tickets", body)
    assert status == 201, case
    return case


async def street_worker(server):
    """A grid worker of the whole street (created by the admin), so ten reports ~290 m apart
    all lie inside the reporter's scope."""
    admin = await client_as(server, user(server, "admin")["username"])
    status, body = await admin.post("/api/admin/users", STREET_WORKER)
    assert status in (201, 409), body
    worker = server.as_user()
    await worker.login(STREET_WORKER["username"], STREET_WORKER["password"])
    return worker


async def grid_report(server, i: int, text: str, dlat: float) -> dict:
    grid = await street_worker(server)
    status, case = await grid.post("/api/reports", {
        "category": "S0406", "description": text, "address": text, "location": point(GRID, i, dlat)})
    assert status == 201, case
    return case


async def seed(server) -> dict[str, list[tuple[str, dict]]]:
    """Per payload: a hotline ticket and a grid report taken to 待核查, and a grid report waiting."""
    seeded = {"ticket": [], "grid_handled": [], "grid_waiting": []}
    for i, text in enumerate(PAYLOADS):
        seeded["ticket"].append((text, await through_to_handled(server, await hotline_ticket(server, i, text), text)))
        seeded["grid_handled"].append((text, await through_to_handled(server, await grid_report(server, i, text, 0.003), text)))
        seeded["grid_waiting"].append((text, await grid_report(server, i, text, 0.0)))
    return seeded


# -- watching a page -----------------------------------------------------------------------------


class Watch:
    """What a payload could have done to one page: run, become elements, navigate."""

    def __init__(self, page):
        self.page = page
        self.path = urlsplit(page.url).path
        self.phish: list[str] = []
        page.on("request", lambda request: self.phish.append(request.url) if "/phish" in request.url else None)

    async def assert_inert(self, where: str):
        state = await self.page.evaluate("() => ({ xss: window.__xss === undefined ? null : String(window.__xss) })")
        assert state["xss"] is None, f"{where}: a payload ran"
        parsed = await self.page.evaluate(PARSED)
        assert not parsed, f"{where}: payload parsed as HTML: {parsed}"
        assert not self.phish, f"{where}: navigated by a payload: {self.phish}"
        assert urlsplit(self.page.url).path == self.path, f"{where}: left the page for {self.page.url}"


async def shows(page, selector: str, text: str, timeout: float = 15000):
    """Wait until an element matching `selector` holds `text` as its text."""
    await wait_until(page, "([sel, text]) => [...document.querySelectorAll(sel)].some((n) => n.textContent.includes(text))",
                     arg=[selector, text], timeout=timeout)


async def hover_until_tooltip(page, hover, tooltip: str, text: str, timeout: float = 15.0):
    """Hover (an async callable) until a tooltip matching `tooltip` holding `text` is open."""
    deadline = time.monotonic() + timeout
    check = "([sel, text]) => [...document.querySelectorAll(sel)].some((n) => n.textContent.includes(text))"
    while True:
        await page.mouse.move(1, 1)
        await hover()
        if await page.evaluate(check, [tooltip, text]):
            return
        if time.monotonic() > deadline:
            parsed = await page.evaluate(PARSED)
            raise AssertionError(f"no tooltip {tooltip!r} showing {text!r} as text; parsed as HTML: {parsed}")
        await asyncio.sleep(0.2)


async def hover_case_marker(page, scope: str, text: str):
    """The small map of a case detail: hover the case's marker, its tooltip is the address."""
    marker = page.locator(f"{scope} .cd-map path.leaflet-interactive[fill='#cf1322']")
    await marker.wait_for()
    await hover_until_tooltip(page, lambda: marker.hover(), ".leaflet-tooltip", text)


async def login_page(browser, server, role_or_name: str, path: str, **kw):
    account = (next(u for u in server.ctx.city.users if u["username"] == role_or_name)
               if role_or_name.startswith("dept_") else user(server, role_or_name))
    return await open_page(browser, server, account["username"], str(account["password"]), path, **kw)


# -- the pages -----------------------------------------------------------------------------------


async def test_dept_workbench_shows_payloads_as_text(server, browser):
    seeded = await seed(server)
    page, guard = await login_page(browser, server, "dept_hubin", "/dept", viewport=DESKTOP)
    await page.wait_for_selector("#live-state.online")
    watch = Watch(page)
    await page.click("#tab-all")
    for text, case in seeded["ticket"] + seeded["grid_handled"]:
        item = page.locator(f".q-item[data-number='{case['number']}']")
        await item.wait_for()
        assert text in await item.text_content()  # description and address in the queue
        await item.click()
        await page.wait_for_selector(f"#detail .cd-number:has-text('{case['number']}')")
        for part in (".cd-text", ".cd-facts", ".timeline"):  # description/result, address, notes
            await shows(page, f"#detail {part}", text)
        await hover_case_marker(page, "#detail", text)
        await watch.assert_inert(f"/dept {case['number']}")
    guard.assert_clean()


async def test_hotline_console_shows_payloads_as_text(server, browser):
    seeded = await seed(server)
    page, guard = await login_page(browser, server, "operator", "/hotline", viewport=DESKTOP)
    await page.wait_for_selector("#live-state.online")
    watch = Watch(page)

    # 回访 list: content, the department's result, the caller (unmasked for the operator who took the call).
    for i, (text, case) in enumerate(seeded["ticket"]):
        item = f"#callback-list li[data-number='{case['number']}']"
        for part in (".cb-content", ".cb-result"):
            await shows(page, f"{item} {part}", text)
        await shows(page, f"{item} .cb-caller", caller_of(i))
        await page.click(f"{item} .cb-number")
        dialog = page.locator("dialog.dlg .case-dialog")
        await dialog.locator(".cd-number").wait_for()
        for part in (".cd-text", ".cd-facts", ".timeline"):
            await shows(page, f"dialog.dlg {part}", text)
        await shows(page, "dialog.dlg .cd-facts", caller_of(i))
        await hover_case_marker(page, "dialog.dlg", text)
        await watch.assert_inert(f"/hotline case {case['number']}")
        await page.keyboard.press("Escape")
        await page.locator("dialog.dlg").wait_for(state="detached")

    # 我的工单
    await page.click("#tab-mine")
    for text, case in seeded["ticket"]:
        await shows(page, f"#mine-list li[data-number='{case['number']}']", text)
    await watch.assert_inert("/hotline 我的工单")

    # Similar cases near the chosen address: listed with their content, drawn on the map.
    await page.fill("#content", "测试来电")
    await choose_address(page, "东坡路3号", ADDRESS)
    for text, case in seeded["ticket"][:2]:  # 0 m and ≈ 290 m away
        await shows(page, f"#similar-list li[data-number='{case['number']}'] .similar-summary", text)
    # Their markers: the first lies under the address pin, so try each in turn.
    markers = page.locator("#map path.leaflet-interactive[fill='#d48806']")
    turn = iter(range(10 ** 6))

    async def hover_next_marker():
        box = await markers.nth(next(turn) % await markers.count()).bounding_box()
        if box:
            await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await hover_until_tooltip(page, hover_next_marker, ".leaflet-tooltip", seeded["ticket"][1][1]["number"])
    await watch.assert_inert("/hotline similar cases")
    guard.assert_clean()


async def test_command_centre_shows_payloads_as_text(server, browser):
    seeded = await seed(server)
    page, guard = await login_page(browser, server, "dispatcher", "/command", viewport=WIDE)
    await page.wait_for_selector("body[data-ready='1']", timeout=30000)
    watch = Watch(page)

    # Tickets without a location arrive while the page is open: their address is their place in
    # the ticker and the queue.
    for i, text in enumerate(PAYLOADS):
        case = await hotline_ticket(server, i, text, located=False)
        await page.wait_for_selector(f"#ticker .tk-button[title='查看案件 {case['number']}']", timeout=15000)
        await shows(page, "#ticker", text)
        await shows(page, f"#work-list .qi[data-id='{case['id']}']", text)
    await watch.assert_inert("/command ticker")

    # The queue (waiting grid reports with their descriptions) and the case panel.
    waiting = seeded["grid_waiting"]
    for n, (text, case) in enumerate(waiting):
        row = page.locator(f"#work-list .qi[data-id='{case['id']}']")
        await row.wait_for(timeout=15000)
        await shows(page, f"#work-list .qi[data-id='{case['id']}'] .qi-text", text)
        await row.locator(".qi-main").click()
        await page.wait_for_selector(f"#drawer:not([hidden]) .cd-number:has-text('{case['number']}')")
        for part in (".cd-text", ".cd-facts"):
            await shows(page, f"#drawer {part}", text)
        await watch.assert_inert(f"/command panel {case['number']}")
        if n < len(waiting) - 1:  # the drawer covers the list; the last one stays open
            await page.keyboard.press("Escape")
            await page.wait_for_selector("#drawer", state="hidden")

    # The panel has no small map; the big map has flown to the last case: hover its own marker
    # (under the focus ring, which lets the pointer through).
    async def hover_focused():
        box = await page.locator(".leaflet-marker-icon.focus").bounding_box()
        if box:
            await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await hover_until_tooltip(page, hover_focused, ".cm-tooltip", case["number"])
    await watch.assert_inert("/command map tooltip")

    # A ticket called back while the page is open (回访 note: one more payload), opened from the
    # ticker: result, notes, return reason and callback note in the panel.
    await page.keyboard.press("Escape")
    await page.wait_for_selector("#drawer", state="hidden")
    text, ticket = seeded["ticket"][0]
    operator = await client_as(server, user(server, "operator")["username"])
    await act(operator, ticket, "check", {"passed": True, "contacted": True, "satisfaction": "satisfied",
                                          "resolved": True, "note": text})
    button = page.locator(f"#ticker .tk-button[title='查看案件 {ticket['number']}']").first
    await button.wait_for(timeout=15000)
    await button.click()
    await page.wait_for_selector(f"#drawer:not([hidden]) .cd-number:has-text('{ticket['number']}')")
    for part in (".cd-text", ".cd-facts", ".cd-list", ".cd-small", ".timeline"):
        await shows(page, f"#drawer {part}", text)
    await watch.assert_inert(f"/command panel {ticket['number']}")
    guard.assert_clean()


async def test_report_page_shows_payloads_as_text(server, browser):
    seeded = await seed(server)
    page, guard = await open_page(browser, server, STREET_WORKER["username"], STREET_WORKER["password"], "/report",
                                  viewport=PHONE, geolocation={"longitude": GRID[0], "latitude": GRID[1]},
                                  permissions=["geolocation"])
    await page.wait_for_selector(".gps-ok, .gps-error")
    watch = Watch(page)

    # 核查 tasks: the description and the department's result.
    await page.click("#tab-check")
    for text, case in seeded["grid_handled"]:
        task = f".check-task[data-case-id='{case['id']}']"
        await shows(page, f"{task} .case-line", text)
        await shows(page, f"{task} .feedback-text", text)
    await watch.assert_inert("/report 核查")

    # 我的上报 and each case's detail sheet.
    await page.click("#tab-mine")
    for text, case in seeded["grid_waiting"] + seeded["grid_handled"]:
        item = page.locator(f"button.case-item[data-case-id='{case['id']}']")
        await item.wait_for()
        await item.click()
        await shows(page, ".sheet .cd .cd-text", text)  # the description (and a handled case's result)
        await watch.assert_inert(f"/report detail {case['number']}")
        await page.click(".sheet .sheet-back")
        await page.wait_for_selector(".sheet", state="detached")
    guard.assert_clean()


# -- after logging in ----------------------------------------------------------------------------


async def phishing_site(route):
    await route.fulfill(status=200, content_type="text/html", body="<title>phished</title>")


@pytest.mark.parametrize("payload", ["/%5Cevil.example/phish", "/%09/evil.example/phish", "//evil.example",
                                     "https://evil.example", "%2F%2Fevil.example", "javascript:alert(1)"])
async def test_login_stays_on_site(server, browser, payload):
    """The open redirect of ?next= (a hostile link to our login page), in a real browser."""
    context = await browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = await context.new_page()
    await page.route(re.compile(r"^\w+://evil\.example"), phishing_site)
    account = user(server, "operator")
    await page.goto(server.base + "/login?next=" + payload)
    await page.fill("#username", account["username"])
    await page.fill("#password", str(account["password"]))
    await page.click("#login-submit")
    await page.wait_for_url(lambda url: not url.startswith(server.base + "/login"))
    assert page.url.startswith(server.base + "/hotline"), page.url  # the operator's home page
    assert await page.evaluate("() => window.__xss") is None
    await context.close()


"""The 12345 operator console (/hotline): a ticket typed with a door-plate suggestion, the
routing preview, save; 并案 into a similar open case nearby; 即时办结 of a consultation; the
回访 callback of a handled hotline case."""

from __future__ import annotations

from browser_support import DESKTOP, client_as, open_page, screenshot, user, wait_until, stored_cases

ADDRESS = "上城区湖滨街道东坡路3号"  # in addresses.csv: geocodes inside 湖滨街道


async def case_by_number(server, number: str) -> dict | None:
    found = await stored_cases(server.ctx, number=number)
    return found[0] if found else None


async def open_console(server, browser):
    operator = user(server, "operator")
    page, guard = await open_page(browser, server, operator["username"], str(operator["password"]), "/hotline",
                                  viewport=DESKTOP)
    await page.wait_for_selector("#type-group .seg")
    await page.wait_for_selector("#live-state.online")
    return page, guard


async def choose_address(page, typed: str, address: str):
    await page.click("#address")
    await page.keyboard.type(typed)
    option = page.locator("#address-list li", has_text=address)
    await option.first.wait_for()
    # Keyboard: ↓ until the wanted suggestion is active, then Enter.
    for _ in range(12):
        await page.keyboard.press("ArrowDown")
        if (await page.locator("#address-list li.active").inner_text()) == address:
            break
    await page.keyboard.press("Enter")
    await page.wait_for_selector(".location-line.ok")


async def choose_category(page, typed: str, code: str):
    """The searchable category picker: type, ↓ until the wanted category is active, Enter."""
    await page.click("#category")
    await page.keyboard.type(typed)
    await page.locator(f"#category-list li[data-code='{code}']").wait_for()
    for _ in range(12):
        if await page.get_attribute("#category-list li.active", "data-code") == code:
            break
        await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    await wait_until(page, "() => document.querySelector('#category-list').hidden")


async def test_ticket_with_suggested_address_preview_and_save(server, browser):
    page, guard = await open_console(server, browser)
    await page.keyboard.press("Alt+3")  # 投诉
    assert await page.get_attribute("#type-group .seg[data-value=complaint]", "aria-checked") == "true"
    await page.fill("#caller-phone", "13812345678")
    await page.fill("#caller-name", "李先生")
    await page.fill("#content", "东坡路口餐馆夜间油烟直排，楼上居民无法开窗")
    await choose_address(page, "东坡路3号", ADDRESS)

    # The routing preview is the server's decision for this point, category and text.
    lng, lat, _ = server.ctx.city.addresses.lookup(ADDRESS)
    department = page.locator("#route-department")
    await department.wait_for()
    operator = await client_as(server, user(server, "operator")["username"])
    status, expected = await operator.get(f"/api/route?lng={lng}&lat={lat}&category=H-complaint&source=hotline")
    assert status == 200
    await wait_until(page, 
        "name => document.querySelector('#route-department').textContent.includes(name)", arg=expected["department"]["name"])
    assert "湖滨街道" in await page.inner_text("#route-jurisdiction")
    assert (await page.inner_text("#route-reason")).strip() not in ("", "—")
    await screenshot(page, "hotline")

    # Ctrl+Enter saves; a second press while saving must not create a second ticket.
    await page.keyboard.press("Control+Enter")
    await page.keyboard.press("Control+Enter")
    await page.wait_for_selector("#saved-number")
    number = await page.inner_text("#saved-number")
    case = await case_by_number(server, number)
    assert case is not None and case["source"] == "hotline" and case["type"] == "complaint"
    assert case["address"] == ADDRESS
    assert case["location"]["coordinates"] == [lng, lat]
    assert case["jurisdiction"]["street"]["name"] == "湖滨街道"
    assert case["caller"]["phone"] == "13812345678"
    assert case["category"]["code"] == "H-complaint"
    assert len(await stored_cases(server.ctx, created_by="operator01")) == 1

    # The form is clear for the next call, the ticket is in "my tickets".
    assert await page.input_value("#content") == ""
    assert await page.input_value("#address") == ""
    await page.click("#tab-mine")
    await page.wait_for_selector(f"#mine-list li[data-number='{number}']")
    # Its status follows the closed loop live: the dispatcher files it, the list says so.
    dispatcher = await client_as(server, user(server, "dispatcher")["username"])
    status, _ = await dispatcher.post(f"/api/cases/{case['_id']}/actions/file", {})
    assert status == 200
    await page.wait_for_selector(f"#mine-list li[data-number='{number}'][data-status='filed']")

    # Esc asks before throwing away what was typed for the next call.
    await page.fill("#content", "半句话")
    await page.keyboard.press("Escape")
    dialog = page.locator("dialog.dlg")
    await dialog.wait_for()
    await dialog.locator("button[type=submit]").click()
    await dialog.wait_for(state="detached")
    assert await page.input_value("#content") == ""
    guard.assert_clean()


async def test_similar_case_nearby_and_merge(server, browser):
    operator = await client_as(server, user(server, "operator")["username"])
    lng, lat, _ = server.ctx.city.addresses.lookup(ADDRESS)
    status, existing = await operator.post("/api/tickets", {
        "type": "complaint", "content": "东坡路3号门口垃圾堆放多日无人清运", "category": "H-complaint",
        "location": {"type": "Point", "coordinates": [lng + 0.0005, lat]},  # ~50 m away
        "caller": {"name": "张女士", "phone": "13900000000"},
    })
    assert status == 201

    page, guard = await open_console(server, browser)
    await page.keyboard.press("Alt+3")
    await page.fill("#content", "东坡路垃圾没人清运，气味很大")
    await choose_category(page, "投诉", "H-complaint")
    await choose_address(page, "东坡路3号", ADDRESS)
    item = page.locator(f"#similar-list li[data-number='{existing['number']}']")
    await item.wait_for()
    assert "米" in await item.locator(".similar-distance").inner_text()
    await screenshot(page, "hotline-similar")

    await item.locator("button.merge").click()
    dialog = page.locator("dialog.dlg")
    await dialog.wait_for()
    assert existing["number"] in await dialog.inner_text()
    await dialog.locator("button[type=submit]").click()
    await page.wait_for_selector("#saved-number")
    number = await page.inner_text("#saved-number")
    merged = await case_by_number(server, number)
    assert merged["status"] == "merged"
    assert merged["merged_into"]["id"] == existing["id"]
    master = await server.ctx.cases.get(existing["id"])
    assert any(m["id"] == merged["_id"] for m in master["merged_from"])
    guard.assert_clean()


async def test_consultation_answered_on_the_spot(server, browser):
    page, guard = await open_console(server, browser)
    await page.keyboard.press("Alt+1")  # 咨询
    await page.fill("#caller-phone", "13700001111")
    await page.fill("#content", "咨询居住证办理需要哪些材料")
    await page.fill("#answer", "携带身份证、租房合同到所在街道便民服务中心办理，当场受理。")
    await page.click("#answer-now")
    await page.wait_for_selector("#saved-number")
    number = await page.inner_text("#saved-number")
    case = await case_by_number(server, number)
    assert case["status"] == "closed"
    assert case["answer"]["text"].startswith("携带身份证")
    assert case["type"] == "consultation"
    # Not a consultation: no 即时办结.
    await page.keyboard.press("Alt+3")
    assert await page.locator("#answer-now").is_hidden()
    guard.assert_clean()


async def handled_hotline_case(server) -> dict:
    """A hotline ticket taken to `handled`: file → dispatch → sign → feedback, via the API."""
    operator = await client_as(server, user(server, "operator")["username"])
    dispatcher = await client_as(server, user(server, "dispatcher")["username"])
    department = await client_as(server, "dept_hubin")
    status, case = await operator.post("/api/tickets", {
        "type": "complaint", "content": "小区门口路灯坏了一个月", "address": ADDRESS, "category": "H-complaint",
        "caller": {"name": "刘先生", "phone": "13600002222"},
    })
    assert status == 201, case
    for client, action, body in [
        (dispatcher, "file", {}),
        (dispatcher, "dispatch", {"department": "s330102001-office"}),
        (department, "sign", {}),
        (department, "feedback", {"result": "已更换路灯灯头，夜间照明恢复正常"}),
    ]:
        status, case = await client.post(f"/api/cases/{case['id']}/actions/{action}", body)
        assert status == 200, (action, case)
    assert case["status"] == "handled"
    return case


async def test_callback_satisfied_checks_the_case(server, browser):
    case = await handled_hotline_case(server)
    page, guard = await open_console(server, browser)
    item = page.locator(f"#callback-list li[data-number='{case['number']}']")
    await item.wait_for()
    assert "已更换路灯灯头" in await item.inner_text()
    await item.locator("button.cb-open").click()
    form = item.locator("form.cb-form")
    await form.locator(".seg[data-value=satisfied]").click()
    await form.locator(".seg[data-value=yes]").nth(1).click()  # 是否解决: 已解决
    assert "核查通过" in await form.locator(".cb-conclusion").inner_text()
    assert await form.locator(".seg[data-value=pass]").get_attribute("aria-checked") == "true"
    await form.locator("button[type=submit]").click()
    await item.wait_for(state="detached")

    stored = await server.ctx.cases.get(case["id"])
    assert stored["status"] == "checked"
    assert stored["callback"]["satisfaction"] == "satisfied"
    assert stored["callback"]["resolved"] is True and stored["callback"]["contacted"] is True
    assert stored["check"]["passed"] is True
    guard.assert_clean()


async def test_callback_unsatisfied_sends_it_back_and_operator_may_override(server, browser):
    page, guard = await open_console(server, browser)
    # Handled while the console is open: it joins the callback list live.
    case = await handled_hotline_case(server)
    item = page.locator(f"#callback-list li[data-number='{case['number']}']")
    await page.wait_for_selector(f".toast:has-text('{case['number']}')")
    await item.locator("button.cb-open").click()
    form = item.locator("form.cb-form")
    await form.locator(".seg[data-value=unsatisfied]").click()
    await form.locator(".seg[data-value=yes]").nth(1).click()
    assert await form.locator(".seg[data-value=fail]").get_attribute("aria-checked") == "true"
    await form.locator(".seg[data-value=pass]").click()  # the operator overrides the suggestion
    assert "人工确定" in await form.locator(".cb-conclusion").inner_text()
    await form.locator("button[type=submit]").click()
    await item.wait_for(state="detached")
    stored = await server.ctx.cases.get(case["id"])
    assert stored["status"] == "checked" and stored["callback"]["satisfaction"] == "unsatisfied"
    guard.assert_clean()

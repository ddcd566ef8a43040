"""协办 on /dept: 湖滨街道办事处 (dept_hubin) supports 上城区城管局 on a ticket. The case appears in
its queue with the 协办 badge; it signs its part and gives its part of the feedback with the
buttons the server lists; the lead then sees the part done."""

from __future__ import annotations

from browser_support import CONTRAST, DESKTOP, client_as, fill_dialog, open_page, screenshot, user, wait_for

LEAD = "d330102-urban"  # 上城区城管局
SUPPORT = "s330102001-office"  # 上城区湖滨街道办事处 (dept_hubin)
ADDRESS = "上城区湖滨街道东坡路3号"


async def joint_case(server) -> dict:
    operator = await client_as(server, user(server, "operator")["username"])
    dispatcher = await client_as(server, user(server, "dispatcher")["username"])
    status, case = await operator.post("/api/tickets", {
        "type": "complaint", "content": "东坡路3号占道经营并堆放杂物，需城管与街道联合处置", "address": ADDRESS,
        "category": "H-complaint", "caller": {"name": "陈女士", "phone": "13500003333"},
    })
    assert status == 201, case
    for action, body in [("file", {}), ("dispatch", {"department": LEAD, "support": [SUPPORT]})]:
        status, case = await dispatcher.post(f"/api/cases/{case['id']}/actions/{action}", body)
        assert status == 200, (action, case)
    return case


async def part_status(server, case_id: str, status: str):
    doc = await server.ctx.cases.get(case_id)
    part = next(p for p in doc.get("support") or [] if p["department"]["id"] == SUPPORT)
    return part if part["status"] == status else None


async def test_a_supporting_department_signs_and_gives_its_part(server, browser):
    case = await joint_case(server)
    account = next(u for u in server.ctx.city.users if u["username"] == "dept_hubin")
    page, guard = await open_page(browser, server, account["username"], str(account["password"]), "/dept",
                                  viewport=DESKTOP)
    item = page.locator(f".q-item[data-number='{case['number']}']")
    await item.wait_for()
    assert "协办" in await item.locator(".badge-support").inner_text()
    await item.click()
    panel = page.locator("#detail .joint-panel")
    await panel.wait_for()
    assert "上城区城管局" in await panel.inner_text()  # the lead, named in the panel
    # Its own buttons only: no 签收/退单 of the lead's.
    assert await page.locator("#detail .cd-actions [data-action=sign]").count() == 0

    await panel.locator("[data-action=support_sign]").click()
    await wait_for(lambda: part_status(server, case["id"], "signed"))
    await page.locator("#detail .joint-panel [data-action=support_feedback]").wait_for()
    assert await page.locator("#detail .joint-panel [data-action=support_sign]").count() == 0

    await page.click("#detail .joint-panel [data-action=support_feedback]")
    await fill_dialog(page, "#joint-text", "街道已组织清理门前堆物，并约谈经营户")
    done = await wait_for(lambda: part_status(server, case["id"], "done"))
    assert done["feedback"]["text"].startswith("街道已组织清理") and done["feedback"]["by"] == "dept_hubin"
    await page.wait_for_selector("#detail .joint-panel li[data-status=done]")
    await screenshot(page, "dept-joint-part")

    # The lead sees the part done in its own panel.
    lead = next(u for u in server.ctx.city.users if u.get("department") == LEAD)
    lead_page, lead_guard = await open_page(browser, server, lead["username"], str(lead["password"]), "/dept",
                                            viewport=DESKTOP)
    lead_item = lead_page.locator(f".q-item[data-number='{case['number']}']")
    await lead_item.wait_for()
    assert "主办" in await lead_item.locator(".badge-lead").inner_text()
    await lead_item.click()
    await lead_page.wait_for_selector("#detail .joint-panel li[data-status=done]")
    guard.assert_clean()
    lead_guard.assert_clean()


async def test_the_dispatcher_reviews_returns_on_command(server, browser):
    """退单待审 on /command: one return rejected with a reason (back to the department), one
    approved (back to 待派遣); the buttons are the case's own `actions`."""
    cases = [await joint_case(server) for _ in range(2)]  # lead 上城区城管局, which returns them
    lead = next(u for u in server.ctx.city.users if u.get("department") == LEAD)
    lead_client = await client_as(server, lead["username"])
    for case in cases:
        status, body = await lead_client.post(f"/api/cases/{case['id']}/actions/return", {"reason": "应由街道属地处置"})
        assert status == 200, body

    account = user(server, "dispatcher")
    page, guard = await open_page(browser, server, account["username"], account["password"], "/command",
                                  viewport={"width": 1920, "height": 1080})
    first, second = (page.locator(f"#return-queue li[data-id='{c['id']}']") for c in cases)
    await first.wait_for()
    await second.wait_for()
    assert "应由街道属地处置" in await first.inner_text()
    # The review sits on /command's dark panels: every text in it stays legible (WCAG AA).
    assert await page.evaluate(CONTRAST) == []

    await first.locator("[data-action=reject_return]").click()
    await fill_dialog(page, "#joint-text", "占道经营属城管职责，请继续办理")
    rejected = await wait_for(lambda: decided(server, cases[0]["id"]))
    assert rejected["status"] == "dispatched" and rejected["counters"]["return_rejections"] == 1

    # The drawer shows the review too, with the same buttons.
    await second.locator(".btn-link").click()
    await page.wait_for_selector("#drawer-body .joint-return [data-action=approve_return]")
    await page.click("#drawer-body .joint-return [data-action=approve_return]")
    approved = await wait_for(lambda: decided(server, cases[1]["id"]))
    assert approved["status"] == "filed" and approved["counters"]["reassignments"] == 1
    await first.wait_for(state="detached")
    await second.wait_for(state="detached")
    guard.assert_clean()


async def decided(server, case_id: str):
    doc = await server.ctx.cases.get(case_id)
    return doc if not doc["flags"].get("return_pending") else None


async def test_the_catalogue_page_marks_a_disputed_entry(server, browser):
    operator = await client_as(server, user(server, "operator")["username"])
    dispatcher = await client_as(server, user(server, "dispatcher")["username"])
    status, case = await operator.post("/api/tickets", {
        "type": "complaint", "content": "东坡路3号楼道堆放杂物", "address": ADDRESS, "category": "H-complaint"})
    assert status == 201, case
    for action in ("file", "dispatch"):  # to the routed department, by a rule of the catalogue
        status, case = await dispatcher.post(f"/api/cases/{case['id']}/actions/{action}", {})
        assert status == 200, (action, case)
    routed = server.ctx.city.departments[case["assignment"]["department"]["id"]]
    admin = await client_as(server, user(server, "admin")["username"])
    status, body = await admin.post("/api/admin/users", {
        "username": "lead-of-test", "password": "lead-password-2026", "role": "department",
        "scope": routed.jurisdiction, "department": routed.id})
    assert status == 201, body
    lead_client = server.as_user()
    await lead_client.login("lead-of-test", "lead-password-2026")
    status, _ = await lead_client.post(f"/api/cases/{case['id']}/actions/return", {"reason": "楼道堆物属物业管理"})
    assert status == 200
    status, _ = await dispatcher.post(f"/api/cases/{case['id']}/actions/approve_return", {})
    assert status == 200

    account = user(server, "dispatcher")
    page, guard = await open_page(browser, server, account["username"], account["password"], "/command",
                                  viewport={"width": 1920, "height": 1080})
    await page.click("#return-review a[href='/catalogue']")
    await page.wait_for_url(server.base + "/catalogue")
    await page.wait_for_selector("#catalogue-table[aria-busy=false]")
    status, catalogue = await dispatcher.get("/api/catalogue")
    assert await page.locator("#catalogue-body tr").count() == len(catalogue["items"])
    await page.check("#catalogue-disputed")
    disputed = page.locator("#catalogue-body tr.disputed")
    assert await disputed.count() == 1
    rule = next(r for r in catalogue["items"] if r["category"] == "H-complaint" and r["rule"] == case["assignment"]["rule"])
    assert f"H-complaint {rule['category_name']}" in await disputed.inner_text()
    assert rule["rule_name"] in await disputed.inner_text()
    await page.wait_for_selector("#disputes-list li")
    assert "楼道堆物属物业管理" in await page.inner_text("#disputes-list")
    await screenshot(page, "catalogue")
    guard.assert_clean()


async def test_a_busy_review_queue_leaves_the_work_list_its_room(server, browser):
    """Seen in a test run: four pending returns grew 退单待审 over the whole right column and the
    待派遣 list's buttons sat under the next panel. The queue now scrolls within a fifth of it."""
    cases = [await joint_case(server) for _ in range(6)]
    lead = next(u for u in server.ctx.city.users if u.get("department") == LEAD)
    lead_client = await client_as(server, lead["username"])
    for case in cases:
        status, body = await lead_client.post(f"/api/cases/{case['id']}/actions/return", {"reason": "应由街道属地处置"})
        assert status == 200, body
    operator = await client_as(server, user(server, "operator")["username"])
    status, waiting = await operator.post("/api/tickets", {
        "type": "complaint", "content": "东坡路3号门口垃圾没人清", "address": ADDRESS, "category": "H-complaint"})
    assert status == 201, waiting

    account = user(server, "dispatcher")
    page, guard = await open_page(browser, server, account["username"], account["password"], "/command",
                                  viewport={"width": 1920, "height": 1080})
    await page.wait_for_selector(f"#return-queue li[data-id='{cases[-1]['id']}']")
    sizes = await page.evaluate("""() => {
      const box = (s) => document.querySelector(s).getBoundingClientRect();
      const queue = document.getElementById('return-queue');
      return { column: box('.cmd-right').height, review: box('#return-review').height,
               work: box('#work-list').height, status: box('.cmd-right .panel-status').height,
               scrolls: queue.scrollHeight > queue.clientHeight };
    }""")
    assert sizes["review"] <= sizes["column"] * 0.21 and sizes["scrolls"], sizes
    assert sizes["work"] >= 150, sizes  # two rows of the 待办 list at least
    # The waiting ticket's 派遣 button can be pressed (nothing lies over it).
    await page.locator(f"#work-list .qi[data-id='{waiting['id']}'] .qi-dispatch").click(timeout=10000)
    await page.wait_for_selector(f"#work-list .qi[data-id='{waiting['id']}'] select")
    guard.assert_clean()

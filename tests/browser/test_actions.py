"""The buttons are the server's `case.actions`: on /dept and /command every allowed action of a
case has a button (and no other button shows), and every button shown succeeds when its form
is filled minimally. Each button is tried on a fresh case, so one try never changes another's
starting state."""

from __future__ import annotations

import time

from playwright.async_api import TimeoutError as PlaywrightTimeout

from browser_support import client_as, user, wait_for
from test_command_page import open_command, report
from test_dept_page import dispatched_case, open_workbench

# Buttons whose form needs more than text: 补充定位 asks for a click on the map (its own test,
# test_dispatcher_places_a_ticket_without_location, covers it).
NEEDS_THE_MAP = {"relocate"}


async def listed(server, username: str, case_id: str) -> set[str]:
    client = await client_as(server, username)
    status, case = await client.get(f"/api/cases/{case_id}")
    assert status == 200, case
    return {a["name"] for a in case["actions"]}


async def fill_and_submit(page, extra: dict | None = None) -> None:
    """Fill every required field of the open dialog with a short text, then submit it."""
    dialog = page.locator("dialog[open]")
    await dialog.wait_for()
    for name, value in (extra or {}).items():
        await dialog.locator(f"[name='{name}']").fill(value)
    for box in await dialog.locator("textarea[required], input[required]:not([type=file])").all():
        if not await box.input_value():
            await box.fill("现场核实后处理")
    await dialog.locator("button[type=submit]").click()


async def last_action_becomes(server, case_id: str, action: str) -> None:
    async def done():
        stored = await server.ctx.cases.get(case_id)
        return stored["history"][-1]["action"] == action
    await wait_for(done, timeout=15)


async def shown_buttons(page, scope: str) -> set[str]:
    await page.wait_for_selector(f"{scope} .cd-actions button")
    return set(await page.eval_on_selector_all(f"{scope} .cd-actions button", "bs => bs.map(b => b.dataset.action)"))


async def test_dept_buttons_are_the_cases_actions_and_each_succeeds(server, browser):
    username = "dept_hubin"
    probe = await dispatched_case(server, "东坡路口共享单车乱停放")
    allowed = await listed(server, username, probe["id"])
    assert {"sign", "return"} <= allowed
    page, guard = await open_workbench(server, browser)

    async def open_case(case):
        item = page.locator(f".q-item[data-number='{case['number']}']")
        await item.wait_for(timeout=15000)
        await item.click()
        await page.wait_for_selector(f"#detail .cd-number:has-text('{case['number']}')")

    await open_case(probe)
    assert await shown_buttons(page, "#detail") == allowed

    for action in sorted(allowed):
        case = await dispatched_case(server, f"东坡路口共享单车乱停放（{action}）")
        await open_case(case)
        await page.click(f"#detail .cd-actions button[data-action='{action}']")
        if action != "sign":  # 签收 needs no form
            await fill_and_submit(page)
        await last_action_becomes(server, case["id"], action)
    guard.assert_clean()


async def test_command_buttons_are_the_cases_actions_and_each_succeeds(server, browser):
    dispatcher = user(server, "dispatcher")["username"]
    master = await report(server, "东坡路人行道井盖松动（主案）")
    probe = await report(server, "东坡路人行道井盖松动")
    allowed = await listed(server, dispatcher, probe["id"])
    assert {"file", "void", "merge", "supervise"} <= allowed
    page, guard = await open_command(browser, server, "dispatcher")

    async def close_drawer(deadline: float):
        """Escape closes an open form, then the drawer (it covers the list)."""
        while await page.locator("#drawer").is_visible():
            assert time.monotonic() < deadline, "the drawer would not close"
            await page.keyboard.press("Escape")
            try:
                await page.wait_for_selector("#drawer", state="hidden", timeout=1000)
            except PlaywrightTimeout:
                pass  # something else took this Escape (a form): press again

    async def open_case(case):
        # The page may re-open the drawer after an action (it reloads the case), and a live
        # update may re-draw the row under the click: close, click, look — until it shows.
        shown = f"#drawer .cd-number:has-text('{case['number']}')"
        deadline = time.monotonic() + 45
        while True:
            await close_drawer(deadline)
            try:
                await page.click(f"#work-list .qi[data-id='{case['id']}'] .qi-main", timeout=3000)
                await page.wait_for_selector(shown, timeout=3000)
                return
            except PlaywrightTimeout:
                assert time.monotonic() < deadline, f"the drawer never showed {case['number']}"

    await open_case(probe)
    assert await shown_buttons(page, "#drawer") == allowed

    for action in sorted(allowed - NEEDS_THE_MAP):
        case = await report(server, f"东坡路人行道井盖松动（{action}）")
        await open_case(case)
        await page.click(f"#drawer .cd-actions button[data-action='{action}']")
        if action == "escalate":  # 吹哨 by summoning: going up depends on where the case lies
            await page.check("dialog[open] input[name=esc-mode][value=summon]")
            await page.locator("dialog[open] input[name=summon]").first.check()
        if action != "file":  # 立案 needs no form
            await fill_and_submit(page, {"merge-into": master["number"]} if action == "merge" else None)
        await last_action_becomes(server, case["id"], action)
    guard.assert_clean()

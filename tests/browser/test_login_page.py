"""The login page: the real form logs in and lands on the role's page; bad passwords are refused."""

from browser_support import DESKTOP, PageGuard, open_page, screenshot, user


async def test_login_lands_on_role_page(server, browser):
    dispatcher = user(server, "dispatcher")
    page, guard = await open_page(browser, server, dispatcher["username"], dispatcher["password"], "/command")
    assert "/command" in page.url
    guard.assert_clean(allow_console=("Failed to load resource",))


async def test_bad_password_shows_message_and_pages_need_login(server, browser):
    context = await browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = await context.new_page()
    guard = PageGuard(page, server.base)
    await page.goto(server.base + "/report")
    assert "/login" in page.url  # not logged in: sent to the login page
    await page.fill("#username", user(server, "grid_worker")["username"])
    await page.fill("#password", "wrong-password")
    await page.click("#login-submit")
    await page.wait_for_selector("#login-error:has-text('用户名或密码错误')")
    await screenshot(page, "login")
    guard.assert_clean(allow_console=("401",))

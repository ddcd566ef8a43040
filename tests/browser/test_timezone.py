"""Times show in the city's time zone (Asia/Shanghai for the demo city) whatever the browser's
own zone: a department workbench opened in a browser set to America/New_York shows a case's
registration time in Beijing time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from browser_support import DESKTOP, PageGuard
from test_dept_page import dispatched_case


def shown(iso: str, zone: str) -> str:
    """formatTime() of the pages: "3月5日 09:07" in `zone`."""
    t = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    return f"{t.month}月{t.day}日 {t.hour:02d}:{t.minute:02d}"


async def test_case_times_in_beijing_time_from_a_new_york_browser(server, browser):
    case = await dispatched_case(server, "东坡路3号路灯不亮，夜间行人看不清")
    beijing, new_york = shown(case["created_at"], "Asia/Shanghai"), shown(case["created_at"], "America/New_York")
    assert beijing != new_york

    account = next(u for u in server.ctx.city.users if u["username"] == "dept_hubin")
    context = await browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="America/New_York")
    try:
        page = await context.new_page()
        guard = PageGuard(page, server.base)
        await page.goto(server.base + "/login?next=/dept")
        await page.fill("#username", account["username"])
        await page.fill("#password", str(account["password"]))
        await page.click("#login-submit")
        await page.wait_for_url(server.base + "/dept*")
        assert await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/New_York"

        item = page.locator(f".q-item[data-number='{case['number']}']")
        await item.wait_for()
        await item.click()
        await page.wait_for_selector("#detail .cd-facts")
        facts = await page.inner_text("#detail .cd-facts")
        assert beijing in facts, (beijing, facts)
        assert new_york not in facts
        # The history timeline too: the report entry carries the same instant.
        timeline = await page.inner_text("#detail .timeline")
        assert beijing in timeline, (beijing, timeline)
        guard.assert_clean()
    finally:
        await context.close()

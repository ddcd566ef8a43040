"""Every page at a phone's, a laptop's and a wall screen's width (390, 1366, 1920 px) on a day
under way: a screenshot of each goes to test-artifacts/look-<page>-<width>.png (look at them),
and every visible text passes WCAG AA contrast (4.5:1; 3:1 for large text)."""

from __future__ import annotations

import pytest

from browser_support import CONTRAST, open_page, screenshot, user
from test_command_page import simulate_working_day

WIDTHS = {390: 844, 1366: 768, 1920: 1080}
# page, account (role, index) and what shows that the page has drawn its data
PAGES = [
    ("report", ("grid_worker", 0), "#category-button"),
    ("dept", ("department", 1), "#queue-list[aria-busy='false']"),
    ("hotline", ("operator", 0), "#type-group .seg"),
    ("command", ("dispatcher", 0), "body[data-ready='1']"),
    ("command-street", ("commander", 1), "body[data-ready='1']"),
]


@pytest.mark.parametrize("width", list(WIDTHS))
async def test_every_page_at_every_width_is_legible(server, browser, width):
    await simulate_working_day(server, hours=2, rate=2.0)
    viewport = {"width": width, "height": WIDTHS[width]}
    failures = {}
    for name, (role, index), ready in PAGES:
        account = user(server, role, index)
        path = "/" + name.split("-")[0]
        page, guard = await open_page(browser, server, account["username"], str(account["password"]), path,
                                      viewport=viewport, is_mobile=width < 600, has_touch=width < 600)
        await page.wait_for_selector(ready, timeout=30000)
        await page.wait_for_load_state("networkidle")
        await screenshot(page, f"look-{name}-{width}")
        bad = await page.evaluate(CONTRAST)
        if bad:
            failures[name] = bad
        guard.assert_clean()
        await page.context.close()
    assert failures == {}, "\n".join(f"{name}: {line}" for name, lines in failures.items() for line in lines)

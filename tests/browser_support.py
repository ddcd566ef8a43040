"""Helpers for browser tests (tests/browser/): log in through the real form, watch the page.

Every page opened through `open_page` records console errors and any request to another host;
`guard.assert_clean()` fails the test on either. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1600, "height": 900}
# WCAG AA contrast of every visible text: `await page.evaluate(CONTRAST)` lists the texts below it.
CONTRAST = (Path(__file__).resolve().parent / "browser" / "contrast.js").read_text(encoding="utf-8")


class PageGuard:
    """Collects console errors and off-host requests of one page."""

    def __init__(self, page, base: str):
        self.page = page
        self.host = urlsplit(base).netloc
        self.console_errors: list[str] = []
        self.foreign_requests: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.console_errors.append(f"pageerror: {exc}"))
        page.on("request", self._on_request)

    def _on_console(self, message):
        if message.type == "error":
            self.console_errors.append(message.text)

    def _on_request(self, request):
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != self.host:
            self.foreign_requests.append(request.url)

    def assert_clean(self, allow_console=()):
        errors = [e for e in self.console_errors if not any(a in e for a in allow_console)]
        assert not errors, f"console errors: {errors}"
        assert not self.foreign_requests, f"requests to other hosts: {self.foreign_requests}"


async def open_page(browser, server, username: str, password: str, path: str, viewport=DESKTOP, **context_kw):
    """A new browser context logged in as `username` (through the real login form), at `path`."""
    context = await browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai",
                                        **context_kw)
    page = await context.new_page()
    guard = PageGuard(page, server.base)
    await page.goto(server.base + "/login?next=" + path)
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#login-submit")
    await page.wait_for_url(server.base + path + "*")
    return page, guard


def user(server, role: str, index: int = 0) -> dict:
    return [u for u in server.ctx.city.users if u["role"] == role][index]


async def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=False)
    return path


async def wait_until(page, expression: str, arg=None, timeout: float = 30000) -> None:
    """Poll a JS expression until it is truthy.

    Playwright's `wait_for_function` compiles its predicate inside the page with `eval`, which
    our Content-Security-Policy (no 'unsafe-eval') refuses; `page.evaluate` goes through the
    DevTools protocol instead and is not subject to the page's CSP.
    """
    import asyncio
    import time

    deadline = time.monotonic() + timeout / 1000
    while True:
        value = await page.evaluate(expression, arg)
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} ms waiting for: {expression}")
        await asyncio.sleep(0.1)


async def wait_for(predicate, timeout: float = 10.0):
    """Poll an async predicate (e.g. a store lookup) until it returns something truthy."""
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def client_as(server, username: str):
    """An API client on the test server logged in as one of the city's bootstrap accounts."""
    account = next(u for u in server.ctx.city.users if u["username"] == username)
    client = server.as_user()
    await client.login(account["username"], str(account["password"]))
    return client


async def stored_cases(ctx, **equal) -> list[dict]:
    """Every stored case (oldest first) whose top-level fields equal `equal`: what the
    database holds, read past the API."""
    from dispatch.store.query import OLDEST, CaseQuery

    cases = await ctx.cases.find(CaseQuery(order=OLDEST, limit=100_000))
    return [c for c in cases if all(c.get(k) == v for k, v in equal.items())]


async def fill_dialog(page, field: str, text: str) -> None:
    """Answer the page's form dialog (static/js/case-detail.js formDialog): fill `field`,
    submit, and wait until the dialog has gone (the action was accepted)."""
    dialog = page.locator("dialog.dlg")
    await dialog.wait_for()
    await dialog.locator(field).fill(text)
    await dialog.locator("button[type=submit]").click()
    await dialog.wait_for(state="detached")

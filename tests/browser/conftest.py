"""Browser fixtures: Debian's Chromium driven by Playwright against a live demo server."""

from __future__ import annotations

import os

import pytest

from browser_support import CHROMIUM
from support import DEMO_CITY, start_server


@pytest.fixture
async def server():
    srv, client = await start_server(DEMO_CITY)
    yield client
    srv.stop()
    await client.ctx.storage.close()


@pytest.fixture
async def browser():
    playwright_api = pytest.importorskip("playwright.async_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed (bash setup.sh --test installs it)")
    async with playwright_api.async_playwright() as p:
        instance = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"],
        )
        yield instance
        await instance.close()

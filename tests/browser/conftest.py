"""Browser fixtures: Debian's Chromium driven by Playwright against a live demo server."""

from __future__ import annotations

import os

import pytest

from browser_support import CHROMIUM


@pytest.fixture
def server(demo):
    """The pages' server: the demo city (tests/conftest.py `demo`)."""
    return demo


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

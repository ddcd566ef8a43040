"""Shared fixtures: a running server on a city package, and an HTTP client that logs in."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines import open_test_store
from support import DEMO_CITY, serving


@pytest.fixture
async def demo():
    """A fresh server (empty embedded store) on the demo city."""
    if not (DEMO_CITY / "city.yaml").exists():
        pytest.skip("demo city not generated")
    async with serving(DEMO_CITY) as client:
        yield client


@pytest.fixture
async def demo_embedded():
    """The demo city on the embedded store, whatever TEST_ENGINE says."""
    async with serving(DEMO_CITY, engine="embedded") as client:
        yield client


@pytest.fixture
async def small(tmp_path_factory):
    """A fresh server on the small made-up city of tests/small_city.py."""
    from small_city import write_small_city

    async with serving(Path(write_small_city(tmp_path_factory.mktemp("city")))) as client:
        yield client


@pytest.fixture(params=["embedded", "server"])
async def store(request):
    """An empty store on each engine (the store contract tests: tests/test_store_contract.py and
    the repositories' own files)."""
    store = await open_test_store(request.param)
    yield store
    await store.close_for_test()

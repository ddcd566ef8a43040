"""Shared fixtures: a running server on a city package, and an HTTP client that logs in."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import DEMO_CITY, start_server


@pytest.fixture
async def demo():
    """A fresh server (empty embedded store) on the demo city."""
    if not (DEMO_CITY / "city.yaml").exists():
        pytest.skip("demo city not generated")
    server, client = await start_server(DEMO_CITY)
    yield client
    server.stop()
    await client.ctx.storage.close()


@pytest.fixture
async def demo_embedded():
    """The demo city on the embedded store, whatever TEST_ENGINE says."""
    server, client = await start_server(DEMO_CITY, engine="embedded")
    yield client
    server.stop()
    await client.ctx.storage.close()


@pytest.fixture
async def small(tmp_path_factory):
    """A fresh server on the small made-up city of tests/small_city.py."""
    from small_city import write_small_city

    path = write_small_city(tmp_path_factory.mktemp("city"))
    server, client = await start_server(Path(path))
    yield client
    server.stop()
    await client.ctx.storage.close()

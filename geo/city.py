"""The city model (SPEC §2): jurisdictions, zones, departments, categories, rules, users and
the calendar config of one city, as the rest of the code uses it.

These are plain shapes; reading and validating a package folder into a :class:`City` is
geo.loader's job (``load_city(path)``). Nothing here is tied to Hangzhou: codes, ids, kinds and
department types are data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from shapely.geometry import mapping

from geo.metric import LocalProjection

# The vocabulary of a city package, defined once here: dispatch/ imports these (geo/ never imports dispatch/).
LEVELS = ("district", "street", "community", "grid")
LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}  # lower rank = higher level
ROLES = ("grid_worker", "operator", "dispatcher", "department", "commander", "admin")
SOURCES = ("grid", "hotline")
CATEGORY_KINDS = ("component", "event", "hotline")
TICKET_TYPES = ("consultation", "help", "complaint", "report", "suggestion", "praise")
PRIORITIES = ("normal", "urgent")
LIMIT_STAGES = ("sign", "handle", "check")
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_WORK_HOURS = ["08:30-12:00", "13:30-17:30"]

_HOURS_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, eq=False)
class Jurisdiction:
    id: str
    name: str
    level: str
    parent: str | None
    geometry: Any  # shapely Polygon / MultiPolygon, lng/lat


@dataclass(frozen=True, eq=False)
class Zone:
    id: str
    name: str
    kind: str
    geometry: Any  # shapely geometry (points, lines or polygons), lng/lat


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    type: str
    jurisdiction: str


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    kind: str
    group: str | None
    priority: str
    limits: dict
    urgent_limits: dict | None
    auto_dispatch: bool = False
    # Hotline only: the default category for tickets of this type (consultation, complaint...).
    ticket_type: str | None = None
    # Everyday words and sample sentences: they teach the category suggestion (SPEC §9).
    keywords: tuple = ()
    examples: tuple = ()


@dataclass(frozen=True)
class Article:
    """One knowledge base article (知识库, SPEC §2 knowledge.yaml)."""
    id: str
    title: str
    questions: tuple
    answer: str
    category: str | None = None
    department: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    tags: tuple = ()


@dataclass(frozen=True)
class HoursWindow:
    """A local-time window ``HH:MM-HH:MM`` (start inclusive, end exclusive); may cross midnight."""

    start: int  # minutes after midnight
    end: int
    text: str

    def contains(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end


@dataclass(frozen=True)
class NearZone:
    kind: str
    within_m: float


@dataclass(frozen=True)
class Rule:
    id: str
    priority: float
    index: int  # position in rules.yaml (ties in priority keep file order)
    categories: frozenset | None = None  # None = any ("*")
    sources: frozenset | None = None
    near_zone: NearZone | None = None
    in_zone: str | None = None
    keywords: tuple | None = None
    hours: HoursWindow | None = None
    department: str | None = None  # assign.department
    department_type: str | None = None  # assign.department_type
    set_priority: str | None = None
    description: str | None = None


@dataclass
class RuleSet:
    rules: list  # list[Rule] sorted by (priority, file order)
    fallback: Rule

    def __iter__(self):
        return iter(self.rules)

    def __len__(self):
        return len(self.rules)

    def get(self, rule_id: str) -> Rule | None:
        if rule_id == "fallback":
            return self.fallback
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        return None


@dataclass(eq=False)
class City:
    id: str
    name: str
    timezone: str
    work_hours: list
    holidays: list
    workdays: list
    path: str
    jurisdictions: dict
    zones: list
    departments: dict
    categories: dict
    rules: RuleSet
    users: list
    addresses: Any
    config: dict
    base_layers: dict = field(default_factory=dict)  # optional roads / pois FeatureCollections
    warnings: list = field(default_factory=list)
    # knowledge.yaml (optional): the hotline's knowledge base articles, in file order.
    knowledge: list = field(default_factory=list)
    _geojson_cache: dict = field(default_factory=dict, repr=False)
    _children: dict | None = field(default=None, repr=False)
    _projection: LocalProjection | None = field(default=None, repr=False)

    # -- derived views -----------------------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def bounds(self) -> tuple:
        """(minx, miny, maxx, maxy) of the districts, degrees."""
        districts = [j.geometry for j in self.jurisdictions.values() if j.level == "district"]
        return tuple(shapely.total_bounds(districts).tolist())

    @property
    def projection(self) -> LocalProjection:
        """The city's local metric frame (see geo.metric)."""
        if self._projection is None:
            self._projection = LocalProjection.for_bounds(*self.bounds)
        return self._projection

    def jurisdiction_geojson(self, level: str | None = None) -> dict:
        """FeatureCollection of jurisdictions (one level, or all); cached per level."""
        if level is not None and level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
        key = level or "*"
        cached = self._geojson_cache.get(key)
        if cached is None:
            features = [
                {
                    "type": "Feature",
                    "id": j.id,
                    "properties": {"id": j.id, "name": j.name, "level": j.level, "parent": j.parent},
                    "geometry": mapping(j.geometry),
                }
                for j in self.jurisdictions.values()
                if level is None or j.level == level
            ]
            cached = {"type": "FeatureCollection", "features": features}
            self._geojson_cache[key] = cached
        return cached

    def children(self, jurisdiction_id: str) -> list:
        if self._children is None:
            kids: dict[str, list] = {}
            for j in self.jurisdictions.values():
                kids.setdefault(j.parent or self.id, []).append(j.id)
            self._children = kids
        return self._children.get(jurisdiction_id, [])

    def descendants(self, jurisdiction_id: str) -> set:
        """The jurisdiction and everything under it (the city id → every jurisdiction + city)."""
        if jurisdiction_id == self.id:
            return set(self.jurisdictions) | {self.id}
        if jurisdiction_id not in self.jurisdictions:
            raise KeyError(jurisdiction_id)
        out = {jurisdiction_id}
        stack = [jurisdiction_id]
        while stack:
            for kid in self.children(stack.pop()):
                if kid not in out:
                    out.add(kid)
                    stack.append(kid)
        return out

    def ancestors(self, jurisdiction_id: str) -> list:
        """[jurisdiction, parent, ..., district, city id] (nearest first)."""
        chain = []
        current = jurisdiction_id
        while current is not None and current in self.jurisdictions:
            chain.append(current)
            current = self.jurisdictions[current].parent
        chain.append(self.id)
        return chain

    def zone_kinds(self) -> set:
        return {z.kind for z in self.zones}


def parse_hours_window(text: Any) -> HoursWindow:
    """'HH:MM-HH:MM' → HoursWindow; raises ValueError with the reason."""
    if not isinstance(text, str):
        raise ValueError(f"时段须为 'HH:MM-HH:MM' 形式的字符串，实际为 {text!r}")
    m = _HOURS_RE.match(text)
    if not m:
        raise ValueError(f"时段 {text!r} 无效：应为 'HH:MM-HH:MM'")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"时段 {text!r} 无效：时间超出范围")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end % 1440:
        raise ValueError(f"时段 {text!r} 无效：开始时间与结束时间相同")
    return HoursWindow(start, end, f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}")

"""Loading and validating a city package (SPEC §2).

A city is a folder::

    city.yaml  jurisdictions.geojson  zones.geojson?  departments.yaml  categories.yaml
    rules.yaml  users.yaml  addresses.csv?  roads.geojson?  pois.geojson?

``roads.geojson`` and ``pois.geojson`` are optional base-map layers the pages draw under the
cases (no routing uses them): roads are LineString/MultiLineString features {name?, kind?},
points of interest Point features {name, kind?}; an id is optional, unique when given.

``load_city(path)`` reads all of it, checks it and returns a :class:`geo.city.City`. Anything
wrong raises :class:`geo.errors.CityPackageError` whose message names the file, the feature
(index and id) and the problem, e.g. ``jurisdictions.geojson: feature #12 (id 330102001001):
上级区划 '330102999' 不存在``. All problems found in one pass are reported together (``.errors``).

Nothing here is tied to Hangzhou: codes, ids, kinds and department types are data.
"""

from __future__ import annotations

import json
import math
import os
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import shapely
import yaml
from shapely.geometry import mapping, shape

from geo.city import (
    CATEGORY_KINDS,
    DEFAULT_TIMEZONE,
    DEFAULT_WORK_HOURS,
    LEVEL_RANK,
    LEVELS,
    LIMIT_STAGES,
    PRIORITIES,
    ROLES,
    SOURCES,
    TICKET_TYPES,
    Category,
    City,
    Department,
    Jurisdiction,
    NearZone,
    Rule,
    RuleSet,
    Article,
    Zone,
    parse_hours_window,
)
from geo.durations import parse_duration
from geo.errors import CityPackageError, Problems
from geo.errors import where as _where
from geo.geocode import AddressBook

REQUIRED_FILES = (
    "city.yaml",
    "jurisdictions.geojson",
    "departments.yaml",
    "categories.yaml",
    "rules.yaml",
    "users.yaml",
)

CONDITION_KEYS = ("categories", "sources", "near_zone", "in_zone", "keywords", "hours")
RULE_KEYS = ("id", "priority", "when", "assign", "set_priority", "name", "description", "note")
FALLBACK_KEYS = ("department", "department_type", "set_priority", "description", "note")

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# --------------------------------------------------------------------------- helpers


def _read_text(path: str, file: str) -> str:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise CityPackageError(f"{file}: 不是有效的 UTF-8 文本（{exc}）") from None
    except OSError as exc:
        raise CityPackageError(f"{file}: 无法读取（{exc.strerror}）") from None


def _load_yaml(root: str, file: str) -> Any:
    text = _read_text(os.path.join(root, file), file)
    try:
        return yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise CityPackageError(f"{file}: YAML 语法错误：{exc}") from None


def _load_json(root: str, file: str) -> Any:
    text = _read_text(os.path.join(root, file), file)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CityPackageError(f"{file}: JSON 语法错误，位于第 {exc.lineno} 行第 {exc.colno} 列：{exc.msg}") from None


def _as_id(value: Any) -> str | None:
    """Ids are strings; integers (JSON numbers, unquoted YAML) are accepted and stringified."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int):
        return str(value)
    return None


def _list_items(data: Any, file: str, key: str) -> list:
    """A YAML file holding a list, either bare or under `key`."""
    if isinstance(data, dict) and key in data:
        data = data[key]
    if data is None:
        return []
    if not isinstance(data, list):
        raise CityPackageError(f"{file}: 应为 {key} 列表（或含 '{key}' 列表的映射）")
    return data


def _check_duration(value: Any) -> str | None:
    """None if `value` is a valid duration string, else the reason (geo.durations decides)."""
    if not isinstance(value, str):
        return f"时长须为字符串，如 '4wh'，实际为 {value!r}"
    try:
        parse_duration(value)
    except Exception as exc:  # noqa: BLE001 - any refusal is a package problem
        return str(exc)
    return None


def _parse_day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value.strip())
    raise ValueError(f"not a date: {value!r}")


# --------------------------------------------------------------------------- sections


def _load_city_yaml(root: str) -> dict:
    return _city_meta(_load_yaml(root, "city.yaml"))


def _city_meta(data: Any) -> dict:
    file = "city.yaml"
    if not isinstance(data, dict):
        raise CityPackageError(f"{file}: 应为包含 id、name、timezone、work_hours 的映射")
    p = Problems()
    cid = _as_id(data.get("id"))
    if not cid:
        p.add(file, None, "缺少 'id'（城市的行政区划代码，如 330100）")
    if not isinstance(data.get("name"), str) or not data.get("name").strip():
        p.add(file, None, "缺少 'name'（名称）")
    tz = data.get("timezone") or DEFAULT_TIMEZONE
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        p.add(file, None, f"时区 {tz!r} 不存在（应为 IANA 时区名，如 Asia/Shanghai）")
    hours = data.get("work_hours", DEFAULT_WORK_HOURS)
    if not isinstance(hours, list) or not hours:
        p.add(file, None, "work_hours（工作时段）须为非空列表，如 ['08:30-12:00', '13:30-17:30']")
        hours = []
    last_end = -1
    for i, h in enumerate(hours):
        try:
            w = parse_hours_window(h)
        except ValueError as exc:
            p.add(file, f"work_hours[{i}]", str(exc))
            continue
        if w.start >= w.end:
            p.add(file, f"work_hours[{i}]", f"{h!r}：工作时段不能跨越午夜")
        elif w.start < last_end:
            p.add(file, f"work_hours[{i}]", f"{h!r} 与上一个时段重叠或早于上一个时段（时段须按先后顺序排列）")
        last_end = max(last_end, w.end)
    days = {}
    for key in ("holidays", "workdays"):
        raw = data.get(key) or []
        if not isinstance(raw, list):
            p.add(file, None, f"{key} 须为日期列表（YYYY-MM-DD）")
            raw = []
        parsed = []
        for i, v in enumerate(raw):
            try:
                parsed.append(_parse_day(v))
            except ValueError:
                p.add(file, f"{key}[{i}]", f"不是日期（应为 YYYY-MM-DD）：{v!r}")
        days[key] = parsed
    p.raise_if_any()
    return {
        "id": cid,
        "name": data["name"].strip(),
        "timezone": str(tz),
        "work_hours": [parse_hours_window(h).text for h in hours],
        "holidays": days["holidays"],
        "workdays": days["workdays"],
        "raw": data,
    }


def _features(data: Any, file: str) -> list:
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or not isinstance(
        data.get("features"), list
    ):
        raise CityPackageError(f"{file}: 应为含 'features' 列表的 GeoJSON FeatureCollection")
    return data["features"]


# The kinds of shapely.is_valid_reason (GEOS's IsValidOp) in words a city administrator reads;
# the location GEOS appends ("Self-intersection[110.01 20.01]") is kept, a kind not listed here
# is shown as GEOS words it.
GEOMETRY_REASONS = {
    "Self-intersection": "自相交",
    "Ring Self-intersection": "边界环自相交",
    "Too few points in geometry component": "几何组件的点太少",
    "Too few distinct points in geometry component": "几何组件中不同的点太少",
    "Hole lies outside shell": "内环（洞）位于外环之外",
    "Holes are nested": "内环（洞）相互嵌套",
    "Nested holes": "内环（洞）相互嵌套",
    "Interior is disconnected": "内部不连通（被内环分割）",
    "Nested shells": "外环相互嵌套（多个面相互包含）",
    "Duplicate Rings": "存在重复的环",
    "Ring is not closed": "环未闭合（首尾点须相同）",
    "Invalid Coordinate": "坐标无效",
    "Repeated Point": "存在重复的点",
}


def _geometry_reason(reason: str) -> str:
    """'Self-intersection[110.015 20.015]' → '自相交（位置 [110.015 20.015]）'."""
    kind, bracket, rest = reason.partition("[")
    words = GEOMETRY_REASONS.get(kind.strip())
    if words is None:
        return reason
    return f"{words}（位置 [{rest}）" if bracket else words


def _geometries(p: Problems, file: str, items: list, allowed: tuple) -> list:
    """Parse the geometries of [(where, feature)] in bulk; None (and a problem) where unusable."""
    out: list = [None] * len(items)
    texts, pos = [], []
    for k, (where, feature) in enumerate(items):
        raw = feature.get("geometry")
        if not isinstance(raw, dict) or "type" not in raw:
            p.add(file, where, "缺少 geometry（几何图形）")
        elif raw["type"] not in allowed:
            p.add(file, where, f"不允许的几何类型 {raw['type']}（应为 {' 或 '.join(allowed)}）")
        else:
            try:
                texts.append(json.dumps(raw))
            except (TypeError, ValueError) as exc:
                p.add(file, where, f"{raw['type']} 坐标格式错误（{exc}）")
                continue
            pos.append(k)
    if not pos:
        return out
    try:
        parsed = shapely.from_geojson(texts, on_invalid="ignore")
    except Exception:  # noqa: BLE001 - fall back to one by one for the messages
        parsed = np.array([None] * len(texts), dtype=object)
    for j, k in enumerate(pos):
        if parsed[j] is None:
            where, feature = items[k]
            try:
                parsed[j] = shape(feature["geometry"])
            except Exception as exc:  # noqa: BLE001 - malformed coordinates of any sort
                p.add(file, where, f"{feature['geometry']['type']} 坐标格式错误（{exc}）")
    ok = np.array([g is not None for g in parsed], dtype=bool)
    geoms = parsed[ok]
    idx_ok = np.array(pos)[ok]
    empty = shapely.is_empty(geoms)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    out_of_range = (np.abs(coords[:, 0]) > 180) | (np.abs(coords[:, 1]) > 90) | ~np.isfinite(coords).all(axis=1)
    bad_range = np.zeros(len(geoms), dtype=bool)
    bad_range[owner[out_of_range]] = True
    valid = shapely.is_valid(geoms)
    for g, k, e, r, v in zip(geoms, idx_ok.tolist(), empty.tolist(), bad_range.tolist(), valid.tolist()):
        where = items[k][0]
        if e:
            p.add(file, where, "几何图形为空")
        elif r:
            p.add(file, where, "坐标超出范围：经度须在 [-180, 180]、纬度须在 [-90, 90] 之内（应为 WGS84 经纬度，经度在前）")
        elif not v:
            p.add(file, where, f"几何图形无效：{_geometry_reason(shapely.is_valid_reason(g))}")
        else:
            out[k] = g
    return out


def _load_jurisdictions(root: str, city_id: str) -> dict:
    file = "jurisdictions.geojson"
    feats = _features(_load_json(root, file), file)
    p = Problems()
    out: dict = {}
    where_of: dict[str, str] = {}
    pending: list = []
    for i, f in enumerate(feats):
        props = f.get("properties") if isinstance(f, dict) else None
        if not isinstance(props, dict):
            p.add(file, _where("feature", i), "缺少 properties（属性）")
            continue
        jid = _as_id(props.get("id"))
        where = _where("feature", i, jid)
        if not jid:
            p.add(file, where, "缺少 'id'，或 'id' 不是字符串")
            continue
        if jid == city_id:
            p.add(file, where, f"id {jid} 与城市自身的 id（见 city.yaml）相同，不能用作区划 id")
            continue
        if jid in out:
            p.add(file, where, f"id {jid} 重复（首次出现在 {where_of[jid]}）")
            continue
        name = props.get("name")
        if not isinstance(name, str) or not name.strip():
            p.add(file, where, "缺少 'name'（名称）")
            continue
        level = props.get("level")
        if level not in LEVELS:
            p.add(file, where, f"层级 level {level!r} 无效（应为 {'、'.join(LEVELS)} 之一）")
            continue
        parent = props.get("parent")
        parent = _as_id(parent) if parent is not None else None
        pending.append((where, f, (jid, name.strip(), level, parent)))
        where_of[jid] = where
        out[jid] = None
    geoms = _geometries(p, file, [(w, f) for w, f, _ in pending], ("Polygon", "MultiPolygon"))
    out = {}
    for (where, _f, (jid, name, level, parent)), geom in zip(pending, geoms):
        if geom is not None:
            out[jid] = Jurisdiction(jid, name, level, parent, geom)
    # parents (after all ids are known)
    for jid, j in list(out.items()):
        where = where_of[jid]
        if j.level == "district":
            if j.parent not in (None, city_id):
                p.add(file, where, f"区（district）的上级 parent 须为空（或为城市 id {city_id}），实际为 {j.parent!r}")
            elif j.parent == city_id:
                out[jid] = Jurisdiction(jid, j.name, j.level, None, j.geometry)
            continue
        if j.parent is None:
            p.add(file, where, f"{j.level} 级区划须有上级 parent")
            continue
        parent = out.get(j.parent)
        if parent is None:
            p.add(file, where, f"上级区划 {j.parent!r} 不存在")
            continue
        if LEVEL_RANK[parent.level] >= LEVEL_RANK[j.level]:
            p.add(
                file,
                where,
                f"层级顺序错误：{j.level} 的上级须为更高层级，"
                f"但上级 {parent.id} 是 {parent.level}",
            )
    if not p.items and not any(j.level == "district" for j in out.values()):
        p.add(file, None, "没有区（district）级要素：城市没有辖区范围")
    p.raise_if_any()
    return out


def _load_zones(root: str) -> list:
    file = "zones.geojson"
    if not os.path.exists(os.path.join(root, file)):
        return []
    return _zones_from(_features(_load_json(root, file), file))


def _zones_from(feats: list) -> list:
    file = "zones.geojson"
    p = Problems()
    out = []
    pending: list = []
    seen: dict[str, str] = {}
    allowed = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
    for i, f in enumerate(feats):
        props = f.get("properties") if isinstance(f, dict) else None
        if not isinstance(props, dict):
            p.add(file, _where("feature", i), "缺少 properties（属性）")
            continue
        zid = _as_id(props.get("id"))
        where = _where("feature", i, zid)
        if not zid:
            p.add(file, where, "缺少 'id'，或 'id' 不是字符串")
            continue
        if zid in seen:
            p.add(file, where, f"id {zid} 重复（首次出现在 {seen[zid]}）")
            continue
        seen[zid] = where
        name, kind = props.get("name"), props.get("kind")
        if not isinstance(name, str) or not name.strip():
            p.add(file, where, "缺少 'name'（名称）")
            continue
        if not isinstance(kind, str) or not kind.strip():
            p.add(file, where, "缺少 'kind'（区域类型，可自由填写，如 park、river、expressway）")
            continue
        pending.append((where, f, (zid, name.strip(), kind.strip())))
    geoms = _geometries(p, file, [(w, f) for w, f, _ in pending], allowed)
    for (_w, _f, (zid, name, kind)), geom in zip(pending, geoms):
        if geom is not None:
            out.append(Zone(zid, name, kind, geom))
    p.raise_if_any()
    return out


# Optional base-map layers: file → (geometry types allowed, whether a name is required).
BASE_LAYERS = {
    "roads": ("roads.geojson", ("LineString", "MultiLineString"), False),
    "pois": ("pois.geojson", ("Point",), True),
}


def _load_base_layer(root: str, layer: str) -> dict | None:
    """A FeatureCollection with properties {id, name, kind} only, or None if the file is absent."""
    file, allowed, name_required = BASE_LAYERS[layer]
    if not os.path.exists(os.path.join(root, file)):
        return None
    feats = _features(_load_json(root, file), file)
    p = Problems()
    pending: list = []
    seen: dict[str, str] = {}
    for i, f in enumerate(feats):
        props = f.get("properties") if isinstance(f, dict) else None
        if not isinstance(props, dict):
            p.add(file, _where("feature", i), "缺少 properties（属性）")
            continue
        fid = _as_id(props.get("id")) if props.get("id") is not None else None
        where = _where("feature", i, fid)
        if props.get("id") is not None and not fid:
            p.add(file, where, "'id' 须为字符串或数字")
            continue
        if fid and fid in seen:
            p.add(file, where, f"id {fid} 重复（首次出现在 {seen[fid]}）")
            continue
        if fid:
            seen[fid] = where
        name, kind = props.get("name"), props.get("kind")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            p.add(file, where, "'name'（名称）须为非空字符串")
            continue
        if name_required and name is None:
            p.add(file, where, "缺少 'name'（名称）")
            continue
        if kind is not None and (not isinstance(kind, str) or not kind.strip()):
            p.add(file, where, "'kind'（类型）须为非空字符串（如 primary、school、hospital）")
            continue
        clean = {"id": fid or f"{layer}-{i}", "name": name.strip() if name else None,
                 "kind": kind.strip() if kind else None}
        pending.append((where, f, clean))
    geoms = _geometries(p, file, [(w, f) for w, f, _ in pending], allowed)
    p.raise_if_any()
    out = [{"type": "Feature", "id": props["id"], "properties": props, "geometry": mapping(g)}
           for (_w, _f, props), g in zip(pending, geoms) if g is not None]
    return {"type": "FeatureCollection", "features": out}


def _load_departments(root: str, city_id: str, jurisdictions: dict) -> dict:
    file = "departments.yaml"
    return _departments_from(_list_items(_load_yaml(root, file), file, "departments"), city_id, jurisdictions)


def _departments_from(items: list, city_id: str, jurisdictions: dict) -> dict:
    file = "departments.yaml"
    p = Problems()
    out: dict[str, Department] = {}
    for i, d in enumerate(items):
        if not isinstance(d, dict):
            p.add(file, _where("department", i), "应为映射 {id, name, type, jurisdiction}")
            continue
        did = _as_id(d.get("id"))
        where = _where("department", i, did)
        if not did:
            p.add(file, where, "缺少 'id'")
            continue
        if did in out:
            p.add(file, where, f"id {did} 重复")
            continue
        name, dtype = d.get("name"), d.get("type")
        if not isinstance(name, str) or not name.strip():
            p.add(file, where, "缺少 'name'（名称）")
            continue
        if not isinstance(dtype, str) or not dtype.strip():
            p.add(file, where, "缺少 'type'（部门类型，如 street_office、water、parks）")
            continue
        jur = _as_id(d.get("jurisdiction"))
        if not jur:
            p.add(file, where, "缺少 'jurisdiction'（管辖区划）")
            continue
        if jur != city_id and jur not in jurisdictions:
            p.add(file, where, f"管辖区划 {jur!r} 不存在（既不在 jurisdictions.geojson 中，也不是城市 id {city_id}）")
            continue
        out[did] = Department(did, name.strip(), dtype.strip(), jur)
    p.raise_if_any()
    return out


def _limits(p: Problems, file: str, where: str, raw: Any, key: str, required: bool) -> dict | None:
    if raw is None:
        if required:
            p.add(file, where, f"缺少 '{key}'（时限：{{sign, handle, check}} 三项时长）")
        return None
    if not isinstance(raw, dict):
        p.add(file, where, f"'{key}'（时限）须为映射 {{sign, handle, check}}")
        return None
    ok = True
    for stage in LIMIT_STAGES:
        if required and stage not in raw:
            p.add(file, where, f"缺少 {key}.{stage}")
            ok = False
    for stage, value in raw.items():
        problem = _check_duration(value)
        if problem:
            p.add(file, where, f"{key}.{stage}：{problem}")
            ok = False
    return dict(raw) if ok else None


def _load_categories(root: str) -> dict:
    file = "categories.yaml"
    return _categories_from(_list_items(_load_yaml(root, file), file, "categories"))


def _categories_from(items: list) -> dict:
    file = "categories.yaml"
    p = Problems()
    out: dict[str, Category] = {}
    ticket_types_seen: dict[str, str] = {}
    for i, c in enumerate(items):
        if not isinstance(c, dict):
            p.add(file, _where("category", i), "应为映射 {code, name, kind, priority, limits}")
            continue
        code = c.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            p.add(file, _where("category", i, code), "code（编码）须为字符串（在 YAML 中加引号，如 '0101'）")
            continue
        code = _as_id(code)
        where = _where("category", i, code)
        if not code:
            p.add(file, where, "缺少 'code'（编码）")
            continue
        if code in out:
            p.add(file, where, f"编码 code {code} 重复")
            continue
        name = c.get("name")
        if not isinstance(name, str) or not name.strip():
            p.add(file, where, "缺少 'name'（名称）")
            continue
        kind = c.get("kind")
        if kind not in CATEGORY_KINDS:
            p.add(file, where, f"类型 kind {kind!r} 无效（应为 {'、'.join(CATEGORY_KINDS)} 之一）")
            continue
        priority = c.get("priority", "normal")
        if priority not in PRIORITIES:
            p.add(file, where, f"优先级 priority {priority!r} 无效（应为 normal 或 urgent）")
            continue
        group = c.get("group")
        if group is not None and not isinstance(group, str):
            p.add(file, where, f"group（分组）须为字符串，实际为 {group!r}")
            continue
        auto = c.get("auto_dispatch", False)
        if not isinstance(auto, bool):
            p.add(file, where, f"auto_dispatch（自动派遣）须为 true 或 false，实际为 {auto!r}")
            continue
        ticket_type = c.get("ticket_type")
        if ticket_type is not None and (kind != "hotline" or ticket_type not in TICKET_TYPES):
            p.add(file, where, f"ticket_type {ticket_type!r} 只能用于热线（hotline）类别，"
                               f"且须为 {'、'.join(TICKET_TYPES)} 之一")
            continue
        if ticket_type is not None and ticket_type in ticket_types_seen:
            p.add(file, where, f"ticket_type {ticket_type!r} 已属于类别 {ticket_types_seen[ticket_type]}")
            continue
        before = len(p.items)
        limits = _limits(p, file, where, c.get("limits"), "limits", True)
        urgent = _limits(p, file, where, c.get("urgent_limits"), "urgent_limits", False)
        if len(p.items) != before:
            continue
        words = {}
        for key in ("keywords", "examples"):
            raw = c.get(key)
            words[key] = _str_list(raw) if raw is not None else []
            if words[key] is None or isinstance(raw, str):
                p.add(file, where, f"{key} 须为非空字符串的列表，实际为 {raw!r}")
        if len(p.items) != before:
            continue
        if ticket_type is not None:
            ticket_types_seen[ticket_type] = code
        out[code] = Category(code, name.strip(), kind, group, priority, limits, urgent, auto, ticket_type,
                             tuple(words["keywords"]), tuple(words["examples"]))
    if not p.items and not out:
        p.add(file, None, "没有任何类别（categories）")
    p.raise_if_any()
    return out


def _str_list(value: Any) -> list | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    return None


def _parse_assign(p, file, where, raw: dict, departments: dict, dept_types: set) -> tuple | None:
    dep, dtype = raw.get("department"), raw.get("department_type")
    if (dep is None) == (dtype is None):
        p.add(file, where, "assign（指派）须给出 'department'（部门 id）或 'department_type'（部门类型）二者之一，且只能给一个")
        return None
    if dep is not None:
        did = _as_id(dep)
        if did not in departments:
            p.add(file, where, f"部门 {dep!r} 不存在")
            return None
        return did, None
    if not isinstance(dtype, str) or dtype not in dept_types:
        p.add(
            file,
            where,
            f"department_type {dtype!r}：没有任何部门属于此类型"
            f"（已有类型：{'、'.join(sorted(dept_types))}）",
        )
        return None
    return None, dtype


def _parse_set_priority(p, file, where, value) -> str | None | bool:
    if value is None:
        return None
    if value not in PRIORITIES:
        p.add(file, where, f"set_priority {value!r} 无效（应为 normal 或 urgent）")
        return False
    return value


def _load_rules(root: str, categories: dict, departments: dict, zones: list) -> RuleSet:
    return _rules_from(_load_yaml(root, "rules.yaml"), categories, departments, zones)


def _rules_from(data: Any, categories: dict, departments: dict, zones: list) -> RuleSet:
    file = "rules.yaml"
    if not isinstance(data, dict):
        raise CityPackageError(f"{file}: 应为包含 'fallback' 和 'rules' 的映射")
    p = Problems()
    dept_types = {d.type for d in departments.values()}
    zone_kinds = {z.kind for z in zones}
    polygon_kinds = {z.kind for z in zones if z.geometry.geom_type in ("Polygon", "MultiPolygon")}
    for key in data:
        if key not in ("fallback", "rules"):
            p.add(file, None, f"未知的顶层键 {key!r}（只允许 fallback、rules）")
    # fallback
    fb_raw = data.get("fallback")
    fallback = None
    if not isinstance(fb_raw, dict):
        p.add(file, "fallback", "缺少 fallback（属地兜底规则），如 fallback: {department_type: street_office}")
    else:
        bad = [k for k in fb_raw if k not in FALLBACK_KEYS]
        if bad:
            p.add(file, "fallback", f"未知的键 {'、'.join(map(repr, bad))}（允许：{'、'.join(FALLBACK_KEYS)}）")
        assign = _parse_assign(p, file, "fallback", fb_raw, departments, dept_types)
        sp = _parse_set_priority(p, file, "fallback", fb_raw.get("set_priority"))
        if assign and sp is not False:
            fallback = Rule(
                id="fallback",
                priority=math.inf,
                index=-1,
                department=assign[0],
                department_type=assign[1],
                set_priority=sp,
                description=fb_raw.get("description"),
            )
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        p.add(file, None, "'rules'（规则）须为列表")
        raw_rules = []
    rules = []
    seen: set = set()
    for i, r in enumerate(raw_rules):
        if not isinstance(r, dict):
            p.add(file, _where("rule", i), "应为映射 {id, priority, when, assign}")
            continue
        rid = _as_id(r.get("id"))
        where = _where("rule", i, rid)
        before = len(p.items)
        if not rid:
            p.add(file, where, "缺少 'id'")
            continue
        if rid == "fallback":
            p.add(file, where, "id 'fallback' 是属地兜底规则的保留名，请换一个 id")
        if rid in seen:
            p.add(file, where, f"规则 id {rid} 重复")
        seen.add(rid)
        bad = [k for k in r if k not in RULE_KEYS]
        if bad:
            p.add(file, where, f"未知的键 {'、'.join(map(repr, bad))}（允许：{'、'.join(RULE_KEYS)}）")
        prio = r.get("priority", 100)
        if isinstance(prio, bool) or not isinstance(prio, (int, float)) or not math.isfinite(prio):
            p.add(file, where, f"priority（优先级）须为数字，实际为 {prio!r}")
            prio = 0
        when = r.get("when") or {}
        if not isinstance(when, dict):
            p.add(file, where, "'when'（条件）须为条件的映射")
            when = {}
        bad = [k for k in when if k not in CONDITION_KEYS]
        if bad:
            p.add(
                file,
                where,
                f"未知的条件 {'、'.join(map(repr, bad))}（允许：{'、'.join(CONDITION_KEYS)}）",
            )
        cats = None
        if "categories" in when:
            raw = when["categories"]
            if isinstance(raw, list) and any(isinstance(c, int) and not isinstance(c, bool) for c in raw):
                p.add(file, where, "类别编码须为字符串（在 YAML 中加引号，如 '0105'）")
            else:
                lst = _str_list(raw)
                if lst is None:
                    p.add(file, where, f"categories 须为非空的类别编码列表或 ['*']，实际为 {raw!r}")
                elif "*" not in lst:
                    unknown = [c for c in lst if c not in categories]
                    if unknown:
                        p.add(file, where, f"类别 {'、'.join(unknown)} 不存在")
                    cats = frozenset(lst)
        sources = None
        if "sources" in when:
            lst = _str_list(when["sources"])
            if lst is None or any(s not in SOURCES for s in lst):
                p.add(file, where, f"sources（来源）须为由 {'、'.join(SOURCES)} 组成的列表，实际为 {when['sources']!r}")
            else:
                sources = frozenset(lst)
        near = None
        if "near_zone" in when:
            raw = when["near_zone"]
            if not isinstance(raw, dict) or set(raw) - {"kind", "within_m"}:
                p.add(file, where, f"near_zone 须为 {{kind, within_m}}，实际为 {raw!r}")
            else:
                kind, dist = raw.get("kind"), raw.get("within_m")
                if not isinstance(kind, str) or kind not in zone_kinds:
                    p.add(file, where, f"near_zone 的 kind {kind!r}：zones.geojson 中没有此类型的区域")
                elif isinstance(dist, bool) or not isinstance(dist, (int, float)) or not (0 <= dist < 1e6):
                    p.add(file, where, f"near_zone 的 within_m 须为不小于 0 的距离（米），实际为 {dist!r}")
                else:
                    near = NearZone(kind, float(dist))
        in_zone = None
        if "in_zone" in when:
            raw = when["in_zone"]
            if not isinstance(raw, dict) or set(raw) != {"kind"}:
                p.add(file, where, f"in_zone 须为 {{kind}}，实际为 {raw!r}")
            elif raw["kind"] not in polygon_kinds:
                p.add(file, where, f"in_zone 的 kind {raw['kind']!r}：zones.geojson 中没有此类型的面状区域")
            else:
                in_zone = raw["kind"]
        keywords = None
        if "keywords" in when:
            lst = _str_list(when["keywords"])
            if lst is None:
                p.add(file, where, f"keywords（关键词）须为非空的字符串列表，实际为 {when['keywords']!r}")
            else:
                keywords = tuple(lst)
        hours = None
        if "hours" in when:
            try:
                hours = parse_hours_window(when["hours"])
            except ValueError as exc:
                p.add(file, where, str(exc))
        assign_raw = r.get("assign")
        assign = None
        if not isinstance(assign_raw, dict):
            p.add(file, where, "缺少 'assign'（指派：{department: 部门 id} 或 {department_type: 部门类型}）")
        else:
            bad = [k for k in assign_raw if k not in ("department", "department_type")]
            if bad:
                p.add(file, where, f"assign 中有未知的键 {'、'.join(map(repr, bad))}（只允许 department、department_type）")
            assign = _parse_assign(p, file, where, assign_raw, departments, dept_types)
        sp = _parse_set_priority(p, file, where, r.get("set_priority"))
        if len(p.items) != before or assign is None:
            continue
        rules.append(
            Rule(
                id=rid,
                priority=prio,
                index=i,
                categories=cats,
                sources=sources,
                near_zone=near,
                in_zone=in_zone,
                keywords=keywords,
                hours=hours,
                department=assign[0],
                department_type=assign[1],
                set_priority=sp or None,
                description=r.get("name") or r.get("description"),
            )
        )
    p.raise_if_any()
    rules.sort(key=lambda rule: (rule.priority, rule.index))
    return RuleSet(rules, fallback)


def _load_users(root: str, city_id: str, jurisdictions: dict, departments: dict) -> list:
    file = "users.yaml"
    items = _list_items(_load_yaml(root, file), file, "users")
    p = Problems()
    out = []
    seen: set = set()
    for i, u in enumerate(items):
        if not isinstance(u, dict):
            p.add(file, _where("user", i), "应为映射 {username, password, role, scope}")
            continue
        name = u.get("username")
        where = _where("user", i, name)
        if not isinstance(name, str) or not name.strip():
            p.add(file, where, "缺少 'username'（用户名）")
            continue
        if name in seen:
            p.add(file, where, f"用户名 {name!r} 重复")
            continue
        seen.add(name)
        if not isinstance(u.get("password"), str) or not u["password"]:
            p.add(file, where, "缺少 'password'（密码）")
            continue
        role = u.get("role")
        if role not in ROLES:
            p.add(file, where, f"角色 role {role!r} 无效（应为 {'、'.join(ROLES)} 之一）")
            continue
        item = dict(u)
        dep = u.get("department")
        if dep is not None:
            dep = _as_id(dep)
            if dep not in departments:
                p.add(file, where, f"部门 {u.get('department')!r} 不存在")
                continue
            item["department"] = dep
        elif role == "department":
            p.add(file, where, "部门用户（role: department）须填写 'department'（所属部门）")
            continue
        scope = u.get("scope")
        if scope is None and dep is not None:
            scope = departments[dep].jurisdiction
        scope = _as_id(scope)
        if scope is None:
            p.add(file, where, "缺少 'scope'（管辖范围：区划 id 或城市 id）")
            continue
        if scope != city_id and scope not in jurisdictions:
            p.add(file, where, f"管辖范围 scope {scope!r} 不存在（既不是区划 id，也不是城市 id {city_id}）")
            continue
        item["scope"] = scope
        out.append(item)
    p.raise_if_any()
    return out


ARTICLE_KEYS = ("id", "title", "questions", "answer", "category", "department", "valid_from", "valid_to", "tags")


def parse_articles(items: Any, categories: dict, departments: dict, file: str = "knowledge.yaml") -> list:
    """Knowledge base articles (SPEC §2 knowledge.yaml), checked; every problem names the
    article. Also used for the articles admins send through the API."""
    items = _list_items(items, file, "articles")
    p = Problems()
    out: list[Article] = []
    seen: set[str] = set()
    for i, a in enumerate(items):
        if not isinstance(a, dict):
            p.add(file, _where("article", i), "应为映射 {id, title, questions, answer, ...}")
            continue
        aid = _as_id(a.get("id"))
        where = _where("article", i, aid)
        before = len(p.items)
        unknown = sorted(set(a) - set(ARTICLE_KEYS))
        if unknown:
            p.add(file, where, f"未知的字段 {'、'.join(map(str, unknown))}（允许：{'、'.join(ARTICLE_KEYS)}）")
        if not aid:
            p.add(file, where, "缺少 'id'")
        elif aid in seen:
            p.add(file, where, f"id {aid} 重复")
        for key in ("title", "answer"):
            if not isinstance(a.get(key), str) or not a[key].strip():
                p.add(file, where, f"缺少 '{key}'（须为非空字符串）")
        questions = _str_list(a.get("questions"))
        if questions is None or isinstance(a.get("questions"), str):
            p.add(file, where, "questions（问法）须为非空列表，列出来电人的各种问法")
        # No tags may be written as an empty list too (what a form with an empty tags field sends).
        tags = _str_list(a["tags"]) if a.get("tags") not in (None, []) else []
        if tags is None:
            p.add(file, where, f"tags（标签）须为字符串列表，实际为 {a.get('tags')!r}")
        category = _as_id(a.get("category"))
        if category is not None and category not in categories:
            p.add(file, where, f"类别 {category} 不存在")
        department = _as_id(a.get("department"))
        if department is not None and department not in departments:
            p.add(file, where, f"部门 {department} 不存在")
        days = {}
        for key in ("valid_from", "valid_to"):
            if a.get(key) is None:
                days[key] = None
                continue
            try:
                days[key] = _parse_day(a[key])
            except ValueError:
                p.add(file, where, f"{key} 须为日期（YYYY-MM-DD），实际为 {a[key]!r}")
        if days.get("valid_from") and days.get("valid_to") and days["valid_to"] < days["valid_from"]:
            p.add(file, where, "valid_to（失效日期）早于 valid_from（生效日期）")
        if len(p.items) != before:
            continue
        seen.add(aid)
        out.append(Article(aid, a["title"].strip(), tuple(questions), a["answer"].strip(), category, department,
                           days["valid_from"], days["valid_to"], tuple(tags)))
    p.raise_if_any()
    return out


def _load_knowledge(root: str, categories: dict, departments: dict) -> list:
    if not os.path.exists(os.path.join(root, "knowledge.yaml")):
        return []
    data = _load_yaml(root, "knowledge.yaml")
    return parse_articles([] if data is None else data, categories, departments)


# --------------------------------------------------------------------------- entry point


def load_city(path: str) -> City:
    """Load and validate the city package at `path` (a folder). Raises CityPackageError."""
    root = os.path.abspath(os.fspath(path))
    if not os.path.isdir(root):
        raise CityPackageError(f"{path}: 不是城市包文件夹")
    missing = [f for f in REQUIRED_FILES if not os.path.isfile(os.path.join(root, f))]
    if missing:
        raise CityPackageError(f"{', '.join(missing)}: 缺少必需的文件（位于 {root}）")
    meta = _load_city_yaml(root)
    jurisdictions = _load_jurisdictions(root, meta["id"])
    zones = _load_zones(root)
    departments = _load_departments(root, meta["id"], jurisdictions)
    categories = _load_categories(root)
    rules = _load_rules(root, categories, departments, zones)
    users = _load_users(root, meta["id"], jurisdictions, departments)
    knowledge = _load_knowledge(root, categories, departments)

    addr_path = os.path.join(root, "addresses.csv")
    addresses = (
        AddressBook.from_csv(addr_path, city_name=meta["name"])
        if os.path.exists(addr_path)
        else AddressBook([], city_name=meta["name"])
    )

    city = City(
        id=meta["id"],
        name=meta["name"],
        timezone=meta["timezone"],
        work_hours=meta["work_hours"],
        holidays=meta["holidays"],
        workdays=meta["workdays"],
        path=root,
        jurisdictions=jurisdictions,
        zones=zones,
        departments=departments,
        categories=categories,
        rules=rules,
        users=users,
        addresses=addresses,
        config=meta["raw"],
        knowledge=knowledge,
        base_layers={layer: fc for layer in BASE_LAYERS if (fc := _load_base_layer(root, layer)) is not None},
    )
    _add_warnings(city)
    return city


def _add_warnings(city: City) -> None:
    """Non-fatal oddities worth a log line (the server may print city.warnings)."""
    seen: dict = {}
    for d in sorted(city.departments.values(), key=lambda d: d.id):
        key = (d.type, d.jurisdiction)
        if key in seen:
            city.warnings.append(
                f"departments.yaml: departments {seen[key]} and {d.id} both have type {d.type} on "
                f"{d.jurisdiction}; routing picks {seen[key]} (lowest id)"
            )
        else:
            seen[key] = d.id
    used = {r.near_zone.kind for r in city.rules if r.near_zone} | {r.in_zone for r in city.rules if r.in_zone}
    for kind in sorted(city.zone_kinds() - used):
        city.warnings.append(f"zones.geojson: zones of kind {kind!r} are used by no rule")


# --------------------------------------------------------------------------- in-memory versions
#
# The admin API keeps versions of part of the package in the database (dispatch/admin): each
# *kind* below is one file's content as plain JSON-ready data ("items"). A proposed version is
# checked by the same functions, with the same file/item/problem errors, as the folder.
# Jurisdictions and bootstrap users stay the folder's.

KIND_FILES = {
    "calendar": "city.yaml",
    "zones": "zones.geojson",
    "departments": "departments.yaml",
    "categories": "categories.yaml",
    "rules": "rules.yaml",
    "addresses": "addresses.csv",
}
CALENDAR_KEYS = ("work_hours", "holidays", "workdays")  # the timezone stays the package's


def _plain(value: Any) -> Any:
    """YAML's dates as ISO strings, tuples as lists: what JSON and BSON can hold."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def package_items(path: str) -> dict:
    """The items of every kind as the package folder at `path` has them (its version 1)."""
    root = os.path.abspath(os.fspath(path))
    raw = _load_yaml(root, "city.yaml")
    raw = raw if isinstance(raw, dict) else {}
    zones_file = os.path.join(root, "zones.geojson")
    addr_file = os.path.join(root, "addresses.csv")
    addresses = []
    if os.path.exists(addr_file):
        book = AddressBook.from_csv(addr_file)
        addresses = [{"address": a, "lng": x, "lat": y} for a, x, y in book.entries]
    return _plain({
        "calendar": {key: raw[key] for key in CALENDAR_KEYS if key in raw},
        "zones": _features(_load_json(root, "zones.geojson"), "zones.geojson") if os.path.exists(zones_file) else [],
        "departments": _list_items(_load_yaml(root, "departments.yaml"), "departments.yaml", "departments"),
        "categories": _list_items(_load_yaml(root, "categories.yaml"), "categories.yaml", "categories"),
        "rules": _load_yaml(root, "rules.yaml"),
        "addresses": addresses,
    })


def address_lines(items: Any) -> list:
    """addresses.csv's lines for door-plate items [{address, lng, lat}] (line n+2 is item n)."""
    import csv
    import io

    if not isinstance(items, list):
        raise CityPackageError("addresses.csv: 应为 {address, lng, lat} 的列表")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["address", "lng", "lat"])
    for item in items:
        item = item if isinstance(item, dict) else {}
        writer.writerow([item.get("address") or "", item.get("lng", ""), item.get("lat", "")])
    return out.getvalue().splitlines(keepends=True)


def city_from_items(base: City, items: dict, reuse: City | None = None, unchanged=()) -> City:
    """A new City: `base`'s jurisdictions and users with every kind of KIND_FILES built from
    `items` (kind → items). Raises CityPackageError listing every problem of every kind; a kind
    whose dependency failed is not checked against it (that would only repeat the problem).
    The kinds named in `unchanged` are taken as `reuse` holds them (built from the same items
    before; a city's door plates take a second to index)."""
    problems: list[str] = []
    kept = {
        "calendar": lambda: {"timezone": reuse.timezone, "work_hours": reuse.work_hours, "holidays": reuse.holidays,
                             "workdays": reuse.workdays, "raw": reuse.config},
        "zones": lambda: reuse.zones, "departments": lambda: reuse.departments,
        "categories": lambda: reuse.categories, "rules": lambda: reuse.rules, "addresses": lambda: reuse.addresses,
    } if reuse is not None else {}

    def attempt(build, *args, kind=None):
        if kind in unchanged and kind in kept:
            return kept[kind]()
        try:
            return build(*args)
        except CityPackageError as exc:
            problems.extend(exc.errors)
            return None

    calendar = items.get("calendar")
    calendar = calendar if isinstance(calendar, dict) else {}
    unknown = [k for k in calendar if k not in CALENDAR_KEYS]
    if unknown:
        problems.append(f"city.yaml: 未知的日历配置键 {'、'.join(map(repr, unknown))}"
                        f"（允许：{'、'.join(CALENDAR_KEYS)}）")
    config = {k: v for k, v in base.config.items() if k not in CALENDAR_KEYS}
    config.update({k: calendar[k] for k in CALENDAR_KEYS if k in calendar})
    meta = attempt(_city_meta, config, kind="calendar")
    zones_raw = items.get("zones")
    zones = attempt(_zones_from, zones_raw if zones_raw is not None else [], kind="zones")
    if zones_raw is not None and not isinstance(zones_raw, list) and "zones" not in unchanged:
        problems.append("zones.geojson: 应为 GeoJSON feature 的列表")
        zones = None
    departments = attempt(lambda: _departments_from(
        _list_items(items.get("departments"), "departments.yaml", "departments"), base.id, base.jurisdictions),
        kind="departments")
    categories = attempt(lambda: _categories_from(
        _list_items(items.get("categories"), "categories.yaml", "categories")), kind="categories")
    # A kind that failed still lends the rules what its items name, so that every problem of
    # the rules is reported too (and none twice).
    rules = attempt(_rules_from, items.get("rules"),
                    categories if categories is not None else _named(items.get("categories"), "code"),
                    departments if departments is not None else _stand_in_departments(items.get("departments")),
                    zones if zones is not None else _stand_in_zones(zones_raw),
                    kind="rules" if {"zones", "departments", "categories"} <= set(unchanged) else None)
    addresses = attempt(lambda: AddressBook.from_lines(address_lines(items.get("addresses") or []), base.name),
                        kind="addresses")
    if problems:
        shown = problems[:25]
        message = problems[0] if len(problems) == 1 else (
            f"城市包有 {len(problems)} 处问题：\n  " + "\n  ".join(shown))
        raise CityPackageError(message, problems)
    city = City(
        id=base.id,
        name=base.name,
        timezone=meta["timezone"],
        work_hours=meta["work_hours"],
        holidays=meta["holidays"],
        workdays=meta["workdays"],
        path=base.path,
        jurisdictions=base.jurisdictions,
        zones=zones,
        departments=departments,
        categories=categories,
        rules=rules,
        users=base.users,
        addresses=addresses,
        config=meta["raw"],
    )
    _add_warnings(city)
    return city


def _mappings(items: Any, key: str | None = None) -> list:
    if isinstance(items, dict) and key in items:
        items = items[key]
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _named(items: Any, key: str) -> dict:
    return {_as_id(item.get(key)): item for item in _mappings(items, "categories") if _as_id(item.get(key))}


def _stand_in_departments(items: Any) -> dict:
    return {did: Department(did, str(d.get("name")), str(d.get("type")), str(d.get("jurisdiction")))
            for d in _mappings(items, "departments") if (did := _as_id(d.get("id"))) and isinstance(d.get("type"), str) and d["type"].strip()}


def _stand_in_zones(features: Any) -> list:
    class Kind:  # only what the rules ask of a zone: its kind and whether it is an area
        def __init__(self, geom_type):
            self.geom_type = geom_type

    out = []
    for f in _mappings(features):
        props, geom = f.get("properties"), f.get("geometry")
        if isinstance(props, dict) and isinstance(props.get("kind"), str) and isinstance(geom, dict):
            out.append(Zone(str(props.get("id")), str(props.get("name")), props["kind"].strip(), Kind(geom.get("type"))))
    return out

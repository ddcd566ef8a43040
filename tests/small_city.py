"""A tiny made-up city package (id 990100, 示例市) for tests: nothing here is Hangzhou.

Layout (lng 110.00–110.04, lat 20.00–20.02; 0.01° ≈ 1 km)::

    lat 20.02 +--------------+--------------+---------------------------+
              | A1b 990101001002 | A2a      | B1a 990102001001 | (B1, no |
              |              | 990101002001 | grid B1a-1 (SW)  | community)|
              |              |  [park P1]   |                  | grid B1-x |
    lat 20.01 +------+-------+              +------------------+----------+
              | g003 | g004  |              |  district B south: no street |
    ~~~~~ river R1 along lat 20.0075 across both districts; brook R2 at 20.0079 (110.000-110.005)
              | g001 | g002  | grid A2a-1   |                              |
    lat 20.00 +------+-------+--------------+------------------------------+
           110.00  110.005 110.01  110.015  110.02                     110.04
              \\_ street A1 _/\\_ street A2 _/ \\____ district B 990102 _____/
              \\________ district A 990101 ____/

Use ``write_small_city(tmp_path)`` for the whole package or ``small_city_data()`` to change a
file before writing (``write_small_city(tmp_path, data)``).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os

import yaml

CITY_ID = "990100"
CITY_NAME = "示例市"
A, B = "990101", "990102"
A1, A2, B1 = "990101001", "990101002", "990102001"
A1A, A1B, A2A, B1A = "990101001001", "990101001002", "990101002001", "990102001001"
G1, G2, G3, G4 = (f"990101001001{n:03d}" for n in (1, 2, 3, 4))
GA2 = "990101002001001"
GB1A = "990102001001001"
GB1X = "990102001000001"  # a grid whose parent is a street (no community)


def rect(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def _feature(props, geometry):
    return {"type": "Feature", "properties": props, "geometry": geometry}


def _jur(jid, name, level, parent, box):
    return _feature({"id": jid, "name": name, "level": level, "parent": parent}, rect(*box))


def small_city_data() -> dict:
    """Every file of the package as Python data (csv as a list of rows)."""
    jurisdictions = [
        _jur(A, "甲区", "district", None, (110.00, 20.00, 110.02, 20.02)),
        _jur(B, "乙区", "district", None, (110.02, 20.00, 110.04, 20.02)),
        _jur(A1, "一街道", "street", A, (110.00, 20.00, 110.01, 20.02)),
        _jur(A2, "二街道", "street", A, (110.01, 20.00, 110.02, 20.02)),
        _jur(B1, "北街道", "street", B, (110.02, 20.01, 110.04, 20.02)),
        _jur(A1A, "一社区", "community", A1, (110.00, 20.00, 110.01, 20.01)),
        _jur(A1B, "二社区", "community", A1, (110.00, 20.01, 110.01, 20.02)),
        _jur(A2A, "三社区", "community", A2, (110.01, 20.00, 110.02, 20.02)),
        _jur(B1A, "北社区", "community", B1, (110.02, 20.01, 110.03, 20.02)),
        _jur(G1, "一社区第1网格", "grid", A1A, (110.000, 20.000, 110.005, 20.005)),
        _jur(G2, "一社区第2网格", "grid", A1A, (110.005, 20.000, 110.010, 20.005)),
        _jur(G3, "一社区第3网格", "grid", A1A, (110.000, 20.005, 110.005, 20.010)),
        _jur(G4, "一社区第4网格", "grid", A1A, (110.005, 20.005, 110.010, 20.010)),
        _jur(GA2, "三社区第1网格", "grid", A2A, (110.010, 20.000, 110.015, 20.005)),
        _jur(GB1A, "北社区第1网格", "grid", B1A, (110.020, 20.010, 110.025, 20.015)),
        _jur(GB1X, "北街道直属网格", "grid", B1, (110.035, 20.015, 110.040, 20.020)),
    ]
    zones = [
        _feature({"id": "P1", "name": "中心公园", "kind": "park"}, rect(110.012, 20.012, 110.018, 20.018)),
        _feature(
            {"id": "R1", "name": "清水河", "kind": "river"},
            {"type": "LineString", "coordinates": [[110.000, 20.0075], [110.040, 20.0075]]},
        ),
        _feature(
            {"id": "R2", "name": "小溪", "kind": "river"},
            {"type": "LineString", "coordinates": [[110.000, 20.0079], [110.005, 20.0079]]},
        ),
        _feature({"id": "R3", "name": "清水湖", "kind": "river"}, rect(110.002, 20.012, 110.006, 20.016)),
        _feature({"id": "S1", "name": "中心站", "kind": "metro"},
                 {"type": "Point", "coordinates": [110.0125, 20.0025]}),
        _feature(
            {"id": "X1", "name": "环城快速路", "kind": "expressway"},
            {"type": "LineString", "coordinates": [[110.03, 20.00], [110.03, 20.02]]},
        ),
    ]
    departments = [
        {"id": "city-parks", "name": "示例市园林局", "type": "parks", "jurisdiction": CITY_ID},
        {"id": "city-gas", "name": "示例市燃气集团", "type": "gas", "jurisdiction": CITY_ID},
        {"id": "city-um", "name": "示例市城管局", "type": "urban_management", "jurisdiction": CITY_ID},
        {"id": "A-um", "name": "甲区城管局", "type": "urban_management", "jurisdiction": A},
        {"id": "A1-um", "name": "一街道城管中队", "type": "urban_management", "jurisdiction": A1},
        {"id": "A-water", "name": "甲区林水局", "type": "water", "jurisdiction": A},
        {"id": "A-cs", "name": "甲区社区服务中心", "type": "community_service", "jurisdiction": A},
        {"id": "A1a-cs", "name": "一社区居委会", "type": "community_service", "jurisdiction": A1A},
        {"id": "g4-cs", "name": "第4网格服务站", "type": "community_service", "jurisdiction": G4},
        {"id": "A1-so", "name": "一街道办事处", "type": "street_office", "jurisdiction": A1},
        {"id": "A2-so", "name": "二街道办事处", "type": "street_office", "jurisdiction": A2},
        {"id": "B1-so", "name": "北街道办事处", "type": "street_office", "jurisdiction": B1},
        {"id": "X-tr", "name": "示例市交通局", "type": "transport", "jurisdiction": CITY_ID},
    ]
    std = {"sign": "1wh", "handle": "1wd", "check": "4wh"}
    categories = [
        {"code": "0101", "name": "暴露垃圾", "kind": "event", "group": "市容环境", "priority": "normal",
         "limits": dict(std), "auto_dispatch": True},
        {"code": "0105", "name": "河道漂浮物", "kind": "event", "group": "河道水体", "priority": "normal",
         "limits": dict(std)},
        {"code": "0201", "name": "井盖缺失", "kind": "component", "group": "公用设施", "priority": "urgent",
         "limits": dict(std), "urgent_limits": {"sign": "15m", "handle": "2h", "check": "30m"}},
        {"code": "0301", "name": "绿化损坏", "kind": "event", "group": "园林绿化", "limits": dict(std)},
        {"code": "0401", "name": "快速路遗撒", "kind": "event", "group": "交通", "limits": dict(std)},
        {"code": "H01", "name": "噪音扰民", "kind": "hotline", "group": "投诉", "limits": dict(std),
         "ticket_type": "complaint"},
        {"code": "H02", "name": "社区求助", "kind": "hotline", "group": "求助", "limits": dict(std),
         "ticket_type": "help"},
    ]
    rules = {
        "fallback": {"department_type": "street_office"},
        "rules": [
            {"id": "river-water", "priority": 10,
             "when": {"categories": ["0105"], "near_zone": {"kind": "river", "within_m": 30}},
             "assign": {"department_type": "water"}},
            {"id": "gas-keyword", "priority": 5,
             "when": {"categories": ["*"], "keywords": ["燃气", "煤气"]},
             "assign": {"department": "city-gas"}, "set_priority": "urgent"},
            {"id": "park-green", "priority": 20,
             "when": {"categories": ["0301", "0101"], "in_zone": {"kind": "park"}},
             "assign": {"department": "city-parks"}},
            {"id": "noise-night", "priority": 30,
             "when": {"categories": ["H01"], "sources": ["hotline"], "hours": "22:00-06:00"},
             "assign": {"department_type": "urban_management"}, "set_priority": "urgent"},
            {"id": "manhole", "priority": 40,
             "when": {"categories": ["0201"], "sources": ["grid"]},
             "assign": {"department_type": "urban_management"}},
            {"id": "community-help", "priority": 50,
             "when": {"categories": ["H02"]},
             "assign": {"department_type": "community_service"}},
            {"id": "tie-first", "priority": 60,
             "when": {"categories": ["0301"]},
             "assign": {"department": "A-um"}},
            {"id": "tie-second", "priority": 60,
             "when": {"categories": ["0301"]},
             "assign": {"department": "city-parks"}},
            {"id": "expressway", "priority": 70,
             "when": {"categories": ["0401"], "near_zone": {"kind": "expressway", "within_m": 50},
                      "sources": ["grid", "hotline"]},
             "assign": {"department_type": "transport"}},
            {"id": "metro-station", "priority": 65,
             "when": {"categories": ["0401"], "near_zone": {"kind": "metro", "within_m": 100}},
             "assign": {"department": "X-tr"}},
        ],
    }
    users = [
        {"username": "admin", "password": "admin-pass", "role": "admin", "scope": CITY_ID, "name": "管理员"},
        {"username": "disp-a", "password": "x", "role": "dispatcher", "scope": A},
        {"username": "op1", "password": "x", "role": "operator", "scope": CITY_ID},
        {"username": "gw1", "password": "x", "role": "grid_worker", "scope": G1},
        {"username": "cmd-a1", "password": "x", "role": "commander", "scope": A1},
        {"username": "water-a", "password": "x", "role": "department", "scope": A, "department": "A-water"},
    ]
    city = {
        "id": CITY_ID,
        "name": CITY_NAME,
        "timezone": "Asia/Shanghai",
        "work_hours": ["08:30-12:00", "13:30-17:30"],
        "holidays": ["2026-10-01"],
        "workdays": ["2026-10-10"],
    }
    addresses = [
        ["address", "lng", "lat"],
        ["示例市甲区一街道幸福路1号", "110.0025", "20.0025"],
        ["示例市甲区二街道公园路12号", "110.0150", "20.0150"],
        ["示例市乙区北街道北环路8号", "110.0225", "20.0125"],
    ]
    return {
        "city.yaml": city,
        "jurisdictions.geojson": {"type": "FeatureCollection", "features": jurisdictions},
        "zones.geojson": {"type": "FeatureCollection", "features": zones},
        "departments.yaml": departments,
        "categories.yaml": categories,
        "rules.yaml": rules,
        "users.yaml": users,
        "addresses.csv": addresses,
    }


def write_small_city(directory, data: dict | None = None) -> str:
    """Write the package (default: small_city_data()) into `directory`; returns its path.

    A value of None in `data` leaves that file out; a str value is written verbatim."""
    data = small_city_data() if data is None else data
    path = os.fspath(directory)
    os.makedirs(path, exist_ok=True)
    for name, content in data.items():
        target = os.path.join(path, name)
        if content is None:
            if os.path.exists(target):
                os.remove(target)
            continue
        if isinstance(content, str):
            text = content
        elif name.endswith(".geojson"):
            text = json.dumps(content, ensure_ascii=False, indent=1)
        elif name.endswith(".csv"):
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(content)
            text = buf.getvalue()
        else:
            text = yaml.safe_dump(content, allow_unicode=True, sort_keys=False)
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text)
    return path


def copy_data() -> dict:
    return copy.deepcopy(small_city_data())

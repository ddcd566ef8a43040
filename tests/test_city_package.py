"""City package loading and validation (SPEC §2), on the made-up city of tests/small_city.py."""

from __future__ import annotations

import datetime
import re

import pytest
from small_city import A, A1, A1A, A2, B, CITY_ID, G1, G4, small_city_data, write_small_city

from geo.geocode import AddressBook
from geo.errors import CityPackageError
from dispatch.admin.versions import problem_view
from geo.loader import KIND_FILES, city_from_items, load_city, package_items


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return load_city(write_small_city(tmp_path_factory.mktemp("small")))


def load_with(tmp_path, change):
    data = small_city_data()
    change(data)
    return load_city(write_small_city(tmp_path, data))


def expect_error(tmp_path, change, *fragments):
    with pytest.raises(CityPackageError) as info:
        load_with(tmp_path, change)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    return info.value


# --------------------------------------------------------------------------- loading


def test_loads_small_city(city):
    assert city.id == CITY_ID and city.name == "示例市"
    assert city.timezone == "Asia/Shanghai"
    assert city.work_hours == ["08:30-12:00", "13:30-17:30"]
    assert city.holidays == [datetime.date(2026, 10, 1)] and city.workdays == [datetime.date(2026, 10, 10)]
    assert len(city.jurisdictions) == 16
    j = city.jurisdictions[G1]
    assert (j.name, j.level, j.parent) == ("一社区第1网格", "grid", A1A)
    assert j.geometry.geom_type == "Polygon"
    assert {z.kind for z in city.zones} == {"park", "river", "expressway", "metro"}
    assert city.departments["A-water"].type == "water"
    assert city.departments["city-parks"].jurisdiction == CITY_ID
    assert city.config["name"] == "示例市"
    assert city.warnings == []


def test_categories_fields(city):
    c = city.categories["0201"]
    assert (c.name, c.kind, c.group, c.priority) == ("井盖缺失", "component", "公用设施", "urgent")
    assert c.limits == {"sign": "1wh", "handle": "1wd", "check": "4wh"}
    assert c.urgent_limits == {"sign": "15m", "handle": "2h", "check": "30m"}
    assert c.auto_dispatch is False
    assert city.categories["0101"].auto_dispatch is True
    assert city.categories["0301"].priority == "normal"  # default
    assert city.categories["0301"].urgent_limits is None


def test_rules_sorted_by_priority_then_file_order(city):
    ids = [r.id for r in city.rules.rules]
    assert ids == ["gas-keyword", "river-water", "park-green", "noise-night", "manhole", "community-help",
                   "tie-first", "tie-second", "metro-station", "expressway"]
    river = city.rules.get("river-water")
    assert river.categories == frozenset({"0105"})
    assert (river.near_zone.kind, river.near_zone.within_m) == ("river", 30.0)
    assert river.department_type == "water" and river.department is None
    assert city.rules.get("gas-keyword").categories is None  # "*"
    night = city.rules.get("noise-night").hours
    assert (night.start, night.end) == (22 * 60, 6 * 60)
    assert night.contains(23 * 60) and night.contains(5 * 60 + 59) and not night.contains(6 * 60)
    assert city.rules.fallback.department_type == "street_office"
    assert city.rules.fallback.id == "fallback"


def test_users_validated(city):
    names = [u["username"] for u in city.users]
    assert names == ["admin", "disp-a", "op1", "gw1", "cmd-a1", "water-a"]
    water = city.users[-1]
    assert water["role"] == "department" and water["department"] == "A-water" and water["scope"] == A


def test_jurisdiction_geojson_and_descendants(city):
    fc = city.jurisdiction_geojson("district")
    assert fc["type"] == "FeatureCollection"
    assert sorted(f["properties"]["id"] for f in fc["features"]) == [A, B]
    props = fc["features"][0]["properties"]
    assert set(props) == {"id", "name", "level", "parent"}
    assert city.jurisdiction_geojson("district") is fc  # cached
    assert len(city.jurisdiction_geojson()["features"]) == 16
    assert len(city.jurisdiction_geojson("grid")["features"]) == 7
    with pytest.raises(ValueError):
        city.jurisdiction_geojson("province")
    assert city.descendants(A1A) == {A1A, G1, G4, "990101001001002", "990101001001003"}
    assert A1A in city.descendants(A) and B not in city.descendants(A)
    assert city.descendants(CITY_ID) == set(city.jurisdictions) | {CITY_ID}
    assert city.ancestors(G4) == [G4, A1A, A1, A, CITY_ID]


def test_optional_files_absent(tmp_path):
    def change(data):
        data["zones.geojson"] = None
        data["addresses.csv"] = None
        data["rules.yaml"]["rules"] = [
            r for r in data["rules.yaml"]["rules"] if "near_zone" not in r["when"] and "in_zone" not in r["when"]
        ]

    city = load_with(tmp_path, change)
    assert city.zones == []
    assert len(city.addresses) == 0 and city.addresses.lookup("幸福路1号") is None


def test_district_parent_may_be_city_id(tmp_path):
    def change(data):
        data["jurisdictions.geojson"]["features"][0]["properties"]["parent"] = CITY_ID

    city = load_with(tmp_path, change)
    assert city.jurisdictions[A].parent is None


def test_integer_ids_are_strings(tmp_path):
    def change(data):
        data["users.yaml"][1]["scope"] = int(A)
        data["departments.yaml"][3]["jurisdiction"] = int(A)

    city = load_with(tmp_path, change)
    assert city.users[1]["scope"] == A and city.departments["A-um"].jurisdiction == A


# --------------------------------------------------------------------------- validation errors


def _feature(data, jid):
    for i, f in enumerate(data["jurisdictions.geojson"]["features"]):
        if f["properties"]["id"] == jid:
            return i, f
    raise KeyError(jid)


def _rule(data, rid):
    for r in data["rules.yaml"]["rules"]:
        if r["id"] == rid:
            return r
    raise KeyError(rid)


def test_missing_required_file(tmp_path):
    expect_error(tmp_path, lambda d: d.update({"departments.yaml": None}), "departments.yaml", "缺少必需的文件")


def test_not_a_folder(tmp_path):
    with pytest.raises(CityPackageError, match="不是城市包文件夹"):
        load_city(tmp_path / "nope")


def test_yaml_syntax_error(tmp_path):
    expect_error(tmp_path, lambda d: d.update({"rules.yaml": "rules: [\n  - id: x\n    when: {a: b\n"}),
                 "rules.yaml", "YAML 语法错误", "line")


def test_json_syntax_error(tmp_path):
    expect_error(tmp_path, lambda d: d.update({"jurisdictions.geojson": '{"type": "FeatureCollection",\n "features": [,]}'}),
                 "jurisdictions.geojson", "JSON 语法错误，位于第 2 行")


def test_not_a_feature_collection(tmp_path):
    expect_error(tmp_path, lambda d: d.update({"zones.geojson": {"type": "Feature"}}),
                 "zones.geojson", "FeatureCollection")


def test_jurisdiction_geometry_type(tmp_path):
    def change(data):
        i, f = _feature(data, A1)
        f["geometry"] = {"type": "LineString", "coordinates": [[110.0, 20.0], [110.01, 20.01]]}

    expect_error(tmp_path, change, "jurisdictions.geojson", "feature #2 (id 990101001)", "不允许的几何类型 LineString")


def test_invalid_geometry_explained(tmp_path):
    def change(data):
        _, f = _feature(data, G4)
        f["geometry"]["coordinates"] = [[[110.005, 20.005], [110.01, 20.01], [110.01, 20.005], [110.005, 20.01],
                                         [110.005, 20.005]]]  # bow-tie

    expect_error(tmp_path, change, "jurisdictions.geojson", f"(id {G4})", "几何图形无效：自相交（位置 [")


def test_malformed_coordinates(tmp_path):
    def change(data):
        _, f = _feature(data, G1)
        f["geometry"]["coordinates"] = [[[110.0, 20.0], "x"]]

    expect_error(tmp_path, change, "jurisdictions.geojson", f"(id {G1})", "Polygon 坐标格式错误")


def test_duplicate_jurisdiction_id(tmp_path):
    def change(data):
        _, f = _feature(data, "990101001001002")
        f["properties"]["id"] = G1

    expect_error(tmp_path, change, "jurisdictions.geojson", f"feature #10 (id {G1}): id {G1} 重复（首次出现在 feature #")


def test_unknown_parent(tmp_path):
    def change(data):
        _, f = _feature(data, G4)
        f["properties"]["parent"] = "990101001999"

    expect_error(tmp_path, change, "jurisdictions.geojson", f"(id {G4})", "上级区划 '990101001999' 不存在")


def test_level_order_wrong(tmp_path):
    def change(data):
        _, f = _feature(data, A1A)
        f["properties"]["parent"] = G4  # a community under a grid

    expect_error(tmp_path, change, "jurisdictions.geojson", f"(id {A1A})", "层级顺序错误")


def test_bad_level_and_missing_parent(tmp_path):
    def change(data):
        _feature(data, A1)[1]["properties"]["level"] = "town"
        _feature(data, A2)[1]["properties"]["parent"] = None

    err = expect_error(tmp_path, change, "层级 level 'town' 无效", "(id 990101002)", "级区划须有上级 parent")
    assert len(err.errors) >= 2  # every problem of the file is reported at once


def test_department_unknown_jurisdiction(tmp_path):
    expect_error(tmp_path, lambda d: d["departments.yaml"][5].update({"jurisdiction": "999999"}),
                 "departments.yaml", "department #5 (id A-water)", "管辖区划 '999999' 不存在")


def test_duplicate_department(tmp_path):
    expect_error(tmp_path, lambda d: d["departments.yaml"].append(dict(d["departments.yaml"][0])),
                 "departments.yaml", "(id city-parks): id city-parks 重复")


def test_duplicate_category_code(tmp_path):
    expect_error(tmp_path, lambda d: d["categories.yaml"][1].update({"code": "0101"}),
                 "categories.yaml", "category #1 (id 0101): 编码 code 0101 重复")


def test_category_code_must_be_string(tmp_path):
    expect_error(tmp_path, lambda d: d["categories.yaml"][0].update({"code": 101}),
                 "categories.yaml", "category #0", "code（编码）须为字符串")


def test_bad_category_kind(tmp_path):
    expect_error(tmp_path, lambda d: d["categories.yaml"][2].update({"kind": "incident"}),
                 "categories.yaml", "(id 0201)", "类型 kind 'incident' 无效")


def test_bad_category_priority(tmp_path):
    expect_error(tmp_path, lambda d: d["categories.yaml"][2].update({"priority": "high"}),
                 "categories.yaml", "(id 0201)", "优先级 priority 'high' 无效")


def test_bad_duration(tmp_path):
    expect_error(tmp_path, lambda d: d["categories.yaml"][3]["limits"].update({"handle": "3x"}),
                 "categories.yaml", "(id 0301)", "limits.handle：时长 '3x' 无效：应为数字加单位")


def test_bad_urgent_duration(tmp_path):
    expect_error(tmp_path, lambda d: d["categories.yaml"][2]["urgent_limits"].update({"sign": 15}),
                 "categories.yaml", "(id 0201)", "urgent_limits.sign：时长须为字符串，如 '4wh'，实际为 15")


def test_missing_limit_stage(tmp_path):
    expect_error(tmp_path, lambda d: d["categories.yaml"][0]["limits"].pop("check"),
                 "categories.yaml", "(id 0101)", "缺少 limits.check")


def test_rule_unknown_category(tmp_path):
    expect_error(tmp_path, lambda d: _rule(d, "river-water")["when"].update({"categories": ["0199"]}),
                 "rules.yaml", "rule #0 (id river-water)", "类别 0199 不存在")


def test_rule_unknown_department(tmp_path):
    expect_error(tmp_path, lambda d: _rule(d, "park-green").update({"assign": {"department": "nope"}}),
                 "rules.yaml", "(id park-green)", "部门 'nope' 不存在")


def test_rule_unknown_department_type(tmp_path):
    expect_error(tmp_path, lambda d: _rule(d, "manhole").update({"assign": {"department_type": "police"}}),
                 "rules.yaml", "(id manhole)", "department_type 'police'：没有任何部门属于此类型")


def test_rule_assign_both(tmp_path):
    expect_error(tmp_path,
                 lambda d: _rule(d, "manhole").update({"assign": {"department": "A-um", "department_type": "water"}}),
                 "rules.yaml", "(id manhole)", "二者之一，且只能给一个")


def test_rule_bad_hours(tmp_path):
    expect_error(tmp_path, lambda d: _rule(d, "noise-night")["when"].update({"hours": "25:00-06:00"}),
                 "rules.yaml", "(id noise-night)", "时段 '25:00-06:00' 无效：时间超出范围")
    expect_error(tmp_path, lambda d: _rule(d, "noise-night")["when"].update({"hours": "22h-6h"}),
                 "rules.yaml", "(id noise-night)", "时段 '22h-6h' 无效：应为 'HH:MM-HH:MM'")


def test_rule_unknown_condition(tmp_path):
    expect_error(tmp_path, lambda d: _rule(d, "manhole")["when"].update({"weekday": "mon"}),
                 "rules.yaml", "(id manhole)", "未知的条件 'weekday'")


def test_rule_unknown_key(tmp_path):
    expect_error(tmp_path, lambda d: _rule(d, "manhole").update({"then": {}}),
                 "rules.yaml", "(id manhole)", "未知的键 'then'")


def test_rule_bad_source(tmp_path):
    expect_error(tmp_path, lambda d: _rule(d, "manhole")["when"].update({"sources": ["phone"]}),
                 "rules.yaml", "(id manhole)", "sources（来源）须为")


def test_rule_zone_kind_unknown(tmp_path):
    expect_error(tmp_path, lambda d: _rule(d, "river-water")["when"].update({"near_zone": {"kind": "lake", "within_m": 30}}),
                 "rules.yaml", "(id river-water)", "near_zone 的 kind 'lake'：zones.geojson 中没有此类型的区域")
    expect_error(tmp_path, lambda d: _rule(d, "park-green")["when"].update({"in_zone": {"kind": "expressway"}}),
                 "rules.yaml", "(id park-green)", "zones.geojson 中没有此类型的面状区域")


def test_rule_bad_distance(tmp_path):
    expect_error(tmp_path,
                 lambda d: _rule(d, "river-water")["when"].update({"near_zone": {"kind": "river", "within_m": "30m"}}),
                 "rules.yaml", "(id river-water)", "within_m 须为不小于 0 的距离")


def test_rule_duplicate_id(tmp_path):
    expect_error(tmp_path, lambda d: d["rules.yaml"]["rules"].append(dict(_rule(d, "manhole"))),
                 "rules.yaml", "rule #10 (id manhole): 规则 id manhole 重复")


def test_fallback_missing(tmp_path):
    expect_error(tmp_path, lambda d: d["rules.yaml"].pop("fallback"), "rules.yaml: fallback: 缺少 fallback（属地兜底规则）")


def test_fallback_unknown_type(tmp_path):
    expect_error(tmp_path, lambda d: d["rules.yaml"].update({"fallback": {"department_type": "mayor"}}),
                 "rules.yaml: fallback: department_type 'mayor'：没有任何部门属于此类型")


def test_zone_missing_kind(tmp_path):
    expect_error(tmp_path, lambda d: d["zones.geojson"]["features"][1]["properties"].pop("kind"),
                 "zones.geojson", "feature #1 (id R1)", "缺少 'kind'（区域类型")


def test_zone_invalid_geometry(tmp_path):
    def change(data):
        data["zones.geojson"]["features"][0]["geometry"]["coordinates"] = [
            [[110.012, 20.012], [110.018, 20.018], [110.018, 20.012], [110.012, 20.018], [110.012, 20.012]]
        ]

    expect_error(tmp_path, change, "zones.geojson: feature #0 (id P1): 几何图形无效：自相交（位置 [")


def test_user_errors(tmp_path):
    expect_error(tmp_path, lambda d: d["users.yaml"][1].update({"role": "mayor"}),
                 "users.yaml", "user #1 (id disp-a)", "角色 role 'mayor' 无效")
    expect_error(tmp_path, lambda d: d["users.yaml"][2].update({"username": "admin"}),
                 "users.yaml", "user #2 (id admin)", "用户名 'admin' 重复")
    expect_error(tmp_path, lambda d: d["users.yaml"][3].update({"scope": "123"}),
                 "users.yaml", "user #3 (id gw1)", "管辖范围 scope '123' 不存在")
    expect_error(tmp_path, lambda d: d["users.yaml"][5].update({"department": "ghost"}),
                 "users.yaml", "user #5 (id water-a)", "部门 'ghost' 不存在")
    expect_error(tmp_path, lambda d: d["users.yaml"][5].pop("department"),
                 "users.yaml", "user #5 (id water-a)", "须填写 'department'")


def test_city_yaml_errors(tmp_path):
    expect_error(tmp_path, lambda d: d["city.yaml"].pop("id"), "city.yaml: 缺少 'id'")
    expect_error(tmp_path, lambda d: d["city.yaml"].update({"timezone": "Mars/Olympus"}),
                 "city.yaml: 时区 'Mars/Olympus' 不存在")
    expect_error(tmp_path, lambda d: d["city.yaml"].update({"work_hours": ["13:30-17:30", "08:30-12:00"]}),
                 "city.yaml: work_hours[1]: ", "与上一个时段重叠或早于上一个时段")
    expect_error(tmp_path, lambda d: d["city.yaml"].update({"holidays": ["2026-13-01"]}),
                 "city.yaml: holidays[0]: 不是日期（应为 YYYY-MM-DD）：'2026-13-01'")


def test_addresses_csv_errors(tmp_path):
    expect_error(tmp_path, lambda d: d["addresses.csv"].append(["某路1号", "east", "20.0"]),
                 "addresses.csv: line 5: 应为 address,lng,lat 三列，且 lng（经度）、lat（纬度）为数字")
    expect_error(tmp_path, lambda d: d.update({"addresses.csv": "addr,x,y\n"}),
                 "addresses.csv: line 1: 表头须列出 address,lng,lat 三列")


def test_every_problem_is_worded_in_chinese(city):
    """A city administrator reads these on /admin (SPEC §9): every problem of a configuration
    broken in many ways says in Chinese what is wrong, keeps the ids and keys to look for, and
    keeps the `file: item: problem` form the admin API splits."""
    items = package_items(city.path)
    items["calendar"] = {"work_hours": ["08:30-12:00", "25:00-26:00"], "holidays": ["十月一日"]}
    items["zones"][0]["geometry"]["coordinates"] = [
        [[110.012, 20.012], [110.018, 20.018], [110.018, 20.012], [110.012, 20.018], [110.012, 20.012]]]
    items["zones"][1]["properties"].pop("kind")
    items["departments"][5]["jurisdiction"] = "999999"
    items["departments"].append(dict(items["departments"][0]))
    items["categories"][3]["limits"]["handle"] = "3x"
    items["categories"][2]["kind"] = "incident"
    rules = {r["id"]: r for r in items["rules"]["rules"]}
    rules["river-water"]["when"]["categories"] = ["0199"]
    rules["manhole"]["then"] = {}
    rules["noise-night"]["when"]["hours"] = "22h-6h"
    items["rules"]["fallback"] = {"department_type": "mayor"}
    items["addresses"] += [{"address": "某路1号", "lng": "east", "lat": 20.0},
                           {"address": "某路2号", "lng": 500, "lat": 20.0}]
    with pytest.raises(CityPackageError) as info:
        city_from_items(city, items)
    views = [problem_view(text) for text in info.value.errors]
    assert {v["file"] for v in views} == set(KIND_FILES.values())
    assert {"work_hours[1]", "holidays[0]", "feature #0 (id P1)", "feature #1 (id R1)", "department #5 (id A-water)",
            "category #3 (id 0301)", "category #2 (id 0201)", "rule #0 (id river-water)", "rule #4 (id manhole)",
            "rule #3 (id noise-night)", "fallback", "line 5", "line 6 (某路2号)"} <= {v["item"] for v in views}
    english = re.compile(r"\b(missing|unknown|must|expected|duplicate|invalid|bad|not|got|is|the)\b", re.I)
    for v in views:
        assert re.search(r"[\u4e00-\u9fff]", v["problem"]) and not english.search(v["problem"]), v["text"]
    assert "城市包有" in str(info.value)


# --------------------------------------------------------------------------- geocoding


def test_address_lookup(city):
    book = city.addresses
    assert len(book) == 3
    exact = book.lookup("示例市甲区一街道幸福路1号")
    assert exact == (110.0025, 20.0025, "示例市甲区一街道幸福路1号")
    # normalized: province + city prefix, spaces, full-width digits, 號
    assert book.lookup("海南省 示例市甲区一街道幸福路１號")[2] == "示例市甲区一街道幸福路1号"
    assert book.lookup("示例甲区一街道幸福路1号")[2] == "示例市甲区一街道幸福路1号"
    # without the district (unambiguous short form)
    assert book.lookup("一街道幸福路1号")[2] == "示例市甲区一街道幸福路1号"
    # contained door plate, longest wins
    hit = book.lookup("来电反映：示例市乙区北街道北环路8号门口有垃圾")
    assert hit[:2] == (110.0225, 20.0125)
    assert book.lookup("幸福路") is None
    assert book.lookup("") is None


def test_address_suggest(city):
    book = city.addresses
    got = book.suggest("甲区")
    assert [g["address"] for g in got] == ["示例市甲区一街道幸福路1号", "示例市甲区二街道公园路12号"]
    assert set(got[0]) == {"address", "lng", "lat"}
    assert [g["address"] for g in book.suggest("北环路")] == ["示例市乙区北街道北环路8号"]  # substring
    assert len(book.suggest("示例市", limit=2)) == 2
    assert book.suggest("   ") == []


def test_address_book_ambiguous_short_form():
    book = AddressBook([("甲区和平路1号", 1.0, 2.0), ("乙区和平路1号", 3.0, 4.0)], city_name="示例市")
    assert book.lookup("和平路1号") is None  # two districts have it: no guess
    assert book.lookup("乙区和平路1号")[:2] == (3.0, 4.0)
    assert book.lookup("12-3号楼") is None


def test_ticket_type_must_be_a_hotline_type_and_unique(tmp_path):
    import yaml

    from geo.errors import CityPackageError
    from geo.loader import load_city
    from small_city import write_small_city

    root = write_small_city(tmp_path)
    path = root / "categories.yaml" if hasattr(root, "__truediv__") else __import__("pathlib").Path(root) / "categories.yaml"
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    items[1]["ticket_type"] = "complaint"  # not a hotline category, or a second "complaint"
    path.write_text(yaml.safe_dump(items, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CityPackageError, match="ticket_type"):
        load_city(root)

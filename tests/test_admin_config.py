"""The city configuration's admin API (SPEC §9): versions, validation with the loader's errors,
409 on a stale version, publishing live, dry run, rollback, scoped admins, audit."""

from __future__ import annotations

import copy

import pytest

from small_city import A, A1, A2, B, small_city_data

PARK = [110.015, 20.015]  # in the park P1, district A
PLAIN = [110.0025, 20.0025]  # grid g001 of street A1, far from the river and the park


async def admin_of(small):
    await small.login("admin", "admin-pass")
    return small


async def get_kind(client, kind):
    status, body = await client.get(f"/api/admin/config/{kind}")
    assert status == 200, body
    return body


async def put_kind(client, kind, version, items, note="测试"):
    return await client.request("PUT", f"/api/admin/config/{kind}", {"version": version, "items": items, "note": note})


async def report(small, category, where, description="有问题"):
    """A grid worker's report (gw1 patrols grid g001, where PLAIN lies) or, elsewhere, a ticket."""
    intake = small.as_user()
    place = {"type": "Point", "coordinates": where}
    if where == PLAIN:
        await intake.login("gw1", "x")
        status, case = await intake.post("/api/reports", {"category": category, "description": description,
                                                          "location": place})
    else:
        await intake.login("op1", "x")
        status, case = await intake.post("/api/tickets", {
            "channel": "12345", "type": "complaint", "content": description, "category": category,
            "caller": {"name": "市民", "phone": "13800000000"}, "location": place})
    assert status == 201, case
    return case


async def test_every_kind_starts_as_the_package_at_version_1(small):
    admin = await admin_of(small)
    data = small_city_data()
    rules = await get_kind(admin, "rules")
    assert rules == {"version": 1, "items": data["rules.yaml"], "editable": True}
    categories = await get_kind(admin, "categories")
    assert [c["code"] for c in categories["items"]] == [c["code"] for c in data["categories.yaml"]]
    departments = await get_kind(admin, "departments")
    assert departments["items"] == data["departments.yaml"]
    zones = await get_kind(admin, "zones")
    assert [z["properties"]["id"] for z in zones["items"]] == [z["properties"]["id"] for z in
                                                               data["zones.geojson"]["features"]]
    addresses = await get_kind(admin, "addresses")
    assert [a["address"] for a in addresses["items"]] == [row[0] for row in data["addresses.csv"][1:]]
    calendar = await get_kind(admin, "calendar")
    assert calendar["items"] == {k: data["city.yaml"][k] for k in ("work_hours", "holidays", "workdays")}
    status, history = await admin.get("/api/admin/config/history")
    assert status == 200 and [(v["version"], v["by"]) for v in history["items"]] == [(1, "system")]


async def test_a_published_rule_routes_new_reports_and_open_cases_keep_theirs(small):
    admin = await admin_of(small)
    before = await report(small, "0101", PARK)
    assert before["assignment"]["department"]["id"] == "city-parks"
    rules = await get_kind(admin, "rules")
    items = copy.deepcopy(rules["items"])
    park = next(r for r in items["rules"] if r["id"] == "park-green")
    park["assign"] = {"department": "A-um"}
    status, published = await put_kind(admin, "rules", 1, items, note="公园垃圾改由区城管处置")
    assert status == 201, published
    assert (published["version"], published["by"], published["kinds"]) == (2, "admin", ["rules"])
    assert published["diff"]["rules"]["changed"] == ["park-green"]
    assert small.ctx.config_version == 2
    after = await report(small, "0101", PARK)
    assert after["assignment"]["department"]["id"] == "A-um"
    status, kept = await admin.get(f"/api/cases/{before['id']}")
    assert kept["assignment"]["department"]["id"] == "city-parks"
    assert (await get_kind(admin, "rules")) == {"version": 2, "items": items, "editable": True}
    status, history = await admin.get("/api/admin/config/history")
    assert [(v["version"], v["note"]) for v in history["items"]] == [(2, "公园垃圾改由区城管处置"), (1, "城市包 " + _folder(small))]


def _folder(small) -> str:
    import os

    return os.path.basename(small.ctx.city.path)


async def test_a_new_time_limit_applies_to_stages_started_after_it(small):
    admin = await admin_of(small)
    running = await report(small, "0101", PLAIN)  # auto-dispatched: its sign clock runs (1wh)
    stored = await small.ctx.cases.get(running["id"])
    assert stored["clock"]["limit"] == "1wh"
    categories = (await get_kind(admin, "categories"))["items"]
    garbage = next(c for c in categories if c["code"] == "0101")
    garbage["limits"] = {"sign": "3wh", "handle": "2wd", "check": "4wh"}
    status, published = await put_kind(admin, "categories", 1, categories)
    assert status == 201, published
    assert published["diff"]["categories"]["changed"] == ["0101"]
    kept = await small.ctx.cases.get(running["id"])
    assert (kept["clock"]["limit"], kept["deadlines"]["sign_by"]) == ("1wh", stored["deadlines"]["sign_by"])
    started_after = await small.ctx.cases.get((await report(small, "0101", PLAIN))["id"])
    assert started_after["clock"]["limit"] == "3wh"


async def test_a_stale_version_gets_409_and_the_winner_keeps_its_change(small):
    admin = await admin_of(small)
    departments = (await get_kind(admin, "departments"))["items"]
    first = copy.deepcopy(departments)
    first[0]["name"] = "示例市园林和绿化局"
    second = copy.deepcopy(departments)
    second[1]["name"] = "示例市燃气公司"
    status, published = await put_kind(admin, "departments", 1, first)
    assert status == 201 and published["version"] == 2
    status, body = await put_kind(admin, "departments", 1, second)
    assert status == 409, body
    assert (body["error"]["code"], body["error"]["current"]) == ("stale_version", 2)
    assert await get_kind(admin, "departments") == {"version": 2, "items": first, "editable": True}
    assert small.ctx.city.departments["city-parks"].name == "示例市园林和绿化局"


def _rules_with(data, **changes):
    rules = copy.deepcopy(data["rules.yaml"])
    for rule in rules["rules"]:
        rule.update(changes.get(rule["id"], {}))
    return rules


BAD_RULES = _rules_with(
    small_city_data(),
    **{"river-water": {"when": {"categories": ["0105"], "near_zone": {"kind": "lava", "within_m": 30}}},
       "gas-keyword": {"assign": {"department": "no-such-dept"}},
       "manhole": {"when": {"categories": ["9999"], "weather": "rain"}}})


def _departments_bad_type():
    data = small_city_data()
    departments = [d for d in data["departments.yaml"] if d["type"] != "water"]  # rule river-water needs one
    departments.append({"id": "B-x", "name": "乙区某局", "type": "", "jurisdiction": B})
    departments.append({"id": "B-y", "name": "乙区某所", "type": "parks", "jurisdiction": "nowhere"})
    return departments


def _zones_bad():
    zones = copy.deepcopy(small_city_data()["zones.geojson"]["features"])
    zones[0]["geometry"] = {"type": "Polygon", "coordinates": [[[110.012, 20.012], [110.018, 20.018],
                                                               [110.018, 20.012], [110.012, 20.018],
                                                               [110.012, 20.012]]]}  # a bow tie
    zones.append({"type": "Feature", "properties": {"id": "far", "name": "远方公园", "kind": "park"},
                  "geometry": {"type": "Polygon", "coordinates": [[[120, 30], [120.01, 30], [120.01, 30.01],
                                                                   [120, 30.01], [120, 30]]]}})
    return zones


def _addresses_bad():
    return [{"address": "示例市甲区一街道幸福路1号", "lng": 110.0025, "lat": 20.0025},
            {"address": "示例市甲区坏坐标路2号", "lng": "东经110度", "lat": 20.0},
            {"address": "示例市甲区出界路3号", "lng": 110.0, "lat": 95.0},
            {"address": "示例市甲区城外路4号", "lng": 111.5, "lat": 20.5}]


@pytest.mark.parametrize("kind, items, expected", [
    ("rules", BAD_RULES, [
        ("rules.yaml", "rule #0 (id river-water)", "near_zone 的 kind 'lava'：zones.geojson 中没有此类型的区域"),
        ("rules.yaml", "rule #1 (id gas-keyword)", "部门 'no-such-dept' 不存在"),
        ("rules.yaml", "rule #4 (id manhole)",
         "未知的条件 'weather'（允许：categories、sources、near_zone、in_zone、keywords、hours）"),
        ("rules.yaml", "rule #4 (id manhole)", "类别 9999 不存在"),
    ]),
    ("departments", _departments_bad_type(), [
        ("departments.yaml", "department #12 (id B-x)", "缺少 'type'（部门类型，如 street_office、water、parks）"),
        ("departments.yaml", "department #13 (id B-y)",
         "管辖区划 'nowhere' 不存在（既不在 jurisdictions.geojson 中，也不是城市 id 990100）"),
        ("rules.yaml", "rule #0 (id river-water)", "department_type 'water'：没有任何部门属于此类型"
         "（已有类型：community_service、gas、parks、street_office、transport、urban_management）"),
        ("departments.yaml", "department A-water", "仍有账号 water-a 属于此部门，不能删除"),
    ]),
    ("zones", _zones_bad(), [
        ("zones.geojson", "feature #0 (id P1)", "几何图形无效：自相交（位置 [110.015 20.015]）"),
    ]),
    ("addresses", _addresses_bad(), [
        ("addresses.csv", "line 3", "应为 address,lng,lat 三列，且 lng（经度）、lat（纬度）为数字"),
        ("addresses.csv", "line 4 (示例市甲区出界路3号)", "坐标超出范围（经度须在 -180 到 180 之间，纬度须在 -90 到 90 之间）"),
    ]),
    ("calendar", {"work_hours": ["08:30-12:00", "25:00-26:00"], "holidays": ["十月一日"], "workdays": []}, [
        ("city.yaml", "work_hours[1]", "时段 '25:00-26:00' 无效：时间超出范围"),
        ("city.yaml", "holidays[0]", "不是日期（应为 YYYY-MM-DD）：'十月一日'"),
    ]),
])
async def test_every_problem_is_listed_and_nothing_changes(small, kind, items, expected):
    admin = await admin_of(small)
    router = small.ctx.router
    status, body = await put_kind(admin, kind, 1, items)
    assert status == 422, body
    assert body["error"]["code"] == "invalid_config"
    assert [(p["file"], p["item"], p["problem"]) for p in body["error"]["problems"]] == expected
    assert (await get_kind(admin, kind))["version"] == 1
    assert small.ctx.router is router and small.ctx.config_version == 1


async def test_places_outside_the_city_are_refused(small):
    """A door plate outside every district and a zone touching none (an orphan) are problems the
    loader cannot see; listed once the loader's own checks pass."""
    admin = await admin_of(small)
    plates = [a for a in _addresses_bad() if a["address"] != "示例市甲区坏坐标路2号" and a["lat"] != 95.0]
    status, body = await put_kind(admin, "addresses", 1, plates)
    assert status == 422
    assert [p["text"] for p in body["error"]["problems"]] == [
        "addresses.csv: line 3 (示例市甲区城外路4号): 坐标在城市范围之外（不在任何区内）"]
    zones = _zones_bad()
    zones[0] = small_city_data()["zones.geojson"]["features"][0]
    status, body = await put_kind(admin, "zones", 1, zones)
    assert status == 422
    assert [p["text"] for p in body["error"]["problems"]] == [
        "zones.geojson: feature #6 (id far): 孤立区域：位于城市范围之外（不与任何区相交）"]


async def test_a_category_in_use_cannot_be_deleted(small):
    admin = await admin_of(small)
    await report(small, "0105", PLAIN)
    await report(small, "0105", PLAIN)
    categories = [c for c in (await get_kind(admin, "categories"))["items"] if c["code"] not in ("0105", "0401")]
    rules = (await get_kind(admin, "rules"))["items"]
    status, body = await put_kind(admin, "categories", 1, categories)
    assert status == 422
    texts = [p["text"] for p in body["error"]["problems"]]
    assert texts == [
        "rules.yaml: rule #0 (id river-water): 类别 0105 不存在",
        "rules.yaml: rule #8 (id expressway): 类别 0401 不存在",
        "rules.yaml: rule #9 (id metro-station): 类别 0401 不存在",
        "categories.yaml: category 0105: 仍有 2 个案件使用此类别，不能删除",
    ]
    rules["rules"] = [r for r in rules["rules"] if r["id"] not in ("river-water", "expressway", "metro-station")]
    status, published = await put_kind(admin, "rules", 1, rules)
    assert status == 201
    status, body = await put_kind(admin, "categories", 2, categories)
    assert status == 422
    assert [p["text"] for p in body["error"]["problems"]] == [
        "categories.yaml: category 0105: 仍有 2 个案件使用此类别，不能删除"]
    unused = [c for c in (await get_kind(admin, "categories"))["items"] if c["code"] != "0401"]
    status, published = await put_kind(admin, "categories", 2, unused)
    assert status == 201 and published["diff"]["categories"]["removed"] == ["0401"]


async def test_a_department_with_accounts_cannot_be_deleted(small):
    admin = await admin_of(small)
    departments = [d for d in (await get_kind(admin, "departments"))["items"] if d["id"] != "A-water"]
    departments.append({"id": "A-water2", "name": "甲区水利局", "type": "water", "jurisdiction": A})
    status, body = await put_kind(admin, "departments", 1, departments)
    assert status == 422
    assert [p["text"] for p in body["error"]["problems"]] == [
        "departments.yaml: department A-water: 仍有账号 water-a 属于此部门，不能删除"]


async def test_the_dry_run_shows_what_would_move_and_changes_nothing(small):
    admin = await admin_of(small)
    moved = await report(small, "0101", PARK, "公园里有垃圾")
    await report(small, "0101", PLAIN)
    rules = (await get_kind(admin, "rules"))["items"]
    proposed = copy.deepcopy(rules)
    next(r for r in proposed["rules"] if r["id"] == "park-green")["assign"] = {"department": "A-um"}
    status, result = await admin.post("/api/admin/config/rules/dry-run", {"items": proposed, "days": 7})
    assert status == 200, result
    assert (result["replayed"], result["changed"]) == (2, 1)
    [sample] = result["sample"]
    assert sample["case"]["id"] == moved["id"]
    assert (sample["before"]["department"]["id"], sample["after"]["department"]["id"]) == ("city-parks", "A-um")
    assert sample["before"]["rule"] == sample["after"]["rule"] == "park-green"
    assert "中心公园" in sample["before"]["reason"] and "甲区城管局" in sample["after"]["reason"]
    assert result["moves"] == [{"from": "示例市园林局", "to": "甲区城管局", "count": 1}]
    assert await get_kind(admin, "rules") == {"version": 1, "items": rules, "editable": True}
    status, body = await admin.post("/api/admin/config/rules/dry-run", {"items": BAD_RULES, "days": 7})
    assert status == 422 and len(body["error"]["problems"]) == 4


async def test_rollback_restores_the_old_behaviour_as_a_new_version(small):
    admin = await admin_of(small)
    rules = (await get_kind(admin, "rules"))["items"]
    changed = copy.deepcopy(rules)
    next(r for r in changed["rules"] if r["id"] == "park-green")["assign"] = {"department": "A-um"}
    assert (await put_kind(admin, "rules", 1, changed))[0] == 201
    assert (await report(small, "0101", PARK))["assignment"]["department"]["id"] == "A-um"
    status, published = await admin.post("/api/admin/config/rollback", {"version": 1})
    assert status == 201, published
    assert (published["version"], published["rollback_of"], published["kinds"]) == (3, 1, ["rules"])
    assert published["note"] == "回滚到第 1 版"
    assert (await report(small, "0101", PARK))["assignment"]["department"]["id"] == "city-parks"
    assert await get_kind(admin, "rules") == {"version": 3, "items": rules, "editable": True}
    status, body = await admin.post("/api/admin/config/rollback", {"version": 1})
    assert (status, body["error"]["code"]) == (422, "no_change")
    status, body = await admin.post("/api/admin/config/rollback", {"version": 9})
    assert (status, body["error"]["code"]) == (404, "version_not_found")


async def test_bad_bodies_are_400(small):
    admin = await admin_of(small)
    cases = [
        ({"items": []}, "missing_field"),
        ({"version": "1", "items": []}, "invalid_type"),
        ({"version": 1, "items": [], "extra": 1}, "unknown_field"),
        ({"version": 1, "items": [{"$ne": 1}]}, "invalid_value"),
    ]
    for body, code in cases:
        status, answer = await admin.request("PUT", "/api/admin/config/categories", body)
        assert (status, answer["error"]["code"]) == (400, code)
    status, _ = await admin.get("/api/admin/config/passwords")  # not a kind
    assert status == 404
    status, answer = await put_kind(admin, "categories", 1, (await get_kind(admin, "categories"))["items"])
    assert (status, answer["error"]["code"]) == (422, "no_change")


async def test_only_admins_read_or_change_the_configuration(small):
    dispatcher = small.as_user()
    await dispatcher.login("disp-a", "x")
    status, _ = await dispatcher.get("/api/admin/config/rules")
    assert status == 403
    status, _ = await put_kind(dispatcher, "rules", 1, {})
    assert status == 403
    anonymous = small.as_user()
    status, _ = await anonymous.get("/api/admin/config/history")
    assert status == 401


async def test_a_district_admin_edits_only_its_district(small):
    admin = await admin_of(small)
    status, _ = await admin.post("/api/admin/users", {"username": "admin-a", "password": "district-pass-2026",
                                                      "role": "admin", "scope": A})
    assert status == 201
    district = small.as_user()
    await district.login("admin-a", "district-pass-2026")
    departments = (await get_kind(district, "departments"))["items"]
    mine = copy.deepcopy(departments)
    next(d for d in mine if d["id"] == "A1-um")["name"] = "一街道综合执法中队"
    mine.append({"id": "A2-um", "name": "二街道城管中队", "type": "urban_management", "jurisdiction": A2})
    status, published = await put_kind(district, "departments", 1, mine)
    assert status == 201, published
    theirs = copy.deepcopy(mine)
    next(d for d in theirs if d["id"] == "B1-so")["name"] = "北街道办"
    status, body = await put_kind(district, "departments", 2, theirs)
    assert (status, body["error"]["code"]) == (403, "scope_forbidden")
    rules = (await get_kind(district, "rules"))["items"]
    own_rule = copy.deepcopy(rules)
    own_rule["rules"].append({"id": "a1-stalls", "priority": 80, "when": {"categories": ["0101"],
                              "keywords": ["摊贩"]}, "assign": {"department": "A1-um"}})
    status, published = await put_kind(district, "rules", 2, own_rule)
    assert status == 201, published
    city_rule = copy.deepcopy(own_rule)
    city_rule["fallback"] = {"department_type": "urban_management"}
    status, body = await put_kind(district, "rules", 3, city_rule)
    assert status == 403
    assert [(await get_kind(district, kind))["editable"] for kind in ("departments", "rules", "categories", "zones")] \
        == [True, True, False, False]
    categories = (await get_kind(district, "categories"))["items"]
    categories[0]["name"] = "垃圾"
    status, body = await put_kind(district, "categories", 3, categories)
    assert status == 403
    status, body = await district.post("/api/admin/config/rollback", {"version": 1})
    assert status == 403
    status, body = await district.post("/api/admin/users", {"username": "op-b", "password": "other-operator-pw",
                                                            "role": "operator", "scope": B})
    assert (status, body["error"]["code"]) == (403, "scope_forbidden")
    status, body = await district.post("/api/admin/users", {"username": "op-a1", "password": "street-operator-pw",
                                                            "role": "operator", "scope": A1})
    assert status == 201, body
    status, body = await district.request("PATCH", "/api/admin/users/op1", {"disabled": True})
    assert status == 403  # op1 is scoped to the whole city
    assert await get_kind(admin, "departments") == {"version": 3, "items": mine, "editable": True}


async def test_every_change_is_in_the_audit_log(small):
    admin = await admin_of(small)
    rules = (await get_kind(admin, "rules"))["items"]
    changed = copy.deepcopy(rules)
    changed["rules"] = changed["rules"][1:]
    assert (await put_kind(admin, "rules", 1, changed, note="删掉河道规则"))[0] == 201
    assert (await admin.post("/api/admin/config/rollback", {"version": 1}))[0] == 201
    status, audit = await admin.get("/api/admin/audit?kind=admin_audit")
    assert status == 200
    entries = [(e["action"], e["target"], e["version"], e["by"]) for e in audit["items"]]
    assert entries == [("rollback_config", "rules", 3, "admin"), ("publish_config", "rules", 2, "admin")]
    assert audit["items"][1]["note"] == "删掉河道规则"
    assert audit["items"][1]["counts"] == {"added": 0, "removed": 1, "changed": 0, "items": 10}


async def test_an_account_moves_to_another_scope_and_signs_in_again(small):
    admin = await admin_of(small)
    operator = small.as_user()
    await operator.login("op1", "x")
    status, moved = await admin.request("PATCH", "/api/admin/users/op1", {"scope": A1})
    assert (status, moved["scope"]) == (200, A1)
    status, _ = await operator.get("/api/me")
    assert status == 401  # its tokens were revoked: the pages sign in again and see the new scope
    status, body = await admin.request("PATCH", "/api/admin/users/op1", {"scope": "nowhere", "password": "weak"})
    assert (status, body["error"]["code"]) == (400, "weak_password")
    status, body = await admin.request("PATCH", "/api/admin/users/op1", {"scope": "nowhere"})
    assert (status, body["error"]["code"]) == (422, "unknown_scope")
    status, audit = await admin.get("/api/admin/audit?kind=admin_audit")
    assert [(e["action"], e["target"], e.get("scope")) for e in audit["items"]] == [("set_scope", "op1", A1)]


async def test_a_published_version_is_logged_but_never_reaches_live_case_clients(small):
    admin = await admin_of(small)
    rules = await get_kind(admin, "rules")
    await small.ctx.tail.caught_up()
    delivered = []
    small.ctx.bus.subscribe(delivered.append)
    items = copy.deepcopy(rules["items"])
    items["rules"] = items["rules"][:-1]
    start = await small.ctx.storage.events.last_seq()
    assert (await put_kind(admin, "rules", 1, items))[0] == 201
    await small.ctx.tail.caught_up()
    logged = await small.ctx.storage.events.after(start, 10)
    assert [(e["type"], e["version"], e["kinds"], e["case_id"]) for e in logged] == [("config.published", 2, ["rules"], None)]
    assert small.ctx.tail.seq == logged[0]["_id"] and delivered == []
    case = await report(small, "0101", PLAIN)
    await small.ctx.tail.caught_up()
    assert [(e["type"], e["case"]["_id"]) for e in delivered] == [("case.created", case["id"])]


async def test_kpis_and_assist_follow_a_published_configuration(small):
    """The KPI rollups and the operator assist read the city they were built with: a published
    version must reach them too (they kept the old departments and categories before)."""
    admin = await admin_of(small)
    departments = (await get_kind(admin, "departments"))["items"]
    departments[0]["name"] = "示例市园林和绿化局"
    status, published = await put_kind(admin, "departments", 1, departments)
    assert status == 201, published
    renamed = departments[0]["id"]
    assert small.ctx.rollups.department_names[renamed] == "示例市园林和绿化局"
    assert small.ctx.assist.suggester.city.departments[renamed].name == "示例市园林和绿化局"


async def test_the_kpi_rollups_pass_over_a_published_version_in_the_log(small):
    """A configuration version is an event without a case: the rollups must count the reports
    logged around it and not stop at it."""
    admin = await admin_of(small)
    before = await report(small, "0101", PLAIN)
    departments = (await get_kind(admin, "departments"))["items"]
    departments[0]["name"] = "示例市园林和绿化局"
    status, published = await put_kind(admin, "departments", 1, departments)
    assert status == 201, published
    after = await report(small, "0101", PLAIN)
    await small.ctx.rollups.catch_up()
    state = await small.ctx.storage.rollups.state()
    assert state["cursor"] == await small.ctx.storage.events.last_seq()
    counted = await small.ctx.storage.rollups.contributions([before["id"], after["id"]])
    assert set(counted) == {before["id"], after["id"]}

"""The export writes a package that loads to the same model as the version it came from."""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime, timezone
from pathlib import Path

from dispatch.admin.export import write_package
from dispatch.admin.versions import KINDS
from dispatch.store import open_store
from dispatch.tools import export_city
from engines import new_database_name, server_uri
from geo.loader import load_city, package_items
from small_city import write_small_city
from support import DEMO_CITY


DOG = {"id": "KB-DOG", "title": "犬只登记", "questions": ["养狗要办证吗"], "answer": "", "category": None,
       "department": None, "valid_from": None, "valid_to": None, "tags": ["养犬"]}


def model(city) -> dict:
    """What the rest of the code uses of a City, comparable."""
    return {
        "calendar": (city.id, city.name, city.timezone, city.work_hours, city.holidays, city.workdays),
        "jurisdictions": sorted((j.id, j.name, j.level, j.parent, j.geometry.wkb_hex) for j in city.jurisdictions.values()),
        "zones": [(z.id, z.name, z.kind, z.geometry.wkb_hex) for z in city.zones],
        "departments": city.departments,
        "categories": city.categories,
        "rules": (city.rules.rules, city.rules.fallback),
        "users": city.users,
        "addresses": city.addresses.entries,
    }


async def items_of(store, version: int) -> dict:
    out = {}
    for kind in KINDS:
        held = await store.config.items(kind, version)
        out[kind] = held[1] if held else None
    return out


async def test_an_edited_version_exports_to_a_package_that_loads_identically(small, tmp_path):
    await small.login("admin", "admin-pass")
    edits = {
        "rules": lambda rules: rules["rules"].append({"id": "stalls", "priority": 3, "when": {
            "categories": ["0101"], "keywords": ["摊贩", "占道"], "hours": "18:00-23:00"},
            "assign": {"department": "A1-um"}, "set_priority": "urgent", "name": "夜间占道经营"}),
        "categories": lambda categories: categories[0].update(limits={"sign": "2wh", "handle": "1.5wd", "check": "30m"}),
        "calendar": lambda calendar: calendar.update(holidays=["2026-10-01", "2026-10-02"], workdays=["2026-09-27"]),
        "addresses": lambda plates: plates.append({"address": "示例市甲区二街道公园路14号", "lng": 110.0151, "lat": 20.0149}),
        "zones": lambda zones: zones.append({"type": "Feature", "properties": {"id": "P2", "name": "小游园", "kind": "park"},
                                             "geometry": {"type": "Polygon", "coordinates": [[
                                                 [110.001, 20.001], [110.002, 20.001], [110.002, 20.002],
                                                 [110.001, 20.002], [110.001, 20.001]]]}}),
    }
    version = 1
    for kind, edit in edits.items():
        status, current = await small.get(f"/api/admin/config/{kind}")
        items = copy.deepcopy(current["items"])
        edit(items)
        status, published = await small.request("PUT", f"/api/admin/config/{kind}",
                                                {"version": version, "items": items, "note": f"改 {kind}"})
        assert status == 201, published
        version = published["version"]
    out = tmp_path / "exported"
    write_package(small.ctx.city.path, await items_of(small.ctx.storage, version), str(out), version)
    assert model(load_city(str(out))) == model(small.ctx.city)
    assert model(load_city(str(out))) != model(load_city(small.ctx.city.path))  # the edits are in it


async def test_the_demo_package_exports_to_itself(tmp_path):
    store = await open_store("embedded", "test")
    await store.config.publish({"_id": 1, "by": "system", "at": datetime.now(timezone.utc), "note": "", "diff": {}},
                               package_items(str(DEMO_CITY)))
    write_package(str(DEMO_CITY), await items_of(store, 1), str(tmp_path), 1)
    assert model(load_city(str(tmp_path))) == model(load_city(str(DEMO_CITY)))
    await store.close()


def test_the_export_command_writes_the_current_version_from_the_database(tmp_path):
    uri, name = server_uri(), new_database_name()
    city = write_small_city(tmp_path / "city")
    items = package_items(city)
    items["rules"]["rules"] = items["rules"]["rules"][1:]

    async def publish():
        store = await open_store(uri, name)
        at = datetime.now(timezone.utc)
        await store.config.publish({"_id": 1, "by": "system", "at": at, "note": "", "diff": {}}, package_items(city))
        await store.config.publish({"_id": 2, "by": "admin", "at": at, "note": "", "diff": {}},
                                   {"rules": items["rules"]})
        for version, answer in ((1, "旧答复"), (2, "在街道犬类登记点办理。")):
            await store.knowledge.put({**DOG, "answer": answer, "version": version, "deleted": False, "at": at,
                                       "by": "admin", "note": ""})
        await store.close()

    async def drop():
        store = await open_store(uri, name)
        await store.drop()
        await store.close()

    asyncio.run(publish())
    try:
        overrides = ["--set", f"storage.uri={uri}", "--set", f"storage.database={name}", "--set", f"city.path={city}"]
        assert export_city.main(["--out", str(tmp_path / "v2"), *overrides]) == 0
        assert export_city.main(["--out", str(tmp_path / "v1"), "--version", "1", *overrides]) == 0
        assert export_city.main(["--out", str(tmp_path / "v9"), "--version", "9", *overrides]) == 2
    finally:
        asyncio.run(drop())
    exported = load_city(str(tmp_path / "v2"))
    assert [r.id for r in exported.rules] == [r.id for r in load_city(city).rules if r.id != "river-water"]
    assert model(load_city(str(tmp_path / "v1"))) == model(load_city(city))
    assert not Path(tmp_path / "v9").exists()
    # knowledge.yaml: the knowledge base as it is now, its newest version of each article.
    assert [(a.id, a.answer, a.tags) for a in exported.knowledge] == [("KB-DOG", "在街道犬类登记点办理。", ("养犬",))]

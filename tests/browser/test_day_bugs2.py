"""Issue 12's leftovers (pages that fit the day's work): each test fails on the code before its fix."""

from __future__ import annotations

import copy
import uuid

import pytest

from browser_support import PHONE, client_as, fill_dialog, open_page, user, wait_until
from support import DEMO_CITY, serving
from test_command_page import open_command, report
from test_dept_page import dispatched_case, open_workbench


# Doubled punctuation in history ------------------------------------------------------------

async def test_history_notes_after_a_full_stop_carry_no_second_separator(server, browser):
    case = await dispatched_case(server, "路灯线路老化需要整体更换")
    department = await client_as(server, "dept_hubin")
    status, _ = await department.post(f"/api/cases/{case['id']}/actions/sign", {})
    assert status == 200
    status, _ = await department.post(f"/api/cases/{case['id']}/actions/request_extension",
                                      {"duration": "2wd", "reason": "需协调供电公司停电施工。"})
    assert status == 200
    page, guard = await open_workbench(server, browser)
    await page.locator(f".q-item[data-number='{case['number']}']").click()
    note = page.locator("#detail .tl-note.muted", has_text="申请延长")
    await note.wait_for()
    text = await note.inner_text()
    assert "施工。申请延长：2个工作日" in text, text
    assert "。；" not in text, text
    guard.assert_clean()


# Heat mode switched off at once --------------------------------------------------------------

async def test_heat_mode_switched_off_at_once_throws_nothing(server, browser):
    await report(server, "人行道上有三辆机动车违停")
    page, guard = await open_command(browser, server, "dispatcher")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Both clicks in one task: the points come back well inside the heat layer's 300 ms redraw delay.
    await page.evaluate("""() => { document.querySelector("#layer-seg button[data-layer='heat']").click();
                                   document.querySelector("#layer-seg button[data-layer='points']").click(); }""")
    await page.wait_for_selector("#map-legend .lg-dot")
    await page.wait_for_timeout(600)  # past the 300 ms redraw: the error would have come by now
    assert errors == []
    # Heat mode still draws when switched on again.
    await page.click("#layer-seg button[data-layer='heat']")
    await wait_until(page, """() => { const c = document.querySelector('.leaflet-heatmap-layer');
      return c && c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0); }""")
    guard.assert_clean()


# People's names and the place words in the case detail ----------------------------------------

def name_of(server, username: str) -> str:
    return next(u["name"] for u in server.ctx.city.users if u["username"] == username)


async def written_before_names(server, case: dict) -> dict:
    """A stored copy of `case` as cases were written before names were recorded (no by_name)."""
    doc = copy.deepcopy(await server.ctx.cases.get(case["id"]))
    doc["_id"] = uuid.uuid4().hex
    doc["number"] = await server.ctx.cases.next_number(doc["number"].split("-")[0])
    doc.pop("client_id", None)
    doc["history"] = [{k: v for k, v in entry.items() if k != "by_name"} for entry in doc["history"]]
    await server.ctx.cases.insert(doc)
    return {**case, "id": doc["_id"], "number": doc["number"]}


async def test_department_sees_who_acted_by_name_and_the_nearest_door_plate(server, browser):
    case = await written_before_names(server, await dispatched_case(server, "餐馆油烟直排，晚上尤其严重"))
    assert case["place"]["text"].startswith("东坡路3号 · ")
    page, guard = await open_workbench(server, browser)
    await page.locator(f".q-item[data-number='{case['number']}']").click()
    await page.wait_for_selector("#detail .timeline .tl-item")
    metas = await page.locator("#detail .tl-meta").all_inner_texts()
    operator, dispatcher = user(server, "operator")["username"], user(server, "dispatcher")["username"]
    assert any(name_of(server, operator) in m for m in metas), metas
    assert any(name_of(server, dispatcher) in m for m in metas), metas
    assert not any(m.endswith(operator) or m.endswith(dispatcher) for m in metas), metas
    facts = await page.inner_text("#detail .cd-facts")
    assert case["place"]["text"] in facts, facts
    guard.assert_clean()


async def test_command_centre_sees_the_place_and_the_reporters_name(server, browser):
    case = await report(server, "人行道上有三辆机动车违停")
    page, guard = await open_command(browser, server, "dispatcher")
    await page.click(f"#work-list .qi[data-id='{case['id']}'] .qi-main")
    await page.wait_for_selector("#drawer .timeline .tl-item")
    facts = await page.inner_text("#drawer .cd-facts")
    assert case["place"]["text"] and case["place"]["text"] in facts, facts
    meta = await page.inner_text("#drawer .tl-meta")
    assert meta.endswith(name_of(server, user(server, "grid_worker")["username"])), meta
    guard.assert_clean()


# 联系来电人 on /dept, where the deployment lets departments unmask callers --------------------

@pytest.fixture
async def revealing(request):
    """The demo city served with one more role (the test's parameter) among `auth.reveal_roles`."""
    async with serving(DEMO_CITY, f"auth.reveal_roles=call_taker,callback_operator,admin,{request.param}") as client:
        yield client


async def reveal_and_find_it_audited(server, page, holder: str, case: dict, username: str, reason: str) -> None:
    """Unmask the caller in `holder` (the case view) and find the reveal in the audit log."""
    facts = await page.inner_text(f"{holder} .cd-facts")
    assert "13500003333" not in facts and "135****3333" in facts, facts
    await page.click(f"{holder} [data-reveal=caller]")
    await fill_dialog(page, "#reveal-reason", reason)
    await page.wait_for_selector(f"{holder} .caller-reveal .caller-phone:text-is('13500003333')")
    assert "陈女士" in await page.inner_text(f"{holder} .caller-reveal")
    admin = await client_as(server, user(server, "admin")["username"])
    status, audit = await admin.get(f"/api/admin/audit?kind=reveals&case={case['id']}")
    assert status == 200, audit
    assert [(r["by"], r["reason"]) for r in audit["items"]] == [(username, reason)]


@pytest.mark.parametrize("revealing", ["department"], indirect=True)
async def test_department_reveals_the_caller_on_purpose_and_it_is_recorded(revealing, browser):
    case = await dispatched_case(revealing, "楼上装修噪音扰民，请联系我核实")
    page, guard = await open_workbench(revealing, browser)
    await page.locator(f".q-item[data-number='{case['number']}']").click()
    await reveal_and_find_it_audited(revealing, page, "#detail", case, "dept_hubin", "联系来电人核实噪音时段")
    guard.assert_clean()


async def test_no_reveal_button_where_the_policy_does_not_allow_it(server, browser):
    case = await dispatched_case(server, "楼上装修噪音扰民，请联系我核实")
    department = await client_as(server, "dept_hubin")
    status, seen = await department.get(f"/api/cases/{case['id']}")
    assert status == 200 and seen["may_reveal_caller"] is False
    page, guard = await open_workbench(server, browser)
    await page.locator(f".q-item[data-number='{case['number']}']").click()
    await page.wait_for_selector("#detail .cd-facts")
    assert await page.locator("#detail [data-reveal=caller]").count() == 0
    guard.assert_clean()


@pytest.mark.parametrize("revealing", ["dispatcher"], indirect=True)
async def test_dispatcher_reveals_the_caller_in_the_command_drawer(revealing, browser):
    operator = await client_as(revealing, user(revealing, "operator")["username"])
    status, case = await operator.post("/api/tickets", {
        "type": "complaint", "content": "小区门口夜间施工噪音扰民", "address": "杭州市上城区东坡路3号",
        "category": "H-complaint", "caller": {"name": "陈女士", "phone": "13500003333"}})
    assert status == 201, case
    page, guard = await open_command(browser, revealing, "dispatcher")
    await page.click(f"#work-list .qi[data-id='{case['id']}'] .qi-main")
    await page.wait_for_selector("#drawer .cd-facts")
    await reveal_and_find_it_audited(revealing, page, "#drawer", case, user(revealing, "dispatcher")["username"],
                                     "回拨核实施工地点")
    guard.assert_clean()


# /dept on a phone: one column, the case as a full-screen sheet that Back closes ---------------

SHEET = """() => { const r = document.querySelector('#detail').getBoundingClientRect();
  return { left: r.left, top: r.top, width: r.width, height: r.height, open: document.body.classList.contains('show-detail') }; }"""


async def test_department_page_on_a_phone_opens_the_case_as_a_sheet_that_back_closes(server, browser):
    case = await dispatched_case(server, "东坡路人行道砖块翘起")
    account = next(u for u in server.ctx.city.users if u["username"] == "dept_hubin")
    page, guard = await open_page(browser, server, "dept_hubin", str(account["password"]), "/dept", viewport=PHONE,
                                  has_touch=True, is_mobile=True)
    item = page.locator(f".q-item[data-number='{case['number']}']")
    await item.click()
    await page.wait_for_selector("body.show-detail #detail .cd-facts")
    sheet = await page.evaluate(SHEET)
    assert (sheet["left"], sheet["top"], sheet["width"], sheet["height"]) == (0, 0, PHONE["width"], PHONE["height"]), sheet
    await page.go_back()
    await wait_until(page, "() => !document.body.classList.contains('show-detail')")
    assert page.url.startswith(server.base + "/dept")
    await item.wait_for()
    # Opened again and closed with its own button: no entry left behind for a later Back.
    await item.click()
    await page.wait_for_selector("body.show-detail #detail .cd-facts")
    await page.click("#detail .detail-top .back")
    await wait_until(page, "() => !document.body.classList.contains('show-detail') && !(history.state && history.state.deptDetail)")
    assert page.url.startswith(server.base + "/dept")
    guard.assert_clean()

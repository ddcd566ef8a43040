"""Personal data: callers' names and phones are masked everywhere but for the operator who took
the call and admins — single case, list, GeoJSON, action responses, exports, the live feed and
the log — and unmasking on purpose (reveal) is limited to the allowed roles, rate-limited and
audited."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from dispatch.domain import mask_name, mask_phone, mask_text
from security_world import G1_POINT, NAME_A, NAME_B, PHONE_A, PHONE_B, close_world, make_world
from test_security_policy import connect, drain

SECRETS = (PHONE_A, PHONE_B, NAME_A, NAME_B)


@pytest.fixture
async def world(tmp_path_factory):
    w = await make_world(tmp_path_factory, "auth.reveals_per_hour=3")
    yield w
    await close_world(w)


def leaks(payload) -> list[str]:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return [s for s in SECRETS if s in text]


def test_mask_functions():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_name("张三丰") == "张**" and mask_name("李") == "李*"
    assert mask_text(f"请回拨 {PHONE_A}，联系人 {NAME_A}", {"name": NAME_A, "phone": PHONE_A}) == "请回拨 138****5678，联系人 张**"
    assert mask_text("座机 0571-88886666", {"phone": "0571-88886666"}) == "座机 057****6666"
    assert mask_text("编号 20261122-000123 不是电话") == "编号 20261122-000123 不是电话"


async def test_caller_is_unmasked_only_for_the_taking_operator_and_admins(world):
    cA = world.cases["cA"]
    for username in ("op1", "admin"):
        status, body = await world.as_(username).get(f"/api/cases/{cA}")
        assert status == 200 and body["caller"] == {"name": NAME_A, "phone": PHONE_A}, username
        assert PHONE_A in body["description"]
    for username in ("op2", "disp-a", "disp-city", "cmd-a1", "cmd-city", "a1so", "gw1"):
        status, body = await world.as_(username).get(f"/api/cases/{cA}")
        assert status == 200, username
        assert body["caller"] == {"name": "张**", "phone": "138****5678"}, username
        assert not leaks(body), (username, leaks(body))  # description and history too


async def test_a_merged_repeat_gives_the_original_its_caller_masked_as_a_caller(world):
    """并案 (issue 13): the original gains the repeat's caller, so a callback reaches everyone who
    asked; that caller is seen by the operator who took the repeat and admins, masked for the
    rest (the original's own call taker included), and comes with the audited reveal."""
    cA, phone, name = world.cases["cA"], "13700000009", "王五"
    status, repeat = await world.as_("op2").post("/api/tickets", {
        "channel": "12345", "type": "complaint", "category": "H01", "content": "还是夜间施工的噪声",
        "caller": {"name": name, "phone": phone}, "location": {"type": "Point", "coordinates": G1_POINT}})
    assert status == 201, repeat
    for _ in range(2):  # a retried merge adds the caller once
        status, body = await world.as_("disp-city").post(f"/api/cases/{repeat['id']}/actions/merge", {"into": cA})
        assert status == 200, body
    merged_in = {"case": repeat["id"], "number": repeat["number"], "taken_by": "op2"}
    for username, seen in (("admin", (name, phone)), ("op2", (name, phone)),
                           ("op1", ("王*", "137****0009")), ("disp-city", ("王*", "137****0009"))):
        status, body = await world.as_(username).get(f"/api/cases/{cA}")
        assert status == 200, body
        assert [(c["name"], c["phone"]) for c in body["callers"]] == [seen], username
        assert {k: body["callers"][0][k] for k in merged_in} == merged_in
        if username == "disp-city":
            assert phone not in json.dumps(body, ensure_ascii=False) and not leaks(body)
    status, features = await world.as_("disp-city").get("/api/cases.geojson")
    assert phone not in json.dumps(features)
    status, revealed = await world.as_("op1").post(f"/api/cases/{cA}/reveal", {"reason": "回访全部来电人"})
    assert status == 200, revealed
    assert revealed["callers"] == [{"name": name, "phone": phone, "number": repeat["number"]}]


async def test_lists_geojson_and_action_responses_are_masked(world):
    for username in ("op2", "disp-city", "cmd-city", "a1so", "b1so", "gw1", "gw-b"):
        client = world.as_(username)
        for path in ("/api/cases", "/api/cases.geojson", "/api/cases?q=噪声", "/api/cases.geojson?source=hotline"):
            status, body = await client.get(path)
            assert status == 200 and not leaks(body), (username, path, leaks(body))
    status, body = await world.as_("admin").get("/api/cases.geojson")
    assert all("caller" not in f["properties"] for f in body["features"])
    assert not leaks(body)  # the map's summaries are masked for everyone, admins included
    status, body = await world.as_("a1so").post(f"/api/cases/{world.cases['cA']}/actions/sign", {"note": "签收"})
    assert status == 200 and not leaks(body)


async def test_exports_carry_no_caller(world):
    for fmt in ("csv", "xlsx"):
        status, body = await world.as_("admin").get(f"/api/stats.{fmt}")
        assert status == 200
        raw = body if isinstance(body, bytes) else body.encode()
        for secret in SECRETS:
            assert secret.encode() not in raw


async def test_live_messages_carry_no_caller(world):
    sockets = [await connect(world, username) for username in ("admin", "op1", "disp-city", "a1so")]
    status, body = await world.as_("op1").post("/api/tickets", {
        "type": "help", "category": "H02", "content": f"独居老人求助，电话 {PHONE_A}",
        "caller": {"name": NAME_A, "phone": PHONE_A},
        "location": {"type": "Point", "coordinates": [110.0025, 20.0025]},
    })
    assert status == 201
    await world.as_("disp-city").post(f"/api/cases/{world.cases['cA']}/actions/supervise", {})
    total = 0
    for ws in sockets:
        for message in await drain(ws):
            total += 1
            assert "caller" not in message.get("case", {}).get("properties", {})
            assert not leaks(message), leaks(message)
        ws.close()
    assert total >= 5


async def test_no_log_line_prints_a_phone_or_a_name(world, caplog):
    caplog.set_level(logging.DEBUG)
    op = world.as_("op1")
    await op.post("/api/tickets", {"type": "complaint", "content": "噪声", "category": "H01",
                                   "caller": {"name": NAME_B, "phone": PHONE_B},
                                   "location": {"type": "Point", "coordinates": [110.0025, 20.0025]}})
    await op.get(f"/api/cases?q={PHONE_A}")
    await op.get(f"/api/cases?q={PHONE_A}&limit=abc")  # a 400 is logged as a warning
    await world.as_("gw1").get(f"/api/cases?q={PHONE_B}")
    await op.post("/api/tickets", {"type": "complaint", "content": "x", "caller": {"phone": {"$ne": PHONE_A}}})
    await op.post(f"/api/cases/{world.cases['cA']}/reveal", {"reason": f"回访 {PHONE_A}"})
    lines = [record.getMessage() for record in caplog.records]
    assert any("/api/cases" in line for line in lines)  # the access log did run
    for line in lines:
        assert not leaks(line), line


async def test_reveal_is_limited_to_allowed_roles_and_audited(world):
    cA, cG = world.cases["cA"], world.cases["cG"]
    # auth.reveal_roles by default: the operator who took the call (op1), the case's 回访
    # operators, and admins (SPEC §6).
    status, body = await world.as_("op1").post(f"/api/cases/{cA}/reveal", {"reason": "回访核实处理结果"})
    assert status == 200, body
    assert body["caller"] == {"name": NAME_A, "phone": PHONE_A} and body["audited"] is True
    status, body = await world.as_("admin").post(f"/api/cases/{cA}/reveal", {"reason": "联系市民补充情况"})
    assert status == 200
    status, body = await world.as_("op2").post(f"/api/cases/{cA}/reveal", {"reason": "想看看"})
    assert (status, body["error"]["code"]) == (403, "not_case_operator")
    for username in ("disp-a", "a1so", "cmd-a1", "gw1", "cmd-city"):
        status, body = await world.as_(username).post(f"/api/cases/{cA}/reveal", {"reason": "想看看"})
        assert (status, body["error"]["code"]) == (403, "role_forbidden"), username
    status, body = await world.as_("disp-b").post(f"/api/cases/{cA}/reveal", {"reason": "越权"})
    assert (status, body["error"]["code"]) == (404, "case_not_found")
    status, body = await world.as_("admin").post(f"/api/cases/{cG}/reveal", {"reason": "网格案件"})
    assert (status, body["error"]["code"]) == (404, "no_caller")
    status, body = await world.as_("op1").post(f"/api/cases/{cA}/reveal", {})
    assert (status, body["error"]["code"]) == (400, "missing_field")
    status, body = await world.as_("anonymous-nobody").post(f"/api/cases/{cA}/reveal", {"reason": "x"})
    assert status == 401

    status, body = await world.as_("admin").get(f"/api/admin/audit?kind=reveals&case={cA}")
    assert status == 200
    records = body["items"]
    assert [(r["by"], r["reason"]) for r in records] == [("admin", "联系市民补充情况"), ("op1", "回访核实处理结果")]
    assert all(r["case_id"] == cA and r["address"] for r in records)
    status, _ = await world.as_("op2").get("/api/admin/audit?kind=reveals")
    assert status == 403


async def test_reveal_is_rate_limited_per_user(world):
    cA = world.cases["cA"]
    for _ in range(3):  # auth.reveals_per_hour=3 in this world
        status, _ = await world.as_("op1").post(f"/api/cases/{cA}/reveal", {"reason": "回访"})
        assert status == 200
    response = await world.as_("op1").http.fetch(
        world.client.base + f"/api/cases/{cA}/reveal", method="POST", body=json.dumps({"reason": "回访"}),
        headers={"Authorization": f"Bearer {world.as_('op1').token}"}, raise_error=False)
    assert response.code == 429 and int(response.headers["Retry-After"]) > 0
    assert json.loads(response.body)["error"]["code"] == "too_many_reveals"
    status, _ = await world.as_("admin").post(f"/api/cases/{cA}/reveal", {"reason": "回访"})
    assert status == 200  # the limit is per user
    await asyncio.sleep(0)


async def test_search_matches_only_what_the_searcher_may_see(world):
    """Finding 4: `q=` with growing prefixes of a masked number recovered it. A reader who may
    not see the caller searches the masked text only; the operator who took the call and
    admins search what is stored."""
    cA = world.cases["cA"]

    async def found(username: str, q: str) -> bool:
        status, body = await world.as_(username).get(f"/api/cases?q={q}")
        assert status == 200, body
        return cA in [c["id"] for c in body["items"]]

    for prefix in (PHONE_A[:4], PHONE_A[:7], PHONE_A):
        assert not await found("cmd-a1", prefix), prefix  # 138****5678: no digit beyond the mask
    assert await found("cmd-a1", PHONE_A[:3] + "****" + PHONE_A[-4:])
    assert await found("cmd-a1", "噪声")
    for username in ("op1", "admin"):
        assert await found(username, PHONE_A), username
    assert not await found("op2", PHONE_A)  # another operator did not take this call

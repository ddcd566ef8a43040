"""The one test world: a server on the small city of tests/small_city.py with every account the
tests use, and a `World` that acts on it as any of them (tokens issued directly, no password
round trip). tests/test_workflow.py drives the closed loop through it; tests/security_world.py
adds four placed cases (`populate`) and who may see them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from small_city import A, A1, A1A, B, B1, CITY_ID, GB1A, small_city_data, write_small_city
from support import start_server
from dispatch.store.query import BY_ID, CaseQuery
from dispatch.workflow.audit import verify_chain

G1_POINT = [110.0025, 20.0025]  # grid G1 (一社区第1网格), far from the river: routed to A1-so
B_POINT = [110.0225, 20.0125]  # district B (北社区第1网格)
PASSWORD = "x"  # small-city accounts; the demo-password rule only bites on MongoDB
PHONE_A, NAME_A = "13812345678", "张三丰"
PHONE_B, NAME_B = "13900001111", "李四"

EXTRA_USERS = [
    {"username": "op2", "password": PASSWORD, "role": "operator", "scope": CITY_ID},
    {"username": "disp-b", "password": PASSWORD, "role": "dispatcher", "scope": B},
    {"username": "disp-city", "password": PASSWORD, "role": "dispatcher", "scope": CITY_ID},
    {"username": "gw2", "password": PASSWORD, "role": "grid_worker", "scope": "990101002001001"},
    {"username": "gw-b", "password": PASSWORD, "role": "grid_worker", "scope": GB1A},
    {"username": "cmd-b1", "password": PASSWORD, "role": "commander", "scope": B1},
    {"username": "cmd-a", "password": PASSWORD, "role": "commander", "scope": A},
    {"username": "cmd-city", "password": PASSWORD, "role": "commander", "scope": CITY_ID},
    {"username": "a1so", "password": PASSWORD, "role": "department", "scope": A1, "department": "A1-so"},
    {"username": "a1um", "password": PASSWORD, "role": "department", "scope": A1, "department": "A1-um"},
    {"username": "a1acs", "password": PASSWORD, "role": "department", "scope": A1A, "department": "A1a-cs"},
    {"username": "cityum", "password": PASSWORD, "role": "department", "scope": CITY_ID, "department": "city-um"},
    {"username": "aum", "password": PASSWORD, "role": "department", "scope": A, "department": "A-um"},
    {"username": "b1so", "password": PASSWORD, "role": "department", "scope": B1, "department": "B1-so"},
]


def city_data() -> dict:
    data = small_city_data()
    data["users.yaml"] = data["users.yaml"] + EXTRA_USERS
    return data


def write_city(where: Path) -> Path:
    return Path(write_small_city(where, city_data()))


class World:
    def __init__(self, client, server=None):
        self.client = client
        self.server = server
        self.ctx = client.ctx
        self.cases: dict[str, str] = {}  # label → case id (populate)
        self._clients = {}

    def as_(self, username: str):
        """A client holding a freshly issued token for `username` (no password round trip)."""
        if username not in self._clients:
            other = self.client.as_user()
            other.token = self.ctx.tokens.issue(username)
            self._clients[username] = other
        return self._clients[username]

    def set_clock(self, moment: datetime) -> None:
        self.ctx.clock.set(moment)

    async def stored(self, case_id: str) -> dict:
        return await self.ctx.cases.get(case_id)

    async def act(self, username: str, case_id: str, action: str, body: dict | None = None):
        status, payload = await self.as_(username).post(f"/api/cases/{case_id}/actions/{action}", body or {})
        if status == 200:
            doc = await self.stored(case_id)
            assert verify_chain(doc["history"]) is None
            assert doc["history"][-1]["action"] == action
            assert doc["history"][-1]["by"] == username
            assert payload["version"] == doc["version"]
        return status, payload

    async def ok(self, username: str, case_id: str, action: str, body: dict | None = None) -> dict:
        status, payload = await self.act(username, case_id, action, body)
        assert status == 200, (action, payload)
        return payload

    async def photo(self, username: str) -> str:
        """The id of a photo `username` uploaded (actions accept only the actor's own uploads)."""
        status, body = await self.as_(username).post("/api/attachments", raw=b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
        assert status == 201, body
        return body["id"]

    async def refused(self, expected: int, code: str | None, username, case_id, action, body=None) -> dict:
        before = await self.stored(case_id)
        status, payload = await self.act(username, case_id, action, body)
        assert status == expected, (action, payload)
        if code:
            assert payload["error"]["code"] == code, payload
        after = await self.stored(case_id)
        assert after["version"] == before["version"] and after["history"] == before["history"]
        return payload["error"]

    async def report(self, code="0105", point=G1_POINT, username="gw1", text="河面有垃圾漂浮") -> dict:
        status, case = await self.as_(username).post("/api/reports", {
            "category": code, "description": text, "location": {"type": "Point", "coordinates": point},
        })
        assert status == 201, case
        return case

    async def ticket(self, type_="help", category="H02", point=G1_POINT, **extra) -> dict:
        body = {"channel": "12345", "type": type_, "content": "老人独居需要帮助", "category": category,
                "caller": {"name": "张三", "phone": "13812345678"}, **extra}
        if point is not None:
            body["location"] = {"type": "Point", "coordinates": point}
        status, case = await self.as_("op1").post("/api/tickets", body)
        assert status == 201, case
        return case

    async def dispatched_case(self, code="0105", text="河面有垃圾漂浮") -> dict:
        """A grid case filed and dispatched to its routed department (A1-so for 0105)."""
        case = await self.report(code, text=text)
        await self.ok("disp-a", case["id"], "file")
        return await self.ok("disp-a", case["id"], "dispatch")

    async def accepted_case(self, code="0105") -> dict:
        """A grid case filed, dispatched to its routed department (A1-so) and signed."""
        case = await self.dispatched_case(code)
        return await self.ok("a1so" if code == "0105" else "a1um", case["id"], "sign")

    def label(self, case_id: str) -> str | None:
        return next((k for k, v in self.cases.items() if v == case_id), None)

    async def populate(self) -> None:
        op = self.as_("op1")
        for label, point, caller, dispatcher, department in (
            ("cA", G1_POINT, (NAME_A, PHONE_A), "disp-a", "A1-so"),
            ("cB", B_POINT, (NAME_B, PHONE_B), "disp-b", "B1-so"),
        ):
            status, body = await op.post("/api/tickets", {
                "channel": "12345", "type": "complaint", "category": "H01",
                "content": f"夜间施工噪声扰民，请回拨 {caller[1]}",
                "caller": {"name": caller[0], "phone": caller[1]},
                "location": {"type": "Point", "coordinates": point},
            })
            assert status == 201, body
            self.cases[label] = body["id"]
            for action, extra in (("file", {}), ("dispatch", {"department": department})):
                status, body = await self.as_(dispatcher).post(
                    f"/api/cases/{self.cases[label]}/actions/{action}", extra)
                assert status == 200, (label, action, body)
        worker = self.as_("gw1")
        for label in ("cG", "cO"):
            # A grid worker reports only inside its own grid (403 outside_scope elsewhere).
            status, body = await worker.post("/api/reports", {
                "category": "0105", "description": f"{label} 河面有漂浮物",
                "location": {"type": "Point", "coordinates": G1_POINT},
            })
            assert status == 201, body
            self.cases[label] = body["id"]
        status, body = await self.as_("disp-city").post(f"/api/cases/{self.cases['cO']}/actions/relocate", {
            "location": {"type": "Point", "coordinates": B_POINT}})
        assert status == 200, body

    async def counts(self) -> dict:
        """Documents per collection, and every case's version: to prove a probe changed nothing."""
        cases = await self.ctx.cases.find(CaseQuery(order=BY_ID, limit=100_000))
        out = {"cases": len(cases), "users": len(await self.ctx.users.all())}
        for kind in ("reveals", "admin_audit"):
            out[kind] = len(await self.ctx.audit_log.recent(kind, 100_000))
        out["versions"] = {c["_id"]: c["version"] for c in cases}
        out["users_state"] = {u["_id"]: (u.get("password_hash"), u.get("disabled"))
                              for u in await self.ctx.users.all()}
        return out


async def make_world(tmp_path_factory, *overrides: str, populate: bool = True) -> World:
    server, client = await start_server(write_city(tmp_path_factory.mktemp("city")), *overrides)
    world = World(client, server)
    if populate:
        await world.populate()
    return world


async def close_world(world: World) -> None:
    world.server.stop()
    await world.ctx.storage.close()

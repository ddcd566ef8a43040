"""A small city with one account per (role, scope) that matters, and four cases placed so that
every role's view differs: the ground truth the security tests check every read path against.

    cA  hotline ticket by op1 in grid G1 (district A, street A1), caller 张三丰 13812345678,
        the number also typed into the content; dispatched to A1-so (一街道办事处)
    cB  hotline ticket by op1 in grid GB1A (district B, street B1), caller 李四 13900001111;
        dispatched to B1-so
    cG  grid report by gw1 in its own grid G1 (category 0105, stays `reported`)
    cO  grid report by gw1 in its grid, moved (relocate) by the city dispatcher into district B:
        gw1, its reporter, may read it there, not act on it
"""

from __future__ import annotations

from pathlib import Path

from small_city import A, A1, B, B1, CITY_ID, G1, GB1A, small_city_data, write_small_city
from support import start_server
from dispatch.store.query import BY_ID, CaseQuery

G1_POINT = [110.0025, 20.0025]
B_POINT = [110.0225, 20.0125]
PASSWORD = "x"  # small-city accounts; the demo-password rule only bites on MongoDB

EXTRA_USERS = [
    {"username": "op2", "password": PASSWORD, "role": "operator", "scope": CITY_ID},
    {"username": "disp-b", "password": PASSWORD, "role": "dispatcher", "scope": B},
    {"username": "disp-city", "password": PASSWORD, "role": "dispatcher", "scope": CITY_ID},
    {"username": "gw-b", "password": PASSWORD, "role": "grid_worker", "scope": GB1A},
    {"username": "cmd-b1", "password": PASSWORD, "role": "commander", "scope": B1},
    {"username": "cmd-a", "password": PASSWORD, "role": "commander", "scope": A},
    {"username": "cmd-city", "password": PASSWORD, "role": "commander", "scope": CITY_ID},
    {"username": "a1so", "password": PASSWORD, "role": "department", "scope": A1, "department": "A1-so"},
    {"username": "b1so", "password": PASSWORD, "role": "department", "scope": B1, "department": "B1-so"},
]

PHONE_A, NAME_A = "13812345678", "张三丰"
PHONE_B, NAME_B = "13900001111", "李四"

# Who sees which of the four cases: the rule of dispatch.access.policy written out by hand.
VISIBLE = {
    "admin": {"cA", "cB", "cG", "cO"},
    "op1": {"cA", "cB", "cG", "cO"},
    "op2": {"cA", "cB", "cG", "cO"},
    "disp-city": {"cA", "cB", "cG", "cO"},
    "cmd-city": {"cA", "cB", "cG", "cO"},
    "disp-a": {"cA", "cG"},
    "cmd-a": {"cA", "cG"},
    "cmd-a1": {"cA", "cG"},
    "gw1": {"cA", "cG", "cO"},  # its grid, plus what it reported elsewhere
    "disp-b": {"cB", "cO"},
    "cmd-b1": {"cB", "cO"},
    "gw-b": {"cB", "cO"},
    "a1so": {"cA"},
    "b1so": {"cB"},
    "water-a": set(),
}


def city_data() -> dict:
    data = small_city_data()
    data["users.yaml"] = data["users.yaml"] + EXTRA_USERS
    return data


class World:
    def __init__(self, server, client):
        self.server = server
        self.client = client
        self.ctx = client.ctx
        self.cases: dict[str, str] = {}  # label → case id
        self._clients = {}

    def as_(self, username: str):
        """A client holding a freshly issued token for `username` (no password round trip)."""
        if username not in self._clients:
            other = self.client.as_user()
            other.token = self.ctx.tokens.issue(username)
            self._clients[username] = other
        return self._clients[username]

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
    path = write_small_city(tmp_path_factory.mktemp("security-city"), city_data())
    server, client = await start_server(Path(path), *overrides)
    world = World(server, client)
    if populate:
        await world.populate()
    return world


async def close_world(world: World) -> None:
    world.server.stop()
    await world.ctx.storage.close()


__all__ = ["A", "A1", "B", "B1", "CITY_ID", "G1", "GB1A", "World", "make_world", "close_world", "VISIBLE"]

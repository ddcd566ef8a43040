"""督办 goes to whoever is late (issue 12, improvement 6): a case overdue in 待核查 addresses
the checker (the grid's workers, or the 12345 callback), not the department that has done its
part; before that, the department."""

from support import login_as
from dispatch.workflow.escalation import supervision_addressee

HUBIN = [120.1584, 30.2560]


def test_addressee_follows_the_stage(demo):
    city = demo.ctx.city
    grid = {"id": "g1", "name": "东坡路社区 006 网格"}
    department = {"id": "s330102001-office", "name": "上城区湖滨街道办事处"}
    base = {"source": "grid", "jurisdiction": {"grid": grid}, "assignment": {"department": department}}
    assert supervision_addressee(city, {**base, "status": "accepted"}) == {"kind": "department", **department}
    assert supervision_addressee(city, {**base, "status": "handled"}) == {
        "kind": "checker", "id": "g1", "name": "东坡路社区 006 网格网格员"}
    assert supervision_addressee(city, {**base, "source": "hotline", "status": "handled"})["kind"] == "callback"


async def test_a_supervision_of_a_case_awaiting_its_check_addresses_the_checker(demo):
    grid = await login_as(demo, "grid_worker")
    dispatcher = await login_as(demo, "dispatcher")
    department = demo.as_user()
    account = next(u for u in demo.ctx.city.users if u["username"] == "dept_hubin")
    await department.login("dept_hubin", str(account["password"]))
    status, case = await grid.post("/api/reports", {
        "category": "S0406", "description": "人行道违停", "location": {"type": "Point", "coordinates": HUBIN},
    })
    assert status == 201, case
    steps = [(dispatcher, "file", {}), (dispatcher, "dispatch", {"department": "s330102001-office"}),
             (dispatcher, "supervise", {"note": "请尽快处置"}),
             (department, "sign", {}), (department, "feedback", {"result": "已劝离车辆"}),
             (dispatcher, "supervise", {"note": "请尽快核查"})]
    for client, action, body in steps:
        status, case = await client.post(f"/api/cases/{case['id']}/actions/{action}", body)
        assert status == 200, (action, case)
    stored = await demo.ctx.cases.get(case["id"])
    first, second = stored["supervisions"]
    assert first["to"] == {"kind": "department", "id": "s330102001-office", "name": "上城区湖滨街道办事处"}
    assert second["to"]["kind"] == "checker"
    assert second["to"]["id"] == stored["jurisdiction"]["grid"]["id"]

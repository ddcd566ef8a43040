"""People by name in a case (issue 12): every `by` in a case's JSON comes with the person's
name (`by_name`), for history entries written before names were recorded, for results and
checks, and for accounts made after the server started; a case given its location later
(补充定位) gets the place words intake gives a case located at once."""

from support import login_as
from test_durability import poll

DEPARTMENT = "s330102001-office"  # 上城区湖滨街道办事处


async def handled(demo, department) -> dict:
    """A located ticket dispatched to 湖滨街道办事处 and handled by `department` (a client)."""
    operator = await login_as(demo, "operator")
    dispatcher = await login_as(demo, "dispatcher")
    status, case = await operator.post("/api/tickets", {
        "type": "complaint", "content": "餐馆油烟直排", "address": "杭州市上城区东坡路3号",
        "caller": {"name": "李先生", "phone": "13812345678"},
    })
    assert status == 201, case
    steps = [(dispatcher, "file", {}), (dispatcher, "dispatch", {"department": DEPARTMENT}),
             (department, "sign", {}), (department, "feedback", {"result": "已责令整改，安装油烟净化器"})]
    for client, action, body in steps:
        status, case = await client.post(f"/api/cases/{case['id']}/actions/{action}", body)
        assert status == 200, (action, case)
    return case


def names_of(ctx) -> dict:
    return {u["username"]: u["name"] for u in ctx.city.users}


async def test_every_by_in_a_case_comes_with_the_persons_name(demo):
    department = demo.as_user()
    account = next(u for u in demo.ctx.city.users if u["username"] == "dept_hubin")
    await department.login(account["username"], str(account["password"]))
    case = await handled(demo, department)
    commander = await login_as(demo, "commander")
    status, seen = await commander.get(f"/api/cases/{case['id']}")
    assert status == 200
    names = names_of(demo.ctx)
    assert seen["result"]["by"] == "dept_hubin"
    assert seen["result"]["by_name"] == names["dept_hubin"] == "孙办事（湖滨街道办事处）"
    assert [(e["by"], e["by_name"]) for e in seen["history"]] == [(e["by"], names[e["by"]]) for e in seen["history"]]
    assert len({e["by"] for e in seen["history"]}) == 3  # operator, dispatcher, department


async def test_an_account_made_after_the_start_is_named_too(demo):
    admin = await login_as(demo, "admin")
    status, body = await admin.post("/api/admin/users", {
        "username": "dept_hubin_new", "password": "hubin-new-pass-2026", "role": "department",
        "scope": "330102001", "department": DEPARTMENT, "name": "钱新来（湖滨街道办事处）"})
    assert status == 201, body
    department = demo.as_user()
    await department.login("dept_hubin_new", "hubin-new-pass-2026")
    case = await handled(demo, department)
    dispatcher = await login_as(demo, "dispatcher")

    async def named():  # the name comes with a reload of the names in the background
        status, seen = await dispatcher.get(f"/api/cases/{case['id']}")
        assert status == 200
        return seen["result"].get("by_name") == "钱新来（湖滨街道办事处）"

    assert await poll(named, timeout=10)


async def test_a_ticket_located_later_gets_its_door_plate_and_community(demo):
    operator = await login_as(demo, "operator")
    status, located = await operator.post("/api/tickets", {
        "type": "complaint", "content": "餐馆油烟直排", "address": "杭州市上城区东坡路3号",
        "caller": {"name": "李先生", "phone": "13812345678"},
    })
    assert status == 201, located
    status, ticket = await operator.post("/api/tickets", {
        "type": "complaint", "content": "餐馆油烟直排", "address": "某个登记簿里没有的地址",
        "caller": {"name": "李先生", "phone": "13812345678"},
    })
    assert status == 201, ticket
    assert ticket["place"] is None and ticket["flags"]["needs_location"] is True
    status, moved = await operator.post(f"/api/cases/{ticket['id']}/actions/relocate", {"location": located["location"]})
    assert status == 200, moved
    assert moved["place"] == located["place"]
    assert moved["place"]["door_plate"]["address"] == "上城区湖滨街道东坡路3号"

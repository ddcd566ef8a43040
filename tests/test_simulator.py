"""The demo simulator: a seeded, accelerated day through the real intake and workflow.

Demo traffic, not storage: these run on the embedded engine only (a simulated morning is
thousands of requests; the store's own behaviour is proven on both engines elsewhere)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from dispatch.workflow.audit import verify_chain
from dispatch.config import ConfigError
from dispatch.domain import OPEN_STATUSES
from dispatch.demo.simulator import Simulator, SimClock, start_simulator, stop_simulator
from support import DEMO_CITY, login_as, start_server
from dispatch.store.query import OLDEST, CaseQuery

# A Tuesday (a working day), early morning: the day's rhythm starts slow and picks up.
START = datetime(2025, 11, 18, 7, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


async def run_day(ctx, seed: int, steps: int, step_seconds: float = 60, rate: float = 2.0) -> Simulator:
    simulator = Simulator(ctx, seed=seed, rate_per_minute=rate, clock=SimClock(START))
    with simulator.driving_clock():
        for _ in range(steps):
            await simulator.step(step_seconds)
    simulator.stop()
    return simulator


async def all_cases(ctx) -> list[dict]:
    return await ctx.cases.find(CaseQuery(order=OLDEST, limit=100_000))


async def test_simulated_morning_moves_cases_through_the_loop(demo_embedded):
    ctx = demo_embedded.ctx
    simulator = await run_day(ctx, seed=11, steps=240)  # 07:30 → 11:30, simulated
    assert simulator.errors == 0
    cases = await all_cases(ctx)
    assert len(cases) > 150

    districts = Counter((c.get("jurisdiction") or {}).get("district", {}).get("name") for c in cases)
    assert len([d for d in districts if d]) >= 4, districts
    sources = Counter(c["source"] for c in cases)
    assert sources["grid"] and sources["hotline"]

    statuses = Counter(c["status"] for c in cases)
    assert statuses["closed"] >= 10, statuses
    assert statuses["accepted"] and statuses["dispatched"], statuses
    # Not everything goes smoothly: returns, reworks, late stages.
    assert simulator.counts["return"] > 0
    assert sum(c["counters"].get("reworks", 0) for c in cases) > 0
    assert any(e["action"] == "overdue" for c in cases for e in c["history"])

    for case in cases:
        assert verify_chain(case["history"]) is None, case["number"]
        times = [e["at"] for e in case["history"]]
        assert times == sorted(times), case["number"]  # one clock drives intake, actions and sweep
    closed = [[e["action"] for e in case["history"]] for case in cases if case["status"] == "closed"]
    assert all(actions[0] == "report" and actions[-1] in ("close", "answer") for actions in closed), closed
    loop_closed = [actions for actions in closed if actions[-1] == "close"]
    assert all({"dispatch", "sign", "feedback", "check"} <= set(actions) for actions in loop_closed), loop_closed

    # Closed grid cases were checked by a grid worker whose scope covers the place.
    accounts = {u["username"] for u in ctx.city.users}
    checkers = [entry["by"] for case in cases if case["source"] == "grid"
                for entry in case["history"] if entry["action"] == "check"]
    assert all(by.endswith("网格员") or by in accounts for by in checkers), checkers


async def test_clock_is_restored_after_driving(demo_embedded):
    ctx = demo_embedded.ctx
    simulator = await run_day(ctx, seed=3, steps=5)
    assert not ctx.clock.driven  # back on real time
    assert ctx.workflow.clock is ctx.clock and ctx.intake.clock is ctx.clock
    assert simulator.counts["reports"] + simulator.counts["tickets"] > 0


async def test_same_seed_same_day(demo_embedded):
    ctx = demo_embedded.ctx
    first = await run_day(ctx, seed=5, steps=60)
    journal = list(first.journal)
    # A second simulator on a fresh store must replay the same day.
    server, client = await start_server(DEMO_CITY)
    try:
        second = await run_day(client.ctx, seed=5, steps=60)
    finally:
        server.stop()
        await client.ctx.storage.close()
    assert list(second.journal) == journal
    assert len(journal) > 20


async def test_people_and_simulator_share_cases(demo_embedded):
    """A case a person reports is picked up by the simulated dispatcher and department."""
    ctx = demo_embedded.ctx
    simulator = Simulator(ctx, seed=2, rate_per_minute=0.01, clock=SimClock(START))
    with simulator.driving_clock():
        simulator.start()
        grid = next(u for u in ctx.city.users if u["role"] == "grid_worker")
        await demo_embedded.login(grid["username"], grid["password"])
        status, case = await demo_embedded.post("/api/reports", {
            "category": "S0406", "description": "人行道上停了三辆车",
            "location": {"type": "Point", "coordinates": [120.1584, 30.2560]},  # grid01's 东坡路社区
        })
        assert status == 201, case
        current, minutes = case, 0
        while current["status"] != "closed" and minutes < 24 * 60:  # a simulated day at most
            await simulator.step(60)
            minutes += 1
            current = await ctx.cases.get(case["id"])
    simulator.stop()
    actions = [e["action"] for e in current["history"]]
    assert current["status"] == "closed", actions
    assert actions[:3] == ["report", "file", "dispatch"]
    assert simulator.errors == 0


async def test_live_task_starts_and_stops(demo_embedded):
    ctx = demo_embedded.ctx
    ctx.config["simulator"] = {"seed": 1, "rate_per_minute": 30, "speed": 20, "warmup_hours": 0.05}
    subscribers = ctx.bus.subscriber_count  # the live hub and the assist's index of open cases
    task = await start_simulator(ctx)
    await asyncio.sleep(1.5)
    assert not task.done()
    await stop_simulator(task)
    assert task.cancelled()
    cases = await all_cases(ctx)
    assert cases  # the warm-up and the live run created cases
    assert ctx.bus.subscriber_count == subscribers  # the simulator let go of the bus
    open_cases = [c for c in cases if c["status"] in OPEN_STATUSES]
    assert open_cases


async def test_bad_configuration_is_a_config_error(demo_embedded):
    demo_embedded.ctx.config["simulator"] = {"rate_per_minute": "many"}
    with pytest.raises(ConfigError):
        Simulator.from_config(demo_embedded.ctx)


async def test_the_cast_follows_a_department_published_while_it_runs(demo_embedded):
    """The simulator's cast read the city it started with: a department an admin published
    afterwards (and a rule sending cases to it) made it fail with a KeyError."""
    simulator = Simulator(demo_embedded.ctx, seed=3)
    admin = await login_as(demo_embedded, "admin")
    status, current = await admin.get("/api/admin/config/departments")
    assert status == 200, current
    added = {"id": "c-new", "name": "市新设执法局", "type": "urban_management", "jurisdiction": demo_embedded.ctx.city.id}
    status, published = await admin.request("PUT", "/api/admin/config/departments",
                                            {"version": current["version"], "items": [*current["items"], added]})
    assert status == 201, published
    on_duty = simulator.cast.department("c-new")
    assert (on_duty.role, on_duty.department, on_duty.name) == ("department", "c-new", "市新设执法局值班员")

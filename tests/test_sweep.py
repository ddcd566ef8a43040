"""The deadline sweep (SPEC §4 Deadlines, §6): warning, overdue, 督办 and 提级, each exactly once.

Cases go through the real API on the small city (a 12345 ticket about a river, routed to the
district water bureau, filed and dispatched by the district dispatcher) with the workflow's
clock pinned to known instants; the sweep then runs at injected instants. Expected instants are
worked out by hand on the city's working hours (08:30-12:00, 13:30-17:30) and checked against
the calendar's own fraction arithmetic.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_durability import poll
from dispatch.workflow.audit import verify_chain
from dispatch.config import ConfigError
from dispatch.live.events import EventBus
from dispatch.sweep.scheduler import Jobs, start_scheduler, stop_scheduler
from dispatch.store import mongo
from dispatch.store.memory import MemoryCases, MemoryEvents
from dispatch.workflow.escalation import escalation_target
from dispatch.sweep.sweeper import human_duration, run_sweep
from dispatch.workflow.stageclock import thresholds
from dispatch.store.query import BY_ID, NEWEST, OLDEST, CaseQuery, Change

TZ = ZoneInfo("Asia/Shanghai")
RIVER_POINT = [110.0025, 20.0076]  # next to the small city's river: routed to 甲区林水局 (A-water)
CITY, DISTRICT_A, STREET_A1, STREET_B1 = "990100", "990101", "990101001", "990102001"


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


async def login(client, username: str):
    """A client logged in as `username` (kept per server: password checks are slow on purpose)."""
    sessions = client.app.__dict__.setdefault("_test_sessions", {})
    if username not in sessions:
        other = client.as_user()
        await other.login(username, "x")
        sessions[username] = other
    return sessions[username]


def pin_clock(ctx, moment: datetime) -> None:
    ctx.clock.set(moment)


async def act(client, username: str, case_id: str, action: str, at: datetime, body=None) -> dict:
    pin_clock(client.ctx, at)
    user = await login(client, username)
    status, case = await user.post(f"/api/cases/{case_id}/actions/{action}", body or {})
    assert status == 200, case
    return case


async def dispatched_case(client, at: datetime, content: str = "河面有大片漂浮物") -> str:
    """A ticket filed and dispatched at `at`: its 1wh sign clock starts then."""
    operator = await login(client, "op1")
    status, case = await operator.post("/api/tickets", {
        "channel": "12345", "type": "report", "content": content, "category": "0105",
        "caller": {"name": "张三", "phone": "13800001111"},
        "location": {"type": "Point", "coordinates": RIVER_POINT},
    })
    assert status == 201, case
    assert case["assignment"]["department"]["id"] == "A-water"
    await act(client, "disp-a", case["id"], "file", at)
    case = await act(client, "disp-a", case["id"], "dispatch", at)
    assert case["status"] == "dispatched" and case["clock"]["stage"] == "sign"
    return case["id"]


async def stored(ctx, case_id: str) -> dict:
    return await ctx.cases.get(case_id)


def system_actions(case: dict) -> list[str]:
    return [entry["action"] for entry in case["history"] if entry["by"] == "system"]


# --------------------------------------------------------------------------------------------
# Thresholds, once each
# --------------------------------------------------------------------------------------------


async def test_thresholds_fire_at_their_instants_exactly_once(small):
    ctx = small.ctx
    start = local("2026-11-23 09:00")  # a Monday (working day)
    case_id = await dispatched_case(small, start)
    await ctx.tail.caught_up()  # the report's and the dispatch's events are past
    events = []
    ctx.bus.subscribe(lambda event: events.append(event))

    case = await stored(ctx, case_id)
    clock = case["clock"]
    # 1wh from 09:00 ends at 10:00; 80% of it is 48 working minutes.
    assert clock["deadline"] == local("2026-11-23 10:00")
    warn_at = local("2026-11-23 09:48")
    assert clock["warn_at"] == warn_at == case["next_due_at"]
    fraction = ctx.calendar.elapsed_fraction
    assert fraction(start, clock["deadline"], warn_at, "1wh") == pytest.approx(0.8)
    assert fraction(start, clock["deadline"], warn_at - timedelta(seconds=1), "1wh") < 0.8

    async def sweep(at: datetime) -> dict:
        return await run_sweep(ctx, at)

    assert (await sweep(warn_at - timedelta(seconds=1)))["examined"] == 0
    counts = await sweep(warn_at)
    assert counts["warned"] == 1 and counts["overdue"] == 0
    case = await stored(ctx, case_id)
    assert case["flags"]["warning"] and not case["flags"]["overdue"]
    assert case["next_due_at"] == local("2026-11-23 10:00")

    assert (await sweep(local("2026-11-23 10:00")))["overdue"] == 1
    # Supervised 1wh after the deadline, escalated 1wd (7.5wh) after it: Tuesday 10:00.
    assert (await sweep(local("2026-11-23 11:00")))["supervised"] == 1
    assert (await sweep(local("2026-11-24 09:59:59")))["escalated"] == 0
    assert (await sweep(local("2026-11-24 10:00")))["escalated"] == 1
    # Sweeping on and on (every 20 minutes for two days) records nothing more.
    moment = local("2026-11-23 08:00")
    while moment < local("2026-11-26 08:00"):
        counts = await sweep(moment)
        assert counts["examined"] == 0, moment
        moment += timedelta(minutes=20)

    case = await stored(ctx, case_id)
    assert system_actions(case) == ["warn", "overdue", "supervise", "escalate"]
    assert all(entry["stage"] == "sign" for entry in case["history"] if entry["by"] == "system")
    assert case["flags"]["warning"] and case["flags"]["overdue"] and case["flags"]["supervised"]
    # The district water bureau serves district A: the level above it is the city.
    assert case["flags"]["escalated_to"] == CITY
    assert case["escalation"]["level"] == "city" and case["escalation"]["by"] == "system"
    assert len(case["supervisions"]) == 1 and len(case["escalations"]) == 1
    assert "next_due_at" not in case
    assert verify_chain(case["history"]) is None
    await ctx.tail.caught_up()
    assert [e["type"] for e in events] == ["case.updated"] * 4  # one logged change per sweep that acted
    notes = [entry["note"] for entry in case["history"] if entry["by"] == "system"]
    assert notes[0] == "签收时限已用去 80%，将于 11月23日 10:00 到期，请抓紧签收"
    assert notes[3].endswith("系统自动提级至 示例市（市级）")

    # The API shows what the sweep did.
    dispatcher = await login(small, "disp-a")
    status, shown = await dispatcher.get(f"/api/cases/{case_id}")
    assert status == 200 and shown["flags"]["overdue"] is True and "next_due_at" not in shown


async def test_late_sweep_applies_every_passed_threshold_in_one_update(small):
    ctx = small.ctx
    case_id = await dispatched_case(small, local("2026-11-23 09:00"))
    before = await stored(ctx, case_id)
    counts = await run_sweep(ctx, local("2026-11-25 12:00"))  # the server was down two days
    assert counts == {**counts, "examined": 1, "warned": 1, "overdue": 1, "supervised": 1, "escalated": 1}
    after = await stored(ctx, case_id)
    assert after["version"] == before["version"] + 1
    assert system_actions(after) == ["warn", "overdue", "supervise", "escalate"]
    due = [entry["due_at"] for entry in after["history"] if entry["by"] == "system"]
    assert due == [local("2026-11-23 09:48"), local("2026-11-23 10:00"), local("2026-11-23 11:00"),
                   local("2026-11-24 10:00")]
    assert all(entry["at"] == local("2026-11-25 12:00") for entry in after["history"] if entry["by"] == "system")
    assert verify_chain(after["history"]) is None


async def test_working_clock_skips_lunch_and_weekend(small):
    ctx = small.ctx
    lunch = await dispatched_case(small, local("2026-11-23 11:30"), "午前派遣的漂浮物")
    friday = await dispatched_case(small, local("2026-11-27 17:00"), "周五傍晚派遣的漂浮物")
    # 11:30 + 48 working minutes = 30 before lunch + 18 after 13:30.
    assert (await stored(ctx, lunch))["clock"]["warn_at"] == local("2026-11-23 13:48")
    # Friday 17:00 + 1wh: 30 minutes on Friday, 30 on Monday morning.
    case = await stored(ctx, friday)
    assert case["clock"]["deadline"] == local("2026-11-30 09:00")
    assert case["clock"]["warn_at"] == local("2026-11-30 08:48")

    assert (await run_sweep(ctx, local("2026-11-23 13:00")))["warned"] == 0  # 90 wall minutes, 30 working
    assert (await run_sweep(ctx, local("2026-11-23 13:48")))["warned"] == 1
    assert (await run_sweep(ctx, local("2026-11-29 23:00")))["warned"] == 0  # Sunday night
    counts = await run_sweep(ctx, local("2026-11-30 08:48"))
    assert counts["warned"] == 1
    assert system_actions(await stored(ctx, friday)) == ["warn"]


# --------------------------------------------------------------------------------------------
# Idempotence and restart safety
# --------------------------------------------------------------------------------------------


async def test_second_sweep_at_same_instant_changes_nothing(small):
    ctx = small.ctx
    ids = [await dispatched_case(small, local("2026-11-23 09:00") + timedelta(minutes=i), f"漂浮物{i}")
           for i in range(5)]
    for moment in ("2026-11-23 09:50", "2026-11-23 10:02", "2026-11-24 10:30"):
        first = await run_sweep(ctx, local(moment))
        assert first["examined"] > 0
        snapshot = [await stored(ctx, case_id) for case_id in ids]
        second = await run_sweep(ctx, local(moment))
        assert second["examined"] == 0
        assert [await stored(ctx, case_id) for case_id in ids] == snapshot


async def test_restarted_server_finds_nothing_new(small):
    ctx = small.ctx
    case_id = await dispatched_case(small, local("2026-11-23 09:00"))
    await run_sweep(ctx, local("2026-11-23 10:00"))
    before = await stored(ctx, case_id)
    # A new process on the same storage: fresh services, nothing kept in memory but the cases.
    restarted = dataclasses.replace(ctx, bus=EventBus(), jurisdiction_layers={})
    assert restarted.bus is not ctx.bus
    counts = await run_sweep(restarted, local("2026-11-23 10:00"))
    assert counts["examined"] == 0
    assert await stored(ctx, case_id) == before
    # It carries on from where the old one stopped: the next threshold, once.
    assert (await run_sweep(restarted, local("2026-11-23 11:00")))["supervised"] == 1
    assert system_actions(await stored(ctx, case_id)) == ["warn", "overdue", "supervise"]


async def test_signed_case_no_longer_warns_for_the_sign_stage(small):
    ctx = small.ctx
    case_id = await dispatched_case(small, local("2026-11-23 09:00"))
    assert (await run_sweep(ctx, local("2026-11-23 09:50")))["warned"] == 1
    case = await act(small, "water-a", case_id, "sign", local("2026-11-23 09:55"))
    assert case["status"] == "accepted" and case["clock"]["stage"] == "handle"
    assert case["flags"]["warning"] is False
    # The sign deadline (10:00) passes: nothing is due for a stage that is over.
    assert (await run_sweep(ctx, local("2026-11-23 10:00")))["examined"] == 0
    assert (await run_sweep(ctx, local("2026-11-23 16:00")))["examined"] == 0
    stored_case = await stored(ctx, case_id)
    assert system_actions(stored_case) == ["warn"]
    # The handle clock (1wd = 7.5wh from 09:55) warns at 80% = 6h after 09:55: 17:25.
    assert stored_case["clock"]["warn_at"] == local("2026-11-23 17:25")
    assert (await run_sweep(ctx, local("2026-11-23 17:25")))["warned"] == 1
    entries = [e for e in (await stored(ctx, case_id))["history"] if e["by"] == "system"]
    assert [(e["action"], e["stage"]) for e in entries] == [("warn", "sign"), ("warn", "handle")]


async def test_case_without_running_clock_loses_its_stale_cursor(small):
    ctx = small.ctx
    case_id = await dispatched_case(small, local("2026-11-23 09:00"))
    case = await stored(ctx, case_id)
    # As if an older version had closed the case without clearing the sweep cursor.
    await ctx.cases.update(case_id, case["version"], Change(sets={"status": "closed"}))
    counts = await run_sweep(ctx, local("2026-11-24 12:00"))
    assert counts["cleared"] == 1 and counts["warned"] == counts["overdue"] == 0
    case = await stored(ctx, case_id)
    assert "next_due_at" not in case and system_actions(case) == []
    assert (await run_sweep(ctx, local("2026-11-24 12:00")))["examined"] == 0


async def test_version_conflict_is_left_for_the_next_sweep(small):
    ctx = small.ctx
    case_id = await dispatched_case(small, local("2026-11-23 09:00"))
    real_update = ctx.cases.update
    raced = []

    async def racing_update(cid, version, update):
        if not raced:  # a user's action lands between the sweep's read and its write
            raced.append(cid)
            await real_update(cid, version, Change(sets={"description": "补充说明：漂浮物面积较大"}))
        return await real_update(cid, version, update)

    ctx.cases.update = racing_update
    counts = await run_sweep(ctx, local("2026-11-23 09:50"))
    assert counts["conflicts"] == 1 and counts["warned"] == 0
    case = await stored(ctx, case_id)
    assert case["description"] == "补充说明：漂浮物面积较大" and system_actions(case) == []
    counts = await run_sweep(ctx, local("2026-11-23 09:50"))
    assert counts["conflicts"] == 0 and counts["warned"] == 1


async def test_backlog_is_worked_through_in_batches(small):
    ctx = small.ctx
    ids = [await dispatched_case(small, local("2026-11-23 09:00") + timedelta(seconds=i), f"漂浮物{i}")
           for i in range(23)]
    counts = await run_sweep(ctx, local("2026-11-23 09:50"), batch=5)
    assert counts["examined"] == 23 and counts["warned"] == 23
    for case_id in ids:
        assert system_actions(await stored(ctx, case_id)) == ["warn"]


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------


async def test_escalation_goes_to_the_command_level_above(small):
    ctx = small.ctx
    city = ctx.city
    case = await stored(ctx, await dispatched_case(small, local("2026-11-23 09:00")))

    def target(department: str | None, escalated_to: str | None = None):
        assignment = {**case["assignment"], "department": {"id": department, "name": "?"} if department else None}
        return escalation_target(city, {**case, "assignment": assignment,
                                        "flags": {**case["flags"], "escalated_to": escalated_to}})

    assert target("A1-so") == DISTRICT_A  # street office → district
    assert target("A1a-cs") == STREET_A1  # a community's service centre → its street
    assert target("A-water") == CITY  # district bureau → city
    assert target("city-um") is None  # a city department: nobody above
    assert target(None) == STREET_A1  # no department: from the case's own grid, up to its street
    assert target("A1-so", DISTRICT_A) == CITY  # already escalated once
    assert target("A1-so", CITY) is None


async def test_graces_are_configurable_and_can_be_switched_off(small):
    ctx = small.ctx
    case_id = await dispatched_case(small, local("2026-11-23 09:00"))
    clock = (await stored(ctx, case_id))["clock"]
    assert [t.action for t in thresholds(ctx, clock)] == ["warn", "overdue", "supervise", "escalate"]
    ctx.config["deadlines"]["supervise_grace"] = "30m"
    ctx.config["deadlines"]["escalate_grace"] = ""
    steps = thresholds(ctx, clock)
    assert [(t.action, t.at) for t in steps][2:] == [("supervise", local("2026-11-23 10:30"))]
    counts = await run_sweep(ctx, local("2026-11-30 09:00"))
    assert counts["supervised"] == 1 and counts["escalated"] == 0
    assert "next_due_at" not in await stored(ctx, case_id)
    assert human_duration("1wd") == "1 个工作日" and human_duration("30m") == "30 分钟"


async def test_due_query_reads_the_index_earliest_first(small, monkeypatch):
    # The server engine files a case already due when written under its writer's minute and walks
    # minute by minute: the order is by deadline among cases written in one minute. The store's
    # wall clock is held so that the four are (the CI run of ee5973f wrote them across a minute's
    # end and got the fourth last).
    held = datetime.now(timezone.utc)
    monkeypatch.setattr(mongo, "_now", lambda: held)
    ctx = small.ctx
    ids = [await dispatched_case(small, local("2026-11-23 09:00") + timedelta(minutes=m), f"漂浮物{m}")
           for m in (30, 0, 20, 10)]
    due = await ctx.cases.due(local("2026-11-23 10:08"), 10)
    assert [case["_id"] for case in due] == [ids[1], ids[3], ids[2]]  # warn 09:48, 09:58, 10:08
    assert [c["_id"] for c in await ctx.cases.due(local("2026-11-23 10:08"), 2)] == [ids[1], ids[3]]
    assert [c["_id"] for c in await ctx.cases.due(local("2026-11-23 10:08"), 10, exclude=[ids[3]])] == [ids[1], ids[2]]


# --------------------------------------------------------------------------------------------
# Scheduler
# --------------------------------------------------------------------------------------------


async def test_scheduler_runs_the_sweep_and_only_one_process_leads(small):
    ctx = small.ctx
    case_id = await dispatched_case(small, local("2026-01-05 09:00"))  # long overdue by now
    ctx.clock.release()  # the scheduler sweeps at the real time
    ctx.config["scheduler"].update(enabled=True, sweep_seconds=3600)
    scheduler = start_scheduler(ctx)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"deadline-sweep", "daily-stats"}
        assert jobs["deadline-sweep"].max_instances == 1 and jobs["deadline-sweep"].coalesce
        trigger = jobs["daily-stats"].trigger
        assert str(trigger.fields[trigger.FIELD_NAMES.index("hour")]) == "0"
        assert str(trigger.fields[trigger.FIELD_NAMES.index("minute")]) == "5"
        async def swept():  # the first sweep runs right away
            return "next_due_at" not in await stored(ctx, case_id)
        await poll(swept, 5, 0.02)
        assert system_actions(await stored(ctx, case_id)) == ["warn", "overdue", "supervise", "escalate"]
        # A second process on the same database does not run jobs while the lease is held.
        other = Jobs(dataclasses.replace(ctx, bus=EventBus(), jurisdiction_layers={}))
        assert await other.sweep() is None
    finally:
        await stop_scheduler(scheduler)
    assert await other.sweep() is not None  # released at stop: the other one takes over


async def test_scheduler_disabled_in_tests(small):
    assert small.ctx.config["scheduler"]["enabled"] is False
    assert start_scheduler(small.ctx) is None


@pytest.mark.parametrize("key, value", [
    ("deadlines.supervise_grace", "1 working hour"), ("deadlines.escalate_grace", "5x"),
    ("scheduler.daily_stats_at", "25:00"),
])
async def test_scheduler_refuses_bad_config(small, key, value):
    section, name = key.split(".")
    small.ctx.config["scheduler"]["enabled"] = True
    small.ctx.config[section][name] = value
    with pytest.raises(ConfigError, match=key):
        start_scheduler(small.ctx)


async def test_daily_snapshot_is_skipped_without_stats(small, monkeypatch):
    import sys

    jobs = Jobs(small.ctx)
    calls = []

    async def snapshot_day(ctx, day):
        calls.append(day)

    fake = type(sys)("dispatch.kpi.stats")
    fake.snapshot_day = snapshot_day
    monkeypatch.setitem(sys.modules, "dispatch.kpi.stats", fake)
    await jobs.daily_snapshot()
    assert calls == [(datetime.now(small.ctx.tz) - timedelta(days=1)).date()]
    monkeypatch.setitem(sys.modules, "dispatch.kpi.stats", None)  # import fails: a log line, no error
    await jobs.daily_snapshot()
    assert len(calls) == 1


# --------------------------------------------------------------------------------------------
# The embedded engine's sorted indexes answer exactly like a full scan
# --------------------------------------------------------------------------------------------

BASE = datetime(2026, 11, 23, tzinfo=timezone.utc)
minutes = st.integers(0, 20).map(lambda m: BASE + timedelta(minutes=m))
case_ids = st.integers(0, 6).map(lambda n: f"id{n}")
operations = st.lists(st.one_of(
    st.tuples(st.just("insert"), case_ids, minutes, st.sampled_from(["reported", "closed"])),
    st.tuples(st.just("due"), case_ids, minutes, st.none()),
    st.tuples(st.just("clear"), case_ids, st.none(), st.none()),
), max_size=40)
reads = st.lists(st.tuples(minutes, st.sampled_from([1, 2, 3, 100]), st.sampled_from([NEWEST, OLDEST, BY_ID]),
                           st.booleans()), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations, reads)
def test_embedded_indexes_answer_like_a_full_scan(operations, read_list):
    """The sweep's (next_due_at, id) list and the case list's (created_at, id) list, kept up to
    date through inserts and changes, give what sorting every case would give."""
    loop = asyncio.new_event_loop()
    try:
        cases, model = MemoryCases(MemoryEvents()), {}
        for kind, case_id, moment, status in operations:
            if kind == "insert" and case_id not in model:
                doc = {"_id": case_id, "created_by": "u", "status": status, "created_at": moment, "version": 1}
                loop.run_until_complete(cases.insert(doc))
                model[case_id] = dict(doc)
            elif kind in ("due", "clear") and case_id in model:
                change = Change(sets={"next_due_at": moment}) if kind == "due" else Change(unsets={"next_due_at"})
                loop.run_until_complete(cases.update(case_id, model[case_id]["version"], change))
                model[case_id]["version"] += 1
                if kind == "due":
                    model[case_id]["next_due_at"] = moment
                else:
                    model[case_id].pop("next_due_at", None)
        for now, limit, order, open_only in read_list:
            due = loop.run_until_complete(cases.due(now, limit))
            expected = sorted((d["next_due_at"], d["_id"]) for d in model.values()
                              if "next_due_at" in d and d["next_due_at"] <= now)[:limit]
            assert [(d["next_due_at"], d["_id"]) for d in due] == expected
            page = loop.run_until_complete(cases.find(CaseQuery(order=order, limit=limit, open_only=open_only)))
            key = (lambda d: d["_id"]) if order == BY_ID else (lambda d: (d["created_at"], d["_id"]))
            listed = sorted((d for d in model.values() if not open_only or d["status"] == "reported"),
                            key=key, reverse=order == NEWEST)[:limit]
            assert [d["_id"] for d in page] == [d["_id"] for d in listed]
    finally:
        loop.close()

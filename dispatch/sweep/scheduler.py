"""Background jobs on the server's own event loop: the deadline sweep and the daily KPI snapshot.

APScheduler's `AsyncIOScheduler` runs them on the running asyncio (Tornado) loop, so a job
shares the handlers' storage objects and needs no locks: the sweep's writes are version-guarded
like any action's. `max_instances=1, coalesce=True`: a sweep that takes longer than its
interval is never run twice at once, and missed runs collapse into one.

Several server processes may share one MongoDB (SPEC §7); a lease document makes exactly one of
them run the jobs, and another takes over within `scheduler.lease_seconds` if it stops.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
import uuid
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from dispatch.config import ConfigError
from dispatch.intake.attachments import expire_unreferenced
from dispatch.sweep.sweeper import check_config, run_sweep

log = logging.getLogger(__name__)

LEASE = "scheduler"


class Jobs:
    """The scheduled jobs of one process, and the lease that lets them run."""

    def __init__(self, ctx):
        self.ctx = ctx
        conf = ctx.config["scheduler"]
        self.sweep_seconds = float(conf["sweep_seconds"])
        self.lease_seconds = float(conf.get("lease_seconds") or max(3 * self.sweep_seconds, 60))
        self.leases = ctx.storage.leases
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    async def _leading(self) -> bool:
        return await self.leases.acquire(LEASE, self.holder, self.ctx.clock.now(), self.lease_seconds)

    async def sweep(self) -> dict | None:
        try:
            if not await self._leading():
                return None
            counts = await run_sweep(self.ctx)
            now = self.ctx.clock.now()
            await self.ctx.storage.housekeeping(now)  # lapsed revocations, finished claims
            await expire_unreferenced(self.ctx, now)  # photos uploaded but never attached
        except Exception:  # noqa: BLE001 - the scheduler must survive a failed run
            log.exception("期限巡检失败")
            return None
        changed = {k: v for k, v in counts.items() if v and k != "examined"}
        if changed:
            log.info("期限巡检: 检查 %d 件, %s", counts["examined"], changed)
        return counts

    async def daily_snapshot(self) -> None:
        """At the start of a city day, snapshot the KPIs of the day that just ended."""
        try:
            from dispatch.kpi.stats import snapshot_day
        except ImportError:
            log.info("每日统计快照: dispatch.kpi.stats.snapshot_day 尚不可用，跳过")
            return
        day = (self.ctx.clock.now().astimezone(self.ctx.tz) - timedelta(days=1)).date()
        try:
            if not await self._leading():
                return
            result = snapshot_day(self.ctx, day)
            if inspect.isawaitable(result):
                await result
            log.info("每日统计快照已生成: %s", day.isoformat())
        except Exception:  # noqa: BLE001
            log.exception("每日统计快照失败: %s", day.isoformat())

    async def release(self) -> None:
        try:
            await self.leases.release(LEASE, self.holder)
        except Exception:  # noqa: BLE001 - best effort at shutdown; the lease expires anyway
            log.exception("释放调度租约失败")


def _time_of_day(text: str) -> tuple[int, int]:
    try:
        hour, minute = (int(part) for part in str(text).split(":"))
    except ValueError:
        raise ConfigError(f"配置项 scheduler.daily_stats_at 应为 HH:MM，收到 {text!r}") from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ConfigError(f"配置项 scheduler.daily_stats_at 应为 HH:MM，收到 {text!r}")
    return hour, minute


def start_scheduler(ctx) -> AsyncIOScheduler | None:
    """Start the jobs on the running loop; None when `scheduler.enabled` is false (tests).

    The sweep runs once right away (catching up on whatever fell due while the server was
    down), then every `scheduler.sweep_seconds`.
    """
    conf = ctx.config["scheduler"]
    if not conf.get("enabled", True):
        log.info("调度器未启用 (scheduler.enabled=false): 不运行期限巡检")
        return None
    check_config(ctx)
    hour, minute = _time_of_day(conf.get("daily_stats_at") or "00:05")
    # APScheduler logs every run at INFO (two lines per sweep); the jobs log what they change.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    jobs = Jobs(ctx)
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=ctx.tz)
    scheduler.add_job(
        jobs.sweep, IntervalTrigger(seconds=jobs.sweep_seconds, timezone=ctx.tz), id="deadline-sweep",
        name="期限巡检", max_instances=1, coalesce=True, next_run_time=datetime.now(ctx.tz),
    )
    scheduler.add_job(
        jobs.daily_snapshot, CronTrigger(hour=hour, minute=minute, timezone=ctx.tz), id="daily-stats",
        name="每日统计快照", max_instances=1, coalesce=True, misfire_grace_time=3600,
    )
    scheduler.dispatch_jobs = jobs  # for stop_scheduler and for tests
    scheduler.start()
    log.info("调度器已启动: 每 %g 秒期限巡检，每日 %02d:%02d 统计快照", jobs.sweep_seconds, hour, minute)
    return scheduler


async def stop_scheduler(scheduler: AsyncIOScheduler | None) -> None:
    if scheduler is None:
        return
    scheduler.shutdown(wait=False)
    await scheduler.dispatch_jobs.release()

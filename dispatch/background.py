"""The background loops every process runs beside its requests (the log tail, the KPI
rollups' applier, the assist's model follower) stop the same way."""

from __future__ import annotations

import asyncio


async def cancel(task: asyncio.Task | None) -> None:
    """Cancel `task` and wait until it has stopped (its `finally` blocks have run)."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass

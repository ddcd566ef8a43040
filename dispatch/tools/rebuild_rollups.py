"""Rebuild the KPI rollups from the cases, on the configured MongoDB / FerretDB.

    python -m dispatch.tools.rebuild_rollups [--config config.yaml] [--city data/cities/...]
                                             [--set k=v] [--wait SECONDS]

The cases are the truth; the rollups (dispatch/kpi/rollups.py) are counters kept from the event
log. Rebuild them after loading history in bulk, after restoring a backup, after the servers
were stopped for longer than the event log keeps changes (a week), or when the KPI definitions
change. The rebuild takes the applier's lease (`kpi-rollups`): with servers running it waits
up to `--wait` seconds for them to let it go (they take it back afterwards and apply whatever
changed meanwhile). The embedded store lives in one server's memory, so this tool refuses it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from dispatch.config import ConfigError, load_config


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dispatch.tools.rebuild_rollups", description="从案件重建 KPI 汇总")
    p.add_argument("--config", help="config.yaml 路径（默认: 仓库根目录的 config.yaml）")
    p.add_argument("--city", help="城市包目录（默认: 配置项 city.path）")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="覆盖配置项（可重复）")
    p.add_argument("--wait", type=float, default=0, help="租约被运行中的服务占用时最多等待的秒数")
    return p


async def main_async(argv=None) -> int:
    args = parser().parse_args(argv)
    sets = list(args.set) + ([f"city.path={args.city}"] if args.city else [])
    try:
        config = load_config(args.config, sets)
    except ConfigError as exc:
        print(f"配置错误: {exc}", file=sys.stderr)
        return 2
    uri = str(config["storage"]["uri"] or "embedded")
    if not uri.startswith(("mongodb://", "mongodb+srv://")):
        print("storage.uri 为 embedded：内嵌存储只存在于服务器进程的内存中，重建在服务启动时已自动完成（无历史数据）。"
              "请把 storage.uri 配置为 mongodb://... 后再使用本工具。", file=sys.stderr)
        return 2
    from zoneinfo import ZoneInfo

    from dispatch.kpi.rollups import Rollups
    from dispatch.store import open_store
    from dispatch.workflow.deadlines import BusinessCalendar
    from geo.loader import load_city

    city = load_city(config["city"]["path"])
    storage = await open_store(uri, config["storage"]["database"])
    try:
        rollups = Rollups(storage, city, BusinessCalendar.from_city_config(city.config), ZoneInfo(city.timezone))
        started = time.perf_counter()
        try:
            result = await rollups.rebuild(wait_seconds=args.wait)
        except RuntimeError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        print(f"已重建 KPI 汇总：{result['cases']} 件案件 → {result['buckets']} 个汇总文档，"
              f"{result['pending']} 个待到期文档，事件游标 {result['cursor']}，用时 {time.perf_counter() - started:.1f} 秒")
        # The rollup collections were dropped and made again: on FerretDB their GIN indexes went too.
        print("如使用 FerretDB：请再运行一次 python -m dispatch.tools.tune_ferretdb（重建删除了汇总集合及其 GIN 索引，"
              "不重建索引时报表会读取整张表）")
        return 0
    finally:
        await storage.close()


def main(argv=None) -> int:
    return asyncio.run(main_async(argv))


if __name__ == "__main__":
    sys.exit(main())

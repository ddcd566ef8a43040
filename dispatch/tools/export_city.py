"""Write a version of the city configuration as a city package folder, from the configured
database:

    python -m dispatch.tools.export_city --out DIR [--version N] [--config config.yaml] [--set k=v]

The folder loads to the same model as the version (`python server.py --city DIR` serves it),
so it is also how a configuration edited in the admin pages goes back into version control or
to another deployment. knowledge.yaml is the knowledge base as it is now (its articles are
versioned one by one, not with the configuration). Without `--version`, the current one. The embedded store lives in the
memory of one server process, which a command cannot reach: this tool refuses it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from dispatch.admin import knowledge
from dispatch.admin.export import write_package
from dispatch.admin.versions import KINDS
from dispatch.config import ConfigError, load_config
from dispatch.store import open_store


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dispatch.tools.export_city", description="导出城市配置为城市包目录")
    p.add_argument("--out", required=True, help="输出目录")
    p.add_argument("--version", type=int, help="版本号（默认: 当前版本）")
    p.add_argument("--config", help="config.yaml 路径（默认: 仓库根目录的 config.yaml）")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="覆盖配置项（可重复）")
    return p


async def export(config: dict, out: str, version: int | None) -> tuple[int, list[str]]:
    store = await open_store(config["storage"]["uri"], config["storage"]["database"])
    try:
        head = await store.config.head()
        if head == 0:
            raise ConfigError("数据库中还没有配置版本（管理员首次打开配置时才写入第 1 版）：城市包目录本身就是当前配置")
        version = head if version is None else version
        if not 1 <= version <= head:
            raise ConfigError(f"没有第 {version} 版配置（当前是第 {head} 版）")
        items = {}
        for kind in KINDS:
            held = await store.config.items(kind, version)
            items[kind] = held[1] if held else None
        heads = await store.knowledge.heads()
        if heads:  # the knowledge base as it is now, whichever version of the rest
            items["knowledge"] = knowledge.package_items(heads)
        return version, write_package(config["city"]["path"], items, out, version)
    finally:
        await store.close()


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        config = load_config(args.config, args.set)
        if config["storage"]["uri"] in ("", "embedded"):
            raise ConfigError("storage.uri 为 embedded：内嵌存储只在服务器进程的内存中，命令行工具无法读取；"
                              "请把 storage.uri 配置为 mongodb://... 后再导出")
        version, files = asyncio.run(export(config, args.out, args.version))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"已导出第 {version} 版到 {args.out}: {', '.join(files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

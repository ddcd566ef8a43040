"""Account administration from the command line, on the configured MongoDB.

    python -m dispatch.tools.admin_cli [--config config.yaml] [--set k=v] COMMAND ...

    create-user USERNAME --role ROLE --scope JURISDICTION [--department ID] [--name NAME]
    reset-password USERNAME
    disable USERNAME
    enable USERNAME
    list

Passwords are never taken on the command line (other users of the machine can read it from
the process list): they are asked for twice on a terminal, or read from one line of standard
input with `--password-stdin`. Resetting a password and disabling an account revoke every token
of that account at once, in every server process.

The embedded store lives inside the memory of one server process: a separate command cannot
reach it, so this tool refuses it. With the embedded store, use the admin API of the running
server instead (`/api/admin/users`, signed in as an admin).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from dispatch.access.auth import ROLES, Accounts, account_view
from dispatch.config import ConfigError, load_config
from dispatch.errors import ApiError

EMBEDDED_REFUSAL = (
    "storage.uri 为 embedded：内嵌存储只存在于服务器进程的内存中，命令行工具无法访问正在运行的服务器，"
    "在这里做的修改也不会被任何服务器看到。\n"
    "请改用运行中服务器的管理接口（管理员登录后 GET/POST /api/admin/users，PATCH /api/admin/users/<用户名>），"
    "或把 storage.uri 配置为 mongodb://... 后再使用本工具。"
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dispatch.tools.admin_cli", description="账号管理（MongoDB 存储）")
    p.add_argument("--config", help="config.yaml 路径（默认: 仓库根目录的 config.yaml）")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="覆盖配置项（可重复）")
    sub = p.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-user", help="创建账号")
    create.add_argument("username")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--scope", required=True, help="辖区 id（城市 id 表示全市）")
    create.add_argument("--department", help="部门 id（role=department 时必填）")
    create.add_argument("--name", help="显示名")
    create.add_argument("--password-stdin", action="store_true", help="从标准输入读取一行作为密码")
    reset = sub.add_parser("reset-password", help="重置密码（吊销该账号全部令牌）")
    reset.add_argument("username")
    reset.add_argument("--password-stdin", action="store_true", help="从标准输入读取一行作为密码")
    for name, text in (("disable", "停用账号（吊销其全部令牌）"), ("enable", "启用账号")):
        sub.add_parser(name, help=text).add_argument("username")
    sub.add_parser("list", help="列出账号")
    return p


def read_password(from_stdin: bool, stdin=None) -> str:
    if from_stdin:
        line = (stdin or sys.stdin).readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("新密码: ")
    if getpass.getpass("再输入一次: ") != first:
        raise ApiError(400, "password_mismatch", "两次输入的密码不一致")
    return first


async def run(args: argparse.Namespace, accounts: Accounts, out, stdin=None) -> int:
    """Carry out one command on `accounts`; prints to `out`; returns the exit code."""
    username = getattr(args, "username", None)
    if args.command == "create-user":
        doc = await accounts.create(username, read_password(args.password_stdin, stdin), args.role, args.scope,
                                    args.department, args.name)
        print(f"已创建账号 {doc['_id']}（{doc['role']}，辖区 {doc['scope']}）", file=out)
    elif args.command == "reset-password":
        await accounts.reset_password(username, read_password(args.password_stdin, stdin))
        print(f"已重置 {username} 的密码，其已登录的会话全部失效", file=out)
    elif args.command in ("disable", "enable"):
        await accounts.set_disabled(username, args.command == "disable")
        print(f"已{'停用' if args.command == 'disable' else '启用'}账号 {username}", file=out)
    elif args.command == "list":
        for doc in await accounts.all():
            view = account_view(doc)
            state = "停用" if view["disabled"] else "正常"
            print(f"{view['username']:<20} {view['role']:<12} {view['scope']:<16} {view['department'] or '-':<20} "
                  f"{state}  {view['name'] or ''}", file=out)
    return 0


async def main_async(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        config = load_config(args.config, args.set)
    except ConfigError as exc:
        print(f"配置错误: {exc}", file=sys.stderr)
        return 2
    uri = str(config["storage"]["uri"] or "embedded")
    if not uri.startswith(("mongodb://", "mongodb+srv://")):
        print(EMBEDDED_REFUSAL, file=sys.stderr)
        return 2
    from dispatch.store import open_store
    from geo.loader import load_city

    storage = await open_store(uri, config["storage"]["database"])
    try:
        accounts = Accounts(storage.users, load_city(config["city"]["path"]))
        return await run(args, accounts, sys.stdout)
    except ApiError as exc:
        print(f"失败: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await storage.close()


def main(argv=None) -> int:
    return asyncio.run(main_async(argv))


if __name__ == "__main__":
    sys.exit(main())

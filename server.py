"""Start the server: `python server.py [--city PATH] [--config PATH] [--port N] [--host H] [--workers N] [--set k=v]`.

With `--workers N` (config `server.workers`) the listening socket is bound once and N worker
processes are forked to serve it; this process stays behind as their supervisor (see `supervise`).
Every worker builds its own application and store connection after the fork. The workers share
nothing but the database: case changes reach every worker's WebSocket clients through the store's
event log (dispatch/live/tail.py), and a lease lets one of them run the deadline sweep.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time

import tornado.httpserver
import tornado.netutil

from dispatch.app import make_app
from dispatch.config import ConfigError, load_config
from dispatch.handlers.base import BodyLimit
from dispatch.sweep.scheduler import start_scheduler, stop_scheduler
from dispatch.demo.simulator import start_simulator, stop_simulator
from geo.errors import CityPackageError

log = logging.getLogger("server")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="城市运行一网统管 — 事件派遣平台")
    parser.add_argument("--config", help="config.yaml 路径（默认: 仓库根目录的 config.yaml）")
    parser.add_argument("--city", help="城市包目录（默认: 演示城市 data/cities/hangzhou-demo）")
    parser.add_argument("--port", type=int, help="监听端口（默认 8888）")
    parser.add_argument("--host", help="监听地址（默认 127.0.0.1）")
    parser.add_argument("--workers", type=int,
                        help="服务进程数（默认 1，即 server.workers）；大于 1 时需要 mongodb:// 存储")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="覆盖任一配置项，如 --set scheduler.sweep_seconds=2（可重复）")
    parser.add_argument("--simulate", action="store_true",
                        help="演示模式: 模拟网格上报、热线来电和处置流转（simulator.* 配置项）")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> dict:
    overrides = list(args.set)
    if args.city:
        overrides.append(f"city.path={args.city}")
    if args.port:
        overrides.append(f"server.port={args.port}")
    if args.host:
        overrides.append(f"server.host={args.host}")
    if args.workers is not None:
        overrides.append(f"server.workers={args.workers}")
    config = load_config(args.config, overrides)
    worker_count(config)  # refuse a bad or impossible `server.workers` before anything starts
    return config


def worker_count(config: dict) -> int:
    """`server.workers`, checked: a positive integer, and 1 on the embedded store."""
    raw = config["server"].get("workers", 1)
    if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not str(raw).strip().isdigit() \
            or int(raw) < 1:
        raise ConfigError(f"server.workers 必须是正整数，收到 {raw!r}")
    workers = int(raw)
    if workers > 1 and str(config["storage"]["uri"]).strip() == "embedded":
        raise ConfigError(
            f"server.workers={workers} 需要 mongodb:// 存储: 内置存储（storage.uri=embedded）的数据只在"
            "一个进程的内存里，多个进程之间无法共享。请用 --workers 1，或把 storage.uri 设为 MongoDB 地址。")
    return workers


def http_server(app, config: dict) -> tornado.httpserver.HTTPServer:
    """The HTTP server in front of the application, with the limits of `server.*`."""
    server = config["server"]
    return tornado.httpserver.HTTPServer(
        BodyLimit(app, int(server["max_request_bytes"])),  # JSON 413 instead of Tornado's bare 400
        # The client's address is decided in one place (dispatch.handlers.base.client_address),
        # trusting X-Forwarded-For only from `server.trusted_proxies`; Tornado's xheaders would
        # believe whoever sends it.
        xheaders=False,
        max_body_size=1 << 62,  # BodyLimit answers first; Tornado's own check would send a bare 400
        # Tornado times the wait for a complete request head with this one clock, from the moment
        # it starts waiting: half-sent headers and idle keep-alive connections both end after it.
        idle_connection_timeout=float(server["header_timeout"]),
        body_timeout=float(server["body_timeout"]),
    )


async def serve(config: dict, simulate: bool = False, sockets=None) -> None:
    """Run one server process until SIGINT/SIGTERM. `sockets`: listening sockets bound before a
    fork (`--workers`); None: listen on `server.host`:`server.port` here."""
    app = await make_app(config)
    ctx = app.ctx
    server = http_server(app, config)
    host, port = config["server"]["host"], int(config["server"]["port"])
    if sockets is None:
        server.listen(port, host)
    else:
        server.add_sockets(sockets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    grids = sum(1 for j in ctx.city.jurisdictions.values() if j.level == "grid")
    log.info("城市 %s（%s）: %d 个辖区, 其中 %d 个单元网格; %d 个部门; %d 个类别",
             ctx.city.name, ctx.city.id, len(ctx.city.jurisdictions), grids,
             len(ctx.city.departments), len(ctx.city.categories))
    log.info("存储: %s", ctx.storage.description)
    log.info("服务已启动: http://%s:%d", host, port)
    simulation = await start_simulator(ctx) if simulate else None  # demo traffic (dispatch/demo/simulator.py)
    scheduler = start_scheduler(ctx)  # deadline sweep + daily KPI snapshot (None if disabled)
    await stop.wait()
    server.stop()
    await stop_simulator(simulation)
    await stop_scheduler(scheduler)
    await ctx.stop()
    await ctx.storage.close()


STARTUP_FAILED = 2  # a worker's exit status when it refused to start (config, city package)
QUICK_DEATH_SECONDS = 10  # a worker that dies sooner than this is restarted after a back-off
MAX_BACKOFF_SECONDS = 30


def supervise(workers: int) -> int | None:
    """Fork `workers` worker processes and look after them.

    In a worker: returns its index (0 .. workers-1). In this, the supervising process: never
    returns; exits once every worker has ended. A worker killed by a signal or exiting with an
    error is started again (after a growing pause if it keeps dying within seconds); a worker
    that refused to start (bad city package ...) stops them all, as the next would refuse too.
    SIGTERM/SIGINT to the supervisor are passed to every worker, which finish their requests
    and exit; the supervisor exits with them. (Tornado's `fork_processes` does the restarting
    but leaves the workers running when its own process is stopped, hence this small loop.)
    """
    children: dict[int, tuple[int, float]] = {}  # pid -> (index, started at)
    stopping = False
    exit_code = 0

    def start(index: int) -> bool:
        pid = os.fork()
        if pid == 0:  # the worker: back to default signal handling until serve() installs its own
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            return True
        children[pid] = (index, time.monotonic())
        return False

    def stop_all(signum=signal.SIGTERM, frame=None):
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for index in range(workers):
        if start(index):
            return index
    log.info("%d 个服务进程已启动（监督进程 pid %d）", workers, os.getpid())
    backoff: dict[int, float] = {}
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        index, started = children.pop(pid)
        if stopping:
            continue
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            log.info("服务进程 %d（pid %d）已退出", index, pid)
            continue
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == STARTUP_FAILED:
            log.error("服务进程 %d（pid %d）启动失败，停止全部服务进程", index, pid)
            exit_code = STARTUP_FAILED
            stop_all()
            continue
        how = (f"被信号 {os.WTERMSIG(status)} 终止" if os.WIFSIGNALED(status)
               else f"以状态 {os.WEXITSTATUS(status)} 退出")
        pause = 0.0
        if time.monotonic() - started < QUICK_DEATH_SECONDS:
            pause = backoff[index] = min(MAX_BACKOFF_SECONDS, backoff.get(index, 0.5) * 2)
        else:
            backoff.pop(index, None)
        log.warning("服务进程 %d（pid %d）%s，%s重新启动", index, pid, how, f"{pause:.0f} 秒后" if pause else "")
        deadline = time.monotonic() + pause
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, deadline - time.monotonic()))  # a stop signal cuts the pause short
        if not stopping and start(index):
            return index
    sys.exit(exit_code)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    try:
        args = parse_args(argv)
        config = build_config(args)
        workers = worker_count(config)
        sockets = None
        if workers > 1:
            server = config["server"]
            try:
                sockets = tornado.netutil.bind_sockets(int(server["port"]), server["host"])
            except OSError as exc:
                raise ConfigError(f"无法监听 {server['host']}:{server['port']}: {exc}") from None
            index = supervise(workers)  # returns only in a worker
            log.info("服务进程 %d/%d", index + 1, workers)
            args.simulate = args.simulate and index == 0  # one simulator, not one per worker
        asyncio.run(serve(config, simulate=args.simulate, sockets=sockets))
    except (ConfigError, CityPackageError) as exc:
        print(f"启动失败: {exc}", file=sys.stderr)
        return STARTUP_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())

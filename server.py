"""Start the server: `python server.py [--city PATH] [--config PATH] [--port N] [--host H] [--set k=v]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

import tornado.httpserver

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
    return load_config(args.config, overrides)


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


async def serve(config: dict, simulate: bool = False) -> None:
    app = await make_app(config)
    ctx = app.ctx
    server = http_server(app, config)
    host, port = config["server"]["host"], int(config["server"]["port"])
    server.listen(port, host)
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
    ctx.scheduler = start_scheduler(ctx)  # deadline sweep + daily KPI snapshot (None if disabled)
    await stop.wait()
    server.stop()
    await stop_simulator(simulation)
    await stop_scheduler(ctx.scheduler)
    await ctx.storage.close()


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args = parse_args(argv)
        asyncio.run(serve(build_config(args), simulate=args.simulate))
    except (ConfigError, CityPackageError) as exc:
        print(f"启动失败: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

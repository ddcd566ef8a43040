"""The application object: every service the handlers use, built once from config + city."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path
from zoneinfo import ZoneInfo

import tornado.web

from dispatch.clock import Clock
from dispatch.config import ConfigError

from dispatch.assist.service import Assist
from dispatch.admin.versions import CityConfig
from dispatch.access.auth import Sessions, TokenSigner, bootstrap_users, demo_passwords_refused, hash_password
from dispatch.workflow.deadlines import BusinessCalendar
from dispatch.live.events import EventBus
from dispatch.handlers import routes
from dispatch.handlers.base import NotFoundHandler
from dispatch.handlers.pages import StaticFiles
from dispatch.intake.service import Intake
from dispatch.live.hub import LiveHub
from dispatch.live.tail import LogTail
from dispatch.kpi.mapcounts import MapCounts
from dispatch.kpi.rollups import Rollups
from dispatch.rules import Router
from dispatch.people import PeopleNames
from dispatch.store import open_store
from dispatch.access.throttle import LoginThrottle, RateLimit
from dispatch.workflow.service import Workflow
from geo.city import City
from geo.loader import load_city

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "static"


@dataclass
class Context:
    config: dict
    city: City
    router: Router
    storage: Any  # dispatch.store: MemoryStore or MongoStore
    calendar: BusinessCalendar
    tz: ZoneInfo
    tokens: TokenSigner
    bus: EventBus = field(default_factory=EventBus)
    # The one clock: every service below reads it; tests and the simulator drive it.
    clock: Clock = field(default_factory=Clock)
    # Encoded once per process, then served as they are: the city's jurisdiction layers by
    # (level, within), and the OpenAPI document.
    jurisdiction_layers: dict[tuple[str | None, str | None], Any] = field(default_factory=dict)
    openapi_json: bytes | None = None
    dummy_password_hash: str = ""
    # The city configuration version `city`, `router` and `calendar` come from (dispatch/admin;
    # 0: the package folder, nothing stored yet). They change together, in `adopt`.
    config_version: int = 0

    def __post_init__(self):
        self.cases = self.storage.cases
        self.users = self.storage.users
        # People's names by username for the case pages (loaded by `build_context`).
        self.people = PeopleNames(self.users)
        self.attachments = self.storage.attachments
        self.sessions = Sessions(self.tokens, self.users, self.storage.revocations)
        self.audit_log = self.storage.audit
        # Counted in the store: every server process shares them (SPEC §7).
        self.throttle = LoginThrottle.from_config(self.config["auth"], self.storage.limits,
                                                  clock=self.clock.timestamp)
        self.reveal_limit = RateLimit(self.storage.limits, "reveal", int(self.config["auth"]["reveals_per_hour"]),
                                      3600, clock=self.clock.timestamp)
        self.workflow = Workflow(self, self.clock)
        self.intake = Intake(self, self.clock)
        self.live = LiveHub(self.bus, self.city.id, self.tz, timer=self.workflow.timer)
        # Feeds `bus` from the store's event log; started by `build_context` (it needs the loop).
        self.city_config = CityConfig(self)
        self.tail = LogTail(self.storage.events, self.bus, on_config=self.city_config.follow)
        # KPI rollups, kept from the same log (started by `build_context`).
        self.rollups = Rollups(self.storage, self.city, self.calendar, self.tz, self.clock)
        # The command map's counts of open cases per area (from the rollups where they can say).
        self.map_counts = MapCounts(self.cases, self.rollups, self.city, self.storage.persistent)
        # Operator assist (SPEC §9): category model, knowledge base, caller history; started by
        # `build_context` (its jobs need the loop).
        self.assist = Assist(self)

    def adopt(self, city: City, router: Router, version: int) -> None:
        """Serve another version of the city configuration. One synchronous step: a request sees
        the old city, router and calendar or the new ones, never a mix."""
        self.city, self.router, self.calendar, self.config_version = (
            city, router, BusinessCalendar.from_city_config(city.config), version)
        self.openapi_json = None  # its enums name the city's categories and departments
        self.jurisdiction_layers = {}  # the layers may have been re-imported
        self.rollups.adopt(city, self.calendar)
        self.map_counts.adopt(city)
        self.assist.adopt(city)

    async def stop(self) -> None:
        """Stop the background work that reads the store (the KPI applier, the assist's jobs,
        the log tail), before the store is closed: a read still waiting on a closed client
        ended in a traceback at every shutdown."""
        await self.rollups.stop()
        await self.assist.stop()
        await self.tail.stop()

    @property
    def warning_fraction(self) -> float:
        return float(self.config["deadlines"]["warning_fraction"])


class Application(tornado.web.Application):
    def __init__(self, ctx: Context):
        self.ctx = ctx
        super().__init__(
            # /static/ as a route of our own, not the static_path setting: that setting also puts
            # Tornado's /favicon.ico and /robots.txt routes first, which hid FaviconHandler
            # (a 404, and a 405 without Allow).
            [*routes(), (r"/static/(.*)", StaticFiles, {"path": str(STATIC)})],
            default_handler_class=NotFoundHandler,
            compress_response=True,
            # A live client that stops answering pings (a laptop closed, a network gone) is
            # dropped, so its socket and subscription do not pile up (`live.ping_seconds`).
            websocket_ping_interval=float(ctx.config.get("live", {}).get("ping_seconds", 20)),
            # (Tornado caps the timeout at the interval.)
            websocket_ping_timeout=float(ctx.config.get("live", {}).get("ping_timeout_seconds", 20)),
        )


async def build_context(config: dict, city: City | None = None, router: Router | None = None,
                        hasher=hash_password) -> Context:
    """`city`, `router` and `hasher` can be shared by tests that build many applications."""
    check_token_secret(config)
    city = city or load_city(config["city"]["path"])
    storage = await open_store(config["storage"]["uri"], config["storage"]["database"])
    ctx = Context(
        config=config,
        city=city,
        router=router or Router(city),
        storage=storage,
        calendar=BusinessCalendar.from_city_config(city.config),
        tz=ZoneInfo(city.timezone),
        tokens=TokenSigner(config["auth"].get("secret"), config["auth"]["token_ttl"]),
        dummy_password_hash=hasher("not-a-real-account"),
    )
    await bootstrap_users(ctx.users, city, hasher, refuse_demo=demo_passwords_refused(config, storage.persistent))
    await ctx.people.load()
    await ctx.tail.start()
    await ctx.assist.start()
    ctx.live.sequence = ctx.tail.seq  # clients resume by the log's numbers
    await ctx.city_config.start()  # after the tail: a version published meanwhile is followed
    ctx.rollups.start()
    return ctx


MIN_SECRET_CHARS = 16


def check_token_secret(config: dict) -> None:
    """On a server store every process must sign and check tokens with the same key, and a
    restart must not log everybody out: `auth.secret` is required there (a random key per start
    is only for the in-memory demo, or when `auth.allow_random_secret` says so explicitly)."""
    auth = config["auth"]
    if config["storage"]["uri"] in ("", "embedded") or auth.get("allow_random_secret"):
        return
    secret = str(auth.get("secret") or "")
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"storage.uri 是持久化存储，必须配置 auth.secret（至少 {MIN_SECRET_CHARS} 个字符，所有服务进程相同），"
            "例如 python3 -c 'import secrets; print(secrets.token_urlsafe(32))'；"
            "仅在开发时可设 auth.allow_random_secret=true")


async def make_app(config: dict, city: City | None = None, **shared) -> Application:
    return Application(await build_context(config, city, **shared))

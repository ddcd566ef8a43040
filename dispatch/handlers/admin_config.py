"""The city configuration's versions (SPEC §9; admins; every change audited in `admin_audit`).

* `GET /api/admin/config/{kind}` → `{version, items, editable}` (kind: calendar, zones,
  departments, categories, rules, addresses, knowledge; `editable`: whether this admin may
  change it). `knowledge` is the whole knowledge base, versioned by its articles
  (dispatch/admin/knowledge.py), not by the numbered city configuration.
* `PUT /api/admin/config/{kind}` `{version, items, note?}` → 201 the new version
  `{version, at, by, note, kinds, diff}`; 409 `stale_version` if `version` is not the current
  one; 422 `invalid_config` with `problems: [{file, item, problem, text}]` (every one), and
  nothing changes.
* `POST /api/admin/config/rules/dry-run` `{items, days?}` → `{replayed, changed, skipped,
  sample: [{case, before, after}], moves}`.
* `GET /api/admin/config/history?limit=` → `{version, items: [version]}`.
* `POST /api/admin/config/rollback` `{version, note?}` → 201 the new version.
"""

from __future__ import annotations

from dispatch import validation as v
from dispatch.access import policy
from dispatch.admin import dry_run, knowledge
from dispatch.admin.versions import KINDS
from dispatch.clock import utcnow
from dispatch.errors import ApiError, bad_request
from dispatch.handlers.base import BaseHandler
from dispatch.rules import Router

KIND_IN_PATH = "(" + "|".join((*KINDS, knowledge.KIND)) + ")"
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a city's door plates run to megabytes
MAX_DEPTH = 32


class ConfigMixin:
    body_limit = MAX_CONFIG_BYTES

    def refuse(self, refusal: ApiError | None) -> None:
        if refusal is not None:
            raise refusal

    async def audit(self, action: str, target: str, **details) -> None:
        await self.ctx.audit_log.record("admin_audit", {
            "at": utcnow(), "by": self.user.username, "action": action, "target": target,
            "address": self.client_ip, **details,
        })

    def body_of(self, allowed: set, required: set) -> dict:
        body = self.json_body()
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise bad_request(f"未知字段: {', '.join(unknown)}", code="unknown_field", field=unknown[0])
        for key in sorted(required):
            if key not in body:
                raise bad_request(f"缺少字段 {key}", code="missing_field", field=key)
        if "items" in body:
            _storable(body["items"], "items", 0)
        return body


def _version(body: dict, key: str = "version") -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"字段 {key} 必须是整数（版本号）", code="invalid_type", field=key)
    return value


def _storable(value, path: str, depth: int) -> None:
    """Items go into the database as they are: no operator-like or dotted keys, bounded depth."""
    if depth > MAX_DEPTH:
        raise bad_request("items 嵌套过深", code="invalid_value", field="items")
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("$") or "." in key or "\0" in key:
                raise bad_request(f"{path} 中的键 {key!r} 无效（不能以 $ 开头或含有 .）", code="invalid_value",
                                  field="items")
            _storable(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for item in value:
            _storable(item, path, depth + 1)


class ConfigKindHandler(ConfigMixin, BaseHandler):
    access = {"GET": ("config", "read"), "PUT": ("config", "edit")}
    requires_json = True

    async def get(self, kind: str):
        if kind == knowledge.KIND:
            current = await knowledge.get(self.ctx.assist.knowledge)
        else:
            current = await self.ctx.city_config.get(kind)
        self.send({**current, "editable": policy.may_edit_config(self.user, self.ctx.city, kind)})

    async def put(self, kind: str):
        body = self.body_of({"version", "items", "note"}, {"version", "items"})
        seen = _version(body)
        note = v.text(body, "note", max_len=500, default="")
        city = self.ctx.city
        user = self.user

        def allow(before, after):
            self.refuse(policy.config_refusal(user, city, kind, before, after))

        if kind == knowledge.KIND:
            allow(None, None)
            published = await knowledge.publish(self.ctx.assist.knowledge, self.ctx.storage.knowledge, self.ctx.clock,
                                                city, user, seen, body["items"], note)
        else:
            published = await self.ctx.city_config.publish(user, kind, seen, body["items"], note, allow=allow)
        await self.audit("publish_config", kind, version=published["version"], note=note,
                         counts=published["diff"][kind]["counts"])
        self.send(published, 201)


class DryRunHandler(ConfigMixin, BaseHandler):
    access = {"POST": ("config", "read")}
    requires_json = True

    async def post(self):
        body = self.body_of({"items", "days"}, {"items"})
        days = body.get("days", 30)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 90:
            raise bad_request("days 必须是 1~90 的整数", code="invalid_value", field="days")
        proposed = await self.ctx.city_config.proposed("rules", body["items"])
        report = await dry_run.replay(self.ctx.cases, self.ctx.router, Router(proposed), days)
        self.send(report)


class HistoryHandler(ConfigMixin, BaseHandler):
    access = {"GET": ("config", "read")}

    async def get(self):
        limit = v.query_int(self.get_query_argument("limit", None), "limit", default=50, low=1, high=500)
        items = await self.ctx.city_config.history(limit)
        self.send({"version": self.ctx.city_config.version, "items": items})


class RollbackHandler(ConfigMixin, BaseHandler):
    access = {"POST": ("config", "edit")}
    requires_json = True

    async def post(self):
        body = self.body_of({"version", "note"}, {"version"})
        target = _version(body)
        note = v.text(body, "note", max_len=500, default="")
        self.refuse(policy.rollback_refusal(self.user, self.ctx.city))
        published = await self.ctx.city_config.rollback(self.user, target, note)
        await self.audit("rollback_config", ",".join(published["kinds"]), version=published["version"],
                         rollback_of=target, note=published["note"])
        self.send(published, 201)


routes = [
    (r"/api/admin/config/history", HistoryHandler),
    (r"/api/admin/config/rollback", RollbackHandler),
    (r"/api/admin/config/rules/dry-run", DryRunHandler),
    (rf"/api/admin/config/{KIND_IN_PATH}", ConfigKindHandler),
]

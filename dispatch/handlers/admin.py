"""Account administration (admin only, every change audited in `admin_audit`).

* `GET /api/admin/users` → `{items: [account]}`; `POST /api/admin/users` `{username, password,
  role, scope, department?, name?}` → 201 account.
* `GET /api/admin/users/{username}` → account; `PATCH /api/admin/users/{username}`
  `{password?, disabled?, scope?}` resets the password, disables or enables the account, moves
  it to another jurisdiction; each revokes every token the account holds.
* `GET /api/admin/audit?kind=reveals|admin_audit&case=&user=&limit=` → the audit records.
"""

from __future__ import annotations

from dispatch import validation as v
from dispatch.access.policy import account_refusal
from dispatch.access.auth import Accounts, account_view
from dispatch.errors import bad_request, conflict
from dispatch.handlers.base import BaseHandler

USERNAME_IN_PATH = r"([A-Za-z0-9][A-Za-z0-9_.-]{1,63})"


class AdminMixin:
    def accounts(self) -> Accounts:
        return Accounts(self.ctx.users, self.ctx.city)

    def check_scope(self, account_scope: str | None) -> None:
        """An admin scoped to a district manages only the accounts inside it."""
        refusal = account_refusal(self.user, self.ctx.city, account_scope)
        if refusal is not None:
            raise refusal

    async def audit(self, action: str, target: str, **details) -> None:
        await self.ctx.audit_log.record("admin_audit", {
            "at": self.ctx.clock.now(), "by": self.user.username, "action": action, "target": target,
            "address": self.client_ip, **details,
        })


class UsersHandler(AdminMixin, BaseHandler):
    access = {"GET": ("user", "manage"), "POST": ("user", "manage")}

    async def get(self):
        docs = await self.accounts().all()
        self.send({"items": [account_view(doc) for doc in docs
                             if account_refusal(self.user, self.ctx.city, doc.get("scope")) is None]})

    async def post(self):
        body = self.json_body()
        _only(body, {"username", "password", "role", "scope", "department", "name"})
        self.check_scope(body.get("scope") if isinstance(body.get("scope"), str) else None)
        doc = await self.accounts().create(
            v.text(body, "username", required=True, max_len=64, allow_empty=False),
            _password(body, required=True),
            v.text(body, "role", required=True, max_len=32, allow_empty=False),
            v.text(body, "scope", required=True, max_len=64, allow_empty=False),
            v.text(body, "department", max_len=64, allow_empty=False),
            v.text(body, "name", max_len=50),
        )
        await self.audit("create_user", doc["_id"], role=doc["role"], scope=doc["scope"])
        self.send(account_view(doc), 201)


class UserHandler(AdminMixin, BaseHandler):
    access = {"GET": ("user", "manage"), "PATCH": ("user", "manage")}

    async def get(self, username: str):
        doc = await self.accounts().get(username)
        self.check_scope(doc.get("scope"))
        self.send(account_view(doc))

    async def patch(self, username: str):
        body = self.json_body()
        _only(body, {"password", "disabled", "scope"})
        password = _password(body)
        disabled = v.boolean(body, "disabled")
        scope = v.text(body, "scope", max_len=64, allow_empty=False)
        if password is None and disabled is None and scope is None:
            raise bad_request("请给出 password、disabled 或 scope", code="missing_field")
        if disabled and username == self.user.username:
            raise conflict("不能停用自己的账号", code="cannot_disable_self")
        accounts = self.accounts()
        doc = await accounts.get(username)
        self.check_scope(doc.get("scope"))
        if password is not None:
            accounts.check_password(password, username)  # every check before any change
        if scope is not None:
            self.check_scope(scope)  # a district's admin moves accounts only inside the district
            doc = await accounts.set_scope(username, scope)
            await self.audit("set_scope", username, scope=scope)
        if password is not None:
            doc = await accounts.reset_password(username, password)
            await self.audit("reset_password", username)
        if disabled is not None:
            doc = await accounts.set_disabled(username, disabled)
            await self.audit("disable" if disabled else "enable", username)
        self.send(account_view(doc))


class AuditLogHandler(BaseHandler):
    access = {"GET": ("audit_log", "read")}

    async def get(self):
        arg = lambda name: self.get_query_argument(name, None)  # noqa: E731
        kind = v.choice({"kind": arg("kind")}, "kind", self.ctx.audit_log.KINDS, default="reveals")
        limit = v.query_int(arg("limit"), "limit", default=100, low=1, high=1000)
        case_id = v.text({"case": arg("case")}, "case", max_len=64) or None
        username = v.text({"user": arg("user")}, "user", max_len=64) or None
        records = await self.ctx.audit_log.recent(kind, limit, case_id=case_id, username=username)
        self.send({"items": [_record_view(r) for r in records]})


def _record_view(record: dict) -> dict:
    out = {"id": record["_id"], **{k: val for k, val in record.items() if k != "_id"}}
    if hasattr(out.get("at"), "isoformat"):
        out["at"] = out["at"].isoformat(timespec="seconds")
    return out


def _only(body: dict, allowed: set) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_request(f"未知字段: {', '.join(unknown)}", code="unknown_field", field=unknown[0])


def _password(body: dict, required: bool = False) -> str | None:
    if "password" not in body and not required:
        return None  # an explicit null is a wrong type, not an absent field
    value = body.get("password")
    if not isinstance(value, str):
        raise bad_request("字段 password 必须是字符串" if value is not None else "缺少字段 password",
                          code="invalid_type" if value is not None else "missing_field", field="password")
    return value  # not stripped: a password is taken exactly as typed


routes = [
    (r"/api/admin/users", UsersHandler),
    (rf"/api/admin/users/{USERNAME_IN_PATH}", UserHandler),
    (r"/api/admin/audit", AuditLogHandler),
]

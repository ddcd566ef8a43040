"""POST /api/login, POST /api/logout, GET /api/me — sessions for programs and for the pages."""

from dispatch import validation as v
from dispatch.access.auth import SESSION_COOKIE, User, check_password, demo_passwords_refused, is_demo_password
from dispatch.errors import ApiError, forbidden, unauthorized
from dispatch.handlers.base import BaseHandler

XSRF_COOKIE = "_xsrf"  # read by the pages (static/js/api.js) and echoed in X-XSRFToken
# Set at a successful login, sent only to /api/login: this browser is exempt from the per-account
# slow-down (dispatch/access/throttle.py), so guessing elsewhere never keeps its user waiting.
DEVICE_COOKIE = "device"


def throttled(seconds: int) -> ApiError:
    minutes = max(1, round(seconds / 60))
    message = f"登录失败次数过多，请 {seconds} 秒后再试" if seconds < 120 else f"登录失败次数过多，请约 {minutes} 分钟后再试"
    return ApiError(429, "too_many_attempts", message, retry_after=seconds)


class LoginHandler(BaseHandler):
    access = {"POST": ("session", "login")}
    requires_json = True

    async def post(self):
        body = self.json_body()
        username = v.text(body, "username", required=True, max_len=64, allow_empty=False)
        password = v.text(body, "password", required=True, max_len=256, allow_empty=False)
        throttle, address = self.ctx.throttle, self.client_ip
        wait = await throttle.admit(username, address, trusted_device=self._trusted_device(username))
        if wait:
            raise throttled(wait)  # before hashing: a refused attempt costs the attacker no scrypt
        doc = await self.ctx.users.get(username)
        # Hash even for unknown users so response time does not reveal which accounts exist.
        stored = doc["password_hash"] if doc else self.ctx.dummy_password_hash
        ok = await throttle.hashing.run(check_password, password, stored)
        if not doc or not ok or doc.get("disabled"):
            await throttle.failed(username, address)
            raise unauthorized("用户名或密码错误", code="invalid_credentials")
        if demo_passwords_refused(self.ctx.config, self.ctx.storage.persistent) \
                and is_demo_password(self.ctx.city, username, password):
            raise forbidden("此账号仍在使用 users.yaml 中公开的演示密码，请管理员重置密码后再登录",
                            code="demo_password_refused")
        await throttle.succeeded(username, address)
        user = User.from_doc(doc)
        token = self.ctx.tokens.issue(user.username)
        self.set_session_cookies(token, user.username)
        self.send({"token": token, "expires_in": self.ctx.tokens.ttl, "user": user.public()})

    def _trusted_device(self, username: str) -> bool:
        return self.ctx.tokens.device_user(self.get_cookie(DEVICE_COOKIE)) == username

    def set_session_cookies(self, token: str, username: str) -> None:
        tokens, secure = self.ctx.tokens, self.request.protocol == "https"
        self.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", secure=secure,
                        expires_days=tokens.ttl / 86400, path="/")
        # The pages read this cookie and echo it in X-XSRFToken on every write; it is bound to
        # this session and useless with any other.
        self.set_cookie(XSRF_COOKIE, tokens.xsrf_token(tokens.claims(token)), samesite="Strict", secure=secure,
                        path="/")
        days = float(self.ctx.config["auth"].get("trusted_device_days", 30))
        self.set_cookie(DEVICE_COOKIE, tokens.device_token(username, days), httponly=True, samesite="Strict",
                        secure=secure, expires_days=days, path="/api/login")


class LogoutHandler(BaseHandler):
    """Revokes the presented token (bearer or cookie), ends its live feed, clears the cookies."""

    access = {"POST": ("session", "logout")}
    requires_json = True

    async def post(self):
        revoked = False
        if self.user is not None:  # a dead or forged token has nothing left to revoke
            token = self.bearer_or_cookie_token()
            claims = self.ctx.tokens.claims(token)
            revoked = await self.ctx.sessions.revoke(token)
            if claims is not None:
                self.ctx.live.end_session(claims["jti"])  # its open sockets stop at once
        self.clear_cookie(SESSION_COOKIE, path="/")
        self.clear_cookie(XSRF_COOKIE, path="/")
        self.send({"ok": True, "revoked": revoked})


class MeHandler(BaseHandler):
    """Who I am, plus what the pages need to draw their header and map."""

    access = {"GET": ("session", "read")}

    async def get(self):
        user = self.require_user()
        ctx = self.ctx
        scope = ctx.city.jurisdictions.get(user.scope)
        department = ctx.city.departments.get(user.department) if user.department else None
        self.send({
            "user": user.public(),
            "scope_name": scope.name if scope else ctx.city.name,
            "department_name": department.name if department else None,
            "city": {"id": ctx.city.id, "name": ctx.city.name, "bounds": list(ctx.city.bounds), "timezone": ctx.city.timezone},
            "storage": {"kind": ctx.storage.kind, "persistent": ctx.storage.persistent},
            "map": {**base_map(ctx.config["map"]), "layers": sorted(ctx.city.base_layers)},
        })


def base_map(config: dict) -> dict:
    """The base map the pages draw under the city's own layers (config `map.*`)."""
    return {
        "tile_url": config.get("tile_url") or "", "overlay_url": config.get("overlay_url") or "",
        "attribution": str(config.get("attribution") or ""), "subdomains": str(config.get("subdomains") or ""),
        "max_zoom": int(config.get("max_zoom") or 18),
    }


routes = [
    (r"/api/login", LoginHandler),
    (r"/api/logout", LogoutHandler),
    (r"/api/me", MeHandler),
]

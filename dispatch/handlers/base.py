"""What every API handler shares: JSON in and out, the error body, who is asking and whether
they may.

Every handler declares what it serves: `access = {"GET": ("case", "read"), ...}` maps each HTTP
method to a (resource, action) of `dispatch.access.policy.PERMISSIONS`; `prepare` authenticates the
caller and asks `dispatch.access.policy.authorize` before the handler runs. A method without a
declaration is refused (fail closed); tests/test_security_policy.py checks that every route
declares every method it implements.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

import tornado.web

from dispatch.access.auth import SESSION_COOKIE, User
from dispatch.errors import ApiError, bad_request, forbidden, unauthorized
from dispatch.access.policy import PERMISSIONS, PUBLIC, authorize

log = logging.getLogger(__name__)

# Status codes Tornado raises itself, mapped to the machine codes of our error body.
_STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "body_too_large", 422: "unprocessable",
    429: "throttled",
}


class BaseHandler(tornado.web.RequestHandler):
    user: User | None = None
    # HTTP method → (resource, action) of dispatch.access.policy.PERMISSIONS.
    access: dict[str, tuple[str, str]] = {}
    # Largest request body (bytes); None: `server.max_body_bytes` from the configuration.
    body_limit: int | None = None
    body_too_large = ("body_too_large", "请求体过大（上限 {kb} KB）")

    @property
    def ctx(self):
        return self.application.ctx

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")
        # JSON is data, never a document: nothing in it may load, run or be framed.
        self.set_header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        self.set_header("X-Frame-Options", "DENY")

    async def prepare(self):
        limit = self.body_limit or self.ctx.config["server"]["max_body_bytes"]
        if len(self.request.body or b"") > limit:
            code, message = self.body_too_large
            raise ApiError(413, code, message.format(kb=limit // 1024, mb=limit // 1024 // 1024))
        permission = self.declared_permission()
        if PERMISSIONS.get(permission) == PUBLIC:
            # A stale cookie must not stand between a user and the login form.
            try:
                self.user = await self._authenticate()
            except ApiError:
                self.user = None
        else:
            self.user = await self._authenticate()
        authorize(self.user, *permission)

    def declared_permission(self) -> tuple[str, str]:
        method = self.request.method
        permission = self.access.get(method)
        if permission is not None:
            return permission
        if getattr(type(self), method.lower(), None) is getattr(tornado.web.RequestHandler, method.lower(), None):
            raise ApiError(405, "method_not_allowed", f"此接口不支持 {method} 方法")
        log.error("%s declares no permission for %s: refused", type(self).__name__, method)
        raise forbidden("此接口未声明访问权限，已拒绝", code="undeclared_permission")

    def authorize(self, resource: str, action: str) -> None:
        """A further check inside a handler (e.g. a wider variant of the declared action)."""
        authorize(self.user, resource, action)

    def bearer_or_cookie_token(self) -> str | None:
        header = self.request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header[len("Bearer "):].strip()
        return self.get_cookie(SESSION_COOKIE) or None

    async def _authenticate(self) -> User | None:
        """Bearer token (programs) or session cookie (the web pages, with XSRF protection)."""
        header = self.request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = header[len("Bearer "):].strip()
        else:
            token = self.get_cookie(SESSION_COOKIE)
            if not token:
                return None
            if self.request.method not in ("GET", "HEAD", "OPTIONS"):
                # A cookie rides along on cross-site requests; a header copied from the
                # `_xsrf` cookie cannot, so writes made with the cookie must carry it.
                self._check_xsrf()
        user = await self.ctx.sessions.user_for(token)
        if user is None:
            raise unauthorized("登录凭据无效、已过期或已注销，请重新登录", code="invalid_token")
        return user

    def _check_xsrf(self) -> None:
        try:
            self.check_xsrf_cookie()
        except tornado.web.HTTPError:
            raise forbidden("缺少或错误的 XSRF 校验头（X-XSRFToken），请刷新页面后重试", code="xsrf_failed") from None

    def get_current_user(self):
        return self.user

    # -- who may call ---------------------------------------------------------------------

    def require_user(self) -> User:
        if self.user is None:
            raise unauthorized()
        return self.user

    def require_role(self, *roles: str) -> User:
        user = self.require_user()
        if user.role not in roles:
            raise forbidden(f"角色 {user.role} 无权执行此操作", code="role_forbidden")
        return user

    # -- JSON in and out ------------------------------------------------------------------

    def json_body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"", parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError):
            raise bad_request("请求体不是有效的 JSON", code="malformed_json") from None
        except RecursionError:
            raise bad_request("请求体嵌套过深", code="malformed_json") from None
        if not isinstance(body, dict):
            raise bad_request("请求体必须是 JSON 对象", code="malformed_json")
        try:
            # A lone surrogate ("\\ud800") parses, but could never be written back out as UTF-8.
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request("请求体含有无效的 Unicode 字符", code="malformed_json") from None
        return body

    def send(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            body = exc.body()
            if status_code == 429 and "retry_after" in exc.details:
                self.set_header("Retry-After", str(exc.details["retry_after"]))
        else:
            reason = HTTPStatus(status_code).phrase if status_code in HTTPStatus._value2member_map_ else "Error"
            code = _STATUS_CODES.get(status_code, "internal_error" if status_code >= 500 else "error")
            message = "服务器内部错误" if status_code >= 500 else reason
            body = {"error": {"code": code, "message": message}}
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body, ensure_ascii=False))

    def log_exception(self, typ, value, tb):
        if isinstance(value, ApiError):
            log.debug("%s %s → %s", self.request.method, self.request.path, value)
            return
        if isinstance(value, tornado.web.HTTPError):
            log.warning("%s: %s", self._request_summary(), value)
            return
        # Not Tornado's default, which prints the request's repr with its full query string.
        log.error("Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb))

    def _request_summary(self) -> str:
        """What the access log prints: the path and the *names* of query parameters, never their
        values (a search may carry a phone number or a name)."""
        return f"{self.request.method} {loggable_uri(self.request)} ({self.request.remote_ip})"


def loggable_uri(request) -> str:
    names = sorted(request.query_arguments)
    return request.path + ("?" + "&".join(f"{name}=…" for name in names) if names else "")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


class NotFoundHandler(BaseHandler):
    access = {m: ("health", "read") for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}

    async def prepare(self):
        raise ApiError(404, "not_found", f"没有这个接口: {self.request.path}")

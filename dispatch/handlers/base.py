"""What every API handler shares: JSON in and out, the error body, and who is asking."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

import tornado.web

from dispatch.auth import SESSION_COOKIE, User
from dispatch.errors import ApiError, bad_request, forbidden, unauthorized

log = logging.getLogger(__name__)

# Status codes Tornado raises itself, mapped to the machine codes of our error body.
_STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "body_too_large", 422: "unprocessable",
    429: "throttled",
}


class BaseHandler(tornado.web.RequestHandler):
    user: User | None = None

    @property
    def ctx(self):
        return self.application.ctx

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")

    async def prepare(self):
        limit = self.ctx.config["server"]["max_body_bytes"]
        if len(self.request.body or b"") > limit:
            raise ApiError(413, "body_too_large", f"请求体过大（上限 {limit // 1024} KB）")
        self.user = await self._authenticate()

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
        username = self.ctx.tokens.verify(token)
        if username is None:
            raise unauthorized("登录凭据无效或已过期，请重新登录", code="invalid_token")
        doc = await self.ctx.users.get(username)
        if doc is None or doc.get("disabled"):
            raise unauthorized("账号不存在或已停用", code="invalid_token")
        return User.from_doc(doc)

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
            body = json.loads(self.request.body or b"")
        except (ValueError, UnicodeDecodeError):
            raise bad_request("请求体不是有效的 JSON", code="malformed_json") from None
        if not isinstance(body, dict):
            raise bad_request("请求体必须是 JSON 对象", code="malformed_json")
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
        super().log_exception(typ, value, tb)


class NotFoundHandler(BaseHandler):
    async def prepare(self):
        raise ApiError(404, "not_found", f"没有这个接口: {self.request.path}")

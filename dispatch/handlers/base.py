"""What every API handler shares: JSON in and out, the error body, who is asking and whether
they may.

Every handler declares what it serves: `access = {"GET": ("case", "read"), ...}` maps each HTTP
method to a (resource, action) of `dispatch.access.policy.PERMISSIONS`; `prepare` authenticates the
caller and asks `dispatch.access.policy.authorize` before the handler runs. A method without a
declaration is refused (fail closed); tests/test_security_policy.py checks that every route
declares every method it implements.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
from http import HTTPStatus

import tornado.httputil
import tornado.web

from dispatch.access.auth import SESSION_COOKIE, User
from dispatch.access.masking import mask_text
from dispatch.errors import ApiError, bad_request, forbidden, unauthorized
from dispatch.access.policy import PERMISSIONS, PUBLIC, authorize, may_reveal_caller, may_see_caller
from dispatch.domain import to_api

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
    # Writes must say `Content-Type: application/json`: a cross-site <form> or a "simple"
    # fetch can only send text/plain, form or multipart bodies (login CSRF).
    requires_json = False

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

    @property
    def client_ip(self) -> str:
        """Who is asking, for throttling and audit: see `client_address`."""
        return client_address(self.request, trusted_networks(self.ctx.config["server"]["trusted_proxies"]))

    async def prepare(self):
        limit = self.body_limit or self.ctx.config["server"]["max_body_bytes"]
        if len(self.request.body or b"") > limit:
            code, message = self.body_too_large
            raise ApiError(413, code, message.format(kb=limit // 1024, mb=limit // 1024 // 1024))
        permission = self.declared_permission()  # an undeclared method is 405 whatever the body
        if self.requires_json and self.request.method not in ("GET", "HEAD", "OPTIONS"):
            self._require_json_content_type()
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

    def _require_json_content_type(self) -> None:
        media_type = self.request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise ApiError(415, "unsupported_media_type", "请求体须为 JSON（Content-Type: application/json）")

    def bearer_or_cookie_token(self) -> str | None:
        return self._credentials()[0]

    def _credentials(self) -> tuple[str | None, bool]:
        """(token, came from the cookie)."""
        header = self.request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header[len("Bearer "):].strip(), False
        return self.get_cookie(SESSION_COOKIE) or None, True

    async def _authenticate(self) -> User | None:
        """Bearer token (programs) or session cookie (the web pages, with XSRF protection)."""
        token, from_cookie = self._credentials()
        if not token:
            return None
        claims = self.ctx.tokens.claims(token)
        if claims is not None and from_cookie and self.request.method not in ("GET", "HEAD", "OPTIONS"):
            # A cookie rides along on cross-site requests; the session's XSRF token, handed to
            # the page at login, cannot.
            self._check_xsrf(claims)
        user = await self.ctx.sessions.user_for_claims(claims)
        if user is None:
            raise unauthorized("登录凭据无效、已过期或已注销，请重新登录", code="invalid_token")
        return user

    def _check_xsrf(self, claims: dict) -> None:
        """Only the X-XSRFToken header counts: a token in the URL leaks into logs, history and
        Referer, and the value must be this session's (`TokenSigner.xsrf_token`), not any pair
        of cookie and header an attacker managed to plant."""
        if not self.ctx.tokens.xsrf_matches(claims, self.request.headers.get("X-XSRFToken")):
            raise forbidden("缺少或错误的 XSRF 校验头（X-XSRFToken），请刷新页面后重试", code="xsrf_failed")

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

    async def intake(self, kind: str) -> None:
        """POST of a new case through intake (`Intake.report` / `Intake.ticket`): 201 with the
        case, or 200 with the case already made by the same submission (client_id)."""
        user = self.require_user()
        result = await getattr(self.ctx.intake, kind)(user, self.json_body())
        self.send(self.case_json(result.case, user), 201 if result.created else 200)

    def case_json(self, case: dict, user: User) -> dict:
        """A case as every endpoint returns it: masked for `user`, with what `user` may do to it
        now (`actions`, and `may_reveal_caller`: whether the audited reveal would unmask its
        masked caller), its running stage clock (`timer`) and people's names (`by_name`)."""
        workflow = self.ctx.workflow
        out = to_api(case, user, self.ctx.tz, workflow.actions(user, case), workflow.timer(case), self.ctx.people.name)
        caller = case.get("caller") or {}
        out["may_reveal_caller"] = bool(caller.get("name") or caller.get("phone")) and not may_see_caller(user, case) \
            and may_reveal_caller(user, case, self.ctx.city.id, self.ctx.config["auth"]["reveal_roles"])
        return out

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            body = exc.body()
            if "retry_after" in exc.details:  # 429 throttled, 503 busy
                self.set_header("Retry-After", str(exc.details["retry_after"]))
        else:
            reason = HTTPStatus(status_code).phrase if status_code in HTTPStatus._value2member_map_ else "Error"
            code = _STATUS_CODES.get(status_code, "internal_error" if status_code >= 500 else "error")
            message = "服务器内部错误" if status_code >= 500 else reason
            body = {"error": {"code": code, "message": message}}
        if status_code == 405:
            set_allow(self)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body, ensure_ascii=False))

    def log_exception(self, typ, value, tb):
        if isinstance(value, ApiError):
            # Messages may repeat what the client sent (a code, a phone typed in the wrong
            # field): masked like every other output.
            log.debug("%s %s → %s", self.request.method, self.request.path, mask_text(str(value)))
            return
        if isinstance(value, tornado.web.HTTPError):
            log.warning("%s: %s", self._request_summary(), value)
            return
        # Not Tornado's default, which prints the request's repr with its full query string.
        log.error("Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb))

    def _request_summary(self) -> str:
        """What the access log prints: the path and the *names* of query parameters, never their
        values (a search may carry a phone number or a name)."""
        return f"{self.request.method} {loggable_uri(self.request)} ({self.client_ip})"


def allowed_methods(handler_class) -> list[str]:
    """The methods a handler declares (`access`) and implements: what a 405 lists in `Allow`."""
    return [method for method in handler_class.access
            if getattr(handler_class, method.lower(), None) is not getattr(tornado.web.RequestHandler, method.lower(), None)]


def set_allow(handler) -> None:
    """RFC 9110: a 405 says which methods the resource does support."""
    handler.set_header("Allow", ", ".join(allowed_methods(type(handler))))


class AllowOn405:
    """For handlers outside BaseHandler (pages, the WebSocket): their 405 carries `Allow` too."""

    def write_error(self, status_code: int, **kwargs) -> None:
        if status_code == 405:
            set_allow(self)
        super().write_error(status_code, **kwargs)


def error_body(code: str, message: str) -> bytes:
    """Our JSON error shape, for answers written outside a handler."""
    return json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False).encode()


# -- the client's address ---------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def trusted_networks(entries) -> tuple:
    """`server.trusted_proxies` (checked by the config loader) as networks, parsed once."""
    return _networks(tuple(entries or ()))


def _ip(text: str):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(ip, networks) -> bool:
    return ip is not None and any(ip in network for network in networks)


def client_address(request, networks) -> str:
    """The one answer to "which address is this client": the socket's peer, unless the peer is a
    configured proxy (`server.trusted_proxies`). Then the right-most X-Forwarded-For entry
    that is not itself a trusted proxy: everything left of it was written by the client and
    proves nothing. Throttling, the reveal audit and the WebSocket caps all ask here.
    """
    peer = request.remote_ip or "-"  # xheaders is off: this is the TCP peer
    if not networks or not _trusted(_ip(peer), networks):
        return peer
    hops = [hop for value in request.headers.get_list("X-Forwarded-For") for hop in value.split(",") if hop.strip()]
    address = peer
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            return address  # garbage beyond the last proxy we trust: the last address we can vouch for
        address = str(ip)
        if not _trusted(ip, networks):
            return address
    return address  # every hop is a trusted proxy: the left-most is the client


# -- bodies over the connection limit ------------------------------------------------------------

class BodyLimit(tornado.httputil.HTTPServerConnectionDelegate):
    """Wraps the application for the HTTP server: a request body over `limit` bytes gets our
    JSON 413 as soon as its headers say so (or, for a chunked body, as soon as it grows past
    the limit), and the connection is closed without reading the rest. Tornado's own
    `max_body_size` would answer a bare 400 — give the server a larger one so this answers first.
    """

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = int(limit)

    def start_request(self, server_conn, request_conn):
        return _LimitedRequest(self.app.start_request(server_conn, request_conn), request_conn, self.limit)

    def on_close(self, server_conn):
        self.app.on_close(server_conn)


class _LimitedRequest(tornado.httputil.HTTPMessageDelegate):
    def __init__(self, inner, connection, limit: int):
        self.inner = inner
        self.connection = connection
        self.limit = limit
        self.received = 0
        self.forwarded = False  # the application has seen the headers
        self.refused = False

    def headers_received(self, start_line, headers):
        length = headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.limit:
            return self._refuse()
        self.forwarded = True
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk):
        if self.refused:
            return None  # the connection closes once the 413 is out; drop what still arrives
        self.received += len(chunk)
        if self.received > self.limit:
            return self._refuse()
        return self.inner.data_received(chunk)

    def finish(self):
        if not self.refused:
            self.inner.finish()

    def on_connection_close(self):
        if self.forwarded and not self.refused:
            self.inner.on_connection_close()

    def _refuse(self):
        if self.forwarded:
            self.inner.on_connection_close()  # lets the handler drop what it buffered
        self.refused = True
        kb = self.limit // 1024
        body = error_body("body_too_large", f"请求体过大（上限 {kb} KB）")
        headers = tornado.httputil.HTTPHeaders({
            "Content-Type": "application/json; charset=UTF-8", "Content-Length": str(len(body)),
            "Connection": "close", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
        })
        # Finishing the answer before the body is read makes Tornado close the connection
        # once it is sent: the rest of the body is never read into memory.
        self.connection.write_headers(tornado.httputil.ResponseStartLine("HTTP/1.1", 413, "Content Too Large"),
                                      headers, body)
        self.connection.finish()
        return None


def loggable_uri(request) -> str:
    names = sorted(request.query_arguments)
    return request.path + ("?" + "&".join(f"{name}=…" for name in names) if names else "")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


class _AnyMethod(tuple):
    def __contains__(self, method) -> bool:
        return True


class NotFoundHandler(BaseHandler):
    access = {m: ("health", "read") for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}
    # No such resource whatever the method (TRACE too): 404, never Tornado's bare 405.
    SUPPORTED_METHODS = _AnyMethod(tornado.web.RequestHandler.SUPPORTED_METHODS)

    async def prepare(self):
        raise ApiError(404, "not_found", f"没有这个接口: {self.request.path}")

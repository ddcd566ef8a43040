"""The one error type handlers raise; rendered as SPEC §3's `{"error": {code, message}}` body."""

from __future__ import annotations

from tornado.web import HTTPError


class ApiError(HTTPError):
    """An HTTPError, so Tornado sets the status; `BaseHandler.write_error` renders the body."""

    def __init__(self, status: int, code: str, message: str, **details):
        super().__init__(status)
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return f"{self.status_code} {self.code}: {self.message}"

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        error.update(self.details)
        return {"error": error}


def bad_request(message: str, code: str = "bad_request", **details) -> ApiError:
    return ApiError(400, code, message, **details)


def unauthorized(message: str = "请先登录", code: str = "unauthorized") -> ApiError:
    return ApiError(401, code, message)


def forbidden(message: str = "无权执行此操作", code: str = "forbidden") -> ApiError:
    return ApiError(403, code, message)


def not_found(message: str = "资源不存在", code: str = "not_found") -> ApiError:
    return ApiError(404, code, message)


def conflict(message: str, code: str = "conflict", **details) -> ApiError:
    return ApiError(409, code, message, **details)


def unprocessable(message: str, code: str = "unprocessable", **details) -> ApiError:
    return ApiError(422, code, message, **details)

"""One place that turns failures into the stable JSON error shape."""

from __future__ import annotations

import structlog
from aiohttp import web

from beanpay.api.body import MalformedBody, SlowBody, UnsupportedMediaType
from beanpay.api.http import json
from beanpay.api.schemas import ErrorBody, ErrorDetail, FieldError
from beanpay.db import DatabaseUnavailable
from beanpay.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)

log = structlog.get_logger("api")

STATUS = {NotFound: 404, Conflict: 409, Forbidden: 403, Unauthorized: 401, InvalidInput: 422, Unavailable: 503,
          RateLimited: 429, Gone: 410}
RETRY_AFTER_SECONDS = {DatabaseUnavailable: 2, Unavailable: 5}  # how soon a client should try a 503 again


def error_response(status: int, code: str, message: str, *, fields: list[FieldError] | None = None,
                   detail: dict[str, str] | None = None, retry_after: int | None = None,
                   allow: str | None = None) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if allow is not None:  # a 405 says which methods the path has (RFC 9110)
        headers["Allow"] = allow
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return json(ErrorBody(ErrorDetail(code=code, message=message, fields=fields, detail=detail)), status=status,
                headers=headers or None)


def from_exception(exc: Exception) -> web.Response:
    if isinstance(exc, InvalidInput):
        fields = [FieldError(e["field"], e["message"]) for e in exc.errors]
        return error_response(422, exc.code, exc.message, fields=fields)
    if isinstance(exc, DomainError):
        status = next(s for kind, s in STATUS.items() if isinstance(exc, kind))
        detail = {k: str(v) for k, v in exc.detail.items()} or None
        retry = next((s for kind, s in RETRY_AFTER_SECONDS.items() if isinstance(exc, kind)), None)
        response = error_response(status, exc.code, exc.message, detail=detail, retry_after=retry)
        if isinstance(exc, RateLimited):
            response.headers.update(exc.headers)
        return response
    if isinstance(exc, MalformedBody):
        return error_response(400, "malformed_request", str(exc))
    if isinstance(exc, UnsupportedMediaType):
        return error_response(415, "unsupported_media_type", str(exc))
    if isinstance(exc, SlowBody):
        response = error_response(408, "request_timeout", str(exc))
        response.force_close()
        return response
    if isinstance(exc, ConnectionResetError):  # the client went away mid-request: nobody to answer
        log.info("client disconnected mid-request", error=str(exc))
        return error_response(400, "client_disconnected", "the client went away")
    if isinstance(exc, web.HTTPException):
        code = exc.reason.lower().replace(" ", "_")
        return error_response(exc.status, code, exc.reason, allow=exc.headers.get("Allow"))
    log.exception("unhandled error")
    return error_response(500, "internal_error", "internal error; it has been logged")

"""Rendering a page: the Jinja environment, the reader's language, the security headers every page
carries, and errors shown as pages (with their status) rather than as JSON."""

from __future__ import annotations

import functools
import hashlib
from importlib.resources import files
from typing import Any

import jinja2
import structlog
from aiohttp import web

from beanpay.api.errors import STATUS
from beanpay.api.http import Handler
from beanpay.api.pages.locale import LANGUAGES, Formatter, choose
from beanpay.errors import DomainError, RateLimited

log = structlog.get_logger("pages")

ENV = jinja2.Environment(loader=jinja2.PackageLoader("beanpay.api.pages", "templates"),
                         autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
STATIC = files("beanpay.api.pages") / "static"
# a version per asset's content, so browsers may cache them long and never run a stale script
ASSET_VERSION = hashlib.sha256(b"".join(f.read_bytes() for f in sorted(STATIC.iterdir(), key=lambda f: f.name)
                                        if f.is_file())).hexdigest()[:12]

# Nothing but our own files; no inline script or style, no framing, forms post only to us. Wallet
# links (bitcoin:, ethereum:) are navigations, which CSP does not restrict.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "media-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",  # for browsers that predate frame-ancestors
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the URL is the capability: never hand it to an explorer
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}


def formatter(request: web.Request) -> Formatter:
    return Formatter(choose(request.query.get("lang"), request.headers.get("Accept-Language")))


def render(name: str, t: Formatter, **context: Any) -> str:
    return ENV.get_template(name).render(t=t, _=t.text, languages=LANGUAGES, asset_version=ASSET_VERSION, **context)


def secure(response: web.StreamResponse, *, private: bool = True) -> web.StreamResponse:
    response.headers.update(HEADERS)
    if private:  # pages behind a capability are nobody else's: no shared cache may keep one
        response.headers["Cache-Control"] = "no-store"
    return response


def page(request: web.Request, name: str, *, status: int = 200, t: Formatter | None = None,
         **context: Any) -> web.Response:
    t = t or formatter(request)
    response = web.Response(text=render(name, t, path=request.path, **context), status=status,
                            content_type="text/html", charset="utf-8")
    response.headers["Content-Language"] = t.lang
    response.headers["Vary"] = "Accept-Language"
    return secure(response)  # type: ignore[return-value]


TITLES = {404: "Not found", 410: "This link has expired", 409: "That cannot be done now",
          422: "Please check what you entered", 429: "Too many requests", 503: "Please try again in a moment"}


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    title = TITLES.get(status, "Something went wrong")
    return page(request, "error.html", status=status, title=title, message=message)


def html_errors(handler: Handler) -> Handler:
    """Errors of a page handler (and of its guard) become a page in the reader's language, never a trace."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except DomainError as exc:
            status = next((s for kind, s in STATUS.items() if isinstance(exc, kind)), 500)
            if status >= 500 and status != 503:
                log.exception("page failed")
            response = error_page(request, status, exc.message)
            if isinstance(exc, RateLimited):  # when to come back (Retry-After)
                response.headers.update(exc.headers)
            return response
        except web.HTTPException:
            raise
        except Exception:
            log.exception("page failed")
            return error_page(request, 500, "Something went wrong on our side. It has been logged.")

    return wrapped

"""The pages' own stylesheet and scripts, served by beanpay from memory (no CDN). Pages link them with
a content version in the query, so they may be cached for a year."""

from __future__ import annotations

from aiohttp import web

from beanpay.api.pages.render import HEADERS, STATIC

TYPES = {"css": "text/css", "js": "text/javascript", "svg": "image/svg+xml", "wav": "audio/wav"}
FILES = {f.name: f.read_bytes() for f in STATIC.iterdir() if f.is_file() and f.name.rsplit(".", 1)[-1] in TYPES}


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    body = FILES.get(name)
    if body is None:
        raise web.HTTPNotFound()
    response = web.Response(body=body, content_type=TYPES[name.rsplit(".", 1)[-1]])
    response.headers.update(HEADERS)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    if name == "sw.js":  # the checkout's service worker works for the pages under /pay/
        response.headers["Service-Worker-Allowed"] = "/pay/"
        response.headers["Cache-Control"] = "no-cache"  # browsers check service workers for updates
    return response


def install(app: web.Application) -> None:
    app.router.add_get("/static/{name}", asset)

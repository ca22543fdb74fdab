"""The staff board, `/staff`: a page shell whose script signs the barista in (a session cookie and its
CSRF token, as any API client does), then shows the shop's queue live and moves orders with one tap,
all through the same API integrations use (`/v1/orders`, `/v1/claims/{code}/process`, the shop's
event stream)."""

from __future__ import annotations

from aiohttp import web

from beanpay.api.pages.render import formatter, html_errors, page

COLUMNS = (("confirmed", "Paid"), ("preparing", "Preparing"), ("ready", "Ready"))
# what the script writes itself, in the reader's language
SCRIPT_STRINGS = (
    "Start", "Ready", "Hand over", "Paid", "Preparing", "Pickup", "Delivery", "at", "Note",
    "Claimed", "Wrong email or password", "Handed over: order {order}", "Low stock: {product} ({available} left)",
    "Signed in as {name}", "You have no shop to work at.", "Could not reach beanpay; retrying",
    "Could not move the order", "Claim code not accepted",
)


async def board(request: web.Request) -> web.StreamResponse:
    t = formatter(request)
    strings = {s: t.text(s) for s in SCRIPT_STRINGS}
    response = page(request, "staff.html", t=t, strings=strings, columns=COLUMNS)
    return response


def install(app: web.Application) -> None:
    app.router.add_get("/staff", html_errors(board))

"""A shop's live events as Server-Sent Events, for its staff board and console: the order, claim and
stock events the engine emits, as they reach Kafka (api.feed). A stream that fell behind, or whose
process lost Kafka for a while, is sent `resync`: read the queue again, something may have been missed.

A refund's events carry its claim token (whoever holds it says where the refund goes) only on the
stream of a principal who may issue refunds at the shop; everyone else sees the refund without it. An
open stream resolves its principal again every RECHECK_SECONDS and before it sends a claim token: one
removed from the shop, or whose key or session was revoked, is sent `revoked` and the stream ends.
Streams are capped per client address and per principal (api.stream_limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from aiohttp import web

from beanpay.access import Principal
from beanpay.api.accounts.principals import resolve
from beanpay.api.feed import FEED
from beanpay.api.guard import allow, needs
from beanpay.api.http import path_uuid
from beanpay.api.routing import Routes
from beanpay.api.state import settings
from beanpay.api.stream_limits import client_address
from beanpay.engine.webhooks.claims import CLAIM_EVENTS, with_claim
from beanpay.errors import Forbidden, Unauthorized
from beanpay.listen import wait_event

routes = Routes()
HEARTBEAT_SECONDS = 15.0
RECHECK_SECONDS = 15.0  # how often an open stream's principal is resolved again (a revocation ends it)
FORWARDED = ("order.", "claim.", "supply.", "payment.", "refund.", "invoice.")


def _claim_secret(request: web.Request, principal: Principal, shop_id: uuid.UUID) -> str | None:
    """What refunds' claim tokens are made with, for a principal who may issue refunds here; else None."""
    return (settings(request).jwt_secret or "") if principal.may("refunds:create", shop_id) else None


async def _still(request: web.Request, shop_id: uuid.UUID) -> Principal | None:
    """The stream's principal as it is now (its credentials resolved again: sessions, keys and grants are
    cached for seconds and dropped on revocation), if it still may watch the shop; None if not."""
    try:
        found = await resolve(request, public=False)
    except (Unauthorized, Forbidden):
        return None
    return found if found.kind != "anonymous" and found.may("orders:read", shop_id) else None


def message(kind: str, payload: bytes) -> bytes:
    """One SSE message: {"type": ..., "data": <the event's payload>}."""
    return b'data: {"type":"' + kind.encode() + b'","data":' + payload + b"}\n\n"


@routes.add("GET", "/v1/shops/{shop_id}/events",
            summary="The shop's live order, claim, payment and stock events (text/event-stream); refunds' claim "
                    "tokens only to those who may issue refunds", tag="shops",
            policy=needs("orders:read", "the shop's people, its integrations, operators"), errors=(401, 403, 429))
async def shop_events(request: web.Request) -> web.StreamResponse:
    shop_id = path_uuid(request, "shop_id")
    principal = allow(request, shop_id)
    feed = request.app[FEED]
    with feed.slots.hold(client_address(request), f"{principal.kind}:{principal.id}"):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the client went away: its slot is free again
            await response.write(b"retry: 3000\n\n")
            loop = asyncio.get_running_loop()
            secret, checked = _claim_secret(request, principal, shop_id), loop.time()
            with feed.watch(shop_id, inbox=True) as w:
                while True:
                    await wait_event(w.wake, HEARTBEAT_SECONDS)
                    w.wake.clear()
                    batch = [] if w.overflowed else [(k, p) for k, p in w.take() if k.startswith(FORWARDED)]
                    # removed, revoked, demoted meanwhile? checked now and then, and before a claim token goes out
                    if loop.time() - checked >= RECHECK_SECONDS or (
                            secret is not None and any(k in CLAIM_EVENTS for k, _ in batch)):
                        found = await _still(request, shop_id)
                        if found is None:
                            await response.write(b"event: revoked\ndata: {}\n\n")
                            break
                        secret, checked = _claim_secret(request, found, shop_id), loop.time()
                    if w.overflowed:
                        w.overflowed = False
                        w.take()
                        await response.write(b"event: resync\ndata: {}\n\n")
                        continue
                    events = [message(kind, with_claim(kind, payload, secret)) for kind, payload in batch]
                    await response.write(b"".join(events) or b": keep-alive\n\n")
    return response

"""A shop's live events as Server-Sent Events, for its staff board and console: the order, claim and
stock events the engine emits, as they reach Kafka (api.feed). A stream that fell behind, or whose
process lost Kafka for a while, is sent `resync`: read the queue again, something may have been missed.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from beanpay.api.feed import FEED
from beanpay.api.guard import allow, needs
from beanpay.api.http import path_uuid
from beanpay.api.routing import Routes

routes = Routes()
HEARTBEAT_SECONDS = 15.0
FORWARDED = ("order.", "claim.", "supply.", "payment.", "refund.", "invoice.")


def message(kind: str, payload: bytes) -> bytes:
    """One SSE message: {"type": ..., "data": <the event's payload>}."""
    return b'data: {"type":"' + kind.encode() + b'","data":' + payload + b"}\n\n"


@routes.add("GET", "/v1/shops/{shop_id}/events",
            summary="The shop's live order, claim, payment and stock events (text/event-stream)", tag="shops",
            policy=needs("orders:read", "the shop's people, its integrations, operators"), errors=(401, 403))
async def shop_events(request: web.Request) -> web.StreamResponse:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    await response.write(b"retry: 3000\n\n")
    with request.app[FEED].watch(shop_id, inbox=True) as w:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(w.wake.wait(), HEARTBEAT_SECONDS)
            w.wake.clear()
            if w.overflowed:
                w.overflowed = False
                w.take()
                await response.write(b"event: resync\ndata: {}\n\n")
                continue
            events = [message(kind, payload) for kind, payload in w.take() if kind.startswith(FORWARDED)]
            await response.write(b"".join(events) or b": keep-alive\n\n")

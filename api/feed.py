"""What wakes the open event streams of one API process: the events the engine already emits.

One Kafka consumer per process, without a group (each process reads every partition from the end, so
each sees every event), wakes the streams watching an event's aggregate (a checkout's order) or its
shop (a staff board, which also gets the events themselves in its inbox). A checkout stream then
reads its order again: the event says something moved, the database says what. A block
emits no event for each confirmation, so the process also polls the chains' indexed tips (one query a
second, only while a stream is open) and wakes the streams whose payment is confirming on that chain.
After Kafka was away, every stream is woken: it may have missed an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator

import msgspec
import structlog
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from prometheus_client import Gauge

from beanpay import queries
from beanpay.api.stream_limits import StreamSlots
from beanpay.config import Settings
from beanpay.db import TRANSIENT, Pool
from beanpay.events import catalog, envelope
from beanpay.events.consumer import stop_quietly
from beanpay.listen import Backoff, sleep

log = structlog.get_logger("feed")
SQL = queries.load("beanpay.api", "feed.sql")

TOPICS = (catalog.ORDERS, catalog.PAYMENTS, catalog.CLAIMS, catalog.SUPPLIES)
INBOX_LIMIT = 1000  # a shop stream that falls this far behind is told to read its queue again
TIP_POLL_SECONDS = 1.0
STREAMS = Gauge("beanpay_event_streams", "Event streams (checkouts, staff boards) open in this process")


class _Shop(msgspec.Struct):
    shop_id: uuid.UUID | None = None


_shop = msgspec.json.Decoder(_Shop).decode


class Watch:
    """One open stream's interest: the order (or shop) it shows, and the chain it is confirming on.
    A shop's watch keeps the events themselves (type, payload) in `inbox`; None once it overflowed."""

    __slots__ = ("chain", "confirming", "inbox", "key", "overflowed", "wake")

    def __init__(self, key: uuid.UUID, *, inbox: bool = False) -> None:
        self.key = key
        self.chain: str | None = None
        self.confirming = False
        self.inbox: list[tuple[str, bytes]] | None = [] if inbox else None
        self.overflowed = False
        self.wake = asyncio.Event()

    def take(self) -> list[tuple[str, bytes]]:
        found, self.inbox = self.inbox or [], [] if self.inbox is not None else None
        return found


class Feed:
    """The process's one consumer; `watch` starts it on the first stream."""

    def __init__(self, settings: Settings, pool: Pool) -> None:
        self.settings, self.pool = settings, pool
        # every stream takes a slot before it starts: per client address, per checkout link or principal, in all
        self.slots = StreamSlots(settings.event_streams_per_address, settings.event_streams_per_holder,
                                 settings.event_streams_per_process)
        self._watches: dict[uuid.UUID, set[Watch]] = {}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = False

    @contextlib.contextmanager
    def watch(self, key: uuid.UUID, *, inbox: bool = False) -> Iterator[Watch]:
        """Watch an order (or, with `inbox`, a shop) for as long as the block runs."""
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._consume(), name="checkout-feed"),
                           asyncio.create_task(self._poll_tips(), name="checkout-tips")]
        w = Watch(key, inbox=inbox)
        self._watches.setdefault(key, set()).add(w)
        STREAMS.inc()
        try:
            yield w
        finally:
            STREAMS.dec()
            found = self._watches.get(key)
            if found is not None:
                found.discard(w)
                if not found:
                    del self._watches[key]

    def _wake_all(self) -> None:
        for group in self._watches.values():
            for w in group:
                w.overflowed = w.inbox is not None  # a shop stream must read its queue again
                w.wake.set()

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _consume(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            consumer = AIOKafkaConsumer(*TOPICS, bootstrap_servers=self.settings.kafka_servers, group_id=None,
                                        auto_offset_reset="latest", enable_auto_commit=False, fetch_max_wait_ms=100)
            try:
                await consumer.start()
                self.connected = True
                self._wake_all()  # whatever happened while we were away
                backoff.reset()
                while not self._stop.is_set():
                    batches = await consumer.getmany(timeout_ms=500, max_records=500)
                    for batch in batches.values():
                        for message in batch:
                            self._deliver(message.value)
            except Exception as exc:  # Kafka away: streams still poll slowly meanwhile
                self.connected = False
                log.warning("checkout feed lost Kafka; reconnecting", error=repr(exc), retry_in=round(backoff.delay, 1))
                await stop_quietly(consumer)
                await backoff.wait(self._stop)
            else:
                await stop_quietly(consumer)

    def _deliver(self, value: bytes | None) -> None:
        if value is None or not self._watches:
            return
        try:
            event = envelope.decode(value)
            key = uuid.UUID(event.aggregate_id)
            shop = _shop(event.payload).shop_id
        except (msgspec.DecodeError, ValueError):
            return
        for w in self._watches.get(key, ()):
            w.wake.set()
        for w in self._watches.get(shop, ()) if shop is not None else ():
            if w.inbox is not None:
                if len(w.inbox) >= INBOX_LIMIT:
                    w.inbox.clear()
                    w.overflowed = True
                else:
                    w.inbox.append((event.type, bytes(event.payload)))
            w.wake.set()

    async def _poll_tips(self) -> None:
        seen: dict[str, int] = {}
        while not self._stop.is_set():
            await sleep(self._stop, TIP_POLL_SECONDS)
            if not self._watches:
                continue
            try:
                async with self.pool.acquire() as conn:
                    rows = await conn.fetch(SQL.tips)
            except TRANSIENT as exc:
                log.info("checkout feed could not read the tips", error=repr(exc))
                continue
            moved = {r["chain"] for r in rows if seen.get(r["chain"]) != r["tip_height"]}
            seen = {r["chain"]: r["tip_height"] for r in rows}
            if moved:
                for group in self._watches.values():
                    for w in group:
                        if w.confirming and w.chain in moved:
                            w.wake.set()


FEED = web.AppKey("event_feed", Feed)

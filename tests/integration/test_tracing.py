"""One trace per order, from the API through the outbox, Kafka and the engine's settlement to the merchant's
webhooks: the API, relay, engine and webhook services run as processes of their own that export over
OTLP/HTTP to a collector the test runs (decoding the OTLP protobuf as Jaeger or an OpenTelemetry collector
would), and the merchant's endpoint receives the trace's `traceparent` with each delivery."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from beanpay.config import Settings
from beanpay.engine.webhooks.fanout import TOPICS
from beanpay.services import commands
from tests import secrets_watch
from tests.bench.local import free_port, group_at_end
from tests.conftest import Tokens, wait_for
from tests.harness.processes import stop_processes
from tests.integration.engine_support import make_coffee_shop, pay_directly
from tests.integration.webhook_support import Receiver

pytest_plugins = ["tests.integration.engine_support"]

BEANPAY = str(Path(sys.executable).with_name("beanpay"))
SERVICES = commands("api", "relay", "engine", "webhooks")


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    service: str
    kind: int
    attributes: dict[str, str]


class Collector:
    """An OTLP/HTTP trace receiver: what each export request carried, span by span."""

    def __init__(self) -> None:
        self.port = free_port()
        self.spans: list[Span] = []
        self.requests = 0
        self.runner: web.AppRunner | None = None

    async def traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(await request.read())
        self.requests += 1
        for resource in export.resource_spans:
            service = next(a.value.string_value for a in resource.resource.attributes if a.key == "service.name")
            for scope in resource.scope_spans:
                for s in scope.spans:
                    self.spans.append(Span(s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(), s.name,
                                           service, s.kind, {a.key: str(a.value.string_value or a.value.int_value)
                                                             for a in s.attributes}))
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self.traces)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class TracingReceiver(Receiver):
    """The merchant's endpoint, also keeping the traceparent each delivery came with."""

    def __init__(self) -> None:
        super().__init__()
        self.traceparents: dict[str, str] = {}

    async def handle(self, request: web.Request) -> web.Response:
        response = await super().handle(request)
        self.traceparents[request.headers["webhook-id"]] = request.headers.get("traceparent", "")
        return response


@pytest.fixture
async def traced_services(chain_settings: Settings) -> AsyncIterator[tuple[Collector, int]]:
    collector = Collector()
    await collector.start()
    group = f"tracing-{uuid.uuid4().hex}"
    await group_at_end(chain_settings.kafka_servers, group, TOPICS)
    api_port = free_port()
    logs = Path(chain_settings.state_dir) / "logs"
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name, args in SERVICES.items():
        env = {**os.environ, "BEANPAY_DATABASE_URL": chain_settings.dsn, "BEANPAY_API_PORT": str(api_port),
               "BEANPAY_JWT_SECRET": chain_settings.jwt_secret or "", "BEANPAY_LOG_LEVEL": "warning",
               "BEANPAY_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}", "BEANPAY_WEBHOOK_GROUP": group,
               "BEANPAY_WEBHOOK_ALLOW_PRIVATE": "true", "BEANPAY_RATE_LIMITS": "false",
               "BEANPAY_METRICS_PORT": str(free_port())}
        with (logs / f"tracing-{name}.log").open("ab") as out:
            procs[name] = subprocess.Popen([BEANPAY, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield collector, api_port
    finally:
        stop_processes(procs.values())  # a clean stop flushes what each process still buffers
        await collector.stop()


async def _api_up(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/readyz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


@pytest.mark.timeout(180)
async def test_one_trace_follows_an_order_from_its_request_to_its_webhooks(
        api: Any, tokens: Tokens, db: Any, traced_services: tuple[Collector, int]) -> None:
    collector, api_port = traced_services
    shop = await make_coffee_shop(api, tokens)
    receiver = TracingReceiver()
    await receiver.start()
    try:
        made = await api.post(f"/v1/shops/{shop.id}/webhooks", json={"url": receiver.url, "event_types": ["*"]},
                              headers=shop.merchant)
        assert made.status == 201, await made.text()
        receiver.secret = (await made.json())["secret"]
        secrets_watch.watch(receiver.secret)
        await wait_for(lambda: _api_up(api_port), timeout=60)

        customer = tokens.header("customer", sub=uuid.uuid4())
        async with aiohttp.ClientSession() as http, http.post(
                f"http://127.0.0.1:{api_port}/v1/orders", headers={**customer, "Idempotency-Key": uuid.uuid4().hex},
                json={"shop_id": shop.id, "items": [{"product_id": shop.product_id,
                                                      "customizations": {"size": ["small"]}}],
                      "payment": {"chain": "eth", "asset": "tUSDC"}}) as resp:
            assert resp.status == 201, await resp.text()
            order = await resp.json()
        await pay_directly(db, order)  # a confirmed deposit, as the indexer writes it: the engine settles it

        async def confirmed_and_delivered() -> bool:
            return {"order.created", "order.confirmed"} <= set(receiver.types.values())

        await wait_for(confirmed_and_delivered, timeout=60)
        request = next(s for s in await _spans(collector, 1, lambda s: s.name == "POST /v1/orders"))
        trace_id = request.trace_id
        # every delivery of the order's events carries the trace: the merchant may continue it
        assert {tp.split("-")[1] for tp in receiver.traceparents.values()} == {trace_id}, receiver.traceparents

        deliveries = await _spans(collector, len(receiver.seen), lambda s: s.name == "deliver webhook"
                                  and s.trace_id == trace_id)
        traced = {"beanpay-api", "beanpay-relay", "beanpay-engine", "beanpay-webhooks"}

        def ancestry_known(span: Span, spans: dict[str, Span]) -> bool:
            while span.parent_id and span.parent_id in spans:
                span = spans[span.parent_id]
            return not span.parent_id

        async def whole_trace_exported() -> bool:  # each service exports in batches, on its own clock
            spans = {s.span_id: s for s in collector.spans if s.trace_id == trace_id}
            return (traced <= {s.service for s in spans.values()}
                    and all(ancestry_known(d, spans) for d in deliveries))

        with contextlib.suppress(AssertionError):  # what never arrives fails the assertions below, naming it
            await wait_for(whole_trace_exported, timeout=30)
        spans = {s.span_id: s for s in collector.spans if s.trace_id == trace_id}
        services = {s.service for s in spans.values()}
        assert traced <= services, services

        def path(span: Span) -> list[str]:  # the span's ancestry, back to the request
            names = [span.name]
            while span.parent_id:
                span = spans[span.parent_id]  # a missing parent fails here: the chain is broken
                names.append(span.name)
            return names[::-1]

        paths = {d.attributes["messaging.message.id"]: path(d) for d in deliveries}
        by_type = {receiver.types[event_id]: p for event_id, p in paths.items()}
        assert by_type["order.created"] == ["POST /v1/orders", "publish order-events", "fan out order.created",
                                            "deliver webhook"]
        assert by_type["order.confirmed"] == ["POST /v1/orders", "settle payment", "publish order-events",
                                              "fan out order.confirmed", "deliver webhook"]
        settle = next(s for s in spans.values() if s.name == "settle payment" and s.service == "beanpay-engine")
        assert settle.attributes["beanpay.order_id"] == order["id"]
        assert request.attributes["http.response.status_code"] == "201"
    finally:
        await receiver.stop()


async def _spans(collector: Collector, at_least: int, wanted: Any) -> list[Span]:
    async def found() -> list[Span] | None:
        got = [s for s in collector.spans if wanted(s)]
        return got if len(got) >= at_least else None

    return list(await wait_for(found, timeout=30))

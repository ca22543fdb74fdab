"""OpenTelemetry traces, exported over OTLP/HTTP when BEANPAY_OTLP_ENDPOINT is set.

One trace follows an order: the API's request span, then the W3C `traceparent` stored with each row the
change wrote (the order, its outbox events), carried as a Kafka header by the relay, stored with each
webhook delivery by the fan-out, and sent to the merchant in the delivery's own `traceparent` header.
The engine's settlement continues the order's trace, so the confirmation webhook belongs to it too.

Unconfigured, the API's tracer is a no-op: spans cost a function call and nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from beanpay.config import Settings

HEADER = "traceparent"
_propagator = TraceContextTextMapPropagator()
tracer = trace.get_tracer("beanpay")  # a proxy: it records once configure() installed a provider
enabled = False  # configured: hot paths that would only make no-op spans skip them
SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL = (SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER,
                                                SpanKind.CONSUMER, SpanKind.INTERNAL)


def configure(settings: Settings, service: str) -> None:
    """Install the exporting provider for this process (once; a no-op without an endpoint)."""
    if not settings.otlp_endpoint:
        return
    # imported here: processes without an endpoint never load the SDK and its exporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": f"beanpay-{service}", "service.namespace": "beanpay",
                                  "deployment.environment": settings.env}),
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)))
    endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=5),
                                                   schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    global enabled
    enabled = True


def shutdown() -> None:
    """Export what is buffered before the process exits."""
    provider = trace.get_tracer_provider()
    stop = getattr(provider, "shutdown", None)
    if stop is not None:
        stop()


def current() -> str | None:
    """The current span's traceparent, to store with a row or send in a header (None when not recording)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(HEADER)


def parent(traceparent: str | None) -> context.Context | None:
    """The context a stored or received traceparent names (None: start a new trace)."""
    if not traceparent:
        return None
    return _propagator.extract({HEADER: traceparent})


def from_headers(headers: Mapping[str, str]) -> context.Context | None:
    return parent(headers.get(HEADER))


@contextmanager
def span(name: str, *, kind: SpanKind = INTERNAL, parent_of: str | None = None,
         attributes: Mapping[str, str | int] | None = None) -> Iterator[Span]:
    """A span continuing the trace `parent_of` names (else the current one), current while it runs."""
    with tracer.start_as_current_span(name, context=parent(parent_of), kind=kind,
                                      attributes=dict(attributes or {})) as s:
        yield s


def child_of(traceparent: str | None, name: str, *, kind: SpanKind = INTERNAL,
             attributes: Mapping[str, str | int] | None = None) -> str | None:
    """Record a span at once under a stored traceparent and return its own traceparent: for work done in
    batches (a relay batch, a settlement batch), where each row continues its own trace."""
    s = tracer.start_span(name, context=parent(traceparent), kind=kind, attributes=dict(attributes or {}))
    try:
        carrier: dict[str, str] = {}
        _propagator.inject(carrier, context=trace.set_span_in_context(s))
        return carrier.get(HEADER) or traceparent
    finally:
        s.end()

"""OpenTelemetry tracing of runs, steps and decisions, through Temporal's
``temporalio.contrib.opentelemetry.TracingInterceptor``: off by default, on with
``TETHER_TRACING=1``.

On the client it opens a span for each start, update (a decision) and query and carries the
trace context in the headers; on the worker it continues it in the workflow (``RunWorkflow``,
spans made once, not again on replay) and in each activity (``RunActivity:tether.llm_step``).
Spans go to the process's OpenTelemetry tracer provider: an application that sets one keeps
it; otherwise ``configure_tracing`` installs the SDK's provider with an OTLP/HTTP exporter
configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables (``pip install tether[tracing]``).
"""

from __future__ import annotations

from temporalio.contrib.opentelemetry import TracingInterceptor

from tether.core.errors import ConfigurationError
from tether.core.settings import Settings

__all__ = ["configure_tracing", "tracing_interceptors"]

_interceptor: TracingInterceptor | None = None


def tracing_interceptors(settings: Settings) -> list[TracingInterceptor]:
    """The tracing interceptor when tracing is on (one per process: the client and the worker
    share it, so the worker does not add it twice), else none."""
    global _interceptor
    if not settings.tracing:
        return []
    if _interceptor is None:
        _interceptor = TracingInterceptor()
    return [_interceptor]


def configure_tracing(settings: Settings) -> None:
    """For entry points: when tracing is on and nobody set a tracer provider, export spans over
    OTLP/HTTP. Raises ConfigurationError when the ``tracing`` extra is not installed."""
    if not settings.tracing:
        return
    from opentelemetry import trace

    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return  # the application configured its own
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigurationError(
            "TETHER_TRACING is on but the OpenTelemetry SDK is missing: "
            "pip install 'tether[tracing]'"
        ) from exc
    provider = TracerProvider(resource=Resource.create({"service.name": "tether"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)

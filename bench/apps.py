"""The applications under test, as uvicorn factories (``--factory bench.apps:<name>``).

All share the same FastAPI app, tracing and metrics; they differ only in auditing:

* ``baseline_app``: opentelemetry-instrumentation-fastapi, spans over OTLP/HTTP to the sink;
* ``audited_otlp_app``: the same plus ``otel_audit.instrument_app`` with an SDK
  ``LoggerProvider`` exporting audit records over OTLP/HTTP to the same sink: the ``sdk``
  transport (a provider passed to ``instrument_app`` chooses it);
* ``contract_floor_app``: the same with, instead of otel_audit, the least any implementation
  of the contract must do (one SDK log record and one same-attribute span event per request);
* ``span_event_floor_app``: the contract floor's span event alone, no log record;
* ``audited_default_app``: the same plus ``otel_audit.instrument_app`` with no provider, so
  the library chooses its transport from the environment: ``otlp`` (it spools and ships the
  segments itself) when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else ``spool`` (segments
  under ``OTEL_AUDIT_SPOOL_DIR``); ``audited_full_span_app``: the same with
  ``span_event_detail="full"``; ``audited_spool_app``: ``transport="spool"`` whatever the
  environment says;
* ``transport_floor_app`` / ``transport_floor_orjson_app``: issue 8's floor
  (:mod:`bench.transport_floor`), a minimal span event and one OTLP-JSON line per request
  appended in batches to a file under ``BENCH_FLOOR_DIR``, built with the project's encoder /
  with orjson (when installed);
* ``audited_metadata_app`` / ``audited_request_app``: as ``audited_otlp_app`` with a policy of
  one rule, every event at ``metadata`` / at ``request`` level (the request body captured,
  parsed and redacted).

Every app serves the same endpoints (:mod:`bench.endpoints`): ``GET /items/{item_id}`` and
``POST /items`` with a JSON body.

Factories (not module-level apps) so one process builds only the providers it serves.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import otel_audit
from otel_audit.policy import Level, Policy, Rule

from .contract_floor import ContractFloorMiddleware
from .endpoints import add_endpoints
from .transport_floor import FLOOR_DIR_ENV, TransportFloorMiddleware

SINK_URL_ENV = "BENCH_SINK_URL"
# Metrics are exported during a run (not only at exit) so their cost is in every variant.
_METRIC_INTERVAL_MS = 5000


def _sink_url(signal: str) -> str:
    return f"{os.environ[SINK_URL_ENV].rstrip('/')}/v1/{signal}"


def _resource() -> Resource:
    return Resource.create({"service.name": "otel-audit-bench"})


def _traced_app() -> tuple[FastAPI, MeterProvider]:
    """The baseline: two trivial endpoints, traced by the contrib instrumentation."""
    # FastAPI's native telemetry would start a second set of spans next to the contrib
    # instrumentation's; the baseline is the contrib instrumentation alone.
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
    add_endpoints(app)

    tracer_provider = TracerProvider(resource=_resource())
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=_sink_url("traces")))
    )
    meter_provider = MeterProvider(
        resource=_resource(),
        metric_readers=[
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=_sink_url("metrics")),
                export_interval_millis=_METRIC_INTERVAL_MS,
            )
        ],
    )
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    return app, meter_provider


def baseline_app() -> FastAPI:
    return _traced_app()[0]


def _otlp_logger_provider() -> LoggerProvider:
    """An SDK logger provider batching log records over OTLP/HTTP to the sink."""
    logger_provider = LoggerProvider(resource=_resource())
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=_sink_url("logs")))
    )
    return logger_provider


def _audited_otlp(config: otel_audit.AuditConfig | None) -> FastAPI:
    app, meter_provider = _traced_app()
    otel_audit.instrument_app(
        app, config, logger_provider=_otlp_logger_provider(), meter_provider=meter_provider
    )
    return app


def audited_otlp_app() -> FastAPI:
    return _audited_otlp(None)


def _one_level(level: Level) -> otel_audit.AuditConfig:
    return otel_audit.AuditConfig(policy=Policy((Rule(level=level),)))


def audited_metadata_app() -> FastAPI:
    """As audited_otlp_app, every event at ``metadata`` level (no body, whatever the method)."""
    return _audited_otlp(_one_level("metadata"))


def audited_request_app() -> FastAPI:
    """As audited_otlp_app, every event at ``request`` level: the request body is recorded."""
    return _audited_otlp(_one_level("request"))


def contract_floor_app() -> FastAPI:
    """The same stack with :class:`ContractFloorMiddleware` in place of otel_audit."""
    app, _ = _traced_app()
    logger = _otlp_logger_provider().get_logger("floor")
    # Where otel_audit sits: the outermost user middleware, inside the server span.
    app.add_middleware(ContractFloorMiddleware, logger=logger)
    return app


def span_event_floor_app() -> FastAPI:
    """The contract floor's span event alone: the ceiling even a free log pipeline reaches."""
    app, _ = _traced_app()
    app.add_middleware(ContractFloorMiddleware, logger=None)
    return app


def _audited_own_transport(config: otel_audit.AuditConfig | None) -> FastAPI:
    app, meter_provider = _traced_app()
    otel_audit.instrument_app(app, config, meter_provider=meter_provider)
    return app


def audited_default_app() -> FastAPI:
    """No provider: the transport the library picks from the environment (otlp or spool)."""
    return _audited_own_transport(None)


def audited_full_span_app() -> FastAPI:
    """As audited_default_app, span events carrying every attribute (span_event_detail=full)."""
    return _audited_own_transport(otel_audit.AuditConfig(span_event_detail="full"))


def audited_spool_app() -> FastAPI:
    """The spool transport, even with an OTLP endpoint in the environment."""
    return _audited_own_transport(otel_audit.AuditConfig(transport="spool"))


def _transport_floor(encoder: str) -> FastAPI:
    app, _ = _traced_app()
    # Where otel_audit sits: the outermost user middleware, inside the server span.
    app.add_middleware(
        TransportFloorMiddleware, directory=os.environ[FLOOR_DIR_ENV], encoder=encoder
    )
    return app


def transport_floor_app() -> FastAPI:
    """Issue 8's floor: minimal span event + one OTLP-JSON line (project encoder), batched."""
    return _transport_floor("project")


def transport_floor_orjson_app() -> FastAPI:
    """The same floor with the line built by orjson (installed locally, not a dependency)."""
    return _transport_floor("orjson")

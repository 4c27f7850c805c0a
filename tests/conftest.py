"""Shared fixtures: the real OTel SDK with in-memory exporters, and audited FastAPI apps."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import fastapi
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

from otel_audit import AuditConfig, instrument_app
from otel_audit.testing import reset_default_auditor

Tracing = Literal["native", "contrib", "none"]


def has_native_telemetry() -> bool:
    """Whether this FastAPI traces requests itself (``FastAPI(telemetry=...)``, 0.16x and later).

    A feature check rather than a version compare: the tests need the ``telemetry`` parameter,
    and older FastAPI takes any unknown keyword into ``app.extra``, so passing it there would
    not fail, it would just trace nothing.
    """
    return "telemetry" in inspect.signature(FastAPI.__init__).parameters


NATIVE_TELEMETRY = has_native_telemetry()
NO_NATIVE_TELEMETRY = (
    f"FastAPI {fastapi.__version__} has no native telemetry (no FastAPI(telemetry=...)); "
    "the contrib instrumentation gives its apps their SERVER span"
)

# Starlette's TestClient got its ``client`` parameter (default ``("testclient", 50000)``) when it
# began to send a peer at all: before that, as in the Starlette 0.36 that FastAPI 0.110 pins,
# every request's scope["client"] is None, so there is no client.address to audit.
TESTCLIENT_SENDS_PEER = "client" in inspect.signature(TestClient.__init__).parameters
TESTCLIENT_PEER = "testclient" if TESTCLIENT_SENDS_PEER else None
"""What ``client.address`` is for a TestClient request: absent where no peer is sent."""


@dataclass
class Telemetry:
    """Real SDK providers whose output the test can read back."""

    logs: InMemoryLogRecordExporter
    spans: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    logger_provider: LoggerProvider
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def audit_records(self) -> list[Any]:
        """Every audit log record emitted so far (``event_name`` starts with ``audit.``)."""
        return [
            readable.log_record
            for readable in self.logs.get_finished_logs()
            if (readable.log_record.event_name or "").startswith("audit.")
        ]

    def one_record(self, event_name: str) -> Any:
        """The single audit record named ``event_name``; fails if there are zero or several."""
        matches = [r for r in self.audit_records() if r.event_name == event_name]
        assert len(matches) == 1, f"expected one {event_name}, got {len(matches)}: {matches}"
        return matches[0]

    def server_spans(self) -> list[ReadableSpan]:
        """Finished SERVER spans."""
        return [s for s in self.spans.get_finished_spans() if s.kind.name == "SERVER"]

    def counter(self, name: str, **attributes: str) -> int:
        """Sum of a counter's data points whose attributes include ``attributes``."""
        return counter_value(self.metric_reader, name, **attributes)


def counter_value(reader: InMemoryMetricReader, name: str, **attributes: str) -> int:
    """Sum of a counter's data points (read from ``reader``) whose attributes include these."""
    data = reader.get_metrics_data()
    total = 0
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    if attributes.items() <= dict(point.attributes or {}).items():
                        total += int(getattr(point, "value", 0))
    return total


def make_telemetry(sampler: Sampler | None = None) -> Telemetry:
    """Fresh, non-global SDK providers backed by in-memory exporters."""
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    return Telemetry(logs, spans, reader, logger_provider, tracer_provider, meter_provider)


@pytest.fixture(autouse=True)
def _fresh_default_auditor() -> Iterator[None]:
    """Each test's record() outside a request goes to the first app that test instruments."""
    reset_default_auditor()
    yield
    reset_default_auditor()


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """SDK providers for one test."""
    result = make_telemetry()
    yield result
    result.logger_provider.shutdown()
    result.tracer_provider.shutdown()
    result.meter_provider.shutdown()


def audited_app(
    telemetry: Telemetry, config: AuditConfig | None = None, tracing: Tracing = "native"
) -> FastAPI:
    """A FastAPI app traced the ``tracing`` way and audited into ``telemetry``.

    ``native`` is FastAPI's own telemetry, ``contrib`` is opentelemetry-instrumentation-fastapi.
    On a FastAPI without native telemetry (``make compat``), ``native`` means ``contrib``: it is
    what most tests ask for by default, to have some SERVER span, and contrib is how such an
    app gets one; the tests of native tracing as such are the ``tracing`` fixture's ``native``
    case, skipped there.
    """
    if not NATIVE_TELEMETRY:
        app = FastAPI()
        tracing = "contrib" if tracing == "native" else tracing
    elif tracing == "native":
        app = FastAPI(
            telemetry={
                "tracer_provider": telemetry.tracer_provider,
                "metrics": False,
                "logs": False,
            }
        )
    else:
        app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
    if tracing == "contrib":
        FastAPIInstrumentor.instrument_app(app, tracer_provider=telemetry.tracer_provider)
    instrument_app(
        app,
        config or AuditConfig(),
        logger_provider=telemetry.logger_provider,
        meter_provider=telemetry.meter_provider,
    )
    return app


@pytest.fixture(
    params=[
        pytest.param(
            "native", marks=pytest.mark.skipif(not NATIVE_TELEMETRY, reason=NO_NATIVE_TELEMETRY)
        ),
        "contrib",
    ]
)
def tracing(request: pytest.FixtureRequest) -> Tracing:
    """Both ways a FastAPI app gets its SERVER span."""
    value: Tracing = request.param
    return value


def http_scope(
    path: str,
    *,
    method: str = "GET",
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
) -> dict[str, Any]:
    """A raw ASGI HTTP scope, as a server would pass it (for tests that bypass TestClient)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "query_string": query,
        "headers": headers if headers is not None else [(b"host", b"testserver")],
        "client": client,
        "server": ("testserver", 80),
    }

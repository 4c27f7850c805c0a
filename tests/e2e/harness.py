"""The end-to-end harness: a full audit stack of real processes, and ways to read it back.

:class:`AuditStack` starts VictoriaLogs, Jaeger (the traces backend, memory store),
otelcol-audit and the e2e app under ``opentelemetry-instrument uvicorn``, all on free loopback
ports, through ``examples/stack.py``, and reads traces back through Jaeger's query API.
:class:`Traffic` drives the app and remembers what it sent, so the tests know which events
must arrive. Nothing waits with a fixed sleep: :func:`poll` retries a check until it holds or
a deadline passes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from examples.stack import Service, Stack
from otel_audit.archive import ArchivedEvent, decode_any_value, read_events

T = TypeVar("T")

APP_TARGET = "tests.apps.e2e_app:app"
APP_SERVICE = "e2e-app"
# Request headers the app records (OTEL_AUDIT_CAPTURE_HEADERS); the PII test sends into them.
CAPTURED_HEADERS = ("x-note", "x-client-ref")
AUDIT_QUERY = 'event_name:~"^audit[.]"'

# Every Service started through this module, by log file, for the failure report (conftest).
LIVE_SERVICES: dict[Path, Service] = {}


def poll(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.2) -> T:
    """Call ``check`` until it returns something truthy; fail naming ``what`` at the deadline.

    Errors from ``check`` (a backend not answering yet) count as "not yet".
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
        except (OSError, ValueError) as error:  # connection refused, half-written JSON line
            result, last = None, error
        else:
            last = result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def start(service: Service) -> Service:
    """Start ``service`` and register it for failure reports."""
    LIVE_SERVICES[service.log] = service
    service.start()
    return service


# --- the stack ---------------------------------------------------------------------------


@dataclass
class AuditStack:
    """VictoriaLogs + Jaeger + otelcol-audit (+ the e2e app) in one work folder."""

    workdir: Path
    stack: Stack = field(init=False)
    services: dict[str, Service] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stack = Stack(self.workdir)

    @property
    def archive_dir(self) -> Path:
        return self.stack.archive_dir

    @property
    def spool_dir(self) -> Path:
        """The spool root the collector reads (OTEL_AUDIT_SPOOL_DIR in its environment)."""
        return self.stack.spool_dir

    def collector_env(self) -> dict[str, str]:
        """otelcol-audit's environment: this stack's VictoriaLogs, Jaeger, folders and ports."""
        return self.stack.collector_env()

    # service factories: the same arguments every time, so a restart is the same process

    def victoria_logs(self) -> Service:
        return self.stack.victoria_logs()

    def jaeger(self) -> Service:
        return self.stack.jaeger()

    def collector(self) -> Service:
        return self.stack.collector(env=self.collector_env())

    def app(self, env: Mapping[str, str] | None = None, exporter: str | None = None) -> Service:
        """The e2e app, exporting to ``exporter`` (an OTLP/HTTP base URL; the collector's)."""
        app_env = {"OTEL_AUDIT_CAPTURE_HEADERS": ",".join(CAPTURED_HEADERS), **(env or {})}
        if exporter is not None:
            app_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = exporter
        return self.stack.zero_code_app(APP_TARGET, APP_SERVICE, app_env)

    def start(self, name: str, service: Service) -> Service:
        """Start ``service`` as this stack's ``name`` (replacing a stopped one)."""
        self.services[name] = service
        return start(service)

    def start_backends(self) -> None:
        """VictoriaLogs, Jaeger and otelcol-audit, in order."""
        self.start("victoria-logs", self.victoria_logs())
        self.start("jaeger", self.jaeger())
        self.start("otelcol-audit", self.collector())

    def start_all(self, app_env: Mapping[str, str] | None = None) -> None:
        self.start_backends()
        self.start("app", self.app(app_env))

    def restart(self, name: str, factory: Callable[[], Service]) -> Service:
        """SIGTERM the running ``name``, then start a fresh process made by ``factory``."""
        self.services[name].stop()
        return self.start(name, factory())

    def kill(self, name: str) -> None:
        """SIGKILL the running ``name``, as a crash would (no flush, no clean close)."""
        self.services[name].kill()

    def ensure_running(self, name: str, factory: Callable[[], Service]) -> Service:
        """``name`` if it runs, else a fresh process from ``factory`` (same ports, same data).

        The service factories give the same ports and folders every time, so a killed
        collector or VictoriaLogs comes back where its clients and its data are.
        """
        service = self.services.get(name)
        if service is not None and service.running:
            return service
        return self.start(name, factory())

    def stop(self) -> None:
        """Stop the app first (it flushes), then the collectors, then the backends."""
        for service in reversed(list(self.services.values())):
            service.stop()
        for service in self.services.values():
            LIVE_SERVICES.pop(service.log, None)

    @property
    def app_url(self) -> str:
        return self.services["app"].base_url

    # --- reading back --------------------------------------------------------------------

    def archive_events(self) -> list[ArchivedEvent]:
        """Every record in the archive (an unreadable line fails the test)."""
        if not self.archive_dir.exists():
            return []
        errors: list[Any] = []
        events = list(read_events(self.archive_dir, errors=errors))
        # The collector writes whole lines; a torn last line is a write in progress.
        torn = [e for e in errors if "incomplete last line" not in e.message]
        assert not torn, f"unreadable archive data: {torn}"
        return events

    def archive_bytes(self) -> bytes:
        return b"".join(path.read_bytes() for path in sorted(self.archive_dir.glob("*.jsonl*")))

    def logs(self, logsql: str = AUDIT_QUERY) -> list[dict[str, Any]]:
        """VictoriaLogs entries matching ``logsql`` (default: every audit event)."""
        return self.stack.query_logs(logsql)

    def trace_spans(self, trace_ids: Iterable[str]) -> list[TraceSpan]:
        """The spans Jaeger holds for ``trace_ids`` (``/api/v3/traces/{id}``, OTLP JSON).

        A trace Jaeger does not have (yet) contributes no spans.
        """
        spans: list[TraceSpan] = []
        for trace_id in sorted(set(trace_ids)):
            raw = self.stack.jaeger_trace_raw(trace_id)
            if raw is not None:
                spans += read_otlp_spans(json.loads(raw).get("result", {}))
        return spans

    def jaeger_answers(self, trace_ids: Iterable[str]) -> bytes:
        """Everything Jaeger tells about the app's traces, as sent, to search for leaks.

        Its v1 search for the app's service (what the web UI lists), and each of
        ``trace_ids`` through the v1 (web UI) and v3 (OTLP JSON) APIs.
        """
        answers = [self.stack.jaeger_search_raw(APP_SERVICE)]
        for trace_id in sorted(set(trace_ids)):
            for api in ("v1", "v3"):
                answers.append(self.stack.jaeger_trace_raw(trace_id, api) or b"")
        return b"\n".join(answers)


@dataclass(frozen=True)
class TraceSpan:
    """A span as Jaeger's v3 API returns it (OTLP JSON), attributes decoded."""

    trace_id: str
    span_id: str
    name: str
    kind: int
    attributes: dict[str, object]
    events: list[tuple[str, dict[str, object]]]
    resource: dict[str, object]


SPAN_KIND_SERVER = 2


def _decode_attributes(items: Sequence[Mapping[str, Any]] | None) -> dict[str, object]:
    return {item["key"]: decode_any_value(item.get("value", {})) for item in items or ()}


def read_otlp_spans(traces: Mapping[str, Any]) -> Iterator[TraceSpan]:
    """Spans of an OTLP JSON ``TracesData`` (``{"resourceSpans": [...]}``)."""
    for resource_spans in traces.get("resourceSpans", ()):
        resource = _decode_attributes(resource_spans.get("resource", {}).get("attributes"))
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                yield TraceSpan(
                    trace_id=span.get("traceId", "").lower(),
                    span_id=span.get("spanId", "").lower(),
                    name=span.get("name", ""),
                    kind=int(span.get("kind", 0)),
                    attributes=_decode_attributes(span.get("attributes")),
                    events=[
                        (event.get("name", ""), _decode_attributes(event.get("attributes")))
                        for event in span.get("events", ())
                    ],
                    resource=resource,
                )


@dataclass(frozen=True)
class SpanEvent:
    """An audit span event found in a trace, and the span that carries it."""

    span: TraceSpan
    name: str
    attributes: dict[str, object]


def audit_span_events(spans: Sequence[TraceSpan]) -> dict[str, SpanEvent]:
    """``audit.event.id`` -> the audit span event carrying it, over every span's events."""
    found: dict[str, SpanEvent] = {}
    for span in spans:
        for name, attributes in span.events:
            event_id = attributes.get("audit.event.id")
            if name.startswith("audit.") and isinstance(event_id, str):
                found[event_id] = SpanEvent(span, name, attributes)
    return found


__all__ = [
    "APP_SERVICE",
    "AUDIT_QUERY",
    "CAPTURED_HEADERS",
    "LIVE_SERVICES",
    "SPAN_KIND_SERVER",
    "AuditStack",
    "SpanEvent",
    "TraceSpan",
    "audit_span_events",
    "poll",
    "read_otlp_spans",
    "start",
]

"""OTLP requests that look like what otelcol-audit's three pipelines receive.

``batch_body``: otel_audit's ``audit.http.request`` records (the audit pipeline);
``default_batch_body``: application log lines (no audit event name: the default pipeline);
``trace_batch_body``: FastAPI request traces whose server span carries the minimal audit
span event (the traces pipeline).

The attribute set is the audit event schema (design.md section 2) as the library writes it
for one HTTP request. A share of the records (5% by default) carries PII-like strings in
``url.query``, ``user_agent.original`` and ``audit.details`` (an email, a card number, a
phone number, a bearer token, a secret-named query parameter), so the collector's
redaction and transform processors have real matches to mask, as they would for a producer
that does not redact in-process. The email is :data:`PII_MARKER`: its presence in an
archive tells the pipeline variants apart.
"""

from __future__ import annotations

import json
import random
import time
import uuid

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

EVENT_NAME = "audit.http.request"
EVENT_ID_KEY = "audit.event.id"
# Planted in the PII records; the redaction processor must mask it (variant with PII
# processors), and it stays verbatim without them.
PII_MARKER = "jane.doe@example.com"

_ROUTES = (
    ("GET", "/items/{item_id}", "/items/{}"),
    ("GET", "/tenants/{tenant_id}/users", "/tenants/{}/users"),
    ("POST", "/orders", "/orders"),
    ("PUT", "/users/{user_id}/role", "/users/{}/role"),
    ("DELETE", "/sessions/{session_id}", "/sessions/{}"),
)
_USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0",
    "python-httpx/0.27.0",
    "okhttp/4.12.0",
)
_STATUSES = (200, 200, 200, 200, 201, 204, 400, 403, 404, 500)


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _outcome(status: int) -> tuple[str, int, str]:
    """``audit.outcome``, severity number and text, as the library maps a status code."""
    if status >= 500:
        return "error", 17, "ERROR"
    if status >= 400:
        return "failure", 13, "WARN"
    return "success", 9, "INFO"


def audit_record(rng: random.Random, *, pii: bool, event_id: str | None = None) -> LogRecord:
    """One ``audit.http.request`` log record; ``pii`` plants PII-like values in it."""
    method, route, path_template = rng.choice(_ROUTES)
    resource_id = str(rng.randrange(1, 100_000))
    status = rng.choice(_STATUSES)
    outcome, severity, severity_text = _outcome(status)
    path = path_template.format(resource_id)
    query = f"page={rng.randrange(1, 20)}&sort=created_at"
    user_agent = rng.choice(_USER_AGENTS)
    details: dict[str, object] = {"duration_ms": round(rng.uniform(0.5, 80.0), 2), "bytes": 512}
    if pii:
        query = f"email={PII_MARKER.replace('@', '%40')}&token=s3cr3tvalue42&page=2"
        user_agent = f"support-tool/2.1 (contact {PII_MARKER})"
        details["note"] = "customer called +1 415 555 0100, card 4111 1111 1111 1111"
        details["auth"] = "Bearer abcdefghijklmnop.qrstuvwx"
    now = time.time_ns()
    attributes = [
        _kv("audit.action", "http.request"),
        _kv("audit.outcome", outcome),
        _kv(EVENT_ID_KEY, event_id or str(uuid.UUID(int=rng.getrandbits(128), version=4))),
        _kv("audit.request.id", f"{rng.getrandbits(64):016x}"),
        _kv("audit.resource.type", route.split("/")[1]),
        _kv("audit.resource.id", resource_id),
        _kv("audit.details", json.dumps(details, separators=(",", ":"))),
        _kv("audit.actor.auth_method", "jwt"),
        _kv("user.id", f"user-{rng.randrange(1, 500)}"),
        _kv("tenant.id", f"tenant-{rng.randrange(1, 20)}"),
        _kv("http.route", route),
        _kv("http.request.method", method),
        _kv("http.response.status_code", status),
        _kv("url.path", path),
        _kv("url.query", query),
        _kv("client.address", f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"),
        _kv("user_agent.original", user_agent),
    ]
    return LogRecord(
        time_unix_nano=now,
        observed_time_unix_nano=now,
        severity_number=severity,  # type: ignore[arg-type]  # the enum is an int at runtime
        severity_text=severity_text,
        body=AnyValue(string_value=f"{method} {route} -> {status}"),
        attributes=attributes,
        trace_id=rng.randbytes(16),
        span_id=rng.randbytes(8),
        event_name=EVENT_NAME,
    )


def _resource() -> Resource:
    return Resource(
        attributes=[
            _kv("service.name", "otel-audit-bench"),
            _kv("service.version", "1.0.0"),
            _kv("service.instance.id", "bench-0"),
            _kv("deployment.environment.name", "bench"),
            _kv("telemetry.sdk.name", "opentelemetry"),
            _kv("telemetry.sdk.language", "python"),
        ]
    )


def export_request(
    records: list[LogRecord], scope_name: str = "otel_audit"
) -> ExportLogsServiceRequest:
    """The records as one OTLP export from one service instance."""
    resource = _resource()
    scope = InstrumentationScope(name=scope_name)
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=resource, scope_logs=[ScopeLogs(scope=scope, log_records=records)]
            )
        ]
    )


def batch_body(size: int, pii_share: float = 0.05, seed: int = 42) -> bytes:
    """One serialized export of ``size`` records, ``pii_share`` of them with PII (spread)."""
    rng = random.Random(seed)
    every = round(1 / pii_share) if pii_share > 0 else 0
    records = [audit_record(rng, pii=every > 0 and i % every == 0) for i in range(size)]
    body: bytes = export_request(records).SerializeToString()
    return body


def pii_count(size: int, pii_share: float = 0.05) -> int:
    """How many of :func:`batch_body`'s records carry PII."""
    every = round(1 / pii_share) if pii_share > 0 else 0
    return 0 if every == 0 else len(range(0, size, every))


# --- the default pipeline: application logs ----------------------------------------------

_APP_MESSAGES = (
    "cache miss for {key}",
    "order {order} accepted in {ms} ms",
    "user {user} signed in from {ip}",
    "retrying call to inventory-service (attempt {attempt})",
    "slow query on orders ({ms} ms)",
)
_APP_FUNCTIONS = (
    ("create_order", "app/orders.py"),
    ("get_item", "app/items.py"),
    ("login", "app/auth.py"),
    ("sync_inventory", "app/jobs.py"),
)
# One attribute every application record has once: counts records in the exported JSON.
APP_RECORD_KEY = "code.function"


def app_record(rng: random.Random, *, pii: bool) -> LogRecord:
    """One application log line (no event name: the routing sends it to logs/default)."""
    function, path = rng.choice(_APP_FUNCTIONS)
    message = rng.choice(_APP_MESSAGES).format(
        key=f"item:{rng.randrange(10_000)}",
        order=f"ord-{rng.getrandbits(32):08x}",
        ms=rng.randrange(1, 900),
        user=f"user-{rng.randrange(1, 500)}",
        ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        attempt=rng.randrange(1, 4),
    )
    status = rng.choice(_STATUSES)
    _, severity, severity_text = _outcome(status)
    attributes = [
        _kv(APP_RECORD_KEY, function),
        _kv("code.filepath", path),
        _kv("code.lineno", rng.randrange(10, 400)),
        _kv("logger.name", path.removesuffix(".py").replace("/", ".")),
        _kv("thread.name", "MainThread"),
        _kv("http.route", rng.choice(_ROUTES)[1]),
        _kv("user.id", f"user-{rng.randrange(1, 500)}"),
    ]
    if pii:
        message = f"password reset for {PII_MARKER}, card 4111 1111 1111 1111, call +1 415 555 0100"
        attributes.append(_kv("http.request.header.authorization", "Bearer abcdefghijklmnop.qrst"))
        attributes.append(
            _kv("db.query.text", f"SELECT id FROM users WHERE email = '{PII_MARKER}'")
        )
    now = time.time_ns()
    return LogRecord(
        time_unix_nano=now,
        observed_time_unix_nano=now,
        severity_number=severity,  # type: ignore[arg-type]  # the enum is an int at runtime
        severity_text=severity_text,
        body=AnyValue(string_value=message),
        attributes=attributes,
        trace_id=rng.randbytes(16),
        span_id=rng.randbytes(8),
    )


def default_batch_body(size: int, pii_share: float = 0.05, seed: int = 42) -> bytes:
    """One serialized export of ``size`` application log records, ``pii_share`` with PII."""
    rng = random.Random(seed)
    every = round(1 / pii_share) if pii_share > 0 else 0
    records = [app_record(rng, pii=every > 0 and i % every == 0) for i in range(size)]
    body: bytes = export_request(records, scope_name="app").SerializeToString()
    return body


# --- the traces pipeline: request traces with the audit span event -----------------------

_SPANS_PER_TRACE = 3


def request_trace(rng: random.Random, *, pii: bool) -> list[Span]:
    """A FastAPI request as opentelemetry-instrumentation-asgi records it: the server span
    (with otel_audit's minimal span event: ids, action, outcome, user, tenant) and its
    ``http receive`` / ``http send`` children."""
    method, route, path_template = rng.choice(_ROUTES)
    status = rng.choice(_STATUSES)
    outcome, _, _ = _outcome(status)
    query = f"page={rng.randrange(1, 20)}&sort=created_at"
    user_agent = rng.choice(_USER_AGENTS)
    trace_id, server_id = rng.randbytes(16), rng.randbytes(8)
    start = time.time_ns()
    attributes = [
        _kv("http.request.method", method),
        _kv("url.scheme", "http"),
        _kv("url.path", path_template.format(rng.randrange(1, 100_000))),
        _kv("url.query", query),
        _kv("http.route", route),
        _kv("http.response.status_code", status),
        _kv("user_agent.original", user_agent),
        _kv("client.address", f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"),
        _kv("server.address", "api.example.internal"),
        _kv("server.port", 8000),
        _kv("network.protocol.version", "1.1"),
    ]
    if pii:
        attributes[3] = _kv("url.query", f"email={PII_MARKER.replace('@', '%40')}&token=s3cr3t42")
        attributes[6] = _kv("user_agent.original", f"support-tool/2.1 (contact {PII_MARKER})")
        attributes.append(_kv("http.request.header.authorization", "Bearer abcdefghijklmnop.qrst"))
    event = Span.Event(
        time_unix_nano=start + 900_000,
        name=EVENT_NAME,
        attributes=[
            _kv(EVENT_ID_KEY, str(uuid.UUID(int=rng.getrandbits(128), version=4))),
            _kv("audit.action", "http.request"),
            _kv("audit.outcome", outcome),
            _kv("user.id", f"user-{rng.randrange(1, 500)}"),
            _kv("tenant.id", f"tenant-{rng.randrange(1, 20)}"),
        ],
    )
    server = Span(
        trace_id=trace_id,
        span_id=server_id,
        name=f"{method} {route}",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=start,
        end_time_unix_nano=start + 1_000_000,
        attributes=attributes,
        events=[event],
    )
    children = [
        Span(
            trace_id=trace_id,
            span_id=rng.randbytes(8),
            parent_span_id=server_id,
            name=f"{method} {route} http {kind}",
            kind=Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=start + offset,
            end_time_unix_nano=start + offset + 50_000,
            attributes=[_kv("asgi.event.type", event_type)],
        )
        for kind, event_type, offset in (
            ("receive", "http.request", 10_000),
            ("send", "http.response.start", 800_000),
        )
    ]
    return [server, *children]


def trace_batch_body(size: int, pii_share: float = 0.05, seed: int = 42) -> bytes:
    """One serialized export of ``size`` spans (whole request traces, the last one cut),
    ``pii_share`` of the traces with PII in their server span."""
    rng = random.Random(seed)
    every = round(1 / pii_share) if pii_share > 0 else 0
    spans: list[Span] = []
    trace = 0
    while len(spans) < size:
        spans += request_trace(rng, pii=every > 0 and trace % every == 0)
        trace += 1
    scope = InstrumentationScope(name="opentelemetry.instrumentation.fastapi")
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=_resource(), scope_spans=[ScopeSpans(scope=scope, spans=spans[:size])]
            )
        ]
    )
    body: bytes = request.SerializeToString()
    return body

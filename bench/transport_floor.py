"""The floor of issue 8: a minimal span event plus one OTLP-JSON line per request, batched.

What any audit trail with its own transport must do per request, and nothing else: a span
event with the ids a reader needs to find the record (``audit.event.id``, ``audit.action``,
``audit.outcome``), and one OTLP/JSON ``ExportLogsServiceRequest`` line carrying the same ten
attributes as the contract floor (``bench/contract_floor.py``), appended to a file with one
``os.write`` per batch of lines. No actor, redaction, policy, ids beyond a counter, sequence
numbers, hash chain, metrics or fsync: its cost is the least such a design costs here.

The line is built with orjson when it is installed (``encoder="orjson"``, a local comparison
only: orjson is not a dependency), else with the project's own encoder
(``otel_audit.archive._otlp_json``). The write happens on the request thread every
``batch`` lines (and at exit), so in-process timing sees all of it.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from starlette.types import ASGIApp, Scope

from otel_audit.archive._otlp_json import (
    encode_log_fields,
    encode_resource,
    encode_scope,
    encode_single_group_line,
)

from .contract_floor import FloorMiddleware

FLOOR_DIR_ENV = "BENCH_FLOOR_DIR"
_EVENT_NAME = "audit.http.request"
_BATCH = 64


def orjson_available() -> bool:
    return importlib.util.find_spec("orjson") is not None


class _LineFile:
    """Lines kept in memory and appended to one file ``batch`` at a time."""

    def __init__(self, path: Path, batch: int) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._batch = batch
        self._pending: list[bytes] = []
        atexit.register(self.flush)

    def append(self, line: bytes) -> None:
        self._pending.append(line)
        if len(self._pending) >= self._batch:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            os.write(self._fd, b"".join(self._pending))
            self._pending.clear()


def _project_encoder(service_instance: str) -> Callable[[dict[str, Any], int, Any], bytes]:
    attributes = {"service.name": "otel-audit-bench", "service.instance.id": service_instance}
    resource = encode_resource(Resource.create(attributes))
    scope = encode_scope(InstrumentationScope("bench.transport_floor", "0"))

    def encode(attributes: dict[str, Any], now: int, context: Any) -> bytes:
        record = encode_log_fields(
            timestamp_ns=now,
            observed_timestamp_ns=now,
            severity_number=9,
            severity_text="INFO",
            body="request",
            attributes=attributes,
            flags=int(context.trace_flags),
            trace_id=context.trace_id,
            span_id=context.span_id,
            event_name=_EVENT_NAME,
        )
        return (encode_single_group_line(resource, scope, [record]) + "\n").encode()

    return encode


def _orjson_encoder(service_instance: str) -> Callable[[dict[str, Any], int, Any], bytes]:
    # Optional, a local comparison only: not a project dependency, so not type-checked.
    orjson = importlib.import_module("orjson")

    resource = {
        "attributes": [
            {"key": "service.name", "value": {"stringValue": "otel-audit-bench"}},
            {"key": "service.instance.id", "value": {"stringValue": service_instance}},
        ]
    }
    scope = {"name": "bench.transport_floor", "version": "0"}

    def value(v: object) -> dict[str, object]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        return {"stringValue": str(v)}

    def encode(attributes: dict[str, Any], now: int, context: Any) -> bytes:
        record = {
            "timeUnixNano": str(now),
            "observedTimeUnixNano": str(now),
            "severityNumber": 9,
            "severityText": "INFO",
            "body": {"stringValue": "request"},
            "attributes": [{"key": k, "value": value(v)} for k, v in attributes.items()],
            "flags": int(context.trace_flags),
            "traceId": f"{context.trace_id:032x}",
            "spanId": f"{context.span_id:016x}",
            "eventName": _EVENT_NAME,
        }
        request = {
            "resourceLogs": [
                {"resource": resource, "scopeLogs": [{"scope": scope, "logRecords": [record]}]}
            ]
        }
        line: bytes = orjson.dumps(request)
        return line + b"\n"

    return encode


class TransportFloorMiddleware(FloorMiddleware):
    """A minimal span event and one OTLP-JSON line per HTTP request, lines written in batches."""

    def __init__(
        self, app: ASGIApp, directory: str, encoder: str = "project", batch: int = _BATCH
    ) -> None:
        if encoder not in ("project", "orjson"):
            raise ValueError(f"encoder must be 'project' or 'orjson', got {encoder!r}")
        super().__init__(app)
        instance = f"floor-{os.getpid()}-{encoder}"
        self._file = _LineFile(Path(directory) / f"{instance}.jsonl", batch)
        self._encode = (_orjson_encoder if encoder == "orjson" else _project_encoder)(instance)

    def _emit(self, scope: Scope, status: int, span: trace.Span) -> None:
        number = next(self._ids)
        outcome = "success" if status < 400 else "failure"
        event_id = f"e-{number}"
        route = getattr(scope.get("route"), "path", "")
        client = scope.get("client")
        attributes = {
            "audit.action": "http.request",
            "audit.outcome": outcome,
            "audit.event.id": event_id,
            "audit.request.id": f"r-{number}",
            "http.request.method": scope["method"],
            "url.path": scope["path"],
            "http.route": route,
            "client.address": client[0] if client else "",
            "user_agent.original": "wrk",
            "http.response.status_code": status,
        }
        now = time.time_ns()
        span.add_event(
            _EVENT_NAME,
            {"audit.event.id": event_id, "audit.action": "http.request", "audit.outcome": outcome},
            now,
        )
        self._file.append(self._encode(attributes, now, span.get_span_context()))

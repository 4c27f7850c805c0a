"""OTLP JSON encoding of SDK log records, byte-compatible with the collector.

The file format is exactly the one the OpenTelemetry Collector's ``file`` exporter writes
(``format: json``), so one reader (:mod:`otel_audit.archive`) handles both. Each line is one
``ExportLogsServiceRequest`` as the collector's pdata JSON marshaler writes it
(``pdata/internal/generated_proto_*.go`` ``MarshalJSON`` and ``pdata/internal/json/stream.go``):

* lowerCamelCase field names, fields in proto order; zero/empty scalars and lists omitted, but
  ``resource``, ``scope``, ``body`` and a key-value's ``value`` are always written (``{}``
  when empty), as the marshaler does;
* ``traceId``/``spanId`` as lowercase hex; 64-bit integers (``timeUnixNano``,
  ``observedTimeUnixNano``, ``intValue``) as decimal strings; ``severityNumber`` and
  ``flags`` as numbers;
* ``doubleValue`` as a number (integral ones without ``.0``, as Go prints them), or
  ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
* ``bytesValue`` as standard base64.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

__all__ = ["encode_any_value", "encode_logs_request"]


JSONObject = dict[str, Any]
RecordErrorHandler = Callable[[ReadableLogRecord, Exception], None]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# A cyclic or absurdly deep body must fail its record, not blow the stack of the export thread.
_MAX_DEPTH = 64


def dumps_compact(value: object) -> str:
    # allow_nan=False: non-finite floats are already strings, so a NaN here is a bug to surface.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_any_value(value: object, _depth: int = 0) -> JSONObject:  # noqa: PLR0911 - one per kind
    """Encode a Python value as an OTLP/JSON ``AnyValue`` object."""
    if value is None:
        return {}
    if isinstance(value, bool):  # before int: bool is an int subclass
        return {"boolValue": value}
    if isinstance(value, str):
        return {"stringValue": str(value)}
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return {"intValue": str(int(value))}
        # OTLP has no bigger integer; keep the digits rather than lose the value.
        return {"stringValue": str(int(value))}
    if isinstance(value, float):
        if math.isfinite(value):
            return {"doubleValue": _double(value)}
        if math.isnan(value):
            return {"doubleValue": "NaN"}
        return {"doubleValue": "Infinity" if value > 0 else "-Infinity"}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if _depth >= _MAX_DEPTH:
        raise ValueError(f"value nested deeper than {_MAX_DEPTH} levels (cyclic?)")
    if isinstance(value, Mapping):
        pairs = [_encode_key_value(str(k), v, _depth + 1) for k, v in value.items()]
        return {"kvlistValue": {"values": pairs} if pairs else {}}
    if isinstance(value, Sequence):
        items = [encode_any_value(v, _depth + 1) for v in value]
        return {"arrayValue": {"values": items} if items else {}}
    # What the SDK itself does with an unknown attribute type: keep its text.
    return {"stringValue": str(value)}


def _double(value: float) -> float | int:
    # Go prints integral doubles below 1e21 as "2", not "2.0"; an int prints the same and
    # still reads back as a double. Other doubles print the same shortest digits in both,
    # except -0.0 and magnitudes in [1e-6, 1e-4): same number, other notation.
    if value.is_integer() and abs(value) < 1e21 and (value or math.copysign(1.0, value) > 0):
        return int(value)
    return float(value)


def _encode_key_value(key: str, value: object, depth: int = 0) -> JSONObject:
    encoded = encode_any_value(value, depth)
    # The marshaler omits an empty key but always writes the value.
    return {"key": key, "value": encoded} if key else {"value": encoded}


def _encode_attributes(attributes: Mapping[str, object] | None) -> list[JSONObject]:
    if not attributes:
        return []
    return [_encode_key_value(key, value) for key, value in attributes.items()]


def encode_resource(resource: Resource) -> JSONObject:
    """Encode the ``resource`` block of a ``ResourceLogs``."""
    attributes = _encode_attributes(resource.attributes)
    return {"attributes": attributes} if attributes else {}


def encode_scope(scope: InstrumentationScope | None) -> JSONObject:
    """Encode the ``scope`` block of a ``ScopeLogs`` (``{}`` for no scope)."""
    if scope is None:
        return {}
    encoded: JSONObject = {}
    if scope.name:
        encoded["name"] = scope.name
    if scope.version:
        encoded["version"] = scope.version
    attributes = _encode_attributes(scope.attributes)
    if attributes:
        encoded["attributes"] = attributes
    return encoded


def encode_log_record(record: ReadableLogRecord) -> JSONObject:
    """Encode one SDK log record as an OTLP/JSON ``LogRecord`` object."""
    log = record.log_record
    encoded: JSONObject = {}
    if log.timestamp:
        encoded["timeUnixNano"] = str(int(log.timestamp))
    if log.observed_timestamp:
        encoded["observedTimeUnixNano"] = str(int(log.observed_timestamp))
    severity = int(log.severity_number.value) if log.severity_number is not None else 0
    if severity:
        encoded["severityNumber"] = severity
    if log.severity_text:
        encoded["severityText"] = str(log.severity_text)
    encoded["body"] = encode_any_value(log.body)
    attributes = _encode_attributes(log.attributes)
    if attributes:
        encoded["attributes"] = attributes
    if record.dropped_attributes:
        encoded["droppedAttributesCount"] = int(record.dropped_attributes)
    flags = int(log.trace_flags or 0)
    if flags:
        encoded["flags"] = flags
    if log.trace_id:
        encoded["traceId"] = f"{log.trace_id:032x}"
    if log.span_id:
        encoded["spanId"] = f"{log.span_id:016x}"
    if log.event_name:
        encoded["eventName"] = str(log.event_name)
    return encoded


Encoded = TypeVar("Encoded")
# One scope's encoded records, and every scope's under one resource, in first-seen order.
ScopeGroup = tuple[InstrumentationScope | None, list[Encoded]]
ResourceGroups = list[tuple[Resource, list[ScopeGroup[Encoded]]]]


def _raise(_record: ReadableLogRecord, error: Exception) -> None:
    raise error


def group_records(
    records: Sequence[ReadableLogRecord],
    encode: Callable[[ReadableLogRecord], Encoded],
    on_error: RecordErrorHandler,
) -> ResourceGroups[Encoded]:
    """Encode each record on its own and group them by resource, then scope, like OTLP.

    Groups keep first-seen order; a record ``encode`` fails on goes to ``on_error``.
    """
    # Keyed by identity: the SDK shares one Resource per provider and one scope per logger,
    # and Resource.__hash__ serialises all attributes. The batch keeps the objects alive.
    by_resource: dict[int, tuple[Resource, dict[int, ScopeGroup[Encoded]]]] = {}
    for record in records:
        try:
            encoded = encode(record)
        except Exception as error:  # one bad record must not sink the batch
            on_error(record, error)
            continue
        _, scopes = by_resource.setdefault(id(record.resource), (record.resource, {}))
        scope = record.instrumentation_scope
        scopes.setdefault(id(scope), (scope, []))[1].append(encoded)
    return [(resource, list(scopes.values())) for resource, scopes in by_resource.values()]


def encode_logs_request(
    records: Sequence[ReadableLogRecord],
    *,
    on_error: RecordErrorHandler | None = None,
) -> JSONObject:
    """Encode records as one OTLP/JSON ``ExportLogsServiceRequest`` (one archive line).

    A record that cannot be encoded is passed to ``on_error`` and left out; without
    ``on_error`` the error is raised. The archive writes the same line as text with
    :mod:`otel_audit._otlp_json_line`; this readable form is what that is checked against.
    """
    resource_logs: list[JSONObject] = []
    for resource, scopes in group_records(records, encode_log_record, on_error or _raise):
        scope_logs: list[JSONObject] = []
        for scope, encoded in scopes:
            scope_log: JSONObject = {"scope": encode_scope(scope), "logRecords": encoded}
            if scope is not None and scope.schema_url:
                scope_log["schemaUrl"] = scope.schema_url
            scope_logs.append(scope_log)
        resource_log = {"resource": encode_resource(resource), "scopeLogs": scope_logs}
        if resource.schema_url:
            resource_log["schemaUrl"] = resource.schema_url
        resource_logs.append(resource_log)
    return {"resourceLogs": resource_logs} if resource_logs else {}

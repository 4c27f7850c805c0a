"""Spool lines (OTLP/JSON) to the protobuf ``ExportLogsServiceRequest``, field for field.

A spool line is what ``otel_audit.archive._otlp_json.encode_logs_line`` writes: the
collector's JSON form, where trace and span ids are hex (not proto3 JSON's base64) and 64-bit
integers are strings. ``json_format.Parse`` would need the ids rewritten first and walks
descriptors per field; this direct walk is several times faster, and it runs on the shipper
thread, which shares the GIL with the requests being served. Exactness is checked against the
SDK's own protobuf encoder of the same records (``tests/test_shipper.py``).

Submessages present in the JSON (``resource``, ``scope``, ``body``, a key-value's ``value``,
empty arrays and maps) are set even when empty, as the SDK's encoder sets them. A string that
is not valid UTF-8 (a lone surrogate, which the JSON escapes can carry) becomes U+FFFD, as
the collector's own JSON decoder does with it. Fields that are not OTLP logs fields are
refused (ValueError): the line is not what the spool writes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any, Final

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

# What the spool may hold per object; anything else means a line we do not understand.
_RECORD_FIELDS: Final = frozenset(
    {
        "timeUnixNano",
        "observedTimeUnixNano",
        "severityNumber",
        "severityText",
        "body",
        "attributes",
        "droppedAttributesCount",
        "flags",
        "traceId",
        "spanId",
        "eventName",
    }
)
_SEVERITY_PREFIX: Final = "SEVERITY_NUMBER_"
_SEVERITY_ENUM: Final = LogRecord.DESCRIPTOR.fields_by_name["severity_number"].enum_type


def to_protobuf(requests: Iterable[Any]) -> ExportLogsServiceRequest:
    """One request holding the ``resourceLogs`` of every parsed line, in order."""
    message = ExportLogsServiceRequest()
    for request in requests:
        if not isinstance(request, dict) or set(request) - {"resourceLogs"}:
            raise ValueError("a spool line must be an object with only resourceLogs")
        for resource_logs in _list(request.get("resourceLogs")):
            _resource_logs(message.resource_logs.add(), resource_logs)
    return message


def _resource_logs(out: ResourceLogs, data: Any) -> None:
    if "resource" in data:
        resource: Resource = out.resource
        resource.SetInParent()
        source = _object(data["resource"])
        _key_values(resource.attributes, source.get("attributes"))
        resource.dropped_attributes_count = int(source.get("droppedAttributesCount", 0))
    for scope_logs in _list(data.get("scopeLogs")):
        _scope_logs(out.scope_logs.add(), scope_logs)
    out.schema_url = _string(data.get("schemaUrl", ""))


def _scope_logs(out: ScopeLogs, data: Any) -> None:
    if "scope" in data:
        scope: InstrumentationScope = out.scope
        scope.SetInParent()
        source = _object(data["scope"])
        scope.name = _string(source.get("name", ""))
        scope.version = _string(source.get("version", ""))
        _key_values(scope.attributes, source.get("attributes"))
        scope.dropped_attributes_count = int(source.get("droppedAttributesCount", 0))
    for record in _list(data.get("logRecords")):
        _record(out.log_records.add(), record)
    out.schema_url = _string(data.get("schemaUrl", ""))


def _record(out: LogRecord, data: Any) -> None:
    record = _object(data)
    unknown = record.keys() - _RECORD_FIELDS
    if unknown:
        raise ValueError(f"unknown log record fields {sorted(unknown)}")
    out.time_unix_nano = int(record.get("timeUnixNano", 0))
    out.observed_time_unix_nano = int(record.get("observedTimeUnixNano", 0))
    out.severity_number = _severity(record.get("severityNumber", 0))  # type: ignore[assignment]
    out.severity_text = _string(record.get("severityText", ""))
    if "body" in record:
        _any_value(out.body, record["body"])
    _key_values(out.attributes, record.get("attributes"))
    out.dropped_attributes_count = int(record.get("droppedAttributesCount", 0))
    out.flags = int(record.get("flags", 0))
    out.trace_id = bytes.fromhex(_string(record.get("traceId", "")))
    out.span_id = bytes.fromhex(_string(record.get("spanId", "")))
    out.event_name = _string(record.get("eventName", ""))


def _key_values(out: Any, items: Any) -> None:
    for item in _list(items):
        key_value: KeyValue = out.add()
        pair = _object(item)
        key_value.key = _string(pair.get("key", ""))
        if "value" in pair:
            _any_value(key_value.value, pair["value"])


def _any_value(out: AnyValue, data: Any) -> None:  # noqa: PLR0912 - one branch per kind
    value = _object(data)
    out.SetInParent()
    if not value:
        return
    if len(value) != 1:
        raise ValueError(f"AnyValue with several kinds {sorted(value)}")
    ((kind, content),) = value.items()
    if kind == "stringValue":
        out.string_value = _string(content)
    elif kind == "intValue":
        out.int_value = int(content)
    elif kind == "boolValue":
        if not isinstance(content, bool):
            raise ValueError("boolValue must be true or false")
        out.bool_value = content
    elif kind == "doubleValue":
        if isinstance(content, bool):
            raise ValueError("doubleValue must be a number")
        out.double_value = float(content)  # also "NaN", "Infinity", "-Infinity"
    elif kind == "bytesValue":
        out.bytes_value = base64.b64decode(_string(content), validate=True)
    elif kind == "arrayValue":
        array = out.array_value
        array.SetInParent()
        for item in _list(_object(content).get("values")):
            _any_value(array.values.add(), item)
    elif kind == "kvlistValue":
        kvlist = out.kvlist_value
        kvlist.SetInParent()
        _key_values(kvlist.values, _object(content).get("values"))
    else:
        raise ValueError(f"unknown AnyValue kind {kind!r}")


def _severity(value: Any) -> int:
    if isinstance(value, str) and value.startswith(_SEVERITY_PREFIX):
        return int(_SEVERITY_ENUM.values_by_name[value].number)
    if isinstance(value, bool):
        raise ValueError("severityNumber must be a number")
    return int(value)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: json.loads has already paired the rest
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in value)
    return value


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"expected an array, got {type(value).__name__}")
    return value


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {type(value).__name__}")
    return value

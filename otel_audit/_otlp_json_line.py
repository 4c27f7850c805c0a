"""One archive line (an OTLP/JSON ``ExportLogsServiceRequest``) written directly as text.

:func:`otel_audit._otlp_json.encode_logs_request` builds the request as nested dicts for
``json.dumps``: clear, but it allocates about a hundred objects per record on the export
thread, which shares the GIL with the requests being served. This module writes the same
characters straight from the records: strings through the C JSON string encoder, key
prefixes cached, and only rare value kinds (bytes, doubles, arrays, maps) through the dict
encoder. ``encode_logs_line(records) == dumps_compact(encode_logs_request(records))`` for
every input, which the tests check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any, Final

from opentelemetry.sdk._logs import ReadableLogRecord

from ._otlp_json import (
    JSONObject,
    RecordErrorHandler,
    dumps_compact,
    encode_any_value,
    encode_resource,
    encode_scope,
    group_records,
)

_json_string: Callable[[str], str] = encode_basestring
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
# Attribute keys repeat across records; their '{"key":"…","value":' prefix is kept.
_KEY_PREFIX_CACHE_SIZE: Final = 4096
_key_prefixes: dict[str, str] = {}

BlockText = Callable[[Any, Callable[[Any], JSONObject]], str]


def _default_block(obj: Any, encode: Callable[[Any], JSONObject]) -> str:
    return dumps_compact(encode(obj))


def _value(value: object) -> str:
    """An ``AnyValue`` as text; the common kinds directly, the rest via the dict encoder."""
    # Exact types: subclasses (str enums, IntEnum) take the dict encoder's path.
    if type(value) is str:
        return '{"stringValue":' + _json_string(value) + "}"
    if type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
        return '{"intValue":"' + str(value) + '"}'
    if type(value) is bool:
        return '{"boolValue":true}' if value else '{"boolValue":false}'
    if value is None:
        return "{}"
    return dumps_compact(encode_any_value(value))


def _key_prefix(key: str) -> str:
    prefix = _key_prefixes.get(key)
    if prefix is None:
        # The marshaler omits an empty key but always writes the value.
        prefix = '{"key":' + _json_string(key) + ',"value":' if key else '{"value":'
        if len(_key_prefixes) >= _KEY_PREFIX_CACHE_SIZE:
            _key_prefixes.clear()
        _key_prefixes[key] = prefix
    return prefix


def _attributes(attributes: Mapping[str, object]) -> str:
    return ",".join([_key_prefix(key) + _value(value) + "}" for key, value in attributes.items()])


def encode_log_record_line(record: ReadableLogRecord) -> str:
    """One ``LogRecord`` object as text (see :func:`_otlp_json.encode_log_record`)."""
    log = record.log_record
    parts: list[str] = []
    if log.timestamp:
        parts.append('"timeUnixNano":"' + str(int(log.timestamp)) + '"')
    if log.observed_timestamp:
        parts.append('"observedTimeUnixNano":"' + str(int(log.observed_timestamp)) + '"')
    severity = int(log.severity_number.value) if log.severity_number is not None else 0
    if severity:
        parts.append('"severityNumber":' + str(severity))
    if log.severity_text:
        parts.append('"severityText":' + _json_string(str(log.severity_text)))
    parts.append('"body":' + _value(log.body))
    if log.attributes:
        parts.append('"attributes":[' + _attributes(log.attributes) + "]")
    if record.dropped_attributes:
        parts.append('"droppedAttributesCount":' + str(int(record.dropped_attributes)))
    flags = int(log.trace_flags or 0)
    if flags:
        parts.append('"flags":' + str(flags))
    if log.trace_id:
        parts.append(f'"traceId":"{log.trace_id:032x}"')
    if log.span_id:
        parts.append(f'"spanId":"{log.span_id:016x}"')
    if log.event_name:
        parts.append('"eventName":' + _json_string(str(log.event_name)))
    return "{" + ",".join(parts) + "}"


def _schema_url(url: str | None) -> str:
    return ',"schemaUrl":' + _json_string(url) if url else ""


def encode_logs_line(
    records: Sequence[ReadableLogRecord],
    *,
    on_error: RecordErrorHandler,
    block: BlockText = _default_block,
) -> str:
    """The records as one compact OTLP/JSON request ("" when none could be encoded).

    Records are grouped by resource, then scope, in first-seen order; a record that cannot
    be encoded goes to ``on_error`` and is left out. ``block`` turns a resource or scope
    into text (the exporter caches those per object).
    """
    groups = group_records(records, encode_log_record_line, on_error)
    if not groups:
        return ""
    resource_logs = []
    for resource, scopes in groups:
        scope_logs = [
            '{"scope":'
            + block(scope, encode_scope)
            + ',"logRecords":['
            + ",".join(texts)
            + "]"
            + _schema_url(scope.schema_url if scope is not None else None)
            + "}"
            for scope, texts in scopes
        ]
        resource_logs.append(
            '{"resource":'
            + block(resource, encode_resource)
            + ',"scopeLogs":['
            + ",".join(scope_logs)
            + "]"
            + _schema_url(resource.schema_url)
            + "}"
        )
    return '{"resourceLogs":[' + ",".join(resource_logs) + "]}"

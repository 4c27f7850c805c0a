"""OTLP JSON for logs: the one encoder (SDK records to a line) and its decoder, side by side.

A line is one ``ExportLogsServiceRequest`` exactly as the OpenTelemetry Collector's ``file``
exporter writes it (``format: json``, the pdata JSON marshaler in
``pdata/internal/generated_proto_*.go`` and ``pdata/internal/json/stream.go``), so one
decoder reads our archives and the collector's:

* lowerCamelCase field names in proto order; zero/empty scalars and lists omitted, but
  ``resource``, ``scope``, ``body`` and a key-value's ``value`` always written (``{}`` when
  empty); an empty key omitted;
* ``traceId``/``spanId`` as lowercase hex; 64-bit integers (``timeUnixNano``,
  ``observedTimeUnixNano``, ``intValue``) as decimal strings; ``severityNumber``, ``flags``
  and ``droppedAttributesCount`` as numbers;
* ``doubleValue`` as a number (integral ones without ``.0``, as Go prints them), or
  ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; ``bytesValue`` as standard base64.

The encoder writes text directly (no dict per field, no ``json.dumps`` of a tree): it runs on
the export thread, which shares the GIL with the requests being served. It is checked
against an independent oracle, the SDK's protobuf encoder read back with ``MessageToDict``
(``tests/test_otlp_json_oracle.py``), and against verbatim collector output.

The decoder also accepts the other spellings proto JSON allows (numbers for 64-bit
integers, enum names, upper-case hex, numeric strings for doubles).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any, Final

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from ._model import ArchivedEvent, ArchiveReadError

RecordErrorHandler = Callable[[ReadableLogRecord, Exception], None]
# Turns a resource or scope into its text with the given encoder; the exporter caches these.
BlockText = Callable[[Any, Callable[[Any], str]], str]

# encode_basestring keeps non-ASCII as is (as the collector does) and escapes the rest.
_json_string: Callable[[str], str] = encode_basestring
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
# A cyclic or absurdly deep body must fail its record, not blow the stack of the export thread.
_MAX_DEPTH: Final = 64
# Attribute keys repeat across records; their '{"key":"…","value":' prefix is kept.
_KEY_PREFIX_CACHE_SIZE: Final = 4096
_key_prefixes: dict[str, str] = {}

# -- encoder ---------------------------------------------------------------------------------


def _value(value: object, depth: int = 0) -> str:
    """An ``AnyValue`` object as text; exact common types first, they are most of the work."""
    if type(value) is str:
        return '{"stringValue":' + _json_string(value) + "}"
    if type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
        return '{"intValue":"' + str(value) + '"}'
    if type(value) is bool:
        return '{"boolValue":true}' if value else '{"boolValue":false}'
    if value is None:
        return "{}"
    return _other_value(value, depth)


def _other_value(value: object, depth: int) -> str:  # noqa: PLR0911 - one return per kind
    if type(value) is tuple or type(value) is list:  # attribute arrays: skip the ABC checks
        return _array(value, depth)
    if isinstance(value, bool):
        return '{"boolValue":true}' if value else '{"boolValue":false}'
    if isinstance(value, str):  # a str subclass (str enums): its characters, like protobuf
        return '{"stringValue":' + _json_string(value) + "}"
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return '{"intValue":"' + str(int(value)) + '"}'
        # OTLP has no bigger integer; keep the digits rather than lose the value.
        return '{"stringValue":"' + str(int(value)) + '"}'
    if isinstance(value, float):
        return '{"doubleValue":' + _double(value) + "}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return '{"bytesValue":"' + base64.b64encode(value).decode("ascii") + '"}'
    if depth >= _MAX_DEPTH:
        raise ValueError(f"value nested deeper than {_MAX_DEPTH} levels (cyclic?)")
    if isinstance(value, Mapping):
        if not all(type(key) is str for key in value):
            # Keys with the same text collapse here, the last value winning, as they would
            # when the archive is read back: the line and the hash chain see the same map.
            value = {str(key): item for key, item in value.items()}
        pairs = ",".join([_key_value(key, item, depth + 1) for key, item in value.items()])
        return '{"kvlistValue":{"values":[' + pairs + "]}}" if pairs else '{"kvlistValue":{}}'
    if isinstance(value, Sequence):
        return _array(value, depth)
    # What the SDK itself does with an unknown attribute type: keep its text.
    return '{"stringValue":' + _json_string(str(value)) + "}"


def _array(value: Sequence[object], depth: int) -> str:
    if depth >= _MAX_DEPTH:
        raise ValueError(f"value nested deeper than {_MAX_DEPTH} levels (cyclic?)")
    items = ",".join([_value(item, depth + 1) for item in value])
    return '{"arrayValue":{"values":[' + items + "]}}" if items else '{"arrayValue":{}}'


def _double(value: float) -> str:
    if math.isnan(value):
        return '"NaN"'
    if math.isinf(value):
        return '"Infinity"' if value > 0 else '"-Infinity"'
    # Go prints integral doubles below 1e21 as "2", not "2.0"; that still reads back as a
    # double. Other doubles print the same shortest digits in both, except -0.0 and
    # magnitudes in [1e-6, 1e-4): same number, other notation.
    if value.is_integer() and abs(value) < 1e21 and (value or math.copysign(1.0, value) > 0):
        return str(int(value))
    return float.__repr__(value)


def _key_value(key: str, value: object, depth: int) -> str:
    # The marshaler omits an empty key but always writes the value.
    prefix = '{"key":' + _json_string(key) + ',"value":' if key else '{"value":'
    return prefix + _value(value, depth) + "}"


def _key_prefix(key: str) -> str:
    prefix = _key_prefixes.get(key)
    if prefix is None:
        prefix = '{"key":' + _json_string(key) + ',"value":' if key else '{"value":'
        if len(_key_prefixes) >= _KEY_PREFIX_CACHE_SIZE:
            _key_prefixes.clear()
        _key_prefixes[key] = prefix
    return prefix


def _attributes(attributes: Mapping[str, object]) -> str:
    return ",".join([encode_attribute(key, value) for key, value in attributes.items()])


def encode_value(value: object) -> str:
    """One ``AnyValue`` object as text (a log body, an attribute's value)."""
    return _value(value)


def encode_attribute(key: str, value: object) -> str:
    """One ``KeyValue`` object as text, as it appears in an ``attributes`` array."""
    prefix = _key_prefixes.get(key) or _key_prefix(key)
    if type(value) is str:  # most attributes: no call to _value
        return prefix + '{"stringValue":' + _json_string(value) + "}}"
    return prefix + _value(value) + "}"


def encode_resource(resource: Resource) -> str:
    """The ``resource`` object of a ``ResourceLogs``."""
    if not resource.attributes:
        return "{}"
    return '{"attributes":[' + _attributes(resource.attributes) + "]}"


def encode_scope(scope: InstrumentationScope | None) -> str:
    """The ``scope`` object of a ``ScopeLogs`` (``{}`` for no scope)."""
    if scope is None:
        return "{}"
    parts = []
    if scope.name:
        parts.append('"name":' + _json_string(scope.name))
    if scope.version:
        parts.append('"version":' + _json_string(scope.version))
    if scope.attributes:
        parts.append('"attributes":[' + _attributes(scope.attributes) + "]")
    return "{" + ",".join(parts) + "}"


def encode_log_record(record: ReadableLogRecord) -> str:
    """One ``LogRecord`` object, from an SDK log record."""
    log = record.log_record
    return encode_log_fields(
        timestamp_ns=log.timestamp,
        observed_timestamp_ns=log.observed_timestamp,
        severity_number=int(log.severity_number.value) if log.severity_number is not None else 0,
        severity_text=log.severity_text,
        body=log.body,
        attributes=log.attributes,
        dropped_attributes=record.dropped_attributes,
        flags=int(log.trace_flags or 0),
        trace_id=log.trace_id,
        span_id=log.span_id,
        event_name=log.event_name,
    )


def encode_log_fields(
    *,
    timestamp_ns: int | None,
    observed_timestamp_ns: int | None,
    severity_number: int,
    severity_text: str | None,
    body: object,
    attributes: Mapping[str, object] | None,
    dropped_attributes: int = 0,
    flags: int = 0,
    trace_id: int | None = None,
    span_id: int | None = None,
    event_name: str | None = None,
    body_text: str | None = None,
    attributes_text: str | None = None,
) -> str:
    """One ``LogRecord`` object from its fields (for writers that have no SDK record).

    ``body_text`` and ``attributes_text`` (the array's items, from :func:`encode_value` and
    :func:`encode_attribute`) replace ``body`` and ``attributes`` when a writer has already
    encoded them (the hash chain's writer does).
    """
    parts: list[str] = []
    if timestamp_ns:
        parts.append('"timeUnixNano":"' + str(int(timestamp_ns)) + '"')
    if observed_timestamp_ns:
        parts.append('"observedTimeUnixNano":"' + str(int(observed_timestamp_ns)) + '"')
    if severity_number:
        parts.append('"severityNumber":' + str(severity_number))
    if severity_text:
        parts.append('"severityText":' + _json_string(str(severity_text)))
    parts.append('"body":' + (_value(body) if body_text is None else body_text))
    if attributes_text is None and attributes:
        attributes_text = _attributes(attributes)
    if attributes_text:
        parts.append('"attributes":[' + attributes_text + "]")
    if dropped_attributes:
        parts.append('"droppedAttributesCount":' + str(int(dropped_attributes)))
    if flags:
        parts.append('"flags":' + str(flags))
    if trace_id:
        parts.append(f'"traceId":"{trace_id:032x}"')
    if span_id:
        parts.append(f'"spanId":"{span_id:016x}"')
    if event_name:
        parts.append('"eventName":' + _json_string(str(event_name)))
    return "{" + ",".join(parts) + "}"


def encode_single_group_line(resource_text: str, scope_text: str, records: Sequence[str]) -> str:
    """One ``ExportLogsServiceRequest`` line for log records of one resource and one scope.

    ``resource_text`` and ``scope_text`` come from :func:`encode_resource` and
    :func:`encode_scope` (computed once by a writer); ``records`` from
    :func:`encode_log_fields`.
    """
    return (
        '{"resourceLogs":[{"resource":'
        + resource_text
        + ',"scopeLogs":[{"scope":'
        + scope_text
        + ',"logRecords":['
        + ",".join(records)
        + "]}]}]}"
    )


def _encode_block(obj: Any, encode: Callable[[Any], str]) -> str:
    return encode(obj)


def _schema_url(url: str | None) -> str:
    return ',"schemaUrl":' + _json_string(url) if url else ""


def encode_logs_line(
    records: Sequence[ReadableLogRecord],
    *,
    on_error: RecordErrorHandler,
    block: BlockText = _encode_block,
) -> str:
    """The records as one compact ``ExportLogsServiceRequest`` ("" when none could be encoded).

    Records are grouped by resource, then scope, in first-seen order; a record that cannot
    be encoded goes to ``on_error`` and is left out. ``block`` turns a resource or scope
    into text (the exporter caches those per object).
    """
    # Keyed by identity: the SDK shares one Resource per provider and one scope per logger,
    # and Resource.__hash__ serialises all attributes. The batch keeps the objects alive.
    groups: dict[int, tuple[Resource, dict[int, tuple[InstrumentationScope | None, list[str]]]]]
    groups = {}
    for record in records:
        try:
            text = encode_log_record(record)
        except Exception as error:  # one bad record must not sink the batch
            on_error(record, error)
            continue
        _, scopes = groups.setdefault(id(record.resource), (record.resource, {}))
        scope = record.instrumentation_scope
        scopes.setdefault(id(scope), (scope, []))[1].append(text)
    if not groups:
        return ""
    resource_logs = []
    for resource, scopes in groups.values():
        scope_logs = [
            '{"scope":'
            + block(scope, encode_scope)
            + ',"logRecords":['
            + ",".join(texts)
            + "]"
            + _schema_url(scope.schema_url if scope is not None else None)
            + "}"
            for scope, texts in scopes.values()
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


# -- decoder ---------------------------------------------------------------------------------

_HEX_ID = {"traceId": re.compile(r"[0-9a-fA-F]{32}"), "spanId": re.compile(r"[0-9a-fA-F]{16}")}
_SEVERITY_NAMES = {
    f"SEVERITY_NUMBER_{name}{suffix}": number + offset
    for name, number in (
        ("TRACE", 1),
        ("DEBUG", 5),
        ("INFO", 9),
        ("WARN", 13),
        ("ERROR", 17),
        ("FATAL", 21),
    )
    for offset, suffix in enumerate(("", "2", "3", "4"))
} | {"SEVERITY_NUMBER_UNSPECIFIED": 0}
# What decoding malformed (but valid JSON) input can raise; anything else is a bug.
DECODE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, binascii.Error)


def decode_logs_request(
    request: Any, source: str, report: Callable[[ArchiveReadError], None]
) -> list[ArchivedEvent]:
    """Flatten one parsed ``ExportLogsServiceRequest``; a bad record is reported, its siblings kept.

    A request that is malformed as a whole raises one of :data:`DECODE_ERRORS`.
    """
    if not isinstance(request, dict):
        raise TypeError(f"expected a JSON object, got {type(request).__name__}")
    events: list[ArchivedEvent] = []
    for resource_logs in _list(request, "resourceLogs"):
        resource = _decode_key_values(_object(resource_logs, "resource").get("attributes"))
        for scope_logs in _list(resource_logs, "scopeLogs"):
            scope = _object(scope_logs, "scope")
            for index, record in enumerate(_list(scope_logs, "logRecords")):
                try:
                    events.append(_decode_record(record, resource, scope, source))
                except DECODE_ERRORS as error:
                    report(ArchiveReadError(source, f"skipped log record #{index}: {error!r}"))
    return events


def _list(parent: dict[str, Any], field: str) -> list[Any]:
    value = parent.get(field, [])
    if not isinstance(value, list):
        raise TypeError(f"{field} must be an array")
    return value


def _object(parent: dict[str, Any], field: str) -> dict[str, Any]:
    value = parent.get(field, {})
    if not isinstance(value, dict):
        raise TypeError(f"{field} must be an object")
    return value


def _decode_record(
    record: Any, resource: dict[str, object], scope: dict[str, Any], source: str
) -> ArchivedEvent:
    if not isinstance(record, dict):
        raise TypeError("log record must be an object")
    return ArchivedEvent(
        event_name=_string(record, "eventName"),
        timestamp_ns=_integer(record.get("timeUnixNano", 0)),
        observed_timestamp_ns=_integer(record.get("observedTimeUnixNano", 0)),
        severity_number=_severity(record.get("severityNumber", 0)),
        severity_text=_string(record, "severityText"),
        body=decode_any_value(record.get("body", {})),
        attributes=_decode_key_values(record.get("attributes")),
        resource=dict(resource),  # a copy per event: events must not share mutable state
        scope_name=_string(scope, "name"),
        trace_id=_hex_id(record, "traceId"),
        span_id=_hex_id(record, "spanId"),
        source=source,
        scope_version=_string(scope, "version"),
        flags=_integer(record.get("flags", 0)),
        dropped_attributes_count=_integer(record.get("droppedAttributesCount", 0)),
    )


def _string(parent: dict[str, Any], field: str) -> str:
    value = parent.get(field, "")
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a string")
    return value


def _integer(value: Any) -> int:
    # Protobuf JSON writes 64-bit integers as strings and accepts numbers too.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def _severity(value: Any) -> int:
    if isinstance(value, str) and value in _SEVERITY_NAMES:  # proto JSON allows enum names
        return _SEVERITY_NAMES[value]
    return _integer(value)


def _hex_id(record: dict[str, Any], field: str) -> str:
    value = _string(record, field)
    if value and not _HEX_ID[field].fullmatch(value):
        raise ValueError(f"{field} must be hex of the right length, got {value!r}")
    return value.lower()


def _decode_key_values(items: Any) -> dict[str, object]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise TypeError("attributes must be an array")
    decoded: dict[str, object] = {}
    for item in items:
        if not isinstance(item, dict):
            raise TypeError("attribute must be an object")
        decoded[_string(item, "key")] = decode_any_value(item.get("value", {}))
    return decoded


def decode_any_value(value: Any) -> object:  # noqa: PLR0911 - one return per AnyValue kind
    """Decode an OTLP/JSON ``AnyValue`` object to the Python value it encodes."""
    if not isinstance(value, dict):
        raise TypeError(f"AnyValue must be an object, got {value!r}")
    if not value:
        return None
    if "stringValue" in value:
        return _string(value, "stringValue")
    if "boolValue" in value:
        if not isinstance(value["boolValue"], bool):
            raise TypeError("boolValue must be true or false")
        return value["boolValue"]
    if "intValue" in value:
        return _integer(value["intValue"])
    if "doubleValue" in value:
        double = value["doubleValue"]
        # Numbers, or the strings "NaN", "Infinity", "-Infinity" (and numeric strings).
        if isinstance(double, bool) or not isinstance(double, (int, float, str)):
            raise TypeError(f"doubleValue must be a number, got {double!r}")
        return float(double)
    if "arrayValue" in value:
        return [decode_any_value(item) for item in _list(_object(value, "arrayValue"), "values")]
    if "kvlistValue" in value:
        return _decode_key_values(_object(value, "kvlistValue").get("values"))
    if "bytesValue" in value:
        return base64.b64decode(_string(value, "bytesValue"), validate=True)
    raise ValueError(f"unknown AnyValue kind {sorted(value)}")

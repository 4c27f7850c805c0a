"""The archive's text encoder writes exactly what the dict encoder plus json.dumps writes."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from otel_audit._otlp_json import dumps_compact, encode_logs_request
from otel_audit._otlp_json_line import encode_logs_line

from .test_archive import FIXED_CONTEXT, mixed_batch
from .test_archive import make_provider as archive_provider


class Level(enum.IntEnum):
    HIGH = 3


class Colour(str, enum.Enum):
    RED = "red"


# Lone surrogates, quotes, control characters and non-BMP text all need escaping rules.
_TEXT = st.text(st.characters(codec=None, categories=None), max_size=12)
_SCALARS = (
    _TEXT
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.binary(max_size=6)
    | st.sampled_from([Level.HIGH, Colour.RED])
)
_ATTRIBUTE_VALUES = _SCALARS | st.lists(_TEXT, max_size=3).map(tuple)
_BODIES = st.none() | st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)


def _records(
    attributes: dict[str, Any], body: Any, event_name: str, severity_text: str
) -> tuple[ReadableLogRecord, ...]:
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = archive_provider(SimpleLogRecordProcessor(memory))
    provider.get_logger("scope", "1").emit(
        event_name=event_name,
        body=body,
        attributes=attributes,
        severity_number=SeverityNumber.INFO,
        severity_text=severity_text,
        context=FIXED_CONTEXT,
        timestamp=1,
    )
    provider.get_logger("scope", "1").emit(body="second record, no context")
    return memory.get_finished_logs()


def _raise(_record: ReadableLogRecord, error: Exception) -> None:
    raise error


# An empty attribute key is dropped by the SDK (and counted): that path is covered too.
@pytest.mark.filterwarnings("ignore:Log record attributes were dropped")
@settings(max_examples=300, deadline=None)
@given(
    attributes=st.dictionaries(_TEXT, _ATTRIBUTE_VALUES, max_size=6),
    body=_BODIES,
    event_name=_TEXT,
    severity_text=_TEXT,
)
def test_text_encoder_equals_dict_encoder(
    attributes: dict[str, Any], body: Any, event_name: str, severity_text: str
) -> None:
    records = _records(attributes, body, event_name, severity_text)
    assert encode_logs_line(records, on_error=_raise) == dumps_compact(encode_logs_request(records))


def test_text_encoder_groups_like_the_dict_encoder() -> None:
    """Two resources and three scopes, interleaved: the same grouping and order."""
    batch = mixed_batch()
    assert encode_logs_line(batch, on_error=_raise) == dumps_compact(encode_logs_request(batch))


def test_unencodable_record_is_reported_and_left_out() -> None:
    deep: list[Any] = []
    deep.append(deep)  # a cyclic body cannot be encoded
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = archive_provider(SimpleLogRecordProcessor(memory))
    provider.get_logger("scope").emit(body=deep)
    provider.get_logger("scope").emit(body="fine")
    failed: list[Exception] = []

    line = encode_logs_line(
        memory.get_finished_logs(), on_error=lambda _record, error: failed.append(error)
    )

    assert len(failed) == 1
    assert '"fine"' in line and line.count('"body"') == 1
    assert encode_logs_line(memory.get_finished_logs()[:1], on_error=lambda *_: None) == ""

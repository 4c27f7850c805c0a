"""The last stage: a finished :class:`AuditEvent` goes to its transport and onto its span.

The emitter only emits. Building, policy, redaction and pseudonymisation happen before it
(``_processors``); counting and fail-closed decisions after it (``_auditor``), so an
exception here means "this event did not leave" and nothing else. The record goes first:
it is the system of record; the span event is a pointer to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal, Protocol

from opentelemetry.util.types import Attributes

from ._event import AuditEvent
from ._transport import Durable

# What a minimal span event keeps: enough to find the record and to filter traces by.
_MINIMAL_SPAN_EVENT: Final = (
    "audit.event.id",
    "audit.action",
    "audit.outcome",
    "user.id",
    "tenant.id",
)


class RecordSink(Protocol):
    """A transport's writing side (``_transport``)."""

    def write(self, event: AuditEvent) -> Durable | None:
        """Send or store the record; what to wait on for durability, if anything."""

    def flush(self, timeout: float) -> bool:
        """Wait until what was written so far has left (or is on disk)."""

    def close(self, timeout: float) -> None:
        """Flush and release what the sink holds; a clean end of the trail."""


class AuditEmitter:
    """Emits finished audit events through one transport and onto their spans."""

    def __init__(
        self,
        sink: RecordSink,
        *,
        span_events: bool,
        span_event_detail: Literal["full", "minimal"],
        on_span_error: Callable[[str, BaseException], None],
    ) -> None:
        self.sink = sink
        self._span_events = span_events
        self._minimal = span_event_detail == "minimal"
        self._on_span_error = on_span_error

    def emit(self, event: AuditEvent) -> Durable | None:
        """Emit ``event``; raises if the record did not leave, returns what to wait on."""
        durable = self.sink.write(event)
        span = event.span
        if span is not None and self._span_events and span.is_recording():
            try:
                span.add_event(event.name, self._span_event_attributes(event), event.timestamp_ns)
            except Exception as exc:
                # The record, the system of record, already left: not a drop.
                self._on_span_error("span_event_error", exc)
        return durable

    def _span_event_attributes(self, event: AuditEvent) -> Attributes:
        if not self._minimal:
            return event.attributes
        attributes = event.attributes
        return {key: attributes[key] for key in _MINIMAL_SPAN_EVENT if key in attributes}

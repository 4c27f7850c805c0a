"""The last stage: a finished :class:`AuditEvent` becomes an OTel log record and a span event.

The emitter only emits. Building, policy, redaction and pseudonymisation happen before it
(``_processors``); counting and fail-closed decisions after it (``_auditor``), so an
exception here means "this event did not leave" and nothing else. Log records are emitted
whether or not the trace is sampled: the audit trail must not depend on sampling.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final, Literal

from opentelemetry import _logs, trace
from opentelemetry.context import Context
from opentelemetry.util.types import Attributes

from ._event import SEVERITY, AuditEvent
from ._export_queue import DropSink
from ._providers import resolve_logger_provider
from ._selftelemetry import SCOPE_NAME
from ._version import __version__

# What a minimal span event keeps: enough to find the log record and to filter traces by.
_MINIMAL_SPAN_EVENT: Final = (
    "audit.event.id",
    "audit.action",
    "audit.outcome",
    "user.id",
    "tenant.id",
)


class AuditEmitter:
    """Emits finished audit events through one logger provider and onto their spans."""

    def __init__(
        self,
        *,
        logger_provider: _logs.LoggerProvider | None,
        archive_dir: str,
        span_events: bool,
        span_event_detail: Literal["full", "minimal"],
        on_pipeline_drop: DropSink,
        on_span_error: Callable[[str, BaseException], None],
    ) -> None:
        self._explicit_provider = logger_provider
        self._archive_dir = archive_dir
        self._span_events = span_events
        self._minimal = span_event_detail == "minimal"
        self._on_pipeline_drop = on_pipeline_drop
        self._on_span_error = on_span_error
        self._provider: _logs.LoggerProvider | None = None
        self._logger: _logs.Logger | None = None
        self._logger_lock = threading.Lock()

    @property
    def logger(self) -> _logs.Logger:
        """The audit logger, resolved on first use so providers configured late still count."""
        logger = self._logger
        if logger is None:
            with self._logger_lock:
                if self._logger is None:
                    self._provider = resolve_logger_provider(
                        self._explicit_provider, self._archive_dir, self._on_pipeline_drop
                    )
                    self._logger = self._provider.get_logger(SCOPE_NAME, __version__)
                logger = self._logger
        return logger

    def emit(self, event: AuditEvent) -> None:
        """Emit ``event`` as a log record, then on its span; raises if the record did not leave."""
        severity_number, severity_text = SEVERITY[event.outcome]
        span = event.span
        context: Context | None = trace.set_span_in_context(span) if span is not None else None
        self.logger.emit(
            timestamp=event.timestamp_ns,
            observed_timestamp=event.timestamp_ns,
            context=context,
            severity_number=severity_number,
            severity_text=severity_text,
            body=event.body,
            attributes=event.attributes,
            event_name=event.name,
        )
        if span is not None and self._span_events and span.is_recording():
            try:
                span.add_event(event.name, self._span_event_attributes(event), event.timestamp_ns)
            except Exception as exc:
                # The log record, the system of record, already left: not a drop.
                self._on_span_error("span_event_error", exc)

    def _span_event_attributes(self, event: AuditEvent) -> Attributes:
        if not self._minimal:
            return event.attributes
        attributes = event.attributes
        return {key: attributes[key] for key in _MINIMAL_SPAN_EVENT if key in attributes}

    def flush(self, timeout_millis: int = 10_000) -> bool:
        """Export every queued audit event now (blocking); False if that did not finish."""
        force_flush = getattr(self._provider, "force_flush", None)
        if not callable(force_flush):
            return True
        return bool(force_flush(timeout_millis))

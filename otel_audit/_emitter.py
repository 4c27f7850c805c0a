"""The one place an :class:`AuditEvent` becomes an OTel log record and a span event.

Emission is failure-isolated: an exporter or SDK error is counted on
``otel_audit.events.dropped`` (by reason), logged at most once a minute per reason, and
swallowed, unless ``fail_closed`` asks for :class:`AuditEmitError` instead. Log records are
emitted whether or not the trace is sampled: the audit trail must not depend on sampling.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

from opentelemetry import _logs, metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span
from opentelemetry.util.types import Attributes

from ._actor import ActorResolver
from ._config import AuditConfig
from ._errors import AuditEmitError
from ._event import SEVERITY, AuditEvent
from ._metrics import LabelledCount
from ._providers import resolve_logger_provider
from ._scrub import Scrubber
from ._version import __version__

_log = logging.getLogger("otel_audit")
_LOG_INTERVAL_SECONDS: Final = 60.0
SCOPE_NAME: Final = "otel_audit"
# What a minimal span event keeps: enough to find the log record and to filter traces by.
_MINIMAL_SPAN_EVENT: Final = (
    "audit.event.id",
    "audit.action",
    "audit.outcome",
    "user.id",
    "tenant.id",
)


class _RateLimitedWarnings:
    """Logs a failure reason at most once per interval, with how many were suppressed."""

    def __init__(self, interval: float = _LOG_INTERVAL_SECONDS) -> None:
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warn(self, reason: str, exc: BaseException | None) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(reason)
            if last is not None and now - last < self._interval:
                self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
                return
            self._last[reason] = now
            suppressed = self._suppressed.pop(reason, 0)
        _log.warning(
            "otel_audit: %s (%s); %d similar suppressed since last report",
            reason,
            f"{type(exc).__name__}: {exc}" if exc is not None else "no detail",
            suppressed,
        )


class AuditEmitter:
    """Emits audit events through one logger provider and counts what it emits and drops."""

    def __init__(
        self,
        config: AuditConfig,
        *,
        logger_provider: _logs.LoggerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.config = config
        self.scrubber = Scrubber(config)
        self.actors = ActorResolver(config, self.report_error)
        self._explicit_provider = logger_provider
        self._provider: _logs.LoggerProvider | None = None
        self._logger: _logs.Logger | None = None
        self._logger_lock = threading.Lock()
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(SCOPE_NAME, __version__)
        self.emitted = LabelledCount(
            meter,
            "otel_audit.events.emitted",
            unit="{event}",
            description="Audit events emitted, by action.",
            label="audit.action",
        )
        self.dropped = LabelledCount(
            meter,
            "otel_audit.events.dropped",
            unit="{event}",
            description="Audit events lost, by reason.",
            label="reason",
        )
        self.errors = LabelledCount(
            meter,
            "otel_audit.errors",
            unit="{error}",
            description="Failures inside auditing that did not lose an event, by reason.",
            label="reason",
        )
        self._warnings = _RateLimitedWarnings()

    @property
    def logger(self) -> _logs.Logger:
        """The audit logger, resolved on first use so providers configured late still count."""
        logger = self._logger
        if logger is None:
            with self._logger_lock:
                if self._logger is None:
                    self._provider = resolve_logger_provider(
                        self._explicit_provider, self.config.archive_dir, self.report_drops
                    )
                    self._logger = self._provider.get_logger(SCOPE_NAME, __version__)
                logger = self._logger
        return logger

    def emit(self, event: AuditEvent, span: Span | None = None) -> bool:
        """Emit ``event`` as a log record (and on ``span``); False if it was dropped."""
        severity_number, severity_text = SEVERITY[event.outcome]
        name = event.name
        context: Context | None = trace.set_span_in_context(span) if span is not None else None
        try:
            self.logger.emit(
                timestamp=event.timestamp_ns,
                observed_timestamp=event.timestamp_ns,
                context=context,
                severity_number=severity_number,
                severity_text=severity_text,
                body=event.body,
                attributes=event.attributes,
                event_name=name,
            )
        except Exception as exc:
            self.drop(name, "export_error", exc)
            return False
        self.emitted.add(event.action)
        if span is not None and self.config.span_events and span.is_recording():
            try:
                span.add_event(name, self._span_event_attributes(event), event.timestamp_ns)
            except Exception as exc:
                # The log record, the system of record, already left: not a drop.
                self.report_error("span_event_error", exc)
        return True

    def _span_event_attributes(self, event: AuditEvent) -> Attributes:
        if self.config.span_event_detail == "full":
            return event.attributes
        return {
            key: event.attributes[key] for key in _MINIMAL_SPAN_EVENT if key in event.attributes
        }

    def flush(self, timeout_millis: int = 10_000) -> bool:
        """Export every queued audit event now (blocking); False if that did not finish."""
        force_flush = getattr(self._provider, "force_flush", None)
        if not callable(force_flush):
            return True
        try:
            return bool(force_flush(timeout_millis))
        except Exception as exc:
            self.report_error("flush_error", exc)
            return False

    def drop(self, what: str, reason: str, exc: BaseException, *, may_raise: bool = True) -> None:
        """Count a lost event; with ``fail_closed`` (and ``may_raise``) raise instead."""
        self.report_drop(reason, exc)
        if may_raise and self.config.fail_closed:
            raise AuditEmitError(f"{what} was lost: {reason}") from exc

    def report_drop(self, reason: str, exc: BaseException | None = None) -> None:
        """Count and (rate-limited) log an audit event that was lost."""
        self.dropped.add(reason)
        self._warnings.warn(f"audit event dropped: {reason}", exc)

    def report_drops(self, reason: str, count: int) -> None:
        """Count and (rate-limited) log ``count`` events the export pipeline lost."""
        self.dropped.add(reason, count)
        self._warnings.warn(f"{count} audit events dropped: {reason}", None)

    def report_error(self, reason: str, exc: BaseException | None = None) -> None:
        """Count and (rate-limited) log a failure that did not lose an event."""
        self.errors.add(reason)
        self._warnings.warn(reason, exc)


_default_lock = threading.Lock()
_default_emitter: AuditEmitter | None = None


def set_default_emitter(emitter: AuditEmitter) -> None:
    """Make ``emitter`` the one ``record()`` uses outside any request."""
    global _default_emitter  # noqa: PLW0603 - one process-wide default, by design
    with _default_lock:
        _default_emitter = emitter


def default_emitter() -> AuditEmitter:
    """The emitter for events outside a request: the last instrumented app's, else env-only."""
    global _default_emitter  # noqa: PLW0603
    emitter = _default_emitter
    if emitter is None:
        with _default_lock:
            if _default_emitter is None:
                _default_emitter = AuditEmitter(AuditConfig())
            emitter = _default_emitter
    return emitter

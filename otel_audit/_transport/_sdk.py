"""The ``sdk`` transport: audit records through an OpenTelemetry SDK ``LoggerProvider``.

The application's own provider when it gave one (or configured a global one), else the
library's embedded pipeline (``_providers``). Records are emitted whether or not the trace
is sampled: the audit trail must not depend on sampling. What the provider's pipeline drops
is that pipeline's to count.
"""

from __future__ import annotations

import threading

from opentelemetry import _logs, trace
from opentelemetry.context import Context

from .._event import SEVERITY, AuditEvent
from .._export_queue import DropSink
from .._providers import resolve_logger_provider
from .._selftelemetry import SCOPE_NAME
from .._version import __version__


class SdkSink:
    """Emits audit records as SDK log records; the provider is resolved on first use."""

    def __init__(
        self,
        logger_provider: _logs.LoggerProvider | None,
        archive_dir: str,
        on_pipeline_drop: DropSink,
    ) -> None:
        self._explicit_provider = logger_provider
        self._archive_dir = archive_dir
        self._on_pipeline_drop = on_pipeline_drop
        self._provider: _logs.LoggerProvider | None = None
        self._logger: _logs.Logger | None = None
        self._lock = threading.Lock()

    @property
    def logger(self) -> _logs.Logger:
        """The audit logger, resolved on first use so providers configured late still count."""
        logger = self._logger
        if logger is None:
            with self._lock:
                if self._logger is None:
                    self._provider = resolve_logger_provider(
                        self._explicit_provider, self._archive_dir, self._on_pipeline_drop
                    )
                    self._logger = self._provider.get_logger(SCOPE_NAME, __version__)
                logger = self._logger
        return logger

    def write(self, event: AuditEvent) -> None:
        """Hand ``event`` to the provider's pipeline (nothing to wait for afterwards)."""
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

    def flush(self, timeout: float) -> bool:
        """Export what the provider still queues (blocking); False if that did not finish."""
        force_flush = getattr(self._provider, "force_flush", None)
        if not callable(force_flush):
            return True
        return bool(force_flush(int(timeout * 1000)))

    def close(self, timeout: float) -> None:
        """Flush only: the provider outlives the app (it may be the application's own)."""
        self.flush(timeout)
